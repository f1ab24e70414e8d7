package dest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections/alert"
)

// hangGuard bounds every wait of the tests: it only turns a hang into a failure.
const hangGuard = 20 * time.Second

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

var t0 = time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)

// newAlert returns a distinct alert for each i.
func newAlert(i int) *alert.Alert {
	return &alert.Alert{
		AlertID: fmt.Sprintf("%032x", i), Type: alert.TypeRule, RuleID: "Test.Rule", RuleName: "Test rule",
		Title: fmt.Sprintf("alert %d", i), Severity: "High", Dedup: fmt.Sprint("dedup-", i),
		Status: alert.StatusOpen, CreatedAt: t0, UpdatedAt: t0, Events: int64(i + 1),
		FirstEvent: t0.Add(-time.Minute), LastEvent: t0, Runbook: "Call the owner.",
	}
}

// request is what a receiver got.
type request struct {
	ctx      context.Context // the request's
	n        int             // 1-based, over all requests
	delivery string
	header   http.Header
	body     []byte
	status   int
}

// receiver is an HTTP server on 127.0.0.1 that records requests and answers as respond says:
// a status, or 0 to drop the connection without an answer.
type receiver struct {
	srv     *httptest.Server
	respond func(r *request, w http.ResponseWriter) int

	mu       sync.Mutex
	requests []*request
	changed  chan struct{}
}

func newReceiver(t *testing.T, respond func(r *request, w http.ResponseWriter) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond, changed: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		body, err := io.ReadAll(hr.Body)
		if err != nil {
			return
		}
		rc.mu.Lock()
		r := &request{ctx: hr.Context(), n: len(rc.requests) + 1, delivery: hr.Header.Get(HeaderDelivery), header: hr.Header.Clone(), body: body}
		rc.requests = append(rc.requests, r)
		rc.notifyLocked()
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.respond != nil {
			status = rc.respond(r, w)
		}
		rc.mu.Lock()
		r.status = status
		rc.notifyLocked()
		rc.mu.Unlock()
		if status == 0 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) notifyLocked() {
	close(rc.changed)
	rc.changed = make(chan struct{})
}

// waitFor waits until cond holds for the requests so far.
func (rc *receiver) waitFor(t *testing.T, what string, cond func(rs []*request) bool) {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		rc.mu.Lock()
		ok, ch := cond(rc.requests), rc.changed
		rc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// accepted returns the requests answered with 2xx, in order.
func (rc *receiver) accepted() []*request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*request
	for _, r := range rc.requests {
		if r.status >= 200 && r.status < 300 {
			out = append(out, r)
		}
	}
	return out
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func newDest(t *testing.T, c config.Destination, opts Options) Destination {
	t.Helper()
	d, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func webhook(t *testing.T, id string, rc *receiver, maxAttempts int) Destination {
	t.Helper()
	return newDest(t, config.Destination{ID: id, Type: config.DestinationWebhook, URL: rc.srv.URL + "/hook", MaxAttempts: maxAttempts}, Options{})
}

// fastOptions retries at once (backoff of a millisecond or so).
func fastOptions() OutboxOptions {
	return OutboxOptions{BackoffBase: time.Millisecond, BackoffCap: 2 * time.Millisecond}
}

// openOutbox opens an outbox that the test closes at its end.
func openOutbox(t *testing.T, dir string, dests []Destination, opts OutboxOptions) *Outbox {
	t.Helper()
	o, err := OpenOutbox(dir, dests, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Error(err)
		}
	})
	return o
}

// start runs the outbox until the test ends (or it is closed).
func start(t *testing.T, o *Outbox) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != ErrClosed {
			t.Errorf("Run: %v", err)
		}
	})
}

func enqueue(t *testing.T, o *Outbox, as ...*alert.Alert) {
	t.Helper()
	for _, a := range as {
		if err := o.Enqueue(a); err != nil {
			t.Fatal(err)
		}
	}
}

func waitIdle(t *testing.T, o *Outbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := o.WaitIdle(ctx); err != nil {
		t.Fatalf("outbox not idle: %v; stats %+v", err, o.Stats())
	}
}

func waitStats(t *testing.T, o *Outbox, what string, cond func(map[string]Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := o.waitUntil(ctx, cond); err != nil {
		t.Fatalf("gave up waiting for %s; stats %+v", what, o.Stats())
	}
}

func decodeAlert(t *testing.T, b []byte) *alert.Alert {
	t.Helper()
	var a alert.Alert
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("decode alert %s: %v", b, err)
	}
	return &a
}

func deadLetters(t *testing.T, o *Outbox) []DeadLetter {
	t.Helper()
	dls, err := ReadDeadLetters(o.DeadLetterPath())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return dls
}
