// Package rapid7 pulls Rapid7 InsightIDR audit logs (log type Rapid7.AuditLog) from the Insight
// Platform API on an interval, as Panther's Rapid7 source does.
//
// Rapid7 keeps audit logs as logs of its Log Search service ("Retrieve Platform Audit Logs using
// the API", docs.rapid7.com/insightidr/get-audit-logs): they are queried with the Log Search
// query API of https://<region>.api.insight.rapid7.com, authenticated by the X-Api-Key header
// (docs.rapid7.com/insight/api-overview). Rapid7 documents no dedicated audit-log search
// endpoint; this package uses the documented Log Search one, and everything it assumes of it is
// in api.go: the request (GET /log_search/query/logs/<id:id...>?from=&to=&per_page=, times in
// Unix milliseconds), the answer ({"events":[{"log_id","sequence_number","timestamp",
// "message"}], "links":[{"rel":"Next"|"Self","href"}], "progress"}: events in time order, a
// message being the audit event's JSON), pagination (follow the Next link), and a query still
// running (202, or a progress below 100: poll the Self link).
//
// The puller keeps a cursor (the time it has read up to, and the events already read at that
// millisecond) and appends each page's records with the cursor they lead to in the same
// durable log entry (pipeline.AppendCursor): after a restart it goes on from its last durable
// page, and neither re-reads nor skips. It reads up to Delay before now, leaving Rapid7 time to
// index late events. A 401 is a clear error and marks the source unhealthy (it keeps trying on
// its interval, so a fixed key is taken up); a 429 is retried after Retry-After or
// X-RateLimit-Reset, or with backoff. The API key is never logged.
package rapid7

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/health"
)

// Appender makes records durable with the source's cursor; osprey serve's pipeline is one.
type Appender interface {
	AppendCursor(ctx context.Context, source string, records [][]byte, cursor string) error
	Cursor(source string) string
}

// Options configure a Puller.
type Options struct {
	// Source is the name records are appended under (the source's id).
	Source string
	// Region is the data storage region (us, us2, us3, eu, ca, au, ap); BaseURL, when set,
	// replaces https://<region>.api.insight.rapid7.com (tests).
	Region  string
	BaseURL string
	// APIKey authenticates (X-Api-Key). It is never logged.
	APIKey string
	// LogIDs are the audit logs to query; empty: the logs whose name or log set name holds
	// "audit", found once at start.
	LogIDs []string
	// Interval between polls; default 1 min. Delay is how far behind now the reading stops;
	// default 1 min. Since is how far back the first poll of a source without a cursor reads;
	// default 1 h. PerPage is the events per page asked for; default 500.
	Interval time.Duration
	Delay    time.Duration
	Since    time.Duration
	PerPage  int
	// Client is the HTTP client; default one with a 60 s timeout.
	Client *http.Client
	Logger *slog.Logger
	// Now and Wait are the clock; default time.Now and a timer.
	Now  func() time.Time
	Wait func(ctx context.Context, d time.Duration) error
	// Retryable reports whether an append error means "later" (the pipeline is busy).
	Retryable func(error) bool
}

// Errors.
var (
	// ErrUnauthorized means Rapid7 refused the API key.
	ErrUnauthorized = errors.New("rapid7 refused the API key (401 Unauthorized): check the source's apiKey, and that it is an organization key or a Platform Admin's user key")
)

// Puller polls the audit logs into an Appender.
type Puller struct {
	opts   Options
	app    Appender
	health *health.Source
}

// New returns a puller; h may be nil.
func New(app Appender, h *health.Source, opts Options) *Puller {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Delay < 0 {
		opts.Delay = 0
	} else if opts.Delay == 0 {
		opts.Delay = time.Minute
	}
	if opts.Since <= 0 {
		opts.Since = time.Hour
	}
	if opts.PerPage <= 0 {
		opts.PerPage = 500
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 60 * time.Second}
	}
	if opts.BaseURL == "" {
		opts.BaseURL = "https://" + opts.Region + ".api.insight.rapid7.com"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Wait == nil {
		opts.Wait = wait
	}
	if opts.Retryable == nil {
		opts.Retryable = func(error) bool { return false }
	}
	if h == nil {
		h = &health.Source{}
	}
	return &Puller{opts: opts, app: app, health: h}
}

// Health returns the puller's health.
func (p *Puller) Health() *health.Source { return p.health }

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run polls every Interval until ctx is done, and returns ctx's error.
func (p *Puller) Run(ctx context.Context) error {
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.health.Error(p.opts.Now(), err)
			p.opts.Logger.Warn("rapid7 poll", "source", p.opts.Source, "err", err)
		}
		if err := p.opts.Wait(ctx, p.opts.Interval); err != nil {
			return err
		}
	}
}

