package query

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
)

// auditEvent is one Panther.Audit record for a test lake.
type auditEvent struct {
	Action string
	Result string // SUCCEEDED, FAILED or PARTIALLY_FAILED; default SUCCEEDED
	Actor  string
	Time   time.Time
	Extra  string // extra JSON members, such as `"actionDetails":{"ok":false}`
}

func (e auditEvent) line() string {
	result := e.Result
	if result == "" {
		result = "SUCCEEDED"
	}
	actor := e.Actor
	if actor == "" {
		actor = "user-1"
	}
	extra := ""
	if e.Extra != "" {
		extra = "," + e.Extra
	}
	return fmt.Sprintf(`{"actionName":%q,"actionResult":%q,"actor":{"id":%q,"type":"USER"},"timestamp":%q,"pantherVersion":"1.0.0"%s}`,
		e.Action, result, actor, e.Time.UTC().Format(time.RFC3339Nano), extra)
}

// ingestAudit writes events into the lake in dir as Panther.Audit rows (table panther_logs.panther_audit).
func ingestAudit(t testing.TB, dir string, events []auditEvent) *lake.Lake {
	t.Helper()
	ctx := context.Background()
	l, err := lake.Open(dir)
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
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, w, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.line())
		b.WriteByte('\n')
	}
	if err := in.Ingest(ctx, "test.jsonl", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	sum, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if sum.Failures != 0 || len(sum.Errors) != 0 || sum.Total() != int64(len(events)) {
		t.Fatalf("ingest: %d events, %d failures, errors %v; want %d events", sum.Total(), sum.Failures, sum.Errors, len(events))
	}
	return l
}

func openDB(t testing.TB, l *lake.Lake, opts Options) *DB {
	t.Helper()
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = "1GB"
	}
	if opts.Threads == 0 {
		opts.Threads = 2
	}
	db, err := Open(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// customRow is a row of the custom test table panther_logs.custom_values; nil pointers are nulls.
type customRow struct {
	n    *int64
	b    *bool
	f    *float64
	s    *string
	when time.Time
}

func ptr[T any](v T) *T { return &v }

// writeCustomTable writes rows to panther_logs.<table> with a lake.Writer. With abort, the rows are
// dropped and only the table's schema file is left.
// customRecord builds the rows of a custom test table.
func customRecord(t *testing.T, rows []customRow) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: lake.FieldEventTime, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, r := range rows {
		if r.n == nil {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(*r.n)
		}
		if r.b == nil {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.BooleanBuilder).Append(*r.b)
		}
		if r.f == nil {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(*r.f)
		}
		if r.s == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.StringBuilder).Append(*r.s)
		}
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(r.when.UnixMicro()))
	}
	return b.NewRecordBatch()
}

