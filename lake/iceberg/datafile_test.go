package iceberg_test

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	ice "github.com/apache/iceberg-go"
	"github.com/parquet-go/parquet-go"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// column is what a file's rows hold in one column, read value by value.
type column struct {
	values, nulls int64
	lo, hi        any
}

// readColumns reads every row of a Parquet file and returns its row count and, for each column
// outside a list (by dotted path), its values, nulls and min and max, as Iceberg's literals
// hold them. It does not look at the footer's statistics.
func readColumns(t *testing.T, path string, sc *ice.Schema) (int64, map[string]*column) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	paths := pf.Schema().Columns()
	cols := map[string]*column{}
	var n int64
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 100)
		for {
			k, err := rows.ReadRows(buf)
			for _, row := range buf[:k] {
				n++
				for _, v := range row {
					p := strings.Join(paths[v.Column()], ".")
					if slices.Contains(paths[v.Column()], "list") {
						continue
					}
					c := cols[p]
					if c == nil {
						c = &column{}
						cols[p] = c
					}
					c.values++
					if v.IsNull() {
						c.nulls++
						continue
					}
					field, ok := sc.FindFieldByName(p)
					if !ok {
						t.Fatalf("%s: column %s not in the table", path, p)
					}
					var x any
					switch v.Kind() {
					case parquet.Boolean:
						x = v.Boolean()
					case parquet.Int32:
						x = v.Int32()
					case parquet.Int64:
						x = v.Int64()
						if field.Type.Equals(ice.PrimitiveTypes.TimestampTz) {
							x = ice.Timestamp(v.Int64())
						}
					case parquet.Double:
						x = v.Double()
					case parquet.ByteArray:
						x = string(v.ByteArray())
					}
					if c.lo == nil || less(x, c.lo) {
						c.lo = x
					}
					if c.hi == nil || less(c.hi, x) {
						c.hi = x
					}
				}
			}
			if err != nil {
				break
			}
		}
		rows.Close()
	}
	return n, cols
}

func less(a, b any) bool {
	switch a := a.(type) {
	case bool:
		return !a && b.(bool)
	case int32:
		return a < b.(int32)
	case int64:
		return a < b.(int64)
	case ice.Timestamp:
		return a < b.(ice.Timestamp)
	case float64:
		return a < b.(float64)
	case string:
		return a < b.(string)
	}
	panic("BUG: type")
}

