package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// nestedSchema has every shape the shredder handles: required and optional leaves of each type,
// structs in structs, lists of lists and lists of structs holding lists.
func nestedSchema() *arrow.Schema {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	return arrow.NewSchema([]arrow.Field{
		{Name: "req", Type: arrow.BinaryTypes.String},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "big", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "l", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
			arrow.Field{Name: "in", Type: arrow.StructOf(
				arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			), Nullable: true},
		), Nullable: true},
		{Name: "ll", Type: arrow.ListOf(arrow.ListOf(arrow.BinaryTypes.String)), Nullable: true},
		{Name: "ls", Type: arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "m", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "n", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		)), Nullable: true},
		{Name: FieldEventTime, Type: ts},
	}, nil)
}

// randomRecord builds n random rows of nestedSchema and returns them with each row as the JSON
// parquet-go's reader gives back. Strings come from a small pool (dictionary chunks) or are
// unique (plain chunks); "big" holds long unique strings so that pages are cut by size.
func randomRecord(t testing.TB, rng *rand.Rand, n int, start time.Time, step time.Duration) (arrow.RecordBatch, []string) {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, nestedSchema())
	defer b.Release()
	null := func() bool { return rng.IntN(5) == 0 }
	pooled := func() string { return fmt.Sprintf("v%d", rng.IntN(40)) }
	unique := func() string { return fmt.Sprintf("u%d-%d", rng.Uint64(), rng.IntN(1000)) }
	var rows []string
	for i := range n {
		row := map[string]any{}
		row["req"] = pooled()
		b.Field(0).(*array.StringBuilder).Append(row["req"].(string))
		if null() {
			row["s"] = nil
			b.Field(1).AppendNull()
		} else {
			v := unique()
			if rng.IntN(2) == 0 {
				v = pooled()
			}
			row["s"] = v
			b.Field(1).(*array.StringBuilder).Append(v)
		}
		if null() {
			row["big"] = nil
			b.Field(2).AppendNull()
		} else {
			v := strings.Repeat(unique(), 64)
			row["big"] = v
			b.Field(2).(*array.StringBuilder).Append(v)
		}
		if null() {
			for f := 3; f <= 7; f++ {
				b.Field(f).AppendNull()
			}
			row["i64"], row["i32"], row["i16"], row["f"], row["b"] = nil, nil, nil, nil, nil
		} else {
			x := rng.Int64N(2000) - 1000 // zero included
			row["i64"], row["i32"], row["i16"], row["f"], row["b"] = x, x, x, float64(x)/4, x%2 == 0
			b.Field(3).(*array.Int64Builder).Append(x)
			b.Field(4).(*array.Int32Builder).Append(int32(x))
			b.Field(5).(*array.Int16Builder).Append(int16(x))
			b.Field(6).(*array.Float64Builder).Append(float64(x) / 4)
			b.Field(7).(*array.BooleanBuilder).Append(x%2 == 0)
		}
		sb := b.Field(8).(*array.StructBuilder)
		if null() {
			row["st"] = nil
			sb.AppendNull()
		} else {
			sb.Append(true)
			st := map[string]any{}
			if null() {
				st["a"] = nil
				sb.FieldBuilder(0).AppendNull()
			} else {
				st["a"] = pooled()
				sb.FieldBuilder(0).(*array.StringBuilder).Append(st["a"].(string))
			}
			st["l"] = randomStrings(rng, sb.FieldBuilder(1).(*array.ListBuilder), pooled)
			ib := sb.FieldBuilder(2).(*array.StructBuilder)
			if null() {
				st["in"] = nil
				ib.AppendNull()
			} else {
				ib.Append(true)
				if null() {
					st["in"] = map[string]any{"x": nil}
					ib.FieldBuilder(0).AppendNull()
				} else {
					x := rng.Int64()
					st["in"] = map[string]any{"x": x}
					ib.FieldBuilder(0).(*array.Int64Builder).Append(x)
				}
			}
			row["st"] = st
		}
		llb := b.Field(9).(*array.ListBuilder)
		if null() {
			row["ll"] = nil
			llb.AppendNull()
		} else {
			llb.Append(true)
			outer := []any{}
			for range rng.IntN(4) {
				outer = append(outer, randomStrings(rng, llb.ValueBuilder().(*array.ListBuilder), unique))
			}
			row["ll"] = outer
		}
		lsb := b.Field(10).(*array.ListBuilder)
		if null() {
			row["ls"] = nil
			lsb.AppendNull()
		} else {
			lsb.Append(true)
			elems := []any{}
			for range rng.IntN(4) {
				eb := lsb.ValueBuilder().(*array.StructBuilder)
				eb.Append(true)
				e := map[string]any{}
				if null() {
					e["m"] = nil
					eb.FieldBuilder(0).AppendNull()
				} else {
					e["m"] = pooled()
					eb.FieldBuilder(0).(*array.StringBuilder).Append(e["m"].(string))
				}
				nb := eb.FieldBuilder(1).(*array.ListBuilder)
				if null() {
					e["n"] = nil
					nb.AppendNull()
				} else {
					nb.Append(true)
					ns := []any{}
					for range rng.IntN(3) {
						x := rng.Int64N(10)
						ns = append(ns, x)
						nb.ValueBuilder().(*array.Int64Builder).Append(x)
					}
					e["n"] = ns
				}
				elems = append(elems, e)
			}
			row["ls"] = elems
		}
		et := start.Add(time.Duration(i) * step)
		row[FieldEventTime] = et.UnixMicro()
		b.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(et.UnixMicro()))
		j, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, string(j))
	}
	return b.NewRecordBatch(), rows
}