func writeCustomTable(t *testing.T, l *lake.Lake, table string, rows []customRow, abort bool) {
	t.Helper()
	rec := customRecord(t, rows)
	defer rec.Release()
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), lake.DBLogs, table, rec); err != nil {
		t.Fatal(err)
	}
	if abort {
		err = w.Abort()
	} else {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	l := ingestAudit(t, t.TempDir(), []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	db := openDB(t, l, Options{})
	for _, c := range []struct {
		name, stmt string
		want       []string // in the message
	}{
		{"unknown table", "SELECT * FROM panther_logs.no_such_table", []string{"no_such_table"}},
		{"unknown table, multi-line statement", "SELECT *\nFROM panther_logs.no_such_table\nWHERE 1 = 1", []string{"no_such_table"}},
		{"syntax error", "SELEC 1", []string{"syntax error", "SELEC"}},
		{"syntax error at the end", "SELECT * FROM panther_logs.panther_audit WHERE", []string{"syntax error"}},
		{"unknown column", "SELECT no_such_column FROM panther_logs.panther_audit", []string{"no_such_column"}},
		{"unknown column in a narrowed statement", "SELECT no_such_column FROM panther_logs.panther_audit WHERE p_event_time >= TIMESTAMPTZ '2026-03-01 00:00:00'", []string{"no_such_column"}},
		{"unknown function", "SELECT no_such_function(1)", []string{"no_such_function"}},
		{"conversion error", "SELECT CAST('abc' AS INTEGER)", []string{"abc"}},
		{"macro error", "SELECT *\nFROM panther_logs.panther_audit\nWHERE p_occurs_since('1 fortnight')", []string{"p_occurs_since", "line 3, column 7", "fortnight"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := db.Query(context.Background(), c.stmt)
			if err == nil {
				rows.Close()
				t.Fatalf("Query(%q) succeeded, want an error", c.stmt)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			// The rewritten statement is an implementation detail: it is not quoted back.
			if strings.Contains(msg, "read_parquet") || strings.Contains(msg, "LINE 1") {
				t.Errorf("error quotes the statement: %q", msg)
			}
			var qe *Error
			var me *MacroError
			if !errors.As(err, &qe) && !errors.As(err, &me) {
				t.Errorf("error %T is neither *Error nor *MacroError", err)
			}
		})
	}
}

func TestEmptyLake(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := lake.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, l, Options{})
	for _, stmt := range []string{
		"SELECT * FROM panther_logs.panther_audit",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_since('1 day')",
	} {
		rows, err := db.Query(ctx, stmt)
		if err == nil {
			rows.Close()
			t.Fatalf("Query(%q) on an empty lake succeeded", stmt)
		}
		t.Logf("error: %s", err)
		if msg := err.Error(); !strings.Contains(msg, "ingest") || strings.Contains(msg, "\n") {
			t.Errorf("Query(%q): error %q, want one line that mentions ingest", stmt, msg)
		}
	}
	// Statements that need no table work.
	if _, rows := queryRows(t, db, "SELECT 40 + 2"); !reflect.DeepEqual(rows, []string{"42"}) {
		t.Errorf("SELECT 40 + 2 = %q", rows)
	}

	// Once logs are ingested the same session sees the table.
	ingestAudit(t, dir, []auditEvent{{Action: "FIRST", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	if _, rows := queryRows(t, db, "SELECT actionName FROM panther_logs.panther_audit"); !reflect.DeepEqual(rows, []string{"FIRST"}) {
		t.Errorf("after ingest: %q, want [FIRST]", rows)
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := ingestAudit(t, dir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	// A table with a schema file and no data file yet.
	writeCustomTable(t, l, "later_data", []customRow{{n: ptr(int64(1)), when: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}}, true)
	db := openDB(t, l, Options{})

	if cols, rows := queryRows(t, db, "SELECT * EXCLUDE (year, month, day, hour) FROM panther_logs.later_data"); len(rows) != 0 || !reflect.DeepEqual(cols, []string{"n", "b", "f", "s", "p_event_time"}) {
		t.Errorf("table without data: columns %q, rows %q; want its columns and no rows", cols, rows)
	}

	// A new table after Open.
	writeCustomTable(t, l, "new_table", []customRow{
		{n: ptr(int64(5)), s: ptr("five"), when: time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)},
		{n: ptr(int64(6)), s: ptr("six"), when: time.Date(2026, 3, 4, 3, 0, 0, 0, time.UTC)},
	}, false)
	// Data for the table that had none.
	writeCustomTable(t, l, "later_data", []customRow{{n: ptr(int64(9)), when: time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)}}, false)
	// More data for a table that had some, in a new partition.
	ingestAudit(t, dir, []auditEvent{{Action: "B", Time: time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC)}})

	for _, c := range []struct {
		stmt string
		want []string
	}{
		{"SELECT n, s FROM panther_logs.new_table ORDER BY n", []string{"5|five", "6|six"}},
		{"SELECT s FROM panther_logs.new_table WHERE p_event_time > TIMESTAMPTZ '2026-03-03 00:00:00'", []string{"six"}},
		{"SELECT n FROM panther_logs.later_data", []string{"9"}},
		{"SELECT actionName FROM panther_logs.panther_audit ORDER BY 1", []string{"A", "B"}},
	} {
		if _, got := queryRows(t, db, c.stmt); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.stmt, got, c.want)
		}
	}

	// Refresh itself is idempotent.
	for range 2 {
		if err := db.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var tables []string
	rows, err := db.SQL().QueryContext(ctx, "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	rows.Close()
	if want := []string{"panther_logs.later_data", "panther_logs.new_table", "panther_logs.panther_audit", "panther_views.all_logs", "panther_views.all_rule_matches"}; !reflect.DeepEqual(tables, want) {
		t.Errorf("views %q, want %q", tables, want)
	}
}

func TestZeroAndFalse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := ingestAudit(t, dir, []auditEvent{{
		Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC),
		Extra: `"actionDetails":{"ok":false,"count":0,"name":""}`,
	}})
	t0 := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
	writeCustomTable(t, l, "custom_values", []customRow{
		{n: ptr(int64(0)), b: ptr(false), f: ptr(0.0), s: ptr(""), when: t0},
		{n: ptr(int64(7)), b: ptr(true), f: ptr(1.5), s: ptr("x"), when: t0.Add(time.Minute)},
		{when: t0.Add(2 * time.Minute)},
	}, false)
	db := openDB(t, l, Options{})

	rows, err := db.Query(ctx, "SELECT n, b, f, s FROM panther_logs.custom_values ORDER BY p_event_time")
	if err != nil {
		t.Fatal(err)
	}
	var got [][]any
	for rows.Next() {
		var n, b, f, s any
		if err := rows.Scan(&n, &b, &f, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, []any{n, b, f, s})
	}
	rows.Close()
	want := [][]any{{int64(0), false, 0.0, ""}, {int64(7), true, 1.5, "x"}, {nil, nil, nil, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values %#v, want %#v", got, want)
	}

	for _, c := range []struct {
		stmt string
		want []string
	}{
		{"SELECT count(*) FROM panther_logs.custom_values WHERE n = 0 AND NOT b AND f = 0 AND s = ''", []string{"1"}},
		{"SELECT count(*) FROM panther_logs.custom_values WHERE n IS NULL AND b IS NULL", []string{"1"}},
		{"SELECT n, b, f, s FROM panther_logs.custom_values WHERE p_event_time = TIMESTAMPTZ '2026-03-01 01:00:00'", []string{"0|false|0|"}},
		{"SELECT json_extract(actionDetails, '$.ok')::BOOLEAN, json_extract(actionDetails, '$.count')::INTEGER, json_extract_string(actionDetails, '$.name') = '' FROM panther_logs.panther_audit", []string{"false|0|true"}},
		{"SELECT actionDetails->>'$.ok', actionDetails->>'$.count' FROM panther_logs.panther_audit", []string{"false|0"}},
	} {
		if _, got := queryRows(t, db, c.stmt); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.stmt, got, c.want)
		}
	}

	// Written as JSON, zero and false stay values, and nulls are null.
	rs, err := db.Query(ctx, "SELECT n, b, f, s FROM panther_logs.custom_values ORDER BY p_event_time")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = Write(&buf, rs, WriteOptions{Format: "jsonl"})
	rs.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantJSONL := `{"n":0,"b":false,"f":0,"s":""}` + "\n" + `{"n":7,"b":true,"f":1.5,"s":"x"}` + "\n" + `{"n":null,"b":null,"f":null,"s":null}` + "\n"
	if buf.String() != wantJSONL {
		t.Errorf("jsonl\n got %s\nwant %s", buf.String(), wantJSONL)
	}

	// A JSON column keeps false and 0 inside it.
	rs, err = db.Query(ctx, "SELECT actionDetails FROM panther_logs.panther_audit")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_, err = Write(&buf, rs, WriteOptions{Format: "json"})
	rs.Close()
	if err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]map[string]any
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatalf("json output %q: %v", buf.String(), err)
	}
	if len(decoded) != 1 || !reflect.DeepEqual(decoded[0]["actionDetails"], map[string]any{"ok": false, "count": 0.0, "name": ""}) {
		t.Errorf("actionDetails written as %s", buf.String())
	}
}

