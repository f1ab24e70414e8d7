package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// auditEvent returns a Panther.Audit event as a JSON line.
func auditEvent(i int, action, result, actor string) string {
	return fmt.Sprintf(`{"actionName":%q,"actionResult":%q,"actionParams":{"dynamic":{"input":{"n":%d}}},`+
		`"actor":{"id":"SSO_%s","type":"USER","name":%q},"sourceIP":"198.51.100.%d",`+
		`"timestamp":"2026-11-20 08:%02d:%02d.000","pantherVersion":"1.118.2"}`,
		action, result, i, actor, actor, i%250, (i/60)%60, i%60)
}

// rules writes rule specs into a directory and loads them.
func rules(t *testing.T, specs map[string]string) *detections.Set {
	t.Helper()
	dir := t.TempDir()
	for name, text := range specs {
		if err := os.WriteFile(filepath.Join(dir, name+".yml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := detections.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func ruleSpec(id, query string, extra string) string {
	return fmt.Sprintf("AnalysisType: rule\nRuleID: %s\nLogTypes: [Panther.Audit]\nSeverity: High\n%sQuery: |\n  %s\n",
		id, extra, strings.ReplaceAll(query, "\n", "\n  "))
}

// harness is a lake with a writer, an alert store and an engine, fed by an ingester.
type harness struct {
	t      *testing.T
	lake   *lake.Lake
	w      *lake.Writer
	store  *alert.Store
	engine *Engine
	sent   []*alert.Alert
	mu     sync.Mutex
}

func newHarness(t *testing.T, dir string, set *detections.Set) *harness {
	t.Helper()
	return newHarnessOpts(t, dir, set, Options{})
}

// newHarnessOpts is newHarness with engine options (Workers and Notify are the harness's).
func newHarnessOpts(t *testing.T, dir string, set *detections.Set, opts Options) *harness {
	t.Helper()
	ctx := context.Background()
	l, err := lake.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, lake: l}
	if h.w, err = l.NewWriter(lake.WriterOptions{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if h.store, err = alert.Open(filepath.Join(dir, "_osprey", "alerts"), matches.CommittedEpoch(l)); err != nil {
		t.Fatal(err)
	}
	opts.Workers = 2
	opts.Notify = func(a *alert.Alert) error {
		h.mu.Lock()
		h.sent = append(h.sent, a)
		h.mu.Unlock()
		return nil
	}
	h.engine, err = New(ctx, set, h.store, h.w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ingest parses lines as Panther.Audit events through the engine, and runs the rules on them.
func (h *harness) ingest(lines []string) {
	h.t.Helper()
	h.write(lines)
	// Small batches wait for more; the rules run on them now, at the engine's clock.
	if err := h.engine.Drain(context.Background(), time.Time{}); err != nil {
		h.t.Fatal(err)
	}
}

// write parses lines as Panther.Audit events through the engine; small batches wait.
func (h *harness) write(lines []string) {
	h.t.Helper()
	reg, err := logtypes.Builtin()
	if err != nil {
		h.t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		h.t.Fatal(err)
	}
	in, err := ingest.New(context.Background(), h.engine, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 2})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := in.Ingest(context.Background(), "test", strings.NewReader(strings.Join(lines, "\n")+"\n")); err != nil {
		h.t.Fatal(err)
	}
	if _, err := in.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// flush commits what was written, with the alert store's epoch.
func (h *harness) flush() {
	h.t.Helper()
	ctx := context.Background()
	meta, err := h.engine.Prepare(ctx, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.w.FlushWith(ctx, meta); err != nil {
		h.t.Fatal(err)
	}
	if err := h.engine.Commit(meta); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close() {
	h.engine.Close()
	h.w.Close()
	h.store.Close()
}

// count runs a counting query over the lake.
func count(t *testing.T, l *lake.Lake, stmt string) int64 {
	t.Helper()
	db, err := query.Open(context.Background(), l, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), stmt)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() {
		t.Fatalf("%s: no row", stmt)
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMatchesAlertsAndErrors(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted",
			"SELECT *, 'Detection deleted by ' || actor.name AS alert_title, actor.name AS alert_dedup\n"+
				"FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'SUCCEEDED'", "Tags: [Panther]\n"),
		"failed": ruleSpec("Sign.In.Failed",
			"SELECT p_row_id FROM panther_logs.panther_audit WHERE actionName = 'SIGN_IN' AND actionResult = 'FAILED'",
			"Threshold: 3\n"),
		// Fails at run time on every batch: its rows go to panther_rule_errors.
		"broken": ruleSpec("Broken", "SELECT * FROM panther_logs.panther_audit WHERE CAST(actionName AS INTEGER) = 1", ""),
		// Reads every column: COLUMNS(...) is not a column reference.
		"columns": ruleSpec("Columns.Star", "SELECT COLUMNS('p_row_id|sourceIP') FROM panther_logs.panther_audit WHERE sourceIP = '198.51.100.7'", ""),
	})
	h := newHarness(t, t.TempDir(), set)
	var lines []string
	deletes := map[string]int{}
	for i := range 600 {
		switch {
		case i%50 == 3:
			actor := []string{"ana", "ben"}[(i/50)%2]
			deletes[actor]++
			lines = append(lines, auditEvent(i, "DELETE_DETECTION", "SUCCEEDED", actor))
		case i%100 == 10:
			lines = append(lines, auditEvent(i, "SIGN_IN", "FAILED", "carla"))
		default:
			lines = append(lines, auditEvent(i, "LIST_ALERTS", "SUCCEEDED", "dan"))
		}
	}
	h.ingest(lines)
	h.flush()
	st := h.engine.Stats()
	h.close()

	// 12 deletions by two actors: two alerts; 6 failed sign-ins over a threshold of 3: one.
	alerts, err := alert.ReadAlerts(filepath.Join(h.lake.Dir(), "_osprey", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string][]alert.Alert{}
	for _, a := range alerts {
		byRule[a.RuleID] = append(byRule[a.RuleID], a)
	}
	if got := len(byRule["Detection.Deleted"]); got != 2 {
		t.Fatalf("Detection.Deleted alerts: %d, want 2 (one per actor): %+v", got, byRule)
	}
	for _, a := range byRule["Detection.Deleted"] {
		actor := strings.TrimPrefix(a.Title, "Detection deleted by ")
		if a.Dedup != actor || a.Events != int64(deletes[actor]) || a.Severity != "High" || a.Status != alert.StatusOpen {
			t.Errorf("alert %+v: want dedup %s with %d events", a, actor, deletes[actor])
		}
	}
	if got := byRule["Sign.In.Failed"]; len(got) != 1 || got[0].Events != 6 || got[0].Title != "Sign.In.Failed" {
		t.Fatalf("Sign.In.Failed alerts: %+v, want one of 6 events titled by the rule id", got)
	}
	if len(byRule["Columns.Star"]) != 1 {
		t.Errorf("Columns.Star alerts: %+v", byRule["Columns.Star"])
	}
	if len(h.sent) != 4 {
		t.Errorf("%d alerts sent, want 4", len(h.sent))
	}
	if st.RuleErrors == 0 {
		t.Errorf("no rule error counted: %+v", st)
	}

	// Every match is in panther_rule_matches with its alert; every row of the broken rule's
	// batches is in panther_rule_errors.
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit WHERE p_rule_id = 'Detection.Deleted' AND actionName = 'DELETE_DETECTION'"); n != 12 {
		t.Errorf("Detection.Deleted matches: %d, want 12", n)
	}
	if n := count(t, h.lake, "SELECT count(DISTINCT p_alert_id) FROM panther_rule_matches.panther_audit WHERE p_rule_id = 'Sign.In.Failed'"); n != 1 {
		t.Errorf("Sign.In.Failed matches fall in %d alerts, want 1", n)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit m JOIN panther_logs.panther_audit e USING (p_row_id)"); n != 12+6+3 {
		t.Errorf("matches joined to their events: %d, want 21", n)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_errors.panther_audit WHERE p_rule_id = 'Broken' AND p_rule_error LIKE '%Conversion Error%'"); n != 600 {
		t.Errorf("rule errors: %d rows, want 600", n)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_monitor.alert_history WHERE status = 'OPEN'"); n != 4 {
		t.Errorf("alert history: %d rows, want 4", n)
	}
}

// TestEpochs checks that matches are counted once when the process dies around a flush.
// deletions returns n DELETE_DETECTION events by ana, numbered from from.
func deletions(n, from int) []string {
	var lines []string
	for i := range n {
		lines = append(lines, auditEvent(from+i, "DELETE_DETECTION", "SUCCEEDED", "ana"))
	}
	return lines
}

func TestEpochs(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'", "Threshold: 2\n"),
	})
	ctx := context.Background()
	for _, flushed := range []bool{false, true} {
		t.Run(fmt.Sprintf("flushed=%v", flushed), func(t *testing.T) {
			dir := t.TempDir()
			h := newHarness(t, dir, set)
			h.ingest(deletions(3, 0))
			h.flush()
			// Three more matches; the process dies after Prepare, before (or after) the flush
			// commits, and before Commit.
			h.ingest(deletions(3, 3))
			meta, err := h.engine.Prepare(ctx, "test")
			if err != nil {
				t.Fatal(err)
			}
			if flushed {
				if err := h.w.FlushWith(ctx, meta); err != nil {
					t.Fatal(err)
				}
			}
			h.engine.Close()
			h.w.Abort()
			h.store.Close()

			want := int64(3)
			if flushed {
				want = 6
			}
			h2 := newHarness(t, dir, set)
			alerts := h2.store.Alerts()
			if len(alerts) != 1 || alerts[0].Events != want {
				t.Fatalf("after the crash: %+v, want one alert of %d events", alerts, want)
			}
			if !flushed {
				// The ingest log replays the lost batch: counted once, and the alert, raised
				// before the crash, is not raised again.
				h2.ingest(deletions(3, 3))
				h2.flush()
				if a := h2.store.Alerts(); len(a) != 1 || a[0].Events != 6 {
					t.Fatalf("after the replay: %+v, want one alert of 6 events", a)
				}
				if len(h2.sent) != 0 {
					t.Fatalf("the replay raised %d alerts again", len(h2.sent))
				}
			}
			h2.close()
			if n := count(t, h2.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit"); n != 6 {
				t.Errorf("%d matches in the lake, want 6", n)
			}
		})
	}
}

// TestForget loses a write before its flush, as a full disk would: the writer drops its rows
// (Recover) and the engine forgets what it counted of them and what waits for the rules. The
// rows written again (a pipeline reads them again from its log) are counted once, and the
// alert they raised before is not raised again.
func TestForget(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'", "Threshold: 2\n"),
	})
	h := newHarness(t, t.TempDir(), set)
	h.ingest(deletions(3, 0))
	h.flush()
	h.ingest(deletions(3, 3)) // counted, pending
	h.write(deletions(2, 6))  // waiting for the rules
	if err := h.w.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Forget(); err != nil {
		t.Fatal(err)
	}
	h.ingest(deletions(5, 3))
	h.flush()
	if a := h.store.Alerts(); len(a) != 1 || a[0].Events != 8 {
		t.Fatalf("after the rows were written again: %+v, want one alert of 8 events", a)
	}
	if len(h.sent) != 1 {
		t.Errorf("%d alerts sent, want 1", len(h.sent))
	}
	h.close()
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit"); n != 8 {
		t.Errorf("%d matches in the lake, want 8", n)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_logs.panther_audit"); n != 8 {
		t.Errorf("%d events in the lake, want 8", n)
	}
}

func TestDedupWindowAndResolve(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'", "DedupPeriodMinutes: 10\n"),
	})
	dir := t.TempDir()
	h := newHarness(t, dir, set)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	h.engine.opts.Now = func() time.Time { return now }
	h.store.SetClock(func() time.Time { return now })
	h.ingest([]string{auditEvent(1, "DELETE_DETECTION", "SUCCEEDED", "ana")})
	now = now.Add(9 * time.Minute) // in the window: same alert
	h.ingest([]string{auditEvent(2, "DELETE_DETECTION", "SUCCEEDED", "ana")})
	now = now.Add(2 * time.Minute) // past it: a new alert
	h.ingest([]string{auditEvent(3, "DELETE_DETECTION", "SUCCEEDED", "ana")})
	h.flush()
	alerts := h.store.Alerts()
	if len(alerts) != 2 || alerts[0].Events != 1 || alerts[1].Events != 2 {
		t.Fatalf("alerts %+v, want a new one of 1 event and an older one of 2", alerts)
	}
	// A resolved alert takes no more matches: the next one opens a new alert. The resolution
	// comes as if from another process (the store is held): through the requests file, taken
	// by the next flush.
	if err := alert.Resolve(filepath.Join(dir, "_osprey", "alerts"), alerts[0].AlertID, "tester", nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.store.Alert(alerts[0].AlertID); a.Status != alert.StatusOpen {
		t.Fatalf("resolved before the store took the request: %+v", a)
	}
	read, err := alert.ReadAlerts(filepath.Join(dir, "_osprey", "alerts"))
	if err != nil || read[0].Status != alert.StatusResolved || read[0].ResolvedBy != "tester" {
		t.Fatalf("ReadAlerts does not show the requested resolution: %+v %v", read, err)
	}
	h.flush()
	if a, _ := h.store.Alert(alerts[0].AlertID); a.Status != alert.StatusResolved {
		t.Fatalf("not resolved after the flush took the request: %+v", a)
	}
	h.ingest([]string{auditEvent(4, "DELETE_DETECTION", "SUCCEEDED", "ana")})
	h.flush()
	alerts = h.store.Alerts()
	if len(alerts) != 3 {
		t.Fatalf("alerts %+v, want 3", alerts)
	}
	h.close()
}

