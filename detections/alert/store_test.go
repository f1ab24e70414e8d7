package alert_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/detections/alert"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clock is the stores' injected clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func rule(id string, threshold int64) *alert.Rule {
	return &alert.Rule{ID: id, Name: id + " name", Severity: "High", DedupPeriod: time.Hour, Threshold: threshold}
}

func matches(dedup string, n int) []alert.Match {
	out := make([]alert.Match, n)
	for i := range out {
		out[i] = alert.Match{Dedup: dedup, EventTime: t0.Add(time.Duration(i) * time.Second)}
	}
	return out
}

// lake plays the lake's commit metadata: the last epoch each writer's flushes committed.
type lake map[string]uint64

func (l lake) committed(writer string) (uint64, error) { return l[writer], nil }

func open(t *testing.T, dir string, c *clock, committed alert.CommittedEpoch) *alert.Store {
	t.Helper()
	s, err := alert.Open(dir, committed)
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(c.Now)
	return s
}

func add(t *testing.T, s *alert.Store, lane string, r *alert.Rule, ms []alert.Match) ([]alert.Assignment, []*alert.Alert) {
	t.Helper()
	as, raised, err := s.AddTo(lane, r, ms, false)
	if err != nil {
		t.Fatal(err)
	}
	return as, raised
}

// flush is a successful flush of writer: Prepare, the lake records the epoch, Commit.
func flush(t *testing.T, s *alert.Store, l lake, writer string) uint64 {
	t.Helper()
	e, _, err := s.Prepare(writer)
	if err != nil {
		t.Fatal(err)
	}
	l[writer] = e
	if err := s.Commit(e); err != nil {
		t.Fatal(err)
	}
	return e
}

func events(t *testing.T, s *alert.Store, id string) int64 {
	t.Helper()
	a, ok := s.Alert(id)
	if !ok {
		t.Fatalf("no alert %s", id)
	}
	return a.Events
}

func TestThresholdAndWindow(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	defer s.Close()
	r := rule("R", 3)
	if _, raised := add(t, s, "", r, matches("alice", 2)); len(raised) != 0 {
		t.Fatalf("2 matches of a threshold of 3 raised %d alerts", len(raised))
	}
	flush(t, s, l, "w")
	as, raised := add(t, s, "", r, matches("alice", 1))
	if len(raised) != 1 {
		t.Fatalf("the third match raised %d alerts, want 1", len(raised))
	}
	a := raised[0]
	if a.Events != 3 || a.RuleID != "R" || a.Title != "R name" || a.Dedup != "alice" || a.Status != alert.StatusOpen || !a.CreatedAt.Equal(t0) {
		t.Errorf("raised %+v", a)
	}
	if as[0].AlertID != a.AlertID {
		t.Errorf("the match is assigned to %s, want the alert %s", as[0].AlertID, a.AlertID)
	}
	flush(t, s, l, "w")
	if got := events(t, s, a.AlertID); got != 3 {
		t.Errorf("alert has %d events, want 3", got)
	}
	// Another dedup string is another group; the same one within the window joins the alert.
	if as, raised := add(t, s, "", r, matches("bob", 1)); len(raised) != 0 || as[0].AlertID == a.AlertID {
		t.Errorf("bob's match: raised %d, assigned to %s (alice's alert %s)", len(raised), as[0].AlertID, a.AlertID)
	}
	c.now = t0.Add(59 * time.Minute)
	if as, raised := add(t, s, "", r, matches("alice", 1)); len(raised) != 0 || as[0].AlertID != a.AlertID {
		t.Errorf("a match in the window: raised %d, assigned to %s, want %s", len(raised), as[0].AlertID, a.AlertID)
	}
	// After the window, a new group: below its threshold, no alert.
	c.now = t0.Add(time.Hour)
	if as, raised := add(t, s, "", r, matches("alice", 1)); len(raised) != 0 || as[0].AlertID == a.AlertID {
		t.Errorf("a match after the window: raised %d, assigned to the old alert", len(raised))
	}
	flush(t, s, l, "w")
	if got := events(t, s, a.AlertID); got != 4 {
		t.Errorf("alert has %d events, want 4", got)
	}
	if got := len(s.Alerts()); got != 1 {
		t.Errorf("%d alerts, want 1", got)
	}
}

