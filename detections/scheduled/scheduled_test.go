package scheduled

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/scheduler"
)

// event is a Panther.Audit event as a JSON line, at the time at.
func event(action, actor string, at time.Time) string {
	return fmt.Sprintf(`{"actionName":%q,"actionResult":"SUCCEEDED","actor":{"id":"SSO_%s","type":"USER","name":%q},`+
		`"sourceIP":"198.51.100.1","timestamp":%q,"pantherVersion":"1.118.2"}`,
		action, actor, actor, at.UTC().Format("2006-01-02 15:04:05.000"))
}

// newLake ingests the events (JSON lines) as Panther.Audit into a new lake.
func newLake(t *testing.T, lines ...string) *lake.Lake {
	t.Helper()
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, w, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ingest(ctx, "test", strings.NewReader(strings.Join(lines, "\n")+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return l
}

// specs writes spec files into a directory and loads them.
func specs(t *testing.T, files ...string) *detections.Set {
	t.Helper()
	dir := t.TempDir()
	for i, text := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("spec%d.yml", i)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := detections.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func querySpec(name, schedule, resultTable, sql string) string {
	s := fmt.Sprintf("AnalysisType: scheduled_query\nQueryName: %s\nSchedule:\n  %s\n", name, schedule)
	if resultTable != "" {
		s += "ResultTable: " + resultTable + "\n"
	}
	return s + "Query: |\n  " + strings.ReplaceAll(sql, "\n", "\n  ") + "\n"
}

func ruleSpec(id, queryName, sql string) string {
	return fmt.Sprintf("AnalysisType: scheduled_rule\nRuleID: %s\nScheduledQueries: [%s]\nSeverity: High\nQuery: |\n  %s\n",
		id, queryName, strings.ReplaceAll(sql, "\n", "\n  "))
}

// sqlRows runs a statement over the lake and returns its rows as text, one line per row with
// the values separated by |.
func sqlRows(t *testing.T, l *lake.Lake, stmt string) []string {
	t.Helper()
	ctx := context.Background()
	db, err := query.Open(ctx, l, query.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(ctx, stmt)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func newRunner(t *testing.T, l *lake.Lake, set *detections.Set, opts Options) *Runner {
	t.Helper()
	opts.Query.Threads = 1
	r, err := New(l, set, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

var base = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// The query runs with the scheduled time as now, and its rows land in panther_views.
func TestQueryResults(t *testing.T) {
	l := newLake(t,
		event("CREATE_USER", "alice", base.Add(20*time.Minute)),
		event("DELETE_USER", "bob", base.Add(40*time.Minute)),
	)
	set := specs(t, querySpec("Recent actions", "RateMinutes: 60", "recent_actions",
		"SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_since('1 hour')"))
	r := newRunner(t, l, set, Options{})
	ctx := context.Background()
	// At 09:30 the last hour starts at 08:30: only the 08:40 event; at 09:10, both.
	for _, at := range []time.Time{base.Add(90 * time.Minute), base.Add(70 * time.Minute)} {
		run, err := r.RunNow(ctx, "Recent actions", at)
		if err != nil {
			t.Fatal(err)
		}
		if !run.Scheduled.Equal(at) {
			t.Errorf("run scheduled at %v, want %v", run.Scheduled, at)
		}
	}
	got := sqlRows(t, l, "SELECT p_scheduled_time, actionName, p_event_time = p_scheduled_time FROM panther_views.recent_actions ORDER BY 1, 2")
	want := []string{
		"2026-11-20T09:10:00Z|CREATE_USER|true",
		"2026-11-20T09:10:00Z|DELETE_USER|true",
		"2026-11-20T09:30:00Z|DELETE_USER|true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("panther_views.recent_actions:\n got %q\nwant %q", got, want)
	}
	if _, err := os.Stat(l.DayDir(lake.DBViews, "recent_actions", base.Add(time.Hour))); err != nil {
		t.Errorf("no data of the scheduled day: %v", err)
	}
	st, err := r.Status(base.Add(90 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Last == nil || st[0].Last.Rows != 1 || st[0].Last.Err != "" {
		t.Errorf("status %+v, want the last run (09:30) with 1 row", st)
	}
	// The same scheduled time again: its results are committed already, and not repeated.
	if _, err := r.RunNow(ctx, "Recent actions", base.Add(70*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := sqlRows(t, l, "SELECT count(*) FROM panther_views.recent_actions"); !slices.Equal(got, []string{"3"}) {
		t.Errorf("rows after running 09:10 again: %v, want 3", got)
	}
}

// collector records the alerts a Runner notifies.
type collector struct {
	mu     sync.Mutex
	alerts []*alert.Alert
}

func (c *collector) notify(a *alert.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, a)
	return nil
}

const deletionsQuery = `SELECT actor.name AS actor, count(*) AS deletions
FROM panther_logs.panther_audit
WHERE actionName = 'DELETE_DETECTION' AND p_occurs_since('1 day')
GROUP BY actor.name`

func deletionEvents() []string {
	return []string{
		event("DELETE_DETECTION", "alice", base.Add(1*time.Minute)),
		event("DELETE_DETECTION", "alice", base.Add(2*time.Minute)),
		event("DELETE_DETECTION", "alice", base.Add(3*time.Minute)),
		event("DELETE_DETECTION", "bob", base.Add(4*time.Minute)),
	}
}

// A scheduled rule raises one alert over the results, dedups across runs, and its matches are
// in panther_rule_matches.
func TestRuleAlerts(t *testing.T) {
	l := newLake(t, deletionEvents()...)
	set := specs(t,
		querySpec("Deletions per actor", `CronExpression: "0 * * * *"`, "", deletionsQuery),
		ruleSpec("Mass.Deletion", "Deletions per actor", `SELECT actor, deletions, actor || ' deleted ' || deletions AS alert_title, actor AS alert_dedup
FROM panther_views.deletions_per_actor WHERE deletions >= 2`),
	)
	var c collector
	r := newRunner(t, l, set, Options{Notify: c.notify})
	ctx := context.Background()
	for _, at := range []time.Time{base.Add(time.Hour), base.Add(2 * time.Hour)} {
		if _, err := r.RunNow(ctx, "Deletions per actor", at); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.alerts) != 1 {
		t.Fatalf("%d alerts notified, want 1: %+v", len(c.alerts), c.alerts)
	}
	a := c.alerts[0]
	if a.RuleID != "Mass.Deletion" || a.Type != alert.TypeScheduledRule || a.Title != "alice deleted 3" || a.Dedup != "alice" || a.Events != 1 {
		t.Errorf("alert %+v", a)
	}
	// The runner's store holds the alert with both runs' matches.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	stored, err := alert.ReadAlerts(filepath.Join(l.Dir(), "_osprey", "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].AlertID != a.AlertID || stored[0].Events != 2 {
		t.Errorf("stored alerts %+v, want alert %s with 2 events", stored, a.AlertID)
	}
	got := sqlRows(t, l, "SELECT actor, deletions, p_rule_id, p_alert_id, p_rule_severity, p_scheduled_time FROM panther_rule_matches.deletions_per_actor ORDER BY p_scheduled_time")
	want := []string{
		"alice|3|Mass.Deletion|" + a.AlertID + "|High|2026-11-20T09:00:00Z",
		"alice|3|Mass.Deletion|" + a.AlertID + "|High|2026-11-20T10:00:00Z",
	}
	if !slices.Equal(got, want) {
		t.Errorf("panther_rule_matches.deletions_per_actor:\n got %q\nwant %q", got, want)
	}
}

// A rule that fails keeps the results in panther_rule_errors, and the other rules still run.
func TestFailingRule(t *testing.T) {
	l := newLake(t, deletionEvents()...)
	set := specs(t,
		querySpec("Deletions per actor", "RateMinutes: 60", "deletions", deletionsQuery),
		ruleSpec("A.Broken", "Deletions per actor", "SELECT no_such_column FROM panther_views.deletions"),
		ruleSpec("B.Works", "Deletions per actor", "SELECT * FROM panther_views.deletions WHERE actor = 'bob'"),
	)
	var c collector
	r := newRunner(t, l, set, Options{Notify: c.notify})
	run, err := r.RunNow(context.Background(), "Deletions per actor", base.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "A.Broken") || !strings.Contains(run.Err, "no_such_column") {
		t.Errorf("run error %v (recorded %q), want A.Broken's", err, run.Err)
	}
	if len(c.alerts) != 1 || c.alerts[0].RuleID != "B.Works" {
		t.Errorf("alerts %+v, want one of B.Works", c.alerts)
	}
	got := sqlRows(t, l, "SELECT p_rule_id, count(*), bool_and(p_rule_error LIKE '%no_such_column%') FROM panther_rule_errors.deletions GROUP BY 1")
	if want := []string{"A.Broken|2|true"}; !slices.Equal(got, want) {
		t.Errorf("panther_rule_errors.deletions: %q, want %q", got, want)
	}
	if got := sqlRows(t, l, "SELECT actor FROM panther_views.deletions ORDER BY 1"); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("results %q, want alice and bob", got)
	}
}

// RunDue runs a query that never ran, then after downtime runs the missed runs once.
func TestDueMissedOnce(t *testing.T) {
	l := newLake(t, event("CREATE_USER", "alice", base))
	set := specs(t, querySpec("Hourly", "RateMinutes: 60", "hourly",
		"SELECT count(*) AS n FROM panther_logs.panther_audit"))
	now := base.Add(10 * time.Minute)
	r := newRunner(t, l, set, Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	due := func(at time.Time) []scheduler.Run {
		t.Helper()
		runs, err := r.RunDue(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return runs
	}
	if runs := due(now); len(runs) != 1 || !runs[0].Scheduled.Equal(base) {
		t.Fatalf("first RunDue: %+v, want the run of 08:00", runs)
	}
	if runs := due(now); len(runs) != 0 {
		t.Fatalf("RunDue again: %+v, want none", runs)
	}
	// Down from 08:10 to 13:30: the runs of 09:00 to 13:00 collapse into 13:00.
	now = base.Add(5*time.Hour + 30*time.Minute)
	if runs := due(now); len(runs) != 1 || !runs[0].Scheduled.Equal(base.Add(5*time.Hour)) {
		t.Fatalf("RunDue after downtime: %+v, want one run of 13:00", runs)
	}
	got := sqlRows(t, l, "SELECT p_scheduled_time, n FROM panther_views.hourly ORDER BY 1")
	if want := []string{"2026-11-20T08:00:00Z|1", "2026-11-20T13:00:00Z|1"}; !slices.Equal(got, want) {
		t.Errorf("panther_views.hourly: %q, want %q", got, want)
	}
}

// With a store handed in (osprey serve's, shared with the streaming engine), a run's matches
// are committed with its own flush, in its lane, while the engine's lane has matches pending:
// they stay pending, uncounted.
func TestSharedStore(t *testing.T) {
	l := newLake(t, deletionEvents()...)
	set := specs(t,
		querySpec("Deletions per actor", "RateMinutes: 60", "", deletionsQuery),
		ruleSpec("Mass.Deletion", "Deletions per actor", "SELECT * FROM panther_views.deletions_per_actor WHERE deletions >= 2"),
	)
	store, err := alert.Open(filepath.Join(l.Dir(), "_osprey", "alerts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// A match of the streaming engine's lane, pending until the engine's own flush.
	streaming := &alert.Rule{ID: "Streaming.Rule", Type: alert.TypeRule, Severity: "Low", DedupPeriod: time.Hour, Threshold: 1}
	if _, _, err := store.Add(streaming, []alert.Match{{EventTime: base}}, false); err != nil {
		t.Fatal(err)
	}
	var c collector
	r := newRunner(t, l, set, Options{Alerts: store, Notify: c.notify})
	if _, err := r.RunNow(context.Background(), "Deletions per actor", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var got []alert.Alert
	for _, a := range store.Alerts() {
		if a.RuleID == "Streaming.Rule" {
			if a.Events != 0 {
				t.Errorf("the streaming lane's pending match was counted by the scheduled run's flush: %+v", a)
			}
			continue
		}
		got = append(got, a)
	}
	if len(got) != 1 || got[0].Events != 1 || len(c.alerts) != 1 || c.alerts[0].AlertID != got[0].AlertID {
		t.Errorf("stored %+v, notified %+v: want one alert with 1 event", got, c.alerts)
	}
	if rows := sqlRows(t, l, "SELECT count(*) FROM panther_rule_matches.deletions_per_actor"); !slices.Equal(rows, []string{"1"}) {
		t.Errorf("matches: %v, want 1", rows)
	}
}