// TestUnnotified checks that an alert whose hand-off to destinations failed (the process died
// between the raise and the outbox) is known after a restart, and only until it is handed on,
// and that an alert handed on at once is not left behind.
func TestUnnotified(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'", ""),
	})
	dir := t.TempDir()
	h := newHarness(t, dir, set)
	h.engine.opts.Notify = func(*alert.Alert) error { return errors.New("outbox: disk full") }
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(context.Background(), h.engine, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	in.Ingest(context.Background(), "test", strings.NewReader(auditEvent(1, "DELETE_DETECTION", "SUCCEEDED", "ana")+"\n"))
	in.Close()
	if err := h.engine.Drain(context.Background(), time.Time{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("drain with a failing Notify: %v", err)
	}
	h.engine.Close()
	h.w.Abort()
	h.store.Close()

	h2 := newHarness(t, dir, set)
	un := h2.store.Unnotified()
	if len(un) != 1 || un[0].RuleID != "Detection.Deleted" {
		t.Fatalf("unnotified after restart: %+v, want the one alert", un)
	}
	if err := h2.store.Notified(un[0].AlertID); err != nil {
		t.Fatal(err)
	}
	h2.close()
	h3 := newHarness(t, dir, set)
	if un := h3.store.Unnotified(); len(un) != 0 {
		t.Fatalf("unnotified after Notified and a restart: %+v", un)
	}
	h3.close()

	h4 := newHarness(t, t.TempDir(), set)
	defer h4.close()
	h4.ingest([]string{auditEvent(2, "DELETE_DETECTION", "SUCCEEDED", "bob")})
	if len(h4.sent) != 1 || len(h4.store.Unnotified()) != 0 {
		t.Fatalf("sent %d, unnotified %d; want 1 and 0", len(h4.sent), len(h4.store.Unnotified()))
	}
}

// TestLanes shares one alert store between the streaming engine and a scheduled rule counting
// in a lane of its own (as osprey serve does): each lane's matches are committed with its own
// writer's flush, so a crash that loses the engine's flush keeps the scheduled run's counts,
// and the other way round.
func TestLanes(t *testing.T) {
	ctx := context.Background()
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'", ""),
	})
	dir := t.TempDir()
	h := newHarness(t, dir, set)
	sched := &alert.Rule{ID: "Sched.Deletions", Type: alert.TypeScheduledRule, Severity: "Medium", DedupPeriod: time.Hour, Threshold: 1}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if _, _, err := h.store.AddTo("sched-w", sched, []alert.Match{{EventTime: at}, {EventTime: at}, {EventTime: at}}, false); err != nil {
		t.Fatal(err)
	}
	// The engine's matches are pending in its lane meanwhile.
	h.ingest([]string{auditEvent(1, "DELETE_DETECTION", "SUCCEEDED", "ana"), auditEvent(2, "DELETE_DETECTION", "SUCCEEDED", "bob")})
	engineMeta, err := h.engine.Prepare(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The scheduled run prepares while the engine's epoch is outstanding, and commits.
	w2, err := h.lake.NewWriter(lake.WriterOptions{Name: "sched-w"})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := matches.PrepareAlertsLane(ctx, h.store, w2, "sched-w", "sched-w")
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.FlushWith(ctx, meta); err != nil {
		t.Fatal(err)
	}
	if err := matches.CommitAlerts(h.store, meta); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	// The engine's flush never happens: the process dies.
	_ = engineMeta
	h.engine.Close()
	h.w.Abort()
	h.store.Close()

	h2 := newHarness(t, dir, set)
	defer h2.close()
	events := map[string]int64{}
	for _, a := range h2.store.Alerts() {
		events[a.RuleID] = a.Events
	}
	if events["Sched.Deletions"] != 3 || events["Detection.Deleted"] != 0 {
		t.Fatalf("after the crash: events by rule %v, want the scheduled run's 3 and none of the lost flush", events)
	}
	// The ingest log replays the engine's events: counted once, in the engine's lane.
	h2.ingest([]string{auditEvent(1, "DELETE_DETECTION", "SUCCEEDED", "ana"), auditEvent(2, "DELETE_DETECTION", "SUCCEEDED", "bob")})
	h2.flush()
	for _, a := range h2.store.Alerts() {
		events[a.RuleID] = a.Events
	}
	if events["Sched.Deletions"] != 3 || events["Detection.Deleted"] != 2 {
		t.Fatalf("after the replay: events by rule %v", events)
	}
}