func TestTimestampsUTC(t *testing.T) {
	ctx := context.Background()
	// Results must not depend on the process's local time zone.
	local := time.Local
	time.Local = time.FixedZone("UTC+5", 5*3600)
	t.Cleanup(func() { time.Local = local })

	when := time.Date(2026, 3, 1, 23, 30, 0, 123456000, time.UTC)
	l := ingestAudit(t, t.TempDir(), []auditEvent{{Action: "A", Time: when}})
	db := openDB(t, l, Options{})

	rows, err := db.Query(ctx, "SELECT p_event_time, CAST(p_event_time AS VARCHAR), hour(p_event_time), day, hour, TIMESTAMPTZ '2026-03-03 05:00:00+05' FROM panther_logs.panther_audit")
	if err != nil {
		t.Fatal(err)
	}
	var got, literal time.Time
	var text string
	var h, partDay, partHour int
	if !rows.Next() {
		t.Fatal("no row")
	}
	if err := rows.Scan(&got, &text, &h, &partDay, &partHour, &literal); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if !got.Equal(when) {
		t.Errorf("p_event_time %v, want %v", got, when)
	}
	if text != "2026-03-01 23:30:00.123456+00" {
		t.Errorf("p_event_time as text %q, want it in UTC (+00)", text)
	}
	if h != 23 || partDay != 1 || partHour != 23 {
		t.Errorf("hour(p_event_time) = %d, day = %d, hour = %d; want 23, 1, 23 (UTC)", h, partDay, partHour)
	}
	if want := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC); !literal.Equal(want) {
		t.Errorf("TIMESTAMPTZ literal with offset %v, want %v", literal, want)
	}
	if s := Plain(got); s != "2026-03-01T23:30:00.123456Z" {
		t.Errorf("Plain(p_event_time) = %v, want 2026-03-01T23:30:00.123456Z", s)
	}

	for _, format := range []string{"csv", "json", "table"} {
		rs, err := db.Query(ctx, "SELECT p_event_time, TIMESTAMP '2026-03-01 10:00:00' AS naive FROM panther_logs.panther_audit")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = Write(&buf, rs, WriteOptions{Format: format})
		rs.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"2026-03-01T23:30:00.123456Z", "2026-03-01T10:00:00Z"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("%s output %q does not contain %s", format, buf.String(), want)
			}
		}
	}
}

