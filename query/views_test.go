package query

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake"
)

// TestUnionViews checks panther_views.all_logs and all_rule_matches: the p_ columns of every
// table, p_db_name, tables that appear while the session is open, and partition pruning.
func TestUnionViews(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := ingestAudit(t, dir, []auditEvent{
		{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)},
		{Action: "B", Time: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)},
	})
	db := openDB(t, l, Options{Now: func() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }})

	cols, rows := queryRows(t, db, "SELECT p_db_name, p_log_type, p_event_time FROM panther_views.all_logs ORDER BY p_event_time")
	want := []string{"panther_logs|Panther.Audit|2026-03-01T01:00:00Z", "panther_logs|Panther.Audit|2026-03-02T01:00:00Z"}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("all_logs: %q, want %q", rows, want)
	}
	cols, _ = queryRows(t, db, "SELECT * FROM panther_views.all_logs LIMIT 0")
	for _, c := range []string{"p_db_name", "p_log_type", "p_row_id", "p_event_time", "p_parse_time", "p_source_id", "p_source_label", "p_any_ip_addresses"} {
		if !slices.Contains(cols, c) {
			t.Errorf("all_logs has no column %s: %q", c, cols)
		}
	}
	for _, c := range cols {
		if c != "p_db_name" && (len(c) < 2 || c[:2] != "p_") {
			t.Errorf("all_logs has column %s, which is not a p_ column", c)
		}
	}
	// No table under panther_rule_matches yet: an empty view with Panther's columns.
	if _, rows := queryRows(t, db, "SELECT count(*), count(p_rule_id) FROM panther_views.all_rule_matches"); !reflect.DeepEqual(rows, []string{"0|0"}) {
		t.Errorf("all_rule_matches: %q", rows)
	}

	// A new table appears in all_logs without reopening; its missing p_ columns are NULL.
	writeCustomTable(t, l, "custom_values", []customRow{{n: ptr(int64(1)), when: time.Date(2026, 3, 2, 5, 0, 0, 0, time.UTC)}}, false)
	_, rows = queryRows(t, db, "SELECT coalesce(p_log_type, 'NULL'), p_event_time FROM panther_views.all_logs ORDER BY p_event_time")
	want = []string{"Panther.Audit|2026-03-01T01:00:00Z", "Panther.Audit|2026-03-02T01:00:00Z", "NULL|2026-03-02T05:00:00Z"}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("all_logs after a new table: %q, want %q", rows, want)
	}
	// And a table of rule matches appears in all_rule_matches.
	writeCustomMatches(t, l)
	if _, rows := queryRows(t, db, "SELECT p_db_name, count(*) FROM panther_views.all_rule_matches GROUP BY 1"); !reflect.DeepEqual(rows, []string{"panther_rule_matches|1"}) {
		t.Errorf("all_rule_matches after a new table: %q", rows)
	}

	// A macro on all_logs reads only the partitions in range, of every table.
	stmt := "SELECT count(*) FROM panther_views.all_logs WHERE p_occurs_since('8 hours')"
	if _, rows := queryRows(t, db, stmt); !reflect.DeepEqual(rows, []string{"1"}) {
		t.Errorf("%s: %q, want 1", stmt, rows)
	}
	prepared, _, err := db.Explain(ctx, stmt)
	if err != nil {
		t.Fatal(err)
	}
	// One scan a table: panther_audit's schema file (no partition in range), custom_values' schema
	// file and its one partition in range.
	if got := filesRead(t, db, prepared); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("files read by each scan %v, want [1 2]: %s", got, prepared)
	}
}

// writeCustomMatches writes a table panther_rule_matches.custom_values with one row.
func writeCustomMatches(t *testing.T, l *lake.Lake) {
	t.Helper()
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := customRecord(t, []customRow{{n: ptr(int64(2)), when: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)}})
	defer rec.Release()
	if err := w.Write(context.Background(), lake.DBRuleMatches, "custom_values", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