func TestEpochs(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	defer s.Close()
	_, raised := add(t, s, "", rule("R", 1), matches("x", 3))
	id := raised[0].AlertID
	if raised[0].Events != 1 {
		t.Errorf("raised with %d events, want 1 (the match that raised it)", raised[0].Events)
	}
	e1, changed, err := s.Prepare("w")
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].AlertID != id || changed[0].Events != 3 {
		t.Errorf("Prepare's changed alerts %+v, want %s with 3 events", changed, id)
	}
	if got := events(t, s, id); got != 0 {
		t.Errorf("before Commit the alert has %d events, want 0", got)
	}
	if _, _, err := s.Prepare("w"); err == nil {
		t.Error("a second Prepare before Commit succeeded")
	}
	if err := s.Commit(e1 + 1); err == nil {
		t.Error("Commit of an epoch never prepared succeeded")
	}
	if err := s.Commit(e1); err != nil {
		t.Fatal(err)
	}
	if got := events(t, s, id); got != 3 {
		t.Errorf("after Commit the alert has %d events, want 3", got)
	}
	// A failed flush: its matches are dropped (the ingest log brings them again).
	add(t, s, "", rule("R", 1), matches("x", 2))
	e2, _, err := s.Prepare("w")
	if err != nil {
		t.Fatal(err)
	}
	if e2 <= e1 {
		t.Errorf("epoch %d after %d", e2, e1)
	}
	if err := s.Abort(e2); err != nil {
		t.Fatal(err)
	}
	if got := events(t, s, id); got != 3 {
		t.Errorf("after Abort the alert has %d events, want 3", got)
	}
	if e, _, err := s.Prepare("w"); err != nil || e <= e2 {
		t.Errorf("Prepare after Abort: epoch %d, %v", e, err)
	}
}

// TestLanes checks that each lane's matches are prepared and settled with its own writer.
func TestLanes(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	_, ra := add(t, s, "", rule("Stream", 1), matches("x", 2))
	_, rb := add(t, s, "sched", rule("Sched", 1), matches("y", 5))
	e1, changed, err := s.PrepareLane("", "engine")
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].AlertID != ra[0].AlertID {
		t.Errorf("the stream lane's Prepare changed %+v, want only %s", changed, ra[0].AlertID)
	}
	e2, _, err := s.PrepareLane("sched", "scheduled")
	if err != nil {
		t.Fatal(err)
	}
	// Both prepared; the engine's flush committed, the scheduled run's did not, then a crash.
	l["engine"] = e1
	s.Close()
	s = open(t, dir, c, l.committed)
	defer s.Close()
	if got := events(t, s, ra[0].AlertID); got != 2 {
		t.Errorf("stream alert: %d events, want 2", got)
	}
	if got := events(t, s, rb[0].AlertID); got != 0 {
		t.Errorf("scheduled alert (epoch %d not committed): %d events, want 0", e2, got)
	}
}

