package lake_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// FuzzParquetRoundTrip writes rows whose values the fuzzer chooses (strings, integers, floats
// with NaN and infinities, booleans, lists, structs, nulls, event times over several hours)
// through the lake's writer, then reads every file back with parquet-go and the table with
// DuckDB: both give back exactly what was written.
func FuzzParquetRoundTrip(f *testing.F) {
	f.Add([]byte("\x03abc\x07\x00\x00\x00\x00\x00\x00\x00\x01\x02hello\x05\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add(bytes.Repeat([]byte{0xff, 0x7f, 0x00, 0x41, 0x0a, 0x22, 0x5c}, 40))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		rows := genRows(data)
		rec := fuzzRecord(t, rows)
		defer rec.Release()
		// Not t.TempDir(): a seed's directory name holds a #, which Iceberg locations cannot.
		dir, err := os.MkdirTemp("", "osprey-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		l, err := lake.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		w, err := l.NewWriter(lake.DefaultWriterOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, lake.DBLogs, "fuzz", rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := map[int64]fuzzRow{}
		for _, r := range rows {
			want[r.k] = r
		}

		// parquet-go, file by file.
		files, _ := l.Files(t.Context(), lake.DBLogs, "fuzz")
		read := 0
		for _, path := range files {
			for _, m := range readParquetGo(t, path) {
				read++
				k, _ := m["k"].(int64)
				w, ok := want[k]
				if !ok {
					t.Fatalf("%s: a row with k %v that was not written", path, m["k"])
				}
				if got, want := norm(m, true), w.value(); !reflect.DeepEqual(got, want) {
					t.Errorf("parquet-go row %d:\n got %#v\nwant %#v", k, got, want)
				}
			}
		}
		if read != len(rows) {
			t.Fatalf("parquet-go read %d rows, %d written", read, len(rows))
		}

		// DuckDB, through the table's view.
		db, err := query.Open(ctx, l, query.Options{MemoryLimit: "256MB", Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		q := `SELECT k, s, i, f, b, to_json(l)::VARCHAR, to_json(st)::VARCHAR, epoch_us(p_event_time) FROM panther_logs.fuzz ORDER BY k`
		sqlRows, err := db.SQL().QueryContext(ctx, q)
		if err != nil {
			if len(rows) == 0 && strings.Contains(err.Error(), "fuzz") {
				return // no rows, no table
			}
			t.Fatal(err)
		}
		defer sqlRows.Close()
		n := 0
		for ; sqlRows.Next(); n++ {
			var k, us int64
			var s sql.NullString
			var i sql.NullInt64
			var fl sql.NullFloat64
			var b sql.NullBool
			var lj, sj sql.NullString
			if err := sqlRows.Scan(&k, &s, &i, &fl, &b, &lj, &sj, &us); err != nil {
				t.Fatal(err)
			}
			m := map[string]any{"k": k, "p_event_time": us}
			m["s"] = nullable(s.Valid, s.String)
			m["i"] = nullable(i.Valid, i.Int64)
			m["f"] = nullable(fl.Valid, fl.Float64)
			m["b"] = nullable(b.Valid, b.Bool)
			m["l"], m["st"] = decodeJSON(t, lj), decodeJSON(t, sj)
			if got, want := norm(m, false), want[k].value(); !reflect.DeepEqual(got, want) {
				t.Errorf("DuckDB row %d:\n got %#v\nwant %#v", k, got, want)
			}
		}
		if err := sqlRows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != len(rows) {
			t.Fatalf("DuckDB read %d rows, %d written", n, len(rows))
		}
	})
}

// fuzzRow is a row the fuzzer chose; nil pointers are nulls.
type fuzzRow struct {
	k     int64
	s     *string
	i     *int64
	f     *float64
	b     *bool
	l     []string // nil: null
	lNull bool
	st    *struct {
		a *string
		x *int64
	}
	event time.Time
}

// value is the row as the readers' rows are normalized to (see norm).
func (r fuzzRow) value() map[string]any {
	m := map[string]any{"k": r.k, "p_event_time": r.event.UnixMicro()}
	m["s"] = ptrValue(r.s)
	m["i"] = ptrValue(r.i)
	m["f"] = nil
	if r.f != nil {
		m["f"] = floatKey(*r.f)
	}
	m["b"] = ptrValue(r.b)
	if r.lNull {
		m["l"] = nil
	} else {
		l := []any{}
		for _, s := range r.l {
			l = append(l, s)
		}
		m["l"] = l
	}
	if r.st == nil {
		m["st"] = nil
	} else {
		m["st"] = map[string]any{"a": ptrValue(r.st.a), "x": ptrValue(r.st.x)}
	}
	return m
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullable[T any](ok bool, v T) any {
	if !ok {
		return nil
	}
	return v
}

// floatKey is a float as compared: its bits, any NaN the same.
func floatKey(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return fmt.Sprintf("%x", math.Float64bits(f))
}

// genRows makes rows from the fuzzer's bytes.
func genRows(data []byte) []fuzzRow {
	next := func(n int) []byte {
		b := make([]byte, n)
		k := copy(b, data)
		data = data[k:]
		return b
	}
	str := func() *string {
		h := next(1)[0]
		if h%7 == 0 {
			return nil
		}
		s := strings.ToValidUTF8(string(next(int(h%24))), "?")
		return &s
	}
	i64 := func() *int64 {
		h := next(1)[0]
		if h%5 == 0 {
			return nil
		}
		v := int64(binary.LittleEndian.Uint64(next(8)))
		return &v
	}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var rows []fuzzRow
	for k := int64(0); len(data) > 0 && k < 200; k++ {
		r := fuzzRow{k: k, s: str(), i: i64()}
		if h := next(1)[0]; h%6 != 0 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(next(8)))
			r.f = &v
		}
		if h := next(1)[0]; h%3 != 0 {
			v := h%2 == 0
			r.b = &v
		}
		h := next(1)[0]
		r.lNull = h%5 == 0
		for range int(h % 4) {
			if s := str(); s != nil && !r.lNull {
				r.l = append(r.l, *s)
			}
		}
		if h := next(1)[0]; h%4 != 0 {
			r.st = &struct {
				a *string
				x *int64
			}{str(), i64()}
		}
		// Event times over up to four hours: several files.
		r.event = base.Add(time.Duration(binary.LittleEndian.Uint16(next(2))) * 220 * time.Millisecond)
		rows = append(rows, r)
	}
	return rows
}

func fuzzSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		), Nullable: true},
		{Name: lake.FieldEventTime, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
}