// formatQuery is the result the format tests write.
const formatQuery = `SELECT * FROM (VALUES
	(1, 'a', true, TIMESTAMPTZ '2026-03-01 01:02:03+00', 1.5),
	(2, NULL, false, NULL, 0.0),
	(3, 'x,"y"', NULL, TIMESTAMPTZ '2026-03-01 06:00:00+05', -2.0)
) t(id, name, ok, ts, ratio) ORDER BY id`

func writeQuery(t *testing.T, db *DB, stmt string, opts WriteOptions) (string, int64) {
	t.Helper()
	rows, err := db.Query(context.Background(), stmt)
	if err != nil {
		t.Fatalf("Query(%q): %v", stmt, err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	n, err := Write(&buf, rows, opts)
	if err != nil {
		t.Fatalf("Write %s: %v", opts.Format, err)
	}
	return buf.String(), n
}

func emptyLakeDB(t *testing.T) *DB {
	t.Helper()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return openDB(t, l, Options{})
}

func TestWriteTable(t *testing.T) {
	db := emptyLakeDB(t)
	got, n := writeQuery(t, db, formatQuery, WriteOptions{Format: "table"})
	want := `┌────┬───────┬───────┬──────────────────────┬───────┐
│ id │ name  │ ok    │ ts                   │ ratio │
├────┼───────┼───────┼──────────────────────┼───────┤
│ 1  │ a     │ true  │ 2026-03-01T01:02:03Z │ 1.5   │
│ 2  │ NULL  │ false │ NULL                 │ 0     │
│ 3  │ x,"y" │ NULL  │ 2026-03-01T01:00:00Z │ -2    │
└────┴───────┴───────┴──────────────────────┴───────┘
3 rows
`
	if got != want || n != 3 {
		t.Errorf("table (%d rows):\n%s\nwant (3 rows):\n%s", n, got, want)
	}
	// The default format is table.
	if got, _ := writeQuery(t, db, formatQuery, WriteOptions{}); got != want {
		t.Errorf("default format:\n%s\nwant:\n%s", got, want)
	}

	got, n = writeQuery(t, db, "SELECT 'ünï' AS name, 'a\nb' AS lines", WriteOptions{Format: "table"})
	want = `┌──────┬───────┐
│ name │ lines │
├──────┼───────┤
│ ünï  │ a\nb  │
└──────┴───────┘
1 row
`
	if got != want || n != 1 {
		t.Errorf("table (%d rows):\n%s\nwant (1 row):\n%s", n, got, want)
	}

	got, n = writeQuery(t, db, "SELECT 1 AS x WHERE false", WriteOptions{Format: "table"})
	want = "┌───┐\n│ x │\n├───┤\n└───┘\n0 rows\n"
	if got != want || n != 0 {
		t.Errorf("empty table (%d rows):\n%s\nwant (0 rows):\n%s", n, got, want)
	}

	got, n = writeQuery(t, db, "SELECT i, 'abcdefgh' AS long FROM range(5) r(i)", WriteOptions{Format: "table", MaxRows: 2, MaxWidth: 5})
	want = `┌───┬───────┐
│ i │ long  │
├───┼───────┤
│ 0 │ abcd… │
│ 1 │ abcd… │
└───┴───────┘
5 rows (2 shown)
`
	if got != want || n != 5 {
		t.Errorf("cut table (%d rows):\n%s\nwant (5 rows):\n%s", n, got, want)
	}
}

func TestWriteCSV(t *testing.T) {
	db := emptyLakeDB(t)
	got, n := writeQuery(t, db, formatQuery, WriteOptions{Format: "csv"})
	want := "id,name,ok,ts,ratio\n" +
		"1,a,true,2026-03-01T01:02:03Z,1.5\n" +
		"2,,false,,0\n" +
		`3,"x,""y""",,2026-03-01T01:00:00Z,-2` + "\n"
	if got != want || n != 3 {
		t.Errorf("csv (%d rows):\n%s\nwant (3 rows):\n%s", n, got, want)
	}
	recs, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[3][1] != `x,"y"` {
		t.Errorf("csv reads back as %q", recs)
	}
	// Header only for no rows; nested values as JSON.
	if got, _ := writeQuery(t, db, "SELECT 1 AS a, 2 AS b WHERE false", WriteOptions{Format: "csv"}); got != "a,b\n" {
		t.Errorf("empty csv %q, want %q", got, "a,b\n")
	}
	if got, _ := writeQuery(t, db, "SELECT {'k': 1, 'v': [1, 2]} AS s", WriteOptions{Format: "csv"}); got != "s\n\"{\"\"k\"\":1,\"\"v\"\":[1,2]}\"\n" {
		t.Errorf("nested csv %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	db := emptyLakeDB(t)
	got, n := writeQuery(t, db, formatQuery, WriteOptions{Format: "json"})
	if n != 3 {
		t.Errorf("json: %d rows, want 3", n)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(got), &objs); err != nil {
		t.Fatalf("json output is not valid JSON: %v\n%s", err, got)
	}
	want := []map[string]any{
		{"id": 1.0, "name": "a", "ok": true, "ts": "2026-03-01T01:02:03Z", "ratio": 1.5},
		{"id": 2.0, "name": nil, "ok": false, "ts": nil, "ratio": 0.0},
		{"id": 3.0, "name": `x,"y"`, "ok": nil, "ts": "2026-03-01T01:00:00Z", "ratio": -2.0},
	}
	if !reflect.DeepEqual(objs, want) {
		t.Errorf("json\n got %v\nwant %v", objs, want)
	}
	if keys := objectKeys(t, got); !reflect.DeepEqual(keys, [][]string{
		{"id", "name", "ok", "ts", "ratio"}, {"id", "name", "ok", "ts", "ratio"}, {"id", "name", "ok", "ts", "ratio"},
	}) {
		t.Errorf("json keys %q, want the columns in order", keys)
	}

	// Columns in result order, even when not sorted.
	got, _ = writeQuery(t, db, "SELECT 1 AS zeta, 2 AS alpha, 3 AS mid", WriteOptions{Format: "json"})
	if want := "[\n{\"zeta\":1,\"alpha\":2,\"mid\":3}\n]\n"; got != want {
		t.Errorf("json %q, want %q", got, want)
	}
	if keys := objectKeys(t, got); !reflect.DeepEqual(keys, [][]string{{"zeta", "alpha", "mid"}}) {
		t.Errorf("json keys %q", keys)
	}

	// No rows: an empty array.
	got, n = writeQuery(t, db, "SELECT 1 AS a WHERE false", WriteOptions{Format: "json"})
	var empty []any
	if err := json.Unmarshal([]byte(got), &empty); err != nil || len(empty) != 0 || n != 0 {
		t.Errorf("empty json %q (%d rows): %v", got, n, err)
	}

	// Nested values, big numbers, intervals.
	got, _ = writeQuery(t, db, "SELECT {'k': 'v', 'n': [1, 2]} AS s, 170141183460469231731687303715884105727::HUGEINT AS big, INTERVAL 1 DAY AS iv, MAP {'a': 1} AS m", WriteOptions{Format: "json"})
	if want := "[\n{\"s\":{\"k\":\"v\",\"n\":[1,2]},\"big\":\"170141183460469231731687303715884105727\",\"iv\":\"0 months 1 days 0 us\",\"m\":{\"a\":1}}\n]\n"; got != want {
		t.Errorf("json %q\nwant %q", got, want)
	}
}

// objectKeys returns the keys of each object of a JSON array, in order.
func objectKeys(t *testing.T, s string) [][]string {
	t.Helper()
	var objs []json.RawMessage
	if err := json.Unmarshal([]byte(s), &objs); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	var out [][]string
	for _, obj := range objs {
		dec := json.NewDecoder(bytes.NewReader(obj))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not an object: %s", obj)
		}
		keys := []string{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, tok.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, keys)
	}
	return out
}

func TestWriteJSONL(t *testing.T) {
	db := emptyLakeDB(t)
	got, n := writeQuery(t, db, formatQuery, WriteOptions{Format: "jsonl"})
	want := `{"id":1,"name":"a","ok":true,"ts":"2026-03-01T01:02:03Z","ratio":1.5}
{"id":2,"name":null,"ok":false,"ts":null,"ratio":0}
{"id":3,"name":"x,\"y\"","ok":null,"ts":"2026-03-01T01:00:00Z","ratio":-2}
`
	if got != want || n != 3 {
		t.Errorf("jsonl (%d rows):\n%s\nwant (3 rows):\n%s", n, got, want)
	}
	for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not valid JSON: %s", i+1, line)
		}
	}
	if got, n := writeQuery(t, db, "SELECT 1 AS a WHERE false", WriteOptions{Format: "jsonl"}); got != "" || n != 0 {
		t.Errorf("empty jsonl %q (%d rows), want nothing", got, n)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	db := emptyLakeDB(t)
	rows, err := db.Query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	if _, err := Write(&buf, rows, WriteOptions{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("Write xml: error %v, want one naming the format", err)
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	l := ingestAudit(t, t.TempDir(), []auditEvent{
		{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)},
		{Action: "B", Time: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)},
	})
	db := openDB(t, l, Options{Now: func() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }})

	// Arguments are passed on.
	if _, rows := queryRowsArgs(t, db, "SELECT actionName FROM panther_logs.panther_audit WHERE actionName = ?", "B"); !reflect.DeepEqual(rows, []string{"B"}) {
		t.Errorf("with an argument: %q, want [B]", rows)
	}
	// Rows.SQL is the statement as it ran.
	rows, err := db.Query(ctx, "SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_since('1 day')")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rows.SQL, "TIMESTAMPTZ '2026-03-01 12:00:00Z'") || strings.Contains(rows.SQL, "p_occurs_since") {
		t.Errorf("Rows.SQL = %s, want the macro expanded", rows.SQL)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !reflect.DeepEqual(got, []string{"B"}) {
		t.Errorf("p_occurs_since('1 day'): %q, want [B]", got)
	}
	// The connection went back to the pool: many statements in a row do not run out.
	for i := range 20 {
		if _, rows := queryRows(t, db, fmt.Sprintf("SELECT %d", i)); !reflect.DeepEqual(rows, []string{fmt.Sprint(i)}) {
			t.Fatalf("SELECT %d = %q", i, rows)
		}
	}
	// A cancelled context is not turned into a DuckDB message.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if rows, err := db.Query(cctx, "SELECT 1"); err == nil {
		rows.Close()
		t.Errorf("Query with a cancelled context succeeded")
	}
}