// TestFailingRuleInCombinedScan: when every rule runs in the combined scan (so p_row_id is not
// bound) and one fails at run time, the others still find their matches, and only the failing
// rule's rows go to panther_rule_errors.
func TestFailingRuleInCombinedScan(t *testing.T) {
	set := rules(t, map[string]string{
		"deleted": ruleSpec("Detection.Deleted",
			"SELECT * FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'SUCCEEDED'", ""),
		"signin": ruleSpec("Sign.In", "SELECT *, actor.name AS alert_dedup FROM panther_logs.panther_audit WHERE actionName = 'SIGN_IN'", ""),
		// Simple, so combined, and binds; fails at run time on the batches with a LIST_ALERTS.
		"broken": ruleSpec("Broken", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'LIST_ALERTS' AND CAST(actionResult AS INTEGER) = 1", ""),
	})
	h := newHarness(t, t.TempDir(), set)
	var lines []string
	for i := range 300 {
		switch i % 3 {
		case 0:
			lines = append(lines, auditEvent(i, "DELETE_DETECTION", "SUCCEEDED", "ana"))
		case 1:
			lines = append(lines, auditEvent(i, "SIGN_IN", "SUCCEEDED", "ben"))
		default:
			lines = append(lines, auditEvent(i, "LIST_ALERTS", "SUCCEEDED", "dan"))
		}
	}
	h.ingest(lines)
	h.flush()
	st := h.engine.Stats()
	h.close()
	if st.RuleErrors == 0 {
		t.Fatalf("the broken rule did not fail: %+v", st)
	}
	for rule, want := range map[string]int64{"Detection.Deleted": 100, "Sign.In": 100} {
		if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit WHERE p_rule_id = '"+rule+"'"); n != want {
			t.Errorf("%s matches: %d, want %d", rule, n, want)
		}
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_errors.panther_audit WHERE p_rule_id <> 'Broken'"); n != 0 {
		t.Errorf("%d rows of rules that work are in panther_rule_errors", n)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_errors.panther_audit WHERE p_rule_id = 'Broken' AND p_rule_error LIKE '%Conversion Error%'"); n == 0 {
		t.Error("the broken rule's rows are not in panther_rule_errors")
	}
}

