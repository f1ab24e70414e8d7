package query

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var literalRE = regexp.MustCompile(`TIMESTAMPTZ '[^']*'`)

// TestMacroFormsPrune runs every form of every macro on the narrowing lake: each returns the
// rows of its range, and each reads only the files of the partitions its range touches (DuckDB's
// own count of the files a scan read).
func TestMacroFormsPrune(t *testing.T) {
	nl := buildNarrowLake(t)
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	db := openDB(t, nl.lake, Options{Now: func() time.Time { return now }})
	day := func(d int) time.Time { return narrowDays[d-1] }
	// files counts the data files whose events overlap [lo, hi], plus the schema file.
	files := func(lo, hi time.Time) []int { return []int{nl.overlapping(t, lo, hi) + 1} }
	// The reference statement has the expansion's constants in subqueries, which narrowing
	// does not read: it scans every file.
	plain := func(stmt string) string {
		exp := explain(t, db, stmt)
		if i := strings.Index(exp, " WHERE "); i >= 0 {
			return stmt[:strings.Index(stmt, " WHERE ")] + literalRE.ReplaceAllStringFunc(exp[i:], func(s string) string { return "(SELECT " + s + ")" })
		}
		t.Fatalf("no WHERE in %s", exp)
		return ""
	}
	const sel = "SELECT actionName FROM panther_logs.panther_audit"
	between := func(lo, hi time.Time) []string {
		return nl.actions(func(e auditEvent) bool { return !e.Time.Before(lo) && !e.Time.After(hi) })
	}
	future := now.Add(365 * 24 * time.Hour) // since has no upper bound
	todayUTC := time.Now().UTC().Truncate(24 * time.Hour)
	daysBack := int(todayUTC.Sub(day(4)).Hours() / 24)

	for _, c := range []struct {
		name, where string
		lo, hi      time.Time // the rows' range
	}{
		{"since '1 day'", "p_occurs_since('1 day')", now.Add(-24 * time.Hour), future},
		{"since seconds", "p_occurs_since(86400)", now.Add(-24 * time.Hour), future},
		{"since '6 h'", "p_occurs_since('6 h')", now.Add(-6 * time.Hour), future},
		{"since '30m'", "p_occurs_since('30m')", now.Add(-30 * time.Minute), future},
		{"since '2 weeks'", "p_occurs_since('2 weeks')", now.Add(-14 * 24 * time.Hour), future},
		{"since with alias", "p_occurs_since('1 day', a)", now.Add(-24 * time.Hour), future},
		{"since with alias and column", "p_occurs_since('1 day', a, p_event_time)", now.Add(-24 * time.Hour), future},
		{"between timestamps", "p_occurs_between('2026-03-02', '2026-03-03 06:59:59')", day(2), day(3).Add(7*time.Hour - time.Second)},
		{"between expressions", "p_occurs_between(TIMESTAMP '2026-03-03' - INTERVAL 1 DAY, DATE '2026-03-03')", day(2), day(3)},
		{"around", "p_occurs_around('2026-03-03 11:00:00', '6 h')", day(3).Add(5 * time.Hour), day(3).Add(17 * time.Hour)},
		{"after current_date - N", fmt.Sprintf("p_occurs_after(current_date - %d)", daysBack), day(4).Add(time.Microsecond), now.Add(24 * time.Hour)},
		{"before an expression", "p_occurs_before(TIMESTAMP '2026-03-03' - INTERVAL 1 DAY)", day(1).Add(-time.Hour), day(2).Add(-time.Microsecond)},
		{"after with alias", "p_occurs_after('2026-03-05 06:00:00', a)", day(5).Add(6*time.Hour + time.Microsecond), now.Add(24 * time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			stmt := sel + " a WHERE " + c.where + " ORDER BY 1"
			narrowCase(t, db, stmt, plain(stmt), between(c.lo, c.hi), files(c.lo, c.hi))
		})
	}

	// A macro on another column cannot prune by p_event_time: every file is read, and the
	// result is right.
	stmt := sel + " WHERE p_occurs_since('1h', , p_parse_time) ORDER BY 1"
	if got := explain(t, db, stmt); strings.Contains(got, "read_parquet(") || !strings.Contains(got, "(p_parse_time >= TIMESTAMPTZ '2026-03-05 11:00:00Z')") {
		t.Errorf("p_occurs_since('1h', , p_parse_time) ran as %s", got)
	}
	if _, rows := queryRows(t, db, stmt); len(rows) != 0 && !reflect.DeepEqual(len(rows), len(nl.events)) {
		t.Errorf("p_occurs_since on p_parse_time: %d rows", len(rows))
	}
}
