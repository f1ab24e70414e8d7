package rapid7

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// fakeRapid7 serves the Log Search API in the documented shape: a log list, queries that first
// answer 202 with a Self link to poll, pages of per_page events with a Next link, one 429 with
// Retry-After, and 401 for another key. Its query bounds are inclusive at both ends.
type fakeRapid7 struct {
	*httptest.Server
	mu       sync.Mutex
	key      string
	events   []event
	queries  map[string][]event
	perPage  map[string]int
	limited  bool // a 429 was sent
	requests []string
}

const auditLog = "0f1e2d3c-audit"

func newFakeRapid7(key string) *fakeRapid7 {
	f := &fakeRapid7{key: key, queries: map[string][]event{}, perPage: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// add adds an audit event at ts (ms).
func (f *fakeRapid7) add(n int, ts int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := fmt.Sprintf(`{"action":"ACTION_%d","audit_id":"a-%d","result":"SUCCESS","product":"IDR","time":%q,"request":{"user":{"email":"u%d@example.com","name":"user %d"}}}`,
		n, n, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), n, n)
	m, _ := json.Marshal(msg)
	f.events = append(f.events, event{LogID: auditLog, SeqString: strconv.Itoa(1000 + n), Sequence: json.RawMessage(strconv.Itoa(1000 + n)), Timestamp: ts, Message: m})
}

func (f *fakeRapid7) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.Path)
	if r.Header.Get("X-Api-Key") != f.key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Unauthorized"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/log_search/management/logs":
		fmt.Fprintf(w, `{"logs":[{"id":"other","name":"Firewall","logsets_info":[{"name":"Network"}]},{"id":%q,"name":"Platform Audit Log","logsets_info":[{"name":"Audit Logs"}]}]}`, auditLog)
	case strings.HasPrefix(r.URL.Path, "/log_search/query/logs/"):
		if ids := strings.TrimPrefix(r.URL.Path, "/log_search/query/logs/"); ids != auditLog {
			http.Error(w, "unknown log "+ids, http.StatusNotFound)
			return
		}
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		var hits []event
		for _, e := range f.events {
			if e.Timestamp >= from && e.Timestamp <= to {
				hits = append(hits, e)
			}
		}
		id := fmt.Sprint("q", len(f.queries))
		f.queries[id], f.perPage[id] = hits, per
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"logs":[%q],"id":%q,"progress":0,"links":[{"rel":"Self","href":"%s/log_search/query/%s"}]}`, auditLog, id, f.URL, id)
	case strings.HasPrefix(r.URL.Path, "/log_search/query/"):
		if !f.limited {
			f.limited = true
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/log_search/query/")
		hits, per := f.queries[id], f.perPage[id]
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		end := min(off+per, len(hits))
		body := map[string]any{"logs": []string{auditLog}, "events": hits[off:end]}
		if end < len(hits) {
			body["links"] = []map[string]string{{"rel": "Next", "href": fmt.Sprintf("%s/log_search/query/%s?offset=%d", f.URL, id, end)}}
		}
		json.NewEncoder(w).Encode(body)
	default:
		http.NotFound(w, r)
	}
}

// flaky fails its n-th append, as a crash right before it would.
type flaky struct {
	*pipeline.Pipeline
	calls, failAt int
}

func (f *flaky) AppendCursor(ctx context.Context, source string, records [][]byte, cursor string) error {
	if f.calls++; f.calls == f.failAt {
		return errors.New("crash")
	}
	return f.Pipeline.AppendCursor(ctx, source, records, cursor)
}

type run struct {
	p    *pipeline.Pipeline
	stop func()
}

func startPipeline(t *testing.T, l *lake.Lake) run {
	t.Helper()
	p, err := pipeline.Open(context.Background(), l, pipeline.Options{FlushAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Rapid7.AuditLog")
	if err != nil {
		t.Fatal(err)
	}
	p.SetSource(&ingest.Source{Source: batch.Source{ID: "r7", Label: "Rapid7"}, LogTypes: []*logtypes.LogType{lt}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return run{p, func() { cancel(); <-done }}
}

// TestPuller polls a local Rapid7 API through the real pipeline: pages are followed, a running
// query is polled, a 429 waited out; a crash between two pages and a restart neither re-read
// nor skip an event (including events sharing a millisecond at the cursor); rows land in
// panther_logs.rapid7_auditlog. A wrong key is a clear error and an unhealthy source.
func TestPuller(t *testing.T) {
	f := newFakeRapid7("right-key")
	defer f.Close()
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 25 {
		f.add(i, base.Add(time.Duration(i/2)*time.Second).UnixMilli()) // pairs share a millisecond
	}
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := base.Add(time.Hour)
	var waits []time.Duration
	opts := func(key string) Options {
		return Options{Source: "r7", BaseURL: f.URL, APIKey: key, PerPage: 4, Since: 2 * time.Hour, Delay: time.Minute,
			Now: func() time.Time { return now },
			Wait: func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}}
	}

	// First run: crashes at its third append.
	r := startPipeline(t, l)
	fl := &flaky{Pipeline: r.p, failAt: 3}
	if err := New(fl, nil, opts("right-key")).Poll(ctx); err == nil || err.Error() != "crash" {
		t.Fatalf("first poll: %v", err)
	}
	r.stop() // no Close: what was appended is only in the write-ahead log

	// Restart: goes on from the last durable page.
	r = startPipeline(t, l)
	p := New(r.p, nil, opts("right-key"))
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// Later events, one at the very millisecond the last window ended on (to is inclusive
	// here), and a poll that reads them.
	end := now.Add(-time.Minute)
	f.add(25, end.UnixMilli())
	f.add(26, end.Add(30*time.Second).UnixMilli())
	now = now.Add(2 * time.Minute)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil { // nothing new
		t.Fatal(err)
	}
	if snap := p.Health().Snapshot(now); !snap.Healthy || snap.Records != 19 { // 17 after the restart, then 2
		t.Errorf("health %+v", snap)
	}
	if err := r.p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.stop()
	if err := r.p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var n, distinct int
	var minID, email string
	if err := db.SQL().QueryRow(`SELECT count(*), count(DISTINCT audit_id), min(p_source_id), min(request.user.email) FROM panther_logs.rapid7_auditlog`).Scan(&n, &distinct, &minID, &email); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if n != 27 || distinct != 27 || minID != "r7" || email != "u0@example.com" {
		t.Errorf("rows: %d, %d distinct, source %q, email %q; want 27 once each", n, distinct, minID, email)
	}
	has := func(d time.Duration) bool {
		for _, w := range waits {
			if w == d {
				return true
			}
		}
		return false
	}
	if !has(7*time.Second) || !has(time.Second) {
		t.Errorf("waits %v: want the 429's Retry-After (7s) and query polls (1s)", waits)
	}

	// A wrong key: a clear error, an unhealthy source, and the key in no error.
	now = now.Add(time.Minute)
	bad := New(r.p, nil, opts("wrong-key"))
	err = bad.Poll(ctx)
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("wrong key: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	o := opts("wrong-key")
	o.Wait = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	bad = New(r.p, nil, o)
	if err := bad.Run(runCtx); !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}
	if snap := bad.Health().Snapshot(now); snap.Healthy || !strings.Contains(snap.Error, "401") {
		t.Errorf("health after a 401: %+v", snap)
	}
}