// TestCrashBetweenPrepareAndCommit settles an epoch left prepared against the lake's commit
// metadata: applied if the flush committed it, dropped if not; the replayed matches then count
// once and raise nothing again.
func TestCrashBetweenPrepareAndCommit(t *testing.T) {
	for _, flushed := range []bool{true, false} {
		t.Run(fmt.Sprint("flushed=", flushed), func(t *testing.T) {
			dir, c, l := t.TempDir(), &clock{t0}, lake{}
			s := open(t, dir, c, l.committed)
			_, raised := add(t, s, "", rule("R", 1), matches("x", 3))
			id := raised[0].AlertID
			e, _, err := s.Prepare("w")
			if err != nil {
				t.Fatal(err)
			}
			if flushed {
				l["w"] = e
			}
			s.Close() // the crash: no Commit

			s = open(t, dir, c, l.committed)
			want := int64(3)
			if !flushed {
				want = 0
				// The ingest log replays the matches: same group, no second alert.
				if _, again := add(t, s, "", rule("R", 1), matches("x", 3)); len(again) != 0 {
					t.Errorf("the replay raised %d alerts again", len(again))
				}
				flush(t, s, l, "w")
				want = 3
			}
			if got := events(t, s, id); got != want {
				t.Errorf("alert has %d events, want %d", got, want)
			}
			if got := len(s.Alerts()); got != 1 {
				t.Errorf("%d alerts, want 1", got)
			}
			s.Close()
			// The decision was journaled: a later open does not ask the lake about the epoch.
			s = open(t, dir, c, func(w string) (uint64, error) {
				return 0, errors.New("asked the lake again")
			})
			defer s.Close()
			if got := events(t, s, id); got != 3 {
				t.Errorf("after another restart the alert has %d events, want 3", got)
			}
		})
	}
}

// TestCommitLineLost: Commit's journal line is not synced; when it is lost, Open asks the lake,
// and the epoch is applied once.
func TestCommitLineLost(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	_, raised := add(t, s, "", rule("R", 1), matches("x", 3))
	flush(t, s, l, "w")
	s.Close()
	journal := filepath.Join(dir, "journal.jsonl")
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	last := lines[len(lines)-2] // the last is empty
	if !bytes.Contains(last, []byte(`"op":"commit"`)) {
		t.Fatalf("the journal's last line is %s, want the commit", last)
	}
	if err := os.WriteFile(journal, bytes.Join(lines[:len(lines)-2], nil), 0o644); err != nil {
		t.Fatal(err)
	}
	asked := false
	s = open(t, dir, c, func(w string) (uint64, error) { asked = true; return l.committed(w) })
	defer s.Close()
	if !asked {
		t.Error("Open did not ask the lake about the epoch")
	}
	if got := events(t, s, raised[0].AlertID); got != 3 {
		t.Errorf("alert has %d events, want 3", got)
	}
}

// TestTornJournal: a last line cut by a crash is dropped, and the journal goes on after the
// last whole line.
func TestTornJournal(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	_, raised := add(t, s, "", rule("R", 1), matches("x", 1))
	flush(t, s, l, "w")
	s.Close()
	journal := filepath.Join(dir, "journal.jsonl")
	whole, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal, append(bytes.Clone(whole), `{"op":"resolve","id":"`+raised[0].AlertID...), 0o644); err != nil {
		t.Fatal(err)
	}
	// A reader in another process ignores the torn line and leaves it.
	read, err := alert.ReadAlerts(dir)
	if err != nil || len(read) != 1 || read[0].Status != alert.StatusOpen {
		t.Fatalf("ReadAlerts: %+v, %v", read, err)
	}
	s = open(t, dir, c, l.committed)
	if got, _ := os.ReadFile(journal); !bytes.Equal(got, whole) {
		t.Errorf("the torn line was not cut:\n%s", got)
	}
	add(t, s, "", rule("R", 1), matches("x", 1))
	flush(t, s, l, "w")
	s.Close()
	s = open(t, dir, c, l.committed)
	defer s.Close()
	if got := events(t, s, raised[0].AlertID); got != 2 {
		t.Errorf("alert has %d events, want 2", got)
	}
}

