package query

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/lake"
)

// exportTable writes panther_logs.exported: every type the lake writes, nulls, zeros, nested
// values, over six hours of 2026-03-01.
func exportTable(t *testing.T, l *lake.Lake) int {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "z", Type: arrow.PrimitiveTypes.Int64, Nullable: true}), Nullable: true},
		{Name: lake.FieldEventTime, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	const n = 3000
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		if i%7 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("value %d é\"|", i%50))
		}
		b.Field(1).(*array.Int64Builder).Append(int64(i) * 1_000_000_007 * int64(1-2*(i%2)))
		b.Field(2).(*array.Int32Builder).Append(int32(i % 3)) // zeros stay zeros
		if i%5 == 0 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Int16Builder).Append(int16(i % 300))
		}
		b.Field(4).(*array.Float64Builder).Append(float64(i) / 4)
		b.Field(5).(*array.BooleanBuilder).Append(i%3 == 0)
		lb := b.Field(6).(*array.ListBuilder)
		switch i % 4 {
		case 0:
			lb.AppendNull()
		case 1:
			lb.Append(true) // empty
		default:
			lb.Append(true)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			vb.Append("t" + strconv.Itoa(i%9))
			vb.Append("u")
		}
		sb := b.Field(7).(*array.StructBuilder)
		if i%6 == 0 {
			sb.AppendNull()
		} else {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append("a" + strconv.Itoa(i%11))
			sb.FieldBuilder(1).(*array.Int64Builder).Append(int64(i))
		}
		b.Field(8).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Duration(i) * 7 * time.Second).UnixMicro()))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w, err := l.NewWriter(lake.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), lake.DBLogs, "exported", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// canon renders a value scanned from DuckDB as read.mjs renders hyparquet's.
func canon(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return "T" + strconv.FormatInt(v.UnixMilli(), 10)
	case string:
		b, _ := json.Marshal(v)
		return string(b)
	case bool:
		return strconv.FormatBool(v)
	case int16:
		return strconv.Itoa(int(v))
	case int32:
		return strconv.Itoa(int(v))
	case int64:
		return strconv.FormatInt(v, 10)
	case *big.Int:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = canon(x)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			kb, _ := json.Marshal(k)
			parts[i] = string(kb) + ":" + canon(v[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprintf("?%T", v)
}

type readSummary struct {
	Rows    int64 `json:"rows"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Checksum string `json:"checksum"`
}

// duckSummary reads files with a DuckDB of its own and summarizes them as read.mjs does.
func duckSummary(t *testing.T, files []string) (rows int64, names []string, checksum string) {
	t.Helper()
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = quote(f)
	}
	r, err := db.Query("SELECT * FROM read_parquet([" + strings.Join(list, ", ") + "], hive_partitioning = false)")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	names, _ = r.Columns()
	var lines []string
	for r.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = canon(v)
		}
		lines = append(lines, strings.Join(parts, "|"))
		rows++
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l + "\n"))
	}
	return rows, names, hex.EncodeToString(h.Sum(nil))
}

// hyparquet reads files with tools/parquet-check (hyparquet, a JavaScript Parquet reader).
func hyparquet(t *testing.T, files []string) readSummary {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the export is not checked with hyparquet")
	}
	tool, err := filepath.Abs(filepath.Join("..", "tools", "parquet-check"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "hyparquet")); err != nil {
		t.Fatalf("hyparquet is not installed: run `make tools` (npm ci in %s)", tool)
	}
	out, err := exec.Command(node, append([]string{filepath.Join(tool, "read.mjs")}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("read.mjs: %v\n%s", err, out)
	}
	var s readSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("read.mjs printed %s: %v", out, err)
	}
	return s
}

// TestExportReadByHyparquet exports a table, as one file and partitioned, and reads the files
// back with hyparquet: the row count, column names and types, and a checksum of every value
// agree with what DuckDB reads from the lake.
func TestExportReadByHyparquet(t *testing.T) {
	ctx := context.Background()
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	total := exportTable(t, l)
	db := openDB(t, l, Options{Now: func() time.Time { return time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC) }})
	out := t.TempDir()

	// The lake's own rows, read by DuckDB from the lake's files: the reference.
	lakeFiles, _ := filepath.Glob(filepath.Join(l.TableDir(lake.DBLogs, "exported"), "*", "*", "*", "*.parquet"))
	wantRows, wantCols, wantSum := duckSummary(t, lakeFiles)
	if wantRows != int64(total) {
		t.Fatalf("lake holds %d rows, want %d", wantRows, total)
	}
	wantTypes := []string{"BYTE_ARRAY/STRING", "INT64/INTEGER", "INT32/INTEGER", "INT32/INTEGER", "DOUBLE", "BOOLEAN", "GROUP/LIST", "GROUP", "INT64/TIMESTAMP"}

	check := func(name string, files []string, rows int64, sum string) {
		t.Helper()
		got := hyparquet(t, files)
		if got.Rows != rows {
			t.Errorf("%s: hyparquet read %d rows, want %d", name, got.Rows, rows)
		}
		var names, types []string
		for _, c := range got.Columns {
			names = append(names, c.Name)
			types = append(types, c.Type)
		}
		// As in the lake's files (the partition columns year, month, day, hour are in paths).
		if !reflect.DeepEqual(names, wantCols) {
			t.Errorf("%s: columns %q, want %q", name, names, wantCols)
		}
		if !reflect.DeepEqual(types, wantTypes) {
			t.Errorf("%s: types %q, want %q", name, types, wantTypes)
		}
		if got.Checksum != sum {
			t.Errorf("%s: hyparquet's checksum %s, DuckDB's %s", name, got.Checksum, sum)
		}
	}

	// The whole table, one file.
	st, err := db.Export(ctx, ExportOptions{DB: lake.DBLogs, Table: "exported", Out: filepath.Join(out, "all.parquet")})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != int64(total) || st.Files != 1 {
		t.Errorf("export: %+v, want %d rows in 1 file", st, total)
	}
	// DuckDB reads the export as it reads the lake's files; so does hyparquet.
	if _, _, sumExport := duckSummary(t, []string{filepath.Join(out, "all.parquet")}); sumExport != wantSum {
		t.Errorf("DuckDB reads the export with checksum %s, the lake's files with %s", sumExport, wantSum)
	}
	check("one file", []string{filepath.Join(out, "all.parquet")}, int64(total), wantSum)

	// The last two hours with a condition, partitioned.
	st, err = db.Export(ctx, ExportOptions{DB: lake.DBLogs, Table: "exported", Since: "2 hours", Where: "i32 = 0", Out: filepath.Join(out, "parts"), Partitioned: true})
	if err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(out, "parts", "year=*", "month=*", "day=*", "hour=*", "*.parquet"))
	if len(parts) != 2 || st.Files != 2 {
		t.Errorf("partitioned export: %+v, files %q; want 2 (hours 04 and 05)", st, parts)
	}
	var wantN int64
	for i := range total {
		ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Second)
		if i%3 == 0 && !ts.Before(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)) {
			wantN++
		}
	}
	if st.Rows != wantN {
		t.Errorf("partitioned export wrote %d rows, want %d", st.Rows, wantN)
	}
	_, _, sumParts := duckSummary(t, parts)
	check("partitioned", parts, wantN, sumParts)
}
