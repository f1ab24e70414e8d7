package dest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections/alert"
)

// checkExactlyOnce checks that the receiver accepted each alert exactly once, counted by
// delivery id and by body, and in the order given.
func checkExactlyOnce(t *testing.T, rc *receiver, dest string, want []*alert.Alert) {
	t.Helper()
	got := rc.accepted()
	byID, byBody := map[string]int{}, map[string]int{}
	var order []string
	for _, r := range got {
		byID[r.delivery]++
		byBody[string(r.body)]++
		order = append(order, decodeAlert(t, r.body).AlertID)
	}
	var wantOrder []string
	for _, a := range want {
		wantOrder = append(wantOrder, a.AlertID)
		if n := byID[DeliveryID(a, dest)]; n != 1 {
			t.Errorf("delivery %s accepted %d times, want 1", DeliveryID(a, dest), n)
		}
	}
	for body, n := range byBody {
		if n != 1 {
			t.Errorf("body accepted %d times, want 1: %s", n, body)
		}
	}
	if len(got) != len(want) || len(byBody) != len(want) {
		t.Errorf("accepted %d requests (%d bodies), want %d", len(got), len(byBody), len(want))
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order\n got %v\nwant %v", order, wantOrder)
	}
}

// A destination that fails and then recovers gets every alert exactly once, in order.
func TestWebhookRecovers(t *testing.T) {
	t.Parallel()
	const failures = 5
	rc := newReceiver(t, func(r *request, _ http.ResponseWriter) int {
		if r.n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	o := openOutbox(t, t.TempDir(), []Destination{webhook(t, "hook", rc, 0)}, fastOptions())
	start(t, o)
	var alerts []*alert.Alert
	for i := range 20 {
		alerts = append(alerts, newAlert(i))
	}
	enqueue(t, o, alerts...)
	waitIdle(t, o)
	checkExactlyOnce(t, rc, "hook", alerts)
	if got, want := o.Stats()["hook"], (Stats{Sent: 20, Failed: failures}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if got := rc.count(); got != 20+failures {
		t.Errorf("%d requests, want %d", got, 20+failures)
	}
	if dls := deadLetters(t, o); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
}

// A 4xx other than 408 and 429 is permanent: dead-lettered after one attempt.
func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(*request, http.ResponseWriter) int { return http.StatusBadRequest })
	o := openOutbox(t, t.TempDir(), []Destination{webhook(t, "hook", rc, 0)}, fastOptions())
	start(t, o)
	a := newAlert(7)
	enqueue(t, o, a)
	waitIdle(t, o)
	if got := rc.count(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
	dls := deadLetters(t, o)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	if dl.DeliveryID != DeliveryID(a, "hook") || dl.Destination != "hook" || dl.Attempts != 1 || dl.LastError != "HTTP 400" {
		t.Errorf("dead letter %+v", dl)
	}
	if decodeAlert(t, dl.Alert).AlertID != a.AlertID || dl.EnqueuedAt.IsZero() || dl.DeadLetteredAt.IsZero() {
		t.Errorf("dead letter %+v", dl)
	}
	if got, want := o.Stats()["hook"], (Stats{Failed: 1, DeadLettered: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if left := pendingFiles(t, o, "hook"); len(left) != 0 {
		t.Errorf("delivery files left: %v", left)
	}
}

// After MaxAttempts failures a delivery is dead-lettered and the next ones go on.
func TestMaxAttempts(t *testing.T) {
	t.Parallel()
	bad := newAlert(1)
	rc := newReceiver(t, func(r *request, _ http.ResponseWriter) int {
		if strings.HasPrefix(r.delivery, bad.AlertID) {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	o := openOutbox(t, t.TempDir(), []Destination{webhook(t, "hook", rc, 3)}, fastOptions())
	start(t, o)
	good := []*alert.Alert{newAlert(2), newAlert(3)}
	enqueue(t, o, bad, good[0], good[1])
	waitIdle(t, o)
	checkExactlyOnce(t, rc, "hook", good)
	if got := rc.count(); got != 3+2 {
		t.Errorf("%d requests, want 5", got)
	}
	dls := deadLetters(t, o)
	if len(dls) != 1 || dls[0].DeliveryID != DeliveryID(bad, "hook") || dls[0].Attempts != 3 || dls[0].LastError != "HTTP 502" {
		t.Errorf("dead letters %+v", dls)
	}
}

// A destination that hangs and one that fails (and backs off for an hour) hold back no
// other destination.
func TestDestinationsAreIndependent(t *testing.T) {
	t.Parallel()
	slow := newReceiver(t, func(r *request, _ http.ResponseWriter) int {
		<-r.ctx.Done() // until the outbox gives up (closes)
		return http.StatusOK
	})
	failing := newReceiver(t, func(*request, http.ResponseWriter) int { return http.StatusServiceUnavailable })
	good := newReceiver(t, nil)
	opts := fastOptions()
	opts.BackoffBase, opts.BackoffCap = time.Hour, time.Hour
	o := openOutbox(t, t.TempDir(), []Destination{
		newDest(t, config.Destination{ID: "slow", Type: config.DestinationWebhook, URL: slow.srv.URL, Timeout: config.Duration(time.Hour)}, Options{}),
		webhook(t, "failing", failing, 0),
		webhook(t, "good", good, 0),
	}, opts)
	start(t, o)
	var alerts []*alert.Alert
	for i := range 5 {
		alerts = append(alerts, newAlert(i))
	}
	enqueue(t, o, alerts...)
	waitStats(t, o, "the good destination", func(m map[string]Stats) bool { return m["good"].Sent == int64(len(alerts)) })
	slow.waitFor(t, "the slow destination's first request", func(rs []*request) bool { return len(rs) > 0 })
	failing.waitFor(t, "the failing destination's first request", func(rs []*request) bool { return len(rs) > 0 })
	checkExactlyOnce(t, good, "good", alerts)
	st := o.Stats()
	if st["slow"].Pending != 5 || st["failing"].Pending != 5 || st["good"].Sent != 5 {
		t.Errorf("stats %+v", st)
	}
	// Each of the others is stuck on its first alert (order is kept).
	if n := failing.count(); n != 1 {
		t.Errorf("the failing destination got %d requests, want 1 (then a backoff of an hour)", n)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if n := slow.count(); n != 1 {
		t.Errorf("the slow destination got %d requests, want 1", n)
	}
}

func pendingFiles(t *testing.T, o *Outbox, dest string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(o.dir, pendingDir, dest, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Deliveries enqueued while the destination is down survive a restart and are sent once.
func TestRestart(t *testing.T) {
	t.Parallel()
	// The server is down for the first process: it drops its connections (a network error).
	// It tells the processes apart by a header rather than by time, so that a request the
	// first process abandoned at Close, if the server handles it late, is still not accepted.
	rc := newReceiver(t, func(r *request, _ http.ResponseWriter) int {
		if r.header.Get("X-Process") != "2" {
			return 0
		}
		return http.StatusOK
	})
	process := func(n string) Destination {
		return newDest(t, config.Destination{ID: "hook", Type: config.DestinationWebhook, URL: rc.srv.URL, MaxAttempts: 1000, Headers: map[string]string{"X-Process": n}}, Options{})
	}
	dir := t.TempDir()
	o, err := OpenOutbox(dir, []Destination{process("1")}, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	alerts := []*alert.Alert{newAlert(1), newAlert(2), newAlert(3)}
	enqueue(t, o, alerts...)
	waitStats(t, o, "a failed attempt", func(m map[string]Stats) bool { return m["hook"].Failed >= 2 })
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rc.accepted()) != 0 {
		t.Fatal("accepted while down")
	}
	files := pendingFiles(t, o, "hook")
	if len(files) != 3 {
		t.Fatalf("delivery files %v, want 3", files)
	}
	rec, err := readRecord(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts < 2 || rec.LastError == "" || rec.ID != DeliveryID(alerts[0], "hook") {
		t.Errorf("the first delivery file after a restart: %+v", rec)
	}
	if err := o.Enqueue(newAlert(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}

	o2 := openOutbox(t, dir, []Destination{process("2")}, fastOptions())
	if got := o2.Stats()["hook"].Pending; got != 3 {
		t.Errorf("reopened: %d pending, want 3", got)
	}
	start(t, o2)
	waitIdle(t, o2)
	checkExactlyOnce(t, rc, "hook", alerts)
	if left := pendingFiles(t, o2, "hook"); len(left) != 0 {
		t.Errorf("delivery files left: %v", left)
	}
}

// Attempt counts survive a restart: an attempt limit counts the attempts of both processes,
// and an attempt cut short by Close does not count.
func TestAttemptsSurviveRestart(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(r *request, _ http.ResponseWriter) int {
		if r.n == 3 {
			<-r.ctx.Done() // in flight when the outbox closes
		}
		return http.StatusInternalServerError
	})
	dir := t.TempDir()
	d := webhook(t, "hook", rc, 3)
	o, err := OpenOutbox(dir, []Destination{d}, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	a := newAlert(5)
	enqueue(t, o, a)
	rc.waitFor(t, "the third request", func(rs []*request) bool { return len(rs) == 3 })
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	files := pendingFiles(t, o, "hook")
	if len(files) != 1 {
		t.Fatalf("delivery files %v, want 1", files)
	}
	if rec, err := readRecord(files[0]); err != nil || rec.Attempts != 2 || rec.LastError != "HTTP 500" {
		t.Fatalf("delivery file %+v, %v; want 2 attempts", rec, err)
	}

	o2 := openOutbox(t, dir, []Destination{d}, fastOptions())
	start(t, o2)
	waitIdle(t, o2)
	if got := rc.count(); got != 4 {
		t.Errorf("%d requests, want 4 (2 failed, 1 abandoned, 1 after the restart)", got)
	}
	dls := deadLetters(t, o2)
	if len(dls) != 1 || dls[0].Attempts != 3 || dls[0].DeliveryID != DeliveryID(a, "hook") {
		t.Errorf("dead letters %+v", dls)
	}
}

// A Retry-After on a 429 or 503 is waited for, capped by MaxRetryAfter.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(r *request, w http.ResponseWriter) int {
		switch r.n {
		case 1:
			w.Header().Set("Retry-After", "7")
			return http.StatusTooManyRequests
		case 2:
			w.Header().Set("Retry-After", "3600")
			return http.StatusServiceUnavailable
		case 3:
			return http.StatusInternalServerError // no Retry-After: the backoff
		}
		return http.StatusOK
	})
	opts := fastOptions()
	opts.MaxRetryAfter = 30 * time.Second
	o := openOutbox(t, t.TempDir(), []Destination{webhook(t, "hook", rc, 0)}, opts)
	var mu sync.Mutex
	var waits []time.Duration
	o.wait = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	start(t, o)
	a := newAlert(1)
	enqueue(t, o, a)
	waitIdle(t, o)
	checkExactlyOnce(t, rc, "hook", []*alert.Alert{a})
	if got := rc.count(); got != 4 {
		t.Errorf("%d requests, want 4", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 3 || waits[0] != 7*time.Second || waits[1] != 30*time.Second || waits[2] > opts.BackoffCap {
		t.Errorf("waits %v, want [7s 30s ≤%v]", waits, opts.BackoffCap)
	}
}

func TestBackoff(t *testing.T) {
	o := &Outbox{opts: OutboxOptions{BackoffBase: time.Second, BackoffCap: time.Minute, MaxRetryAfter: time.Hour}}
	for attempts, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 100: time.Minute} {
		for range 50 {
			if d := o.backoff(attempts, 0); d < max/2 || d > max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempts, d, max/2, max)
			}
		}
	}
	if d := o.backoff(1, 10*time.Minute); d != 10*time.Minute {
		t.Errorf("backoff with a Retry-After of 10m = %v", d)
	}
	if d := o.backoff(1, 2*time.Hour); d != time.Hour {
		t.Errorf("backoff with a Retry-After of 2h = %v, want the cap, 1h", d)
	}
}

// Dead letters replayed once the destination is fixed are sent with their delivery ids.
func TestReplay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	broken := true
	rc := newReceiver(t, func(*request, http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			return http.StatusNotFound
		}
		return http.StatusOK
	})
	other := newReceiver(t, nil)
	o := openOutbox(t, t.TempDir(), []Destination{webhook(t, "hook", rc, 0), webhook(t, "other", other, 0)}, fastOptions())
	start(t, o)
	alerts := []*alert.Alert{newAlert(1), newAlert(2)}
	enqueue(t, o, alerts...)
	waitIdle(t, o)
	if got := len(deadLetters(t, o)); got != 2 {
		t.Fatalf("%d dead letters, want 2", got)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	moved := filepath.Join(t.TempDir(), "replay.jsonl")
	if err := os.Rename(o.DeadLetterPath(), moved); err != nil {
		t.Fatal(err)
	}
	n, err := o.Replay(moved)
	if err != nil || n != 2 {
		t.Fatalf("Replay = %d, %v; want 2", n, err)
	}
	waitIdle(t, o)
	checkExactlyOnce(t, rc, "hook", alerts)
	checkExactlyOnce(t, other, "other", alerts) // not sent again
	if got := len(deadLetters(t, o)); got != 0 {
		t.Errorf("%d new dead letters", got)
	}

	if err := writeFile(moved, `{"deliveryId":"x/gone","destination":"gone","alert":{}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Replay(moved); !errors.Is(err, ErrUnknownOutput) {
		t.Errorf("Replay to an unknown destination: %v, want ErrUnknownOutput", err)
	}
	if err := writeFile(moved, "{\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Replay(moved); err == nil || !strings.Contains(err.Error(), "replay.jsonl:1:") {
		t.Errorf("Replay of a bad file: %v, want an error naming the line", err)
	}
}

// Enqueue routes by OutputIDs, else to every destination whose MinSeverity the alert reaches.
func TestRouting(t *testing.T) {
	t.Parallel()
	var sink lockedBuffer
	dest := func(id, minSeverity string) Destination {
		return newDest(t, config.Destination{ID: id, Type: config.DestinationStdout, MinSeverity: minSeverity}, Options{Stdout: &sink})
	}
	o := openOutbox(t, t.TempDir(), []Destination{dest("pager", "High"), dest("all", ""), dest("lake", "info")}, fastOptions())
	// Run is not started: the deliveries stay pending.
	f := func(a *alert.Alert, want map[string]int) {
		t.Helper()
		before := o.Stats()
		if err := o.Enqueue(a); err != nil {
			t.Fatalf("Enqueue(%+v): %v", a, err)
		}
		got := map[string]int{}
		for id, st := range o.Stats() {
			if d := st.Pending - before[id].Pending; d != 0 {
				got[id] = d
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("alert %s (%s, outputs %v) went to %v, want %v", a.AlertID, a.Severity, a.OutputIDs, got, want)
		}
	}
	low := newAlert(1)
	low.Severity = "Low"
	f(low, map[string]int{"all": 1, "lake": 1})
	crit := newAlert(2)
	crit.Severity = "Critical"
	f(crit, map[string]int{"all": 1, "lake": 1, "pager": 1})
	named := newAlert(3)
	named.Severity = "Info"
	named.OutputIDs = []string{"pager", "pager"}
	f(named, map[string]int{"pager": 1}) // named: any severity, once
	f(named, map[string]int{})           // the same version again: already pending

	escalated := *named
	escalated.UpdatedAt = named.UpdatedAt.Add(time.Minute)
	if got, want := DeliveryID(&escalated, "pager"), named.AlertID+"/pager/"+fmt.Sprint(escalated.UpdatedAt.UnixMicro()); got != want {
		t.Errorf("DeliveryID of an updated alert = %q, want %q", got, want)
	}
	f(&escalated, map[string]int{"pager": 1}) // a new version: a new delivery

	unknown := newAlert(4)
	unknown.OutputIDs = []string{"all", "nope"}
	if err := o.Enqueue(unknown); !errors.Is(err, ErrUnknownOutput) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Enqueue to an unknown output: %v", err)
	}
	if err := o.CheckOutputIDs([]string{"pager", "x", "y"}); err == nil || !strings.Contains(err.Error(), `unknown output id "x" (destinations: all, lake, pager)`) || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("CheckOutputIDs: %v", err)
	}
	if err := o.CheckOutputIDs([]string{"pager", "all"}); err != nil {
		t.Errorf("CheckOutputIDs of known ids: %v", err)
	}
	if err := o.Enqueue(&alert.Alert{}); err == nil {
		t.Error("Enqueue of an alert without an id: no error")
	}
}

func TestOpenOutbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDest(t, config.Destination{ID: "a", Type: config.DestinationStdout}, Options{Stdout: &lockedBuffer{}})
	openOutbox(t, dir, []Destination{d}, OutboxOptions{})
	if _, err := OpenOutbox(dir, []Destination{d}, OutboxOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second OpenOutbox of a directory in use: %v", err)
	}
	if _, err := OpenOutbox(t.TempDir(), []Destination{d, d}, OutboxOptions{}); err == nil || !strings.Contains(err.Error(), `"a" is used twice`) {
		t.Errorf("OpenOutbox with an id twice: %v", err)
	}
}

// Files a crash leaves (a half-written temporary file, a damaged delivery, deliveries for a
// destination no longer configured) do not stop an outbox from opening.
func TestOpenAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hookDir := filepath.Join(dir, pendingDir, "hook")
	goneDir := filepath.Join(dir, pendingDir, "gone")
	for _, d := range []string{hookDir, goneDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	a := newAlert(1)
	good := &record{ID: DeliveryID(a, "hook"), Destination: "hook", Seq: 7, Alert: []byte(`{"alertId":"` + a.AlertID + `"}`)}
	if err := writeRecord(filepath.Join(hookDir, "00000000000000000007.json"), good); err != nil {
		t.Fatal(err)
	}
	for path, text := range map[string]string{
		filepath.Join(hookDir, "00000000000000000008.json.tmp"): `{"id":`,
		filepath.Join(hookDir, "00000000000000000009.json"):     `{"id":`,
		filepath.Join(goneDir, "00000000000000000003.json"):     `{}`,
	} {
		if err := writeFile(path, text); err != nil {
			t.Fatal(err)
		}
	}
	rc := newReceiver(t, nil)
	o := openOutbox(t, dir, []Destination{webhook(t, "hook", rc, 0)}, fastOptions())
	if got := o.Stats()["hook"].Pending; got != 1 {
		t.Errorf("%d pending, want 1", got)
	}
	enqueue(t, o, newAlert(2))
	start(t, o)
	waitIdle(t, o)
	checkExactlyOnce(t, rc, "hook", []*alert.Alert{{AlertID: a.AlertID}, newAlert(2)})
	if _, err := os.Stat(filepath.Join(hookDir, "00000000000000000009.json.corrupt")); err != nil {
		t.Errorf("the damaged file was not set aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(hookDir, "00000000000000000008.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary file was not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(goneDir, "00000000000000000003.json")); err != nil {
		t.Errorf("deliveries of an unconfigured destination were not kept: %v", err)
	}
}