func fuzzRecord(t *testing.T, rows []fuzzRow) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, fuzzSchema())
	defer b.Release()
	appendStr := func(sb *array.StringBuilder, s *string) {
		if s == nil {
			sb.AppendNull()
		} else {
			sb.Append(*s)
		}
	}
	appendInt := func(ib *array.Int64Builder, v *int64) {
		if v == nil {
			ib.AppendNull()
		} else {
			ib.Append(*v)
		}
	}
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.k)
		appendStr(b.Field(1).(*array.StringBuilder), r.s)
		appendInt(b.Field(2).(*array.Int64Builder), r.i)
		if r.f == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(*r.f)
		}
		if r.b == nil {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BooleanBuilder).Append(*r.b)
		}
		lb := b.Field(5).(*array.ListBuilder)
		if r.lNull {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for _, s := range r.l {
				lb.ValueBuilder().(*array.StringBuilder).Append(s)
			}
		}
		sb := b.Field(6).(*array.StructBuilder)
		if r.st == nil {
			sb.AppendNull()
		} else {
			sb.Append(true)
			appendStr(sb.FieldBuilder(0).(*array.StringBuilder), r.st.a)
			appendInt(sb.FieldBuilder(1).(*array.Int64Builder), r.st.x)
		}
		b.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event.UnixMicro()))
	}
	return b.NewRecordBatch()
}

func readParquetGo(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	r := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	defer r.Close()
	rows := make([]map[string]any, pf.NumRows())
	for i := range rows {
		rows[i] = map[string]any{}
	}
	if n, err := r.Read(rows); n != len(rows) {
		t.Fatalf("read %s: %d of %d rows: %v", path, n, len(rows), err)
	}
	return rows
}

func decodeJSON(t *testing.T, s sql.NullString) any {
	t.Helper()
	if !s.Valid || s.String == "null" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s.String))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("DuckDB's JSON %q: %v", s.String, err)
	}
	return v
}

// norm brings a row read back to the types of fuzzRow.value: strings, int64, floats by
// floatKey, lists as []any, structs as map[string]any; p_event_time in microseconds.
func norm(m map[string]any, parquetGo bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = normValue(k, v)
	}
	if parquetGo {
		switch v := m["p_event_time"].(type) {
		case time.Time:
			out["p_event_time"] = v.UnixMicro()
		case int64:
			out["p_event_time"] = v
		}
	}
	return out
}

func normValue(key string, v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		return string(v)
	case float64:
		return floatKey(v)
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		return v.String()
	case []any:
		out := []any{}
		for _, e := range v {
			out = append(out, normValue("", e))
		}
		return out
	case map[string]any:
		// parquet-go reads a LIST as {"list": [{"element": v}, ...]}.
		if l, ok := v["list"]; ok && len(v) == 1 {
			out := []any{}
			if items, ok := l.([]any); ok {
				for _, e := range items {
					if em, ok := e.(map[string]any); ok {
						out = append(out, normValue("", em["element"]))
					} else {
						out = append(out, normValue("", e))
					}
				}
			}
			return out
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = normValue(k, e)
		}
		return out
	}
	return v
}