// randomStrings appends a random list of strings (null, empty or not) and returns it as JSON
// would show it.
func randomStrings(rng *rand.Rand, lb *array.ListBuilder, gen func() string) any {
	if rng.IntN(5) == 0 {
		lb.AppendNull()
		return nil
	}
	lb.Append(true)
	out := []any{}
	for range rng.IntN(4) {
		if rng.IntN(6) == 0 {
			lb.ValueBuilder().AppendNull()
			out = append(out, nil)
			continue
		}
		v := gen()
		lb.ValueBuilder().(*array.StringBuilder).Append(v)
		out = append(out, v)
	}
	return out
}

// normalize re-marshals JSON rows so that both sides format numbers alike.
func normalize(t testing.TB, rows []string) []string {
	t.Helper()
	out := make([]string, len(rows))
	for i, r := range rows {
		var v any
		if err := json.Unmarshal([]byte(r), &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out[i] = string(b)
	}
	sort.Strings(out)
	return out
}

// TestChunkEncodingRoundTrip writes random nested rows (several pages per chunk, dictionary
// and plain chunks, rows of many hours split into partitions) and reads them back with
// parquet-go's reader.
func TestChunkEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		rows  int
		start time.Time
		step  time.Duration
	}{
		{"small", 7, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), time.Second},
		// More than maxPageEntries entries in the list chunks, and megabytes of "big".
		{"one hour, many pages", 30000, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), 100 * time.Millisecond},
		{"split into hours", 20000, time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC), time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			w, err := l.NewWriter(DefaultWriterOptions())
			if err != nil {
				t.Fatal(err)
			}
			rec, want := randomRecord(t, rng, tc.rows, tc.start, tc.step)
			defer rec.Release()
			if err := w.Write(context.Background(), DBLogs, "nested", rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := normalize(t, readTable(t, l, DBLogs, "nested"))
			want = normalize(t, want)
			if len(got) != len(want) {
				t.Fatalf("read %d rows, wrote %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("row %d:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
		})
	}
}

// TestChunkPagesAndDictionaries checks how chunks are cut into pages and when a dictionary is
// used, from the files' metadata.
func TestChunkPagesAndDictionaries(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rec, _ := randomRecord(t, rng, 30000, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), 100*time.Millisecond)
	defer rec.Release()
	if err := w.Write(context.Background(), DBLogs, "nested", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := l.Files(t.Context(), DBLogs, "nested")
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	pf := openParquet(t, files[0])
	rg := pf.Metadata().RowGroups[0]
	chunks := map[string]int{}
	for i, c := range rg.Columns {
		path := strings.Join(c.MetaData.PathInSchema, ".")
		chunks[path] = i
		if c.MetaData.Statistics.NullCount < 0 || c.MetaData.NumValues < rg.NumRows {
			t.Errorf("%s: %d values, %d nulls", path, c.MetaData.NumValues, c.MetaData.Statistics.NullCount)
		}
	}
	pages := func(path string) (dict bool, data int32) {
		c := rg.Columns[chunks[path]].MetaData
		for _, s := range c.EncodingStats {
			if s.PageType == 2 {
				dict = true
			} else {
				data += s.Count
			}
		}
		return dict, data
	}
	// 24,000 strings of ~1.6 kB need about 40 pages of 1 MiB; pooled strings get a dictionary,
	// unique ones do not; the list chunks hold more than maxPageEntries entries.
	if dict, data := pages("big"); dict || data < 30 {
		t.Errorf("big: dictionary %v, %d data pages", dict, data)
	}
	if dict, _ := pages("req"); !dict {
		t.Errorf("req: no dictionary")
	}
	if dict, data := pages("ll.list.element.list.element"); dict || data < 2 {
		t.Errorf("ll: dictionary %v, %d data pages", dict, data)
	}

	// p_event_time bounds are exact: they are what prunes partitions and row groups.
	st := rg.Columns[chunks[FieldEventTime]].MetaData.Statistics
	if len(st.MinValue) != 8 || len(st.MaxValue) != 8 {
		t.Fatalf("p_event_time statistics %+v", st)
	}
}

func openParquet(t testing.TB, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return pf
}

// TestBuildDict checks the dictionary table and when a chunk gives up its dictionary.
func TestBuildDict(t *testing.T) {
	build := func(vals []string) *array.String {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewStringArray()
	}
	all := func(n int) []int32 {
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		return idx
	}
	cw := newChunkWriter()

	// Repeating values: every value maps back to itself through the dictionary, across the
	// table's growth from 1024 slots.
	var vals []string
	for i := range 20000 {
		vals = append(vals, fmt.Sprintf("value-%d", (i*7919)%5000))
	}
	a := build(vals)
	defer a.Release()
	if !cw.buildDict(a, all(len(vals))) {
		t.Fatal("5,000 distinct values in 20,000 gave up the dictionary")
	}
	if n := len(cw.dict.offs); n != 5000 {
		t.Fatalf("%d dictionary entries, want 5000", n)
	}
	for i, k := range cw.keys {
		if got := string(cw.dict.entry(k)); got != vals[i] {
			t.Fatalf("value %d: key %d is %q, want %q", i, k, got, vals[i])
		}
	}

	// Mostly distinct values are better plain.
	var distinct []string
	for i := range 1000 {
		distinct = append(distinct, fmt.Sprint("d", i))
	}
	d := build(distinct)
	defer d.Release()
	if cw.buildDict(d, all(len(distinct))) {
		t.Error("1000 distinct values kept a dictionary")
	}

	// A dictionary over maxDictBytes is dropped.
	long := []string{strings.Repeat("a", maxDictBytes/2), strings.Repeat("b", maxDictBytes/2), "c"}
	lg := build(long)
	defer lg.Release()
	if cw.buildDict(lg, all(len(long))) {
		t.Error("a dictionary over maxDictBytes was kept")
	}
}
