package dest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ospreyhq/osprey/detections/alert"
)

// slackDest posts each alert as a Slack incoming-webhook message.
type slackDest struct {
	poster
	id     string
	policy Policy
}

var _ Destination = (*slackDest)(nil)

func (d *slackDest) ID() string     { return d.id }
func (d *slackDest) Policy() Policy { return d.policy }

func (d *slackDest) Send(ctx context.Context, a *alert.Alert, _ string) error {
	body, err := json.Marshal(slackMessage(a))
	if err != nil {
		return Permanent(fmt.Errorf("encode slack message: %w", err))
	}
	return d.post(ctx, http.Header{"Content-Type": {"application/json"}}, body)
}

// The parts of a Slack message (Block Kit) that alerts use.
type (
	slackMsg struct {
		Text   string       `json:"text"` // the notification, and the fallback of the blocks
		Blocks []slackBlock `json:"blocks"`
	}
	slackBlock struct {
		Type     string      `json:"type"` // header, section or context
		Text     *slackText  `json:"text,omitempty"`
		Fields   []slackText `json:"fields,omitempty"`
		Elements []slackText `json:"elements,omitempty"`
	}
	slackText struct {
		Type string `json:"type"` // plain_text or mrkdwn
		Text string `json:"text"`
	}
)

// Slack's limits on the length of texts.
const (
	slackHeaderMax  = 150
	slackFieldMax   = 2000
	slackSectionMax = 3000
)

// slackMessage builds the message of an alert: a header with its severity and title, fields
// with the rule, the events and the alert id, and its description and runbook.
func slackMessage(a *alert.Alert) slackMsg {
	title := fmt.Sprintf("[%s] %s", a.Severity, a.Title)
	rule := "`" + a.RuleID + "`"
	if a.RuleName != "" {
		rule = slackEscape(a.RuleName) + " (" + rule + ")"
	}
	field := func(name, value string) slackText {
		return slackText{Type: "mrkdwn", Text: truncate("*"+name+"*\n"+value, slackFieldMax)}
	}
	m := slackMsg{Text: slackEscape(title)}
	m.Blocks = append(m.Blocks,
		slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title, slackHeaderMax)}},
		slackBlock{Type: "section", Fields: []slackText{
			field("Severity", slackEscape(a.Severity)),
			field("Rule", rule),
			field("Events", strconv.FormatInt(a.Events, 10)),
			field("Alert id", "`"+a.AlertID+"`"),
			field("First event", slackTime(a.FirstEvent)),
			field("Last event", slackTime(a.LastEvent)),
		}},
	)
	for _, s := range []struct{ name, text string }{{"Description", a.Description}, {"Runbook", a.Runbook}, {"Reference", a.Reference}} {
		if s.text != "" {
			m.Blocks = append(m.Blocks, slackBlock{Type: "section", Text: &slackText{
				Type: "mrkdwn", Text: truncate("*"+s.name+"*\n"+slackEscape(s.text), slackSectionMax),
			}})
		}
	}
	ctx := "Osprey alert · created " + slackTime(a.CreatedAt)
	if len(a.LogTypes) > 0 {
		ctx += " · " + slackEscape(strings.Join(a.LogTypes, ", "))
	}
	m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: truncate(ctx, slackFieldMax)}}})
	return m
}

func slackTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// slackEscape escapes the characters Slack's mrkdwn gives a meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n characters, ending it with an ellipsis if it was cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
