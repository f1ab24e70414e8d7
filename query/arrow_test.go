package query

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseType(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		ct, err := parseType(in)
		if err != nil {
			t.Fatalf("parseType(%q): %v", in, err)
		}
		if got := arrowField("c", ct).Type.String(); got != want {
			t.Errorf("parseType(%q) -> %s, want %s", in, got, want)
		}
	}
	f("VARCHAR", "utf8")
	f("BIGINT", "int64")
	f("HUGEINT", "int64")
	f("DECIMAL(18,3)", "float64")
	f("TIMESTAMPTZ", "timestamp[us, tz=UTC]")
	f("VARCHAR[]", "list<element: utf8, nullable>")
	f("INTEGER[3]", "list<element: int32, nullable>")
	f(`STRUCT("a b" VARCHAR, "x""y" BIGINT[], n STRUCT("z" DOUBLE))`,
		`struct<a b: utf8 nullable, x"y: list<element: int64, nullable> nullable, n: struct<z: float64 nullable> nullable>`)
	f("MAP(VARCHAR, BIGINT)", "utf8")
	f("STRUCT(\"m\" MAP(VARCHAR, INTEGER[]))[]", "list<element: struct<m: utf8 nullable>, nullable>")
	for _, bad := range []string{"", "STRUCT(", "VARCHAR[", "STRUCT(\"a VARCHAR)"} {
		if _, err := parseType(bad); err == nil {
			t.Errorf("parseType(%q) succeeded", bad)
		}
	}
}

// TestWriteParquet writes a result of many types as Parquet and reads it back with a DuckDB that
// is not the session's: same columns, same values.
func TestWriteParquet(t *testing.T) {
	ctx := context.Background()
	l := ingestAudit(t, t.TempDir(), []auditEvent{
		{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC), Extra: `"actionDetails":{"ok":false,"n":0}`},
		{Action: "B", Time: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)},
	})
	db := openDB(t, l, Options{})
	const stmt = `SELECT actionName, actor, actionDetails, p_event_time, p_any_ip_addresses, year,
	  0::TINYINT AS zero8, 0 AS zero, false AS f, 1.5::DECIMAL(10,2) AS dec, 2.5::FLOAT AS fl,
	  12345678901234::HUGEINT AS huge, DATE '2026-03-01' AS d, INTERVAL 1 DAY AS iv,
	  MAP {'k': 1} AS m, [[1, 2], NULL, []] AS nested, {'a': NULL, 'b': [true]} AS st, NULL::VARCHAR AS nothing
	FROM panther_logs.panther_audit ORDER BY p_event_time`
	rows, err := db.Query(ctx, stmt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := Write(&buf, rows, WriteOptions{Format: "parquet"})
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("wrote %d rows, want 2", n)
	}
	path := filepath.Join(t.TempDir(), "out.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	plain, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var got []string
	r, err := plain.QueryContext(ctx, "SELECT to_json(t)::VARCHAR FROM read_parquet(?) t", path)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	r.Close()
	want := []string{
		`{"actionName":"A","actor":{"id":"user-1","type":"USER","name":null,"attributes":null},"actionDetails":{"n":0,"ok":false},"p_event_time":"2026-03-01 01:00:00+00","p_any_ip_addresses":null,"year":2026,"zero8":0,"zero":0,"f":false,"dec":1.5,"fl":2.5,"huge":12345678901234,"d":"2026-03-01","iv":"0 months 1 days 0 us","m":"{\"k\":1}","nested":[[1,2],null,[]],"st":{"a":null,"b":[true]},"nothing":null}`,
	}
	if len(got) != 2 {
		t.Fatalf("read %d rows back, want 2: %q", len(got), got)
	}
	if got[0] != want[0] {
		t.Errorf("first row read back\n got %s\nwant %s", got[0], want[0])
	}
	// The column types other engines see.
	var types []string
	r, err = plain.QueryContext(ctx, "SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", path)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var s string
		r.Scan(&s)
		types = append(types, s)
	}
	r.Close()
	if len(types) != 18 || types[3] != "TIMESTAMP WITH TIME ZONE" || types[6] != "SMALLINT" || types[11] != "BIGINT" {
		t.Errorf("types read back: %q", types)
	}
}
