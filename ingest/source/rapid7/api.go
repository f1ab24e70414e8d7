package rapid7

// The shape of Rapid7's Log Search API as this package uses it, in one place (see the package
// comment for where it is documented).

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// logsPath lists the account's logs: {"logs":[{"id","name","logsets_info":[{"id","name"}]}]}.
const logsPath = "/log_search/management/logs"

// queryPath queries logs (their ids joined by ':') between from and to, Unix milliseconds.
func queryPath(logIDs []string, from, to int64, perPage int) string {
	q := url.Values{}
	q.Set("from", strconv.FormatInt(from, 10))
	q.Set("to", strconv.FormatInt(to, 10))
	q.Set("per_page", strconv.Itoa(perPage))
	return "/log_search/query/logs/" + strings.Join(logIDs, ":") + "?" + q.Encode()
}

// event is a log entry of a query's answer.
type event struct {
	LogID     string          `json:"log_id"`
	Sequence  json.RawMessage `json:"sequence_number"`
	SeqString string          `json:"sequence_number_str"`
	Timestamp int64           `json:"timestamp"`
	Message   json.RawMessage `json:"message"`
}

// key identifies an event: its log and sequence number.
func (e event) key() string {
	seq := e.SeqString
	if seq == "" {
		seq = strings.Trim(string(e.Sequence), `"`)
	}
	return e.LogID + ":" + seq
}

// record is the audit event: the message's text (a JSON string holding the event's JSON), or
// the message as it is if it is not a string.
func (e event) record() []byte {
	var s string
	if err := json.Unmarshal(e.Message, &s); err == nil {
		return []byte(s)
	}
	return []byte(e.Message)
}

// page is an answer to a query.
type page struct {
	Events  []event
	Next    string // the next page, if any
	Self    string // where to poll a query still running
	Running bool
}

func parsePage(body []byte) (page, error) {
	var raw struct {
		Events []event `json:"events"`
		Links  []struct {
			Rel  string `json:"rel"`
			Href string `json:"href"`
		} `json:"links"`
		Progress *int `json:"progress"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return page{}, fmt.Errorf("rapid7: query answer: %w", err)
	}
	pg := page{Events: raw.Events, Running: raw.Progress != nil && *raw.Progress < 100}
	for _, l := range raw.Links {
		switch strings.ToLower(l.Rel) {
		case "next":
			pg.Next = l.Href
		case "self":
			pg.Self = l.Href
		}
	}
	if pg.Running {
		pg.Next = ""
	}
	return pg, nil
}

// parseAuditLogs returns the ids of the logs whose name or log set's name holds "audit".
func parseAuditLogs(body []byte) ([]string, error) {
	var raw struct {
		Logs []struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			LogSets []struct {
				Name string `json:"name"`
			} `json:"logsets_info"`
		} `json:"logs"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("rapid7: logs: %w", err)
	}
	var ids []string
	for _, l := range raw.Logs {
		audit := strings.Contains(strings.ToLower(l.Name), "audit")
		for _, s := range l.LogSets {
			audit = audit || strings.Contains(strings.ToLower(s.Name), "audit")
		}
		if audit {
			ids = append(ids, l.ID)
		}
	}
	return ids, nil
}