// TestRestart: groups, counts and windows live on in the journal across restarts.
func TestRestart(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	r := rule("R", 3)
	add(t, s, "", r, matches("x", 2))
	flush(t, s, l, "w")
	s.Close()

	c.now = t0.Add(30 * time.Minute)
	s = open(t, dir, c, l.committed)
	_, raised := add(t, s, "", r, matches("x", 1))
	if len(raised) != 1 || raised[0].Events != 3 || !raised[0].CreatedAt.Equal(c.now) {
		t.Fatalf("the third match after a restart raised %+v, want one alert of 3 events", raised)
	}
	id := raised[0].AlertID
	flush(t, s, l, "w")
	s.Close()

	c.now = t0.Add(50 * time.Minute)
	s = open(t, dir, c, l.committed)
	defer s.Close()
	if as, again := add(t, s, "", r, matches("x", 1)); len(again) != 0 || as[0].AlertID != id {
		t.Errorf("a match in the window after a restart: raised %d, assigned to %s, want %s", len(again), as[0].AlertID, id)
	}
	flush(t, s, l, "w")
	if got := events(t, s, id); got != 4 {
		t.Errorf("alert has %d events, want 4", got)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, &clock{t0}, nil)
	if _, err := alert.Open(dir, nil); !errors.Is(err, alert.ErrLocked) {
		t.Errorf("a second Open: %v, want ErrLocked", err)
	}
	s.Close()
	s2, err := alert.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

// TestSnapshot: once the journal passes its limit (16 MiB), Commit writes the state to the
// snapshot and empties the journal; a restart reads the state back, epochs numbered on.
func TestSnapshot(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	big := json.RawMessage(`"` + strings.Repeat("s", 1<<20) + `"`)
	ids := map[string]bool{}
	for i := range 17 { // 17 raises of 1 MiB each
		ms := matches(fmt.Sprint("d", i), 2)
		ms[0].Sample = func() json.RawMessage { return big }
		_, raised := add(t, s, "", rule("R", 1), ms)
		ids[raised[0].AlertID] = true
	}
	// An old group whose window has passed: it is not kept in the snapshot, and its next match
	// opens a new alert (as it would have without the snapshot).
	c.now = t0.Add(2 * time.Hour)
	_, raised := add(t, s, "", rule("Late", 2), matches("z", 1))
	if len(raised) != 0 {
		t.Fatal("a match below the threshold raised an alert")
	}
	e := flush(t, s, l, "w")
	info, err := os.Stat(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != 0 {
		t.Errorf("the journal has %d bytes after the snapshot, want 0", info.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshot.json")); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	s.Close()

	s = open(t, dir, c, l.committed)
	defer s.Close()
	alerts := s.Alerts()
	if len(alerts) != 17 {
		t.Fatalf("%d alerts after the restart, want 17", len(alerts))
	}
	for _, a := range alerts {
		if !ids[a.AlertID] || a.Events != 2 || len(a.Sample) != len(big) {
			t.Errorf("alert %s: %d events, %d bytes of sample", a.AlertID, a.Events, len(a.Sample))
		}
	}
	// The group below its threshold (its window open) kept its count: one more match raises.
	if _, raised := add(t, s, "", rule("Late", 2), matches("z", 1)); len(raised) != 1 || raised[0].Events != 2 {
		t.Errorf("the second match of a group kept in the snapshot raised %+v, want 1 alert of 2 events", raised)
	}
	if e2, _, err := s.Prepare("w"); err != nil || e2 <= e {
		t.Errorf("the epoch after the snapshot is %d (%v), want more than %d", e2, err, e)
	}
}

// TestUnnotified: an alert raised and not handed to destinations before a crash is handed on
// at the next start, once.
func TestUnnotified(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	_, raised := add(t, s, "", rule("R", 1), matches("x", 1))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close() // crash before the outbox took it, and before any flush

	s = open(t, dir, c, l.committed)
	un := s.Unnotified()
	if len(un) != 1 || un[0].AlertID != raised[0].AlertID {
		t.Fatalf("Unnotified after the crash: %+v, want %s", un, raised[0].AlertID)
	}
	if err := s.Notified(un[0].AlertID); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, c, l.committed)
	defer s.Close()
	if un := s.Unnotified(); len(un) != 0 {
		t.Errorf("Unnotified after Notified and a restart: %+v", un)
	}
}

// TestResolve resolves alerts from another process: through the requests file while the store
// is held (the holder takes them at its next Prepare), and directly when it is not.
func TestResolve(t *testing.T) {
	dir, c, l := t.TempDir(), &clock{t0}, lake{}
	s := open(t, dir, c, l.committed)
	r := rule("R", 1)
	_, raised := add(t, s, "", r, matches("x", 1))
	id := raised[0].AlertID
	flush(t, s, l, "w")

	resolveInChild(t, dir, id, "bob")
	read, err := alert.ReadAlerts(dir)
	if err != nil || len(read) != 1 || read[0].Status != alert.StatusResolved || read[0].ResolvedBy != "bob" {
		t.Fatalf("ReadAlerts after the request: %+v, %v", read, err)
	}
	if a, _ := s.Alert(id); a.Status != alert.StatusOpen {
		t.Errorf("the holder resolved the alert before its Prepare")
	}
	_, changed, err := s.Prepare("w")
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].Status != alert.StatusResolved || changed[0].ResolvedBy != "bob" {
		t.Errorf("Prepare's changed alerts: %+v, want %s resolved by bob", changed, id)
	}
	if a, _ := s.Alert(id); a.Status != alert.StatusResolved {
		t.Errorf("after Prepare the alert is %s", a.Status)
	}
	if reqs, _ := os.ReadFile(filepath.Join(dir, "requests.jsonl")); len(reqs) != 0 {
		t.Errorf("requests left after Prepare: %s", reqs)
	}
	// A resolved alert takes no more matches: the next one raises a new alert.
	if _, again := add(t, s, "", r, matches("x", 1)); len(again) != 1 || again[0].AlertID == id {
		t.Errorf("a match after the resolution raised %+v, want a new alert", again)
	}
	if err := alert.RequestResolve(dir, "0123", "bob"); err == nil {
		t.Error("a request for an unknown alert succeeded")
	}
	s.Close()

	// Nobody holds the store: Resolve writes it directly.
	id2 := s.Alerts()[0].AlertID
	if id2 == id {
		id2 = s.Alerts()[1].AlertID
	}
	if err := alert.Resolve(dir, id2, "carol", l.committed); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "requests.jsonl")); err == nil {
		if reqs, _ := os.ReadFile(filepath.Join(dir, "requests.jsonl")); len(reqs) != 0 {
			t.Errorf("a direct resolution went through the requests file: %s", reqs)
		}
	}
	s = open(t, dir, c, l.committed)
	defer s.Close()
	if a, _ := s.Alert(id2); a.Status != alert.StatusResolved || a.ResolvedBy != "carol" {
		t.Errorf("after a direct resolution: %+v", a)
	}
}

// resolveInChild runs alert.Resolve in another process: this test binary, run again.
func resolveInChild(t *testing.T, dir, id, by string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResolveChild$")
	cmd.Env = append(os.Environ(), "OSPREY_ALERT_RESOLVE="+dir+"\n"+id+"\n"+by)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the resolving process: %v\n%s", err, out)
	}
}

// TestResolveChild is the other process of resolveInChild; it does nothing on its own.
func TestResolveChild(t *testing.T) {
	arg := os.Getenv("OSPREY_ALERT_RESOLVE")
	if arg == "" {
		t.Skip("run by TestResolve")
	}
	f := strings.Split(arg, "\n")
	if _, err := alert.Open(f[0], nil); !errors.Is(err, alert.ErrLocked) {
		t.Fatalf("Open in the other process: %v, want ErrLocked", err)
	}
	if err := alert.Resolve(f[0], f[1], f[2], nil); err != nil {
		t.Fatal(err)
	}
}