// TestAlertColumns: alert_severity and alert_context shape the alert and the matches, for rules
// in the combined scan and for a rule that runs alone (an aggregate is not a simple filter).
func TestAlertColumns(t *testing.T) {
	set := rules(t, map[string]string{
		"sev": ruleSpec("Severity.Context",
			"SELECT *, CASE WHEN actor.name = 'ana' THEN 'CRITICAL' ELSE 'not a severity' END AS alert_severity,\n"+
				"{'who': actor.name, 'n': 7, 'tags': ['a', 'b']} AS alert_context, actor.name AS alert_dedup\n"+
				"FROM panther_logs.panther_audit WHERE actionName = 'DELETE_USER'", ""),
		"plain": ruleSpec("Plain", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'SIGN_IN'", ""),
		"alone": ruleSpec("Alone.Context",
			"SELECT *, 'Low' AS alert_severity, to_json({'action': actionName}) AS alert_context\n"+
				"FROM panther_logs.panther_audit WHERE actionName = 'DELETE_USER' AND p_row_id IN (SELECT p_row_id FROM panther_logs.panther_audit)", ""),
	})
	h := newHarness(t, t.TempDir(), set)
	var lines []string
	for i := range 30 {
		switch i % 3 {
		case 0:
			lines = append(lines, auditEvent(i, "DELETE_USER", "SUCCEEDED", "ana"))
		case 1:
			lines = append(lines, auditEvent(i, "DELETE_USER", "SUCCEEDED", "ben"))
		default:
			lines = append(lines, auditEvent(i, "SIGN_IN", "SUCCEEDED", "ben"))
		}
	}
	h.ingest(lines)
	h.flush()
	h.close()
	alerts, err := alert.ReadAlerts(filepath.Join(h.lake.Dir(), "_osprey", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]alert.Alert{}
	for _, a := range alerts {
		got[a.RuleID+"/"+a.Dedup] = a
	}
	// The rule's severity (High in ruleSpec) where alert_severity is not one.
	for key, want := range map[string]struct{ sev, ctx string }{
		"Severity.Context/ana":                           {"Critical", `{"who":"ana","n":7,"tags":["a","b"]}`},
		"Severity.Context/ben":                           {"High", `{"who":"ben","n":7,"tags":["a","b"]}`},
		"Alone.Context/defaultDedupString:Alone.Context": {"Low", `{"action":"DELETE_USER"}`},
	} {
		a, ok := got[key]
		if !ok {
			t.Errorf("no alert %s", key)
			continue
		}
		if a.Severity != want.sev || compactJSON(t, a.Context) != want.ctx {
			t.Errorf("alert %s: severity %q context %s, want %q %s", key, a.Severity, a.Context, want.sev, want.ctx)
		}
	}
	if a := got["Plain/defaultDedupString:Plain"]; a.Severity != "High" || len(a.Context) != 0 || a.Title != "Plain" {
		t.Errorf("alert of a rule without alert columns: %+v", a)
	}
	if n := count(t, h.lake, "SELECT count(*) FROM panther_rule_matches.panther_audit WHERE p_rule_id = 'Severity.Context' AND p_alert_severity = 'Critical' AND (p_alert_context->>'who') = 'ana'"); n != 10 {
		t.Errorf("matches with the alert's severity and context: %d, want 10", n)
	}
}

func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}

// TestPitfallWarned: a rule whose JSON arrow applies to a condition loads, with a warning that
// says where it is.
func TestPitfallWarned(t *testing.T) {
	set := rules(t, map[string]string{
		"arrow": ruleSpec("Arrow.Pitfall", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'X' AND actionDetails->>'k' = 'v'", ""),
		"fine":  ruleSpec("Arrow.Fine", "SELECT * FROM panther_logs.panther_audit WHERE actionName = 'X' AND (actionDetails->>'k') = 'v'", ""),
	})
	var logs bytes.Buffer
	h := newHarnessOpts(t, t.TempDir(), set, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h.close()
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "rule Arrow.Pitfall: ->> binds more loosely") ||
		!strings.Contains(out, "in: SELECT * FROM panther_logs.panther_audit WHERE actionName = 'X' AND actionDetails->>'k' = 'v'") {
		t.Errorf("want one warning, for Arrow.Pitfall with its SQL; logged:\n%s", out)
	}
}
