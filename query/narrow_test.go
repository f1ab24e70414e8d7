package query

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake"
)

// narrowLake is a lake of Panther.Audit events on five days (2026-03-01 to 2026-03-05), at hours
// 01, 06, 11 and 17 of each day, two events an hour. A second ingest adds an event to three of
// those hours, so those partitions hold two files.
type narrowLake struct {
	lake   *lake.Lake
	events []auditEvent
	files  int // data files on disk
}

var narrowDays = []time.Time{
	time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC),
}

func buildNarrowLake(t *testing.T) *narrowLake {
	t.Helper()
	dir := t.TempDir()
	var first, second []auditEvent
	n := 0
	for d, day := range narrowDays {
		for _, h := range []int{1, 6, 11, 17} {
			for _, m := range []int{10, 40} {
				n++
				first = append(first, auditEvent{
					Action: fmt.Sprintf("D%d_H%02d_M%02d", d+1, h, m),
					Actor:  []string{"user-a", "user-b", "user-c"}[n%3],
					Time:   day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute),
				})
			}
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 3, 1, 1, 50, 0, 0, time.UTC),
		time.Date(2026, 3, 3, 6, 50, 0, 0, time.UTC),
		time.Date(2026, 3, 3, 17, 50, 0, 0, time.UTC),
	} {
		second = append(second, auditEvent{
			Action: fmt.Sprintf("D%d_H%02d_M50", tm.Day(), tm.Hour()),
			Actor:  "user-a",
			Result: "FAILED",
			Time:   tm,
		})
	}
	ingestAudit(t, dir, first)
	l := ingestAudit(t, dir, second)
	nl := &narrowLake{lake: l, events: append(first, second...)}
	nl.files = len(nl.dataFiles(t, "*", "*"))
	if want := 5 + 2; nl.files != want {
		t.Fatalf("lake has %d data files, want %d (one a day, and one more in two days)", nl.files, want)
	}
	return nl
}

// dataFiles returns the data files of partitions matching the glob parts (such as "03", "*").
func (nl *narrowLake) dataFiles(t *testing.T, month, day string) []string {
	t.Helper()
	pattern := filepath.Join(nl.lake.TableDir(lake.DBLogs, "panther_audit"), "year=2026", "month="+month, "day="+day, "*.parquet")
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// overlapping counts the data files whose rows' p_event_time range overlaps [lo, hi] (a zero
// time leaves a side open), read from the files themselves by a DuckDB of its own.
func (nl *narrowLake) overlapping(t *testing.T, lo, hi time.Time) int {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	for _, f := range nl.dataFiles(t, "*", "*") {
		var minT, maxT time.Time
		if err := db.QueryRow("SELECT min(p_event_time), max(p_event_time) FROM read_parquet("+quote(f)+")").Scan(&minT, &maxT); err != nil {
			t.Fatal(err)
		}
		if (lo.IsZero() || !maxT.Before(lo)) && (hi.IsZero() || !minT.After(hi)) {
			n++
		}
	}
	return n
}

// holding counts the data files whose range of a column (read from the files by a DuckDB of its
// own) includes one of vals, among the files of days (all days when none is given).
func (nl *narrowLake) holding(t *testing.T, col string, vals []string, days ...int) int {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files := nl.dataFiles(t, "*", "*")
	if len(days) > 0 {
		files = nil
		for _, d := range days {
			files = append(files, nl.dataFiles(t, "03", fmt.Sprintf("%02d", d))...)
		}
	}
	n := 0
	for _, f := range files {
		var lo, hi sql.NullString
		if err := db.QueryRow("SELECT min("+col+"), max("+col+") FROM read_parquet("+quote(f)+")").Scan(&lo, &hi); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if lo.Valid && lo.String <= v && v <= hi.String {
				n++
				break
			}
		}
	}
	return n
}

// dayFiles counts the data files of days of March 2026.
func (nl *narrowLake) dayFiles(t *testing.T, days ...int) int {
	t.Helper()
	n := 0
	for _, d := range days {
		n += len(nl.dataFiles(t, "03", fmt.Sprintf("%02d", d)))
	}
	return n
}

// actions returns the sorted actions of the events for which keep holds.
func (nl *narrowLake) actions(keep func(e auditEvent) bool) []string {
	var out []string
	for _, e := range nl.events {
		if keep(e) {
			out = append(out, e.Action)
		}
	}
	sort.Strings(out)
	return out
}