// cursor is where the puller stands: every event before From (ms) is in, and so are those at
// From whose keys are in Seen.
type cursor struct {
	From int64    `json:"from"`
	Seen []string `json:"seen,omitempty"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Poll reads the events from the cursor up to Delay before now.
func (p *Puller) Poll(ctx context.Context) error {
	now := p.opts.Now()
	cur := cursor{From: now.Add(-p.opts.Since).UnixMilli()}
	if s := p.app.Cursor(p.opts.Source); s != "" {
		if err := json.Unmarshal([]byte(s), &cur); err != nil {
			return fmt.Errorf("cursor %q: %w", s, err)
		}
	}
	to := now.Add(-p.opts.Delay).UnixMilli()
	if to <= cur.From {
		return nil
	}
	logs := p.opts.LogIDs
	if len(logs) == 0 {
		var err error
		if logs, err = p.auditLogs(ctx); err != nil {
			return err
		}
		if len(logs) == 0 {
			return errors.New("rapid7 has no audit log: is audit logging enabled (Settings > Audit Logs)?")
		}
		p.opts.LogIDs = logs
	}
	seen := map[string]bool{}
	for _, k := range cur.Seen {
		seen[k] = true
	}
	url := p.opts.BaseURL + queryPath(logs, cur.From, to, p.opts.PerPage)
	pages, total := int64(0), int64(0)
	for url != "" {
		pg, err := p.page(ctx, url)
		if err != nil {
			return err
		}
		sort.SliceStable(pg.Events, func(i, j int) bool { return pg.Events[i].Timestamp < pg.Events[j].Timestamp })
		var recs [][]byte
		for _, e := range pg.Events {
			if e.Timestamp < cur.From || seen[e.key()] {
				continue // already in (the cursor's millisecond), or out of order before it
			}
			if e.Timestamp > cur.From {
				cur.From, cur.Seen = e.Timestamp, nil
				clear(seen)
			}
			cur.Seen = append(cur.Seen, e.key())
			seen[e.key()] = true
			recs = append(recs, e.record())
		}
		if pg.Next == "" {
			// The window is read: the next starts at its end (events at exactly `to`, if
			// the API returned them, are in Seen).
			if to > cur.From {
				cur.From, cur.Seen = to, nil
			}
		}
		if err := p.append(ctx, recs, cur.String()); err != nil {
			return err
		}
		pages++
		total += int64(len(recs))
		url = pg.Next
	}
	p.health.Success(p.opts.Now(), pages, total)
	p.opts.Logger.Info("rapid7 poll", "pages", pages, "records", total)
	return nil
}

// append appends, waiting while the pipeline is busy.
func (p *Puller) append(ctx context.Context, recs [][]byte, cur string) error {
	for busy := 1; ; busy++ {
		err := p.app.AppendCursor(ctx, p.opts.Source, recs, cur)
		if err == nil || !p.opts.Retryable(err) {
			return err
		}
		if werr := p.opts.Wait(ctx, backoff(busy)); werr != nil {
			return werr
		}
	}
}

func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 6)
	return min(d, time.Minute)
}

// maxPolls bounds how often a running query is polled before the poll gives up (and starts
// again at the next interval).
const maxPolls = 60

// page gets a page of events, polling a query that is still running and waiting out 429s.
func (p *Puller) page(ctx context.Context, url string) (page, error) {
	limited, polls := 0, 0
	for {
		status, header, body, err := p.get(ctx, url)
		if err != nil {
			return page{}, err
		}
		switch {
		case status == http.StatusUnauthorized:
			return page{}, ErrUnauthorized
		case status == http.StatusTooManyRequests:
			limited++
			if limited > 10 {
				return page{}, errors.New("rapid7 kept answering 429 Too Many Requests")
			}
			if err := p.opts.Wait(ctx, retryAfter(header, p.opts.Now(), limited)); err != nil {
				return page{}, err
			}
			continue
		case status != http.StatusOK && status != http.StatusAccepted:
			return page{}, fmt.Errorf("rapid7 answered %d: %.200s", status, body)
		}
		pg, err := parsePage(body)
		if err != nil {
			return page{}, err
		}
		if status == http.StatusAccepted || pg.Running {
			if pg.Self == "" {
				return page{}, errors.New("rapid7: a running query without a link to poll")
			}
			if polls++; polls > maxPolls {
				return page{}, errors.New("rapid7: the query did not finish")
			}
			if err := p.opts.Wait(ctx, time.Second); err != nil {
				return page{}, err
			}
			url = pg.Self
			continue
		}
		return pg, nil
	}
}

// retryAfter is how long to wait after a 429: Retry-After (seconds), else X-RateLimit-Reset
// (seconds until the limit resets), else backoff.
func retryAfter(h http.Header, now time.Time, n int) time.Duration {
	for _, name := range []string{"Retry-After", "X-RateLimit-Reset"} {
		if v, err := strconv.Atoi(h.Get(name)); err == nil && v >= 0 {
			return time.Duration(v) * time.Second
		}
	}
	if t, err := http.ParseTime(h.Get("Retry-After")); err == nil {
		return max(t.Sub(now), 0)
	}
	return backoff(n)
}

func (p *Puller) get(ctx context.Context, url string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Api-Key", p.opts.APIKey)
	req.Header.Set("Accept", "application/json")
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("rapid7: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("rapid7: read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// auditLogs finds the audit logs among the account's logs.
func (p *Puller) auditLogs(ctx context.Context) ([]string, error) {
	status, _, body, err := p.get(ctx, p.opts.BaseURL+logsPath)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, ErrUnauthorized
	default:
		return nil, fmt.Errorf("rapid7 answered %d listing logs: %.200s", status, body)
	}
	return parseAuditLogs(body)
}
