package lake_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// TestDuckDBReadsChunks writes random nested rows and checks that DuckDB reads back exactly
// what was written: every column's values, concatenated in row order, hash the same.
func TestDuckDBReadsChunks(t *testing.T) {
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(lake.DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	rec, rows := lake.RandomRecord(t, rand.New(rand.NewPCG(5, 6)), 20000, start, 250*time.Millisecond)
	defer rec.Release()
	// Written in four flushes (several files per partition), then compacted: DuckDB reads
	// the merged files.
	for i := int64(0); i < 4; i++ {
		part := rec.NewSlice(i*5000, (i+1)*5000)
		if err := w.Write(ctx, lake.DBLogs, "nested", part); err != nil {
			t.Fatal(err)
		}
		part.Release()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := w.Compact(ctx, lake.DBLogs, "nested", start.Add(24*time.Hour), 2)
	if err != nil || st.FilesOut != 1 || st.FilesIn != 4 { // the day is over: its 4 files into one
		t.Fatalf("compaction %+v, %v", st, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: "1GB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The rows in event time order, as the JSON DuckDB's to_json gives.
	var decoded []map[string]any
	for _, r := range rows {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(r))
		dec.UseNumber() // int64 values do not fit a float64
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, m)
	}
	for _, col := range []string{"req", "s", "big", "i64", "i32", "i16", "f", "b", "st", "ll", "ls"} {
		var parts []string
		for _, m := range decoded {
			parts = append(parts, duckJSON(col, m[col]))
		}
		sum := md5.Sum([]byte(strings.Join(parts, "\n")))
		want := hex.EncodeToString(sum[:])
		var got string
		expr := `coalesce(to_json("` + col + `")::VARCHAR, 'null')`
		if col == "f" {
			expr = `coalesce(printf('%.2f', f), 'null')`
		}
		q := `SELECT md5(string_agg(` + expr + `, chr(10) ORDER BY p_event_time)) FROM panther_logs.nested`
		if err := db.SQL().QueryRowContext(ctx, q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", col, err)
		}
		if got != want {
			t.Errorf("column %s differs in DuckDB: %s", col, firstDifference(ctx, t, db, expr, parts))
		}
	}
	// The statistics DuckDB prunes by: p_event_time bounds per row group.
	var lo, hi time.Time
	if err := db.SQL().QueryRowContext(ctx, `SELECT min(p_event_time), max(p_event_time) FROM panther_logs.nested`).Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	if !lo.Equal(start) || !hi.Equal(start.Add(19999*250*time.Millisecond)) {
		t.Errorf("p_event_time from %s to %s", lo, hi)
	}
}

// duckJSON formats a column's value as DuckDB's to_json does: struct fields in schema order
// (Go sorts map keys), floats with two decimals (through printf).
func duckJSON(col string, v any) string {
	switch {
	case v == nil:
		return "null"
	case col == "f":
		f, _ := v.(json.Number).Float64()
		return fmt.Sprintf("%.2f", f)
	case col == "st":
		m := v.(map[string]any)
		a, _ := json.Marshal(m["a"])
		l, _ := json.Marshal(m["l"])
		in, _ := json.Marshal(m["in"])
		return fmt.Sprintf(`{"a":%s,"l":%s,"in":%s}`, a, l, in)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// firstDifference describes the first row where DuckDB's text of a column differs.
func firstDifference(ctx context.Context, t *testing.T, db *query.DB, expr string, want []string) string {
	rows, err := db.SQL().QueryContext(ctx, `SELECT `+expr+` FROM panther_logs.nested ORDER BY p_event_time`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var got string
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || got != want[i] {
			return fmt.Sprintf("row %d is %s, written %s", i, got, want[min(i, len(want)-1)])
		}
	}
	return fmt.Sprintf("%d rows read, %d written", i, len(want))
}