func queryRowsArgs(t *testing.T, db *DB, stmt string, args ...any) ([]string, []string) {
	t.Helper()
	rows, err := db.Query(context.Background(), stmt, args...)
	if err != nil {
		t.Fatalf("Query(%q): %v", stmt, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return cols, out
}

// A lake path with a quote works; one with glob characters (DuckDB has no escape for them) is
// refused with one clear line.
func TestLakePathWithSpecialCharacters(t *testing.T) {
	t.Run("lake [1]", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "lake [1]")
		l := ingestAudit(t, dir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
		_, err := Open(context.Background(), l, Options{MemoryLimit: "1GB", Threads: 2})
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "glob pattern") {
			t.Errorf("Open: %v; want one line saying the path holds glob characters", err)
		}
	})
	for _, name := range []string{"it's a lake"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			l := ingestAudit(t, dir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
			db, err := Open(context.Background(), l, Options{MemoryLimit: "1GB", Threads: 2})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			for _, stmt := range []string{
				"SELECT actionName FROM panther_logs.panther_audit",
				"SELECT actionName FROM panther_logs.panther_audit WHERE p_occurs_between('2026-03-01', '2026-03-02')",
			} {
				if _, rows := queryRows(t, db, stmt); !reflect.DeepEqual(rows, []string{"A"}) {
					t.Errorf("%s: %q, want [A]", stmt, rows)
				}
			}
		})
	}
}

// failWriter fails every write, like a full disk or a closed pipe.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A failing output (a full disk, a closed pipe) is an error in every format.
func TestWriteReportsOutputErrors(t *testing.T) {
	db := emptyLakeDB(t)
	for _, format := range Formats {
		rows, err := db.Query(context.Background(), "SELECT * FROM range(10) r(i)")
		if err != nil {
			t.Fatal(err)
		}
		n, err := Write(failWriter{}, rows, WriteOptions{Format: format})
		rows.Close()
		if err == nil {
			t.Errorf("Write %s to a failing writer: %d rows, no error; want the write error", format, n)
		}
	}
}