// queryRows runs a statement with Query and returns its columns and its rows, each row its
// values (made plain) joined by "|".
func queryRows(t *testing.T, db *DB, stmt string) ([]string, []string) {
	t.Helper()
	rows, err := db.Query(context.Background(), stmt)
	if err != nil {
		t.Fatalf("Query(%q): %v", stmt, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = text(Plain(v))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

var filesReadRE = regexp.MustCompile(`Total Files Read:\s*(\d+)`)

// filesRead runs EXPLAIN ANALYZE of a (prepared) statement on the session and returns the
// "Total Files Read" of each Parquet scan, sorted. The count includes the table's schema file,
// which every scan lists first.
func filesRead(t *testing.T, db *DB, stmt string) []int {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), "EXPLAIN ANALYZE "+stmt)
	if err != nil {
		t.Fatalf("EXPLAIN ANALYZE %s: %v", stmt, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(value)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, m := range filesReadRE.FindAllStringSubmatch(plan.String(), -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	if counts == nil {
		t.Fatalf("no \"Total Files Read\" in the plan of %s:\n%s", stmt, plan.String())
	}
	sort.Ints(counts)
	return counts
}

func explain(t *testing.T, db *DB, stmt string) string {
	t.Helper()
	out, _, err := db.Explain(context.Background(), stmt)
	if err != nil {
		t.Fatalf("Explain(%q): %v", stmt, err)
	}
	return out
}

func actionColumn(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _, _ = strings.Cut(r, "|")
	}
	return out
}

// narrowCase checks a narrowable statement: its result is want and the same as the result of
// an equivalent statement that cannot be narrowed, and its scans read wantFiles files each
// (sorted; data files plus the schema file).
func narrowCase(t *testing.T, db *DB, stmt, plain string, want []string, wantFiles []int) {
	t.Helper()
	cols, got := queryRows(t, db, stmt)
	plainCols, plainRows := queryRows(t, db, plain)
	if !reflect.DeepEqual(cols, plainCols) {
		t.Errorf("columns %q, without narrowing %q", cols, plainCols)
	}
	if !reflect.DeepEqual(got, plainRows) {
		t.Errorf("rows differ from the rows without narrowing:\n got %q\nwant %q", got, plainRows)
	}
	if actions := actionColumn(got); !reflect.DeepEqual(actions, want) && !(len(actions) == 0 && len(want) == 0) {
		t.Errorf("actions\n got %q\nwant %q", actions, want)
	}
	if p := explain(t, db, plain); p != plain {
		t.Errorf("the reference statement was rewritten: %s", p)
	}
	prepared := explain(t, db, stmt)
	if !strings.Contains(prepared, "read_parquet(") {
		t.Errorf("statement was not narrowed: %s", prepared)
	}
	if got := filesRead(t, db, prepared); !reflect.DeepEqual(got, wantFiles) {
		t.Errorf("files read by each scan: %v, want %v (data files in range + the schema file)", got, wantFiles)
	}
}

func TestNarrowReadsSerializedStatement(t *testing.T) {
	ctx := context.Background()
	l := ingestAudit(t, t.TempDir(), []auditEvent{{Action: "A", Time: narrowDays[0].Add(time.Hour)}})
	db := openDB(t, l, Options{})

	// What narrow relies on: the statement's tree as text, from the guard's parse.
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmt := "SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMPTZ '2026-03-01 00:00:00'"
	tree, err := parseQuery(ctx, conn, stmt)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := db.current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.narrow(ctx, snap, stmt, tree, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got == stmt || !strings.Contains(got, "read_parquet(") {
		t.Errorf("narrow(%q) left the statement unchanged", stmt)
	}
}

func TestNarrow(t *testing.T) {
	nl := buildNarrowLake(t)
	db := openDB(t, nl.lake, Options{})
	all := func(auditEvent) bool { return true }
	between := func(lo, hi time.Time) func(auditEvent) bool {
		return func(e auditEvent) bool { return !e.Time.Before(lo) && !e.Time.After(hi) }
	}
	day := func(d int) time.Time { return narrowDays[d-1] }

	t.Run("schema file is counted", func(t *testing.T) {
		// Without narrowing a scan reads every data file and the schema file listed first; a
		// range without data reads only the schema file (see "empty range" below).
		const stmt = "SELECT actionName FROM panther_logs.panther_audit ORDER BY actionName"
		if got, want := filesRead(t, db, stmt), []int{nl.files + 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("files read: %v, want %v", got, want)
		}
		_, rows := queryRows(t, db, stmt)
		if got, want := rows, nl.actions(all); !reflect.DeepEqual(got, want) {
			t.Errorf("rows\n got %q\nwant %q", got, want)
		}
	})

	t.Run("a: one day with p_occurs_between", func(t *testing.T) {
		if got := nl.dayFiles(t, 3); got != 2 {
			t.Fatalf("day 3 has %d data files, want 2", got)
		}
		narrowCase(t, db,
			"SELECT actionName, actionResult FROM panther_logs.panther_audit WHERE p_occurs_between('2026-03-03', '2026-03-03 23:59:59') ORDER BY actionName",
			"SELECT actionName, actionResult FROM panther_logs.panther_audit WHERE p_event_time BETWEEN (SELECT TIMESTAMPTZ '2026-03-03') AND (SELECT TIMESTAMPTZ '2026-03-03 23:59:59') ORDER BY actionName",
			nl.actions(between(day(3), day(3).Add(24*time.Hour-time.Second))),
			[]int{nl.dayFiles(t, 3) + 1})
		prepared := explain(t, db, "SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_between('2026-03-03', '2026-03-03 23:59:59')")
		if strings.Contains(prepared, "day=02") || strings.Contains(prepared, "day=04") {
			t.Errorf("narrowed statement reads other days: %s", prepared)
		}
	})

	t.Run("b: same result as read_parquet of every file", func(t *testing.T) {
		lo, hi := day(2).Add(6*time.Hour), day(4).Add(11*time.Hour)
		glob := dataGlob(nl.lake, lake.DBLogs, "panther_audit")
		narrowCase(t, db,
			"SELECT actionName, actor.id, p_event_time, year, month, day, hour FROM panther_logs.panther_audit WHERE p_event_time BETWEEN TIMESTAMPTZ '2026-03-02 06:00:00' AND TIMESTAMPTZ '2026-03-04 11:00:00' ORDER BY actionName",
			"SELECT actionName, actor.id, p_event_time, year(p_event_time)::INTEGER AS year, month(p_event_time)::INTEGER AS month, day(p_event_time)::INTEGER AS day, hour(p_event_time)::INTEGER AS hour FROM read_parquet("+quote(glob)+", hive_partitioning = false) WHERE p_event_time BETWEEN TIMESTAMPTZ '2026-03-02 06:00:00' AND TIMESTAMPTZ '2026-03-04 11:00:00' ORDER BY actionName",
			nl.actions(between(lo, hi)),
			// The files whose events overlap the range: those of the hours 06 (at :10 and
			// :40), 11 and 17 of day 2, day 3, hours 01 and 06 of day 4 (hour 11's are after).
			[]int{nl.overlapping(t, lo, hi) + 1})
	})

	t.Run("c: aliased reference", func(t *testing.T) {
		narrowCase(t, db,
			"SELECT a.actionName, a.actor.id AS actor FROM panther_logs.panther_audit a WHERE a.p_event_time >= TIMESTAMPTZ '2026-03-04 00:00:00' ORDER BY a.actionName",
			"SELECT a.actionName, a.actor.id AS actor FROM panther_logs.panther_audit a WHERE a.p_event_time >= (SELECT TIMESTAMPTZ '2026-03-04 00:00:00') ORDER BY a.actionName",
			nl.actions(func(e auditEvent) bool { return !e.Time.Before(day(4)) }),
			[]int{nl.dayFiles(t, 4, 5) + 1})
		// AS, and the alias spelled in another case where it is used.
		narrowCase(t, db,
			"SELECT Ev.actionName FROM panther_logs.panther_audit AS Ev WHERE EV.p_event_time < TIMESTAMPTZ '2026-03-02 00:00:00' AND ev.actionResult = 'FAILED' ORDER BY 1",
			"SELECT Ev.actionName FROM panther_logs.panther_audit AS Ev WHERE EV.p_event_time < (SELECT TIMESTAMPTZ '2026-03-02 00:00:00') AND ev.actionResult = (SELECT 'FAILED') ORDER BY 1",
			nl.actions(func(e auditEvent) bool { return e.Time.Before(day(2)) && e.Result == "FAILED" }),
			[]int{nl.holding(t, "actionResult", []string{"FAILED"}, 1) + 1})
	})

	t.Run("c2: table-qualified column without alias", func(t *testing.T) {
		narrowCase(t, db,
			"SELECT panther_audit.actionName FROM panther_logs.panther_audit WHERE panther_audit.p_event_time < TIMESTAMPTZ '2026-03-02 00:00:00' ORDER BY 1",
			"SELECT panther_audit.actionName FROM panther_logs.panther_audit WHERE panther_audit.p_event_time < (SELECT TIMESTAMPTZ '2026-03-02 00:00:00') ORDER BY 1",
			nl.actions(func(e auditEvent) bool { return e.Time.Before(day(2)) }),
			[]int{nl.dayFiles(t, 1) + 1})
	})

	t.Run("d: join narrows each reference by its own predicate", func(t *testing.T) {
		var want []string
		for _, a := range nl.events {
			for _, b := range nl.events {
				if a.Time.Before(day(2)) && !b.Time.Before(day(5)) && a.Actor == b.Actor {
					want = append(want, a.Action+"|"+b.Action)
				}
			}
		}
		sort.Strings(want)
		const sel = "SELECT a.actionName, b.actionName AS other FROM panther_logs.panther_audit a JOIN panther_logs.panther_audit b ON a.actor.id = b.actor.id "
		stmt := sel + "WHERE a.p_event_time < TIMESTAMPTZ '2026-03-02 00:00:00' AND b.p_event_time >= TIMESTAMPTZ '2026-03-05 00:00:00' ORDER BY 1, 2"
		plain := sel + "WHERE a.p_event_time < (SELECT TIMESTAMPTZ '2026-03-02 00:00:00') AND b.p_event_time >= (SELECT TIMESTAMPTZ '2026-03-05 00:00:00') ORDER BY 1, 2"
		_, got := queryRows(t, db, stmt)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rows\n got %q\nwant %q", got, want)
		}
		wantFiles := []int{nl.dayFiles(t, 1) + 1, nl.dayFiles(t, 5) + 1}
		sort.Ints(wantFiles)
		narrowCase(t, db, stmt, plain, actionColumn(want), wantFiles)
		prepared := explain(t, db, stmt)
		if strings.Count(prepared, "read_parquet(") != 2 || !strings.Contains(prepared, "day=01") || !strings.Contains(prepared, "day=05") {
			t.Errorf("want both references narrowed, a to day 1 and b to day 5: %s", prepared)
		}
	})

	t.Run("e: unqualified predicate with a join is not narrowed", func(t *testing.T) {
		stmt := "SELECT actionName, v.label FROM panther_logs.panther_audit JOIN (VALUES ('user-a', 'A'), ('user-b', 'B')) v(id, label) ON actor.id = v.id " +
			"WHERE p_event_time >= TIMESTAMPTZ '2026-03-05 00:00:00' ORDER BY 1"
		if got := explain(t, db, stmt); got != stmt {
			t.Errorf("Explain changed the statement:\n got %s\nwant %s", got, stmt)
		}
		var want []string
		for _, e := range nl.events {
			if !e.Time.Before(day(5)) && e.Actor != "user-c" {
				want = append(want, e.Action+"|"+strings.ToUpper(strings.TrimPrefix(e.Actor, "user-")))
			}
		}
		sort.Strings(want)
		if _, got := queryRows(t, db, stmt); !reflect.DeepEqual(got, want) {
			t.Errorf("rows\n got %q\nwant %q", got, want)
		}
	})

	t.Run("e2: predicates that do not bound every row are not narrowed", func(t *testing.T) {
		for _, c := range []struct {
			stmt string
			keep func(auditEvent) bool
		}{
			{"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time < TIMESTAMPTZ '2026-03-02 00:00:00' OR actionName = 'D5_H17_M40' ORDER BY 1",
				func(e auditEvent) bool { return e.Time.Before(day(2)) || e.Action == "D5_H17_M40" }},
			{"SELECT actionName FROM panther_logs.panther_audit WHERE NOT (p_event_time < TIMESTAMPTZ '2026-03-05 00:00:00') ORDER BY 1",
				func(e auditEvent) bool { return !e.Time.Before(day(5)) }},
			{"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time NOT BETWEEN TIMESTAMPTZ '2026-03-01 00:00:00' AND TIMESTAMPTZ '2026-03-04 23:59:59' ORDER BY 1",
				func(e auditEvent) bool { return !e.Time.Before(day(5)) }},
			{"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time <> TIMESTAMPTZ '2026-03-01 01:10:00' AND p_event_time < TIMESTAMPTZ '2026-03-01 12:00:00' ORDER BY 1",
				func(e auditEvent) bool { return e.Time.Before(day(1).Add(12*time.Hour)) && e.Action != "D1_H01_M10" }},
		} {
			_, got := queryRows(t, db, c.stmt)
			if want := nl.actions(c.keep); !reflect.DeepEqual(got, want) {
				t.Errorf("%s\n got %q\nwant %q", c.stmt, got, want)
			}
		}
	})

	t.Run("f: range without data", func(t *testing.T) {
		wantCols, _ := queryRows(t, db, "SELECT * FROM panther_logs.panther_audit LIMIT 0")
		for _, stmt := range []string{
			"SELECT * FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMPTZ '2027-01-01 00:00:00'",
			"SELECT * FROM panther_logs.panther_audit WHERE p_occurs_between('2026-03-02 18:00:00', '2026-03-03 00:59:59')",
			"SELECT * FROM panther_logs.panther_audit WHERE p_event_time < TIMESTAMPTZ '2020-01-01 00:00:00'",
		} {
			cols, rows := queryRows(t, db, stmt)
			if len(rows) != 0 {
				t.Errorf("%s: %d rows, want none", stmt, len(rows))
			}
			if !reflect.DeepEqual(cols, wantCols) {
				t.Errorf("%s: columns\n got %q\nwant %q", stmt, cols, wantCols)
			}
			prepared := explain(t, db, stmt)
			if got := filesRead(t, db, prepared); !reflect.DeepEqual(got, []int{1}) {
				t.Errorf("%s: files read %v, want [1] (the schema file)", stmt, got)
			}
		}
		// An empty BETWEEN (DuckDB plans no scan at all for it).
		stmt := "SELECT * FROM panther_logs.panther_audit WHERE p_event_time BETWEEN TIMESTAMPTZ '2026-03-04 00:00:00' AND TIMESTAMPTZ '2026-03-02 00:00:00'"
		if cols, rows := queryRows(t, db, stmt); len(rows) != 0 || !reflect.DeepEqual(cols, wantCols) {
			t.Errorf("%s: %d rows, columns %q; want no rows and columns %q", stmt, len(rows), cols, wantCols)
		}
		// Aggregates over no rows.
		if _, rows := queryRows(t, db, "SELECT count(*), max(actionName) FROM panther_logs.panther_audit WHERE p_occurs_after('2030-01-01')"); !reflect.DeepEqual(rows, []string{"0|"}) {
			t.Errorf("count over an empty range: %q, want [\"0|\"]", rows)
		}
	})

	t.Run("g: p_occurs_since counts back from Options.Now", func(t *testing.T) {
		now := day(4).Add(12 * time.Hour)
		db := openDB(t, nl.lake, Options{Now: func() time.Time { return now }})
		lo := now.Add(-24 * time.Hour)
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_since('1 day') ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time >= (SELECT TIMESTAMPTZ '2026-03-03 12:00:00') ORDER BY 1",
			nl.actions(func(e auditEvent) bool { return !e.Time.Before(lo) }),
			[]int{nl.overlapping(t, lo, time.Time{}) + 1})
		if got, want := explain(t, db, "SELECT 1 FROM panther_logs.panther_audit WHERE p_occurs_since('1 day')"), "TIMESTAMPTZ '2026-03-03 12:00:00Z'"; !strings.Contains(got, want) {
			t.Errorf("Explain: %s, want it to contain %s", got, want)
		}
	})

	t.Run("constant on the left, equality, upper bound only", func(t *testing.T) {
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE TIMESTAMPTZ '2026-03-05 11:00:00' < p_event_time ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE (SELECT TIMESTAMPTZ '2026-03-05 11:00:00') < p_event_time ORDER BY 1",
			nl.actions(func(e auditEvent) bool { return e.Time.After(day(5).Add(11 * time.Hour)) }),
			[]int{nl.overlapping(t, day(5).Add(11*time.Hour), time.Time{}) + 1})
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time = TIMESTAMPTZ '2026-03-03 06:50:00+00' ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time = (SELECT TIMESTAMPTZ '2026-03-03 06:50:00+00') ORDER BY 1",
			[]string{"D3_H06_M50"},
			[]int{nl.overlapping(t, day(3).Add(6*time.Hour+50*time.Minute), day(3).Add(6*time.Hour+50*time.Minute)) + 1})
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_before('2026-03-01 06:10:00') ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time < (SELECT TIMESTAMPTZ '2026-03-01 06:10:00') ORDER BY 1",
			[]string{"D1_H01_M10", "D1_H01_M40", "D1_H01_M50"},
			[]int{nl.overlapping(t, time.Time{}, day(1).Add(6*time.Hour+10*time.Minute)) + 1})
	})

	t.Run("equality and IN on another column prune by its bounds", func(t *testing.T) {
		if n := nl.holding(t, "actionName", []string{"D3_H06_M50"}); n == 0 || n == nl.files {
			t.Fatalf("%d of %d files hold D3_H06_M50 by their bounds: the case prunes nothing", n, nl.files)
		}
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE actionName = 'D3_H06_M50' ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE actionName = (SELECT 'D3_H06_M50') ORDER BY 1",
			[]string{"D3_H06_M50"},
			[]int{nl.holding(t, "actionName", []string{"D3_H06_M50"}) + 1})
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE 'D1_H01_M10' = actionName ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE (SELECT 'D1_H01_M10') = actionName ORDER BY 1",
			[]string{"D1_H01_M10"},
			[]int{nl.holding(t, "actionName", []string{"D1_H01_M10"}) + 1})
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit a WHERE a.actionName IN ('D2_H11_M40', 'D5_H17_M10', 'nope') AND p_event_time >= TIMESTAMPTZ '2026-03-02 00:00:00' ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit a WHERE a.actionName IN (SELECT unnest(['D2_H11_M40', 'D5_H17_M10', 'nope'])) AND p_event_time >= (SELECT TIMESTAMPTZ '2026-03-02 00:00:00') ORDER BY 1",
			[]string{"D2_H11_M40", "D5_H17_M10"},
			[]int{nl.holding(t, "actionName", []string{"D2_H11_M40", "D5_H17_M10", "nope"}) + 1})
		// A value no file's bounds hold: only the schema file is read, and the columns stay.
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE actionName = 'ZZZ' ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE actionName = (SELECT 'ZZZ') ORDER BY 1",
			nil, []int{1})
		// An OR is not a conjunct: nothing is pruned.
		if got := filesRead(t, db, explain(t, db, "SELECT actionName FROM panther_logs.panther_audit WHERE actionName = 'ZZZ' OR actor.id = 'user-a'")); !reflect.DeepEqual(got, []int{nl.files + 1}) {
			t.Errorf("OR: files read %v, want every file", got)
		}
	})

	t.Run("literal with a time zone offset", func(t *testing.T) {
		// 2026-03-03 11:50+05 is 06:50 UTC.
		narrowCase(t, db,
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time BETWEEN TIMESTAMPTZ '2026-03-03 11:50:00+05' AND TIMESTAMPTZ '2026-03-03T11:50:00+05:00' ORDER BY 1",
			"SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time BETWEEN (SELECT TIMESTAMPTZ '2026-03-03 11:50:00+05') AND (SELECT TIMESTAMPTZ '2026-03-03 11:50:00+05') ORDER BY 1",
			[]string{"D3_H06_M50"},
			[]int{nl.overlapping(t, day(3).Add(6*time.Hour+50*time.Minute), day(3).Add(6*time.Hour+50*time.Minute)) + 1})
	})

	t.Run("TIMESTAMP literal with an offset", func(t *testing.T) {
		const stmt = "SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time = TIMESTAMP '2026-03-03 06:50:00+05' ORDER BY 1"
		const plain = "SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time = (SELECT TIMESTAMP '2026-03-03 06:50:00+05') ORDER BY 1"
		_, want := queryRows(t, db, plain)
		if _, got := queryRows(t, db, stmt); !reflect.DeepEqual(got, want) {
			t.Errorf("rows %q, without narrowing %q", got, want)
		}
	})

	t.Run("TIMESTAMP literal in a session time zone other than UTC", func(t *testing.T) {
		db := openDB(t, nl.lake, Options{TimeZone: "America/New_York"})
		_, got := queryRows(t, db, "SELECT current_setting('TimeZone'), "+
			"(SELECT count(*) FROM panther_logs.panther_audit WHERE p_event_time < TIMESTAMP '2026-03-01 02:00:00'), "+
			"(SELECT count(*) FROM panther_logs.panther_audit WHERE p_event_time < (SELECT TIMESTAMP '2026-03-01 02:00:00'))")
		if len(got) != 1 || !strings.HasPrefix(got[0], "America/New_York|") {
			t.Skipf("the session time zone did not change: %q", got)
		}
		if parts := strings.Split(got[0], "|"); parts[1] != parts[2] || parts[2] != "5" {
			t.Errorf("count with a narrowable bound %s, without narrowing %s; want 5 for both", parts[1], parts[2])
		}
	})

	t.Run("subquery, CTE and UNION ALL", func(t *testing.T) {
		narrowCase(t, db,
			"WITH recent AS (SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMPTZ '2026-03-05 00:00:00') "+
				"SELECT actionName FROM recent UNION ALL SELECT actionName FROM (SELECT * FROM panther_logs.panther_audit WHERE p_event_time < TIMESTAMPTZ '2026-03-01 02:00:00') ORDER BY 1",
			"WITH recent AS (SELECT actionName FROM panther_logs.panther_audit WHERE p_event_time >= (SELECT TIMESTAMPTZ '2026-03-05 00:00:00')) "+
				"SELECT actionName FROM recent UNION ALL SELECT actionName FROM (SELECT * FROM panther_logs.panther_audit WHERE p_event_time < (SELECT TIMESTAMPTZ '2026-03-01 02:00:00')) ORDER BY 1",
			nl.actions(func(e auditEvent) bool { return !e.Time.Before(day(5)) || e.Time.Before(day(1).Add(2*time.Hour)) }),
			[]int{nl.overlapping(t, day(5), time.Time{}) + 1, nl.overlapping(t, time.Time{}, day(1).Add(2*time.Hour)) + 1})
	})

	t.Run("text before the reference with multi-byte characters", func(t *testing.T) {
		narrowCase(t, db,
			"SELECT actionName, 'héllo → wörld' AS greeting /* ünïcode */ FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMPTZ '2026-03-05 17:00:00' ORDER BY 1",
			"SELECT actionName, 'héllo → wörld' AS greeting /* ünïcode */ FROM panther_logs.panther_audit WHERE p_event_time >= (SELECT TIMESTAMPTZ '2026-03-05 17:00:00') ORDER BY 1",
			[]string{"D5_H17_M10", "D5_H17_M40"},
			[]int{nl.overlapping(t, day(5).Add(17*time.Hour), time.Time{}) + 1})
	})

	t.Run("new files are read without reopening", func(t *testing.T) {
		dir := t.TempDir()
		ingestAudit(t, dir, []auditEvent{{Action: "OLD", Time: day(1).Add(time.Hour)}})
		l, err := lake.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		db := openDB(t, l, Options{})
		ingestAudit(t, dir, []auditEvent{{Action: "NEW", Time: day(2).Add(time.Hour)}})
		_, got := queryRows(t, db, "SELECT actionName FROM panther_logs.panther_audit ORDER BY 1")
		if want := []string{"NEW", "OLD"}; !reflect.DeepEqual(got, want) {
			t.Errorf("rows %q, want %q", got, want)
		}
		_, got = queryRows(t, db, "SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_after('2026-03-02')")
		if want := []string{"NEW"}; !reflect.DeepEqual(got, want) {
			t.Errorf("narrowed rows %q, want %q", got, want)
		}
	})
}

// dataGlob matches every data file in a table's day directories (all of the table's files
// when it was never compacted).
func dataGlob(l *lake.Lake, db, table string) string {
	return filepath.Join(l.TableDir(db, table), "year=*", "month=*", "day=*", "*.parquet")
}