// TestRegistrationMatchesFile checks each registered file's entry, as the catalog gives it back,
// against the file's rows.
func TestRegistrationMatchesFile(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	days := lakeFiles(t, dir)
	if err := c.Register(ctx, testDB, testTable, slices.Concat(days...), nil); err != nil {
		t.Fatal(err)
	}
	tbl, err := c.Table(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	sc := tbl.Schema()
	files, err := c.Files(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d files registered, want 4", len(files))
	}
	bounded := map[string]bool{} // columns with bounds in some file
	for _, df := range files {
		path := iceberg.LocalPath(df.FilePath())
		rows, cols := readColumns(t, path, sc)
		if got := df.Count(); got != rows {
			t.Errorf("%s: record count %d, want %d", path, got, rows)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := df.FileSizeBytes(); got != info.Size() {
			t.Errorf("%s: file size %d, want %d", path, got, info.Size())
		}
		et := cols["p_event_time"]
		wantDay := ice.Date(time.UnixMicro(int64(et.lo.(ice.Timestamp))).UTC().Truncate(24*time.Hour).Unix() / 86400)
		if got := df.Partition()[iceberg.PartitionFieldID]; got != wantDay {
			t.Errorf("%s: partition %v (%T), want day %v", path, got, got, wantDay)
		}
		for p, col := range cols {
			field, _ := sc.FindFieldByName(p)
			id := field.ID
			if got := df.ValueCounts()[id]; got != col.values {
				t.Errorf("%s: %s: value count %d, want %d", path, p, got, col.values)
			}
			if got, ok := df.NullValueCounts()[id]; !ok || got != col.nulls {
				t.Errorf("%s: %s: null count %d (%v), want %d", path, p, got, ok, col.nulls)
			}
			lo, hasLo := df.LowerBoundValues()[id]
			hi, hasHi := df.UpperBoundValues()[id]
			if hasLo != hasHi {
				t.Errorf("%s: %s: one bound only", path, p)
				continue
			}
			if !hasLo {
				continue
			}
			bounded[p] = true
			for _, b := range []struct {
				name  string
				bytes []byte
				want  any
			}{{"lower", lo, col.lo}, {"upper", hi, col.hi}} {
				lit, err := ice.LiteralFromBytes(field.Type, b.bytes)
				if err != nil {
					t.Errorf("%s: %s: %s bound: %v", path, p, b.name, err)
					continue
				}
				if got := lit.Any(); got != b.want {
					t.Errorf("%s: %s: %s bound %v (%T), want %v (%T)", path, p, b.name, got, got, b.want, b.want)
				}
			}
		}
		for _, id := range []int{listElementID(t, sc, "tags")} {
			if _, ok := df.ValueCounts()[id]; ok {
				t.Errorf("%s: counts for the elements of a list", path)
			}
		}
	}
	var got []string
	for p := range bounded {
		got = append(got, p)
	}
	slices.Sort(got)
	// Every column the lake writes statistics for; not agent (long, distinct strings), never (all
	// null) or the list.
	want := []string{"action", "count", "detail", "mid", "ok", "p_event_time", "p_log_type", "p_parse_time", "ratio", "small", "src.ip", "src.port"}
	if !slices.Equal(got, want) {
		t.Errorf("columns with bounds: %v, want %v", got, want)
	}
}

func listElementID(t *testing.T, sc *ice.Schema, name string) int {
	f, ok := sc.FindFieldByName(name)
	if !ok {
		t.Fatalf("no column %s", name)
	}
	return f.Type.(*ice.ListType).ElementID
}

// writeArrowFile writes a Parquet file with arrow-go's writer, which can make what package lake
// never writes: other time units, local times, no statistics.
func writeArrowFile(t *testing.T, path string, s *arrow.Schema, stats bool, fill func(b *array.RecordBuilder)) string {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	fill(b)
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(s, f, pq.NewWriterProperties(pq.WithStats(stats)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRegisterRefuses checks that a file a plan would get wrong is refused with a clear error,
// and that the good files of the same call are not committed either.
func TestRegisterRefuses(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	days := lakeFiles(t, dir)
	if err := c.Register(ctx, testDB, testTable, days[0], nil); err != nil {
		t.Fatal(err)
	}

	at := day0.Add(5 * time.Hour)
	// arrowFile writes the lake's required columns, p_event_time of the type given, and extra
	// columns, all with one row at the hour above.
	arrowFile := func(name string, et arrow.DataType, stats bool, extra ...arrow.Field) string {
		fields := []arrow.Field{
			{Name: "p_log_type", Type: arrow.BinaryTypes.String},
			{Name: "p_row_id", Type: arrow.BinaryTypes.String},
			{Name: "p_event_time", Type: et},
			{Name: "p_parse_time", Type: tsType},
		}
		s := arrow.NewSchema(append(fields, extra...), nil)
		return writeArrowFile(t, filepath.Join(dir, name+".parquet"), s, stats, func(b *array.RecordBuilder) {
			b.Field(0).(*array.StringBuilder).Append("Test.Audit")
			b.Field(1).(*array.StringBuilder).Append("r1")
			unit := et.(*arrow.TimestampType).Unit
			v, _ := arrow.TimestampFromTime(at, unit)
			b.Field(2).(*array.TimestampBuilder).Append(v)
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
			for i := range extra {
				b.Field(4 + i).AppendNull()
			}
		})
	}
	good := arrowFile("good", tsType, true)
	if _, err := iceberg.EntryOf(mustSchema(t, c), mustSpec(t, c), good, good); err != nil {
		t.Fatalf("the arrow-go file all others differ from is refused: %v", err)
	}

	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"rows of two days", writeLakeFile(t, dir, day0, "twodays", batch(t, 9, 100, day0.Add(23*time.Hour+30*time.Minute), time.Hour)), "more than one day partition"},
		{"milliseconds", arrowFile("millis", &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, true), "want TIMESTAMP(MICROS, UTC)"},
		{"nanoseconds", arrowFile("nanos", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, true), "want TIMESTAMP(MICROS, UTC)"},
		{"local time", arrowFile("local", &arrow.TimestampType{Unit: arrow.Microsecond}, true), "want TIMESTAMP(MICROS, UTC)"},
		{"no statistics", arrowFile("nostats", tsType, false), "p_event_time lacks min/max statistics"},
		{"column not in the table", arrowFile("extra", tsType, true, arrow.Field{Name: "extra", Type: arrow.BinaryTypes.String, Nullable: true}), "column extra is not in the table"},
		{"column of another type", arrowFile("othertype", tsType, true, arrow.Field{Name: "count", Type: arrow.BinaryTypes.String, Nullable: true}), "column count: BYTE_ARRAY in the file, want INT64"},
		{"no rows", writeLakeFile(t, dir, day0, "empty"), "no rows"},
	} {
		err := c.Register(ctx, testDB, testTable, []string{days[1][0], tc.path}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// A required column missing from the file.
	s := arrow.NewSchema([]arrow.Field{{Name: "p_event_time", Type: tsType}}, nil)
	path := writeArrowFile(t, filepath.Join(dir, "missing.parquet"), s, true, func(b *array.RecordBuilder) {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
	})
	if err := c.Register(ctx, testDB, testTable, []string{path}, nil); err == nil || !strings.Contains(err.Error(), "required column p_log_type is not in the file") {
		t.Errorf("missing required column: %v", err)
	}

	files, err := c.Files(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, iceberg.LocalPath(f.FilePath()))
	}
	slices.SortFunc(got, cmp.Compare)
	if !slices.Equal(got, days[0]) {
		t.Errorf("files after the refused calls: %v, want %v", got, days[0])
	}
}

func mustSchema(t *testing.T, c *iceberg.Catalog) *ice.Schema {
	tbl, err := c.Table(t.Context(), testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.Schema()
}

func mustSpec(t *testing.T, c *iceberg.Catalog) ice.PartitionSpec {
	tbl, err := c.Table(t.Context(), testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.Spec()
}
