package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

var jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})

func testSchema() *arrow.Schema {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	return arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "uid", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "small", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "mid", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "ratio", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "success", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "details", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "actor", Type: arrow.StructOf(
			arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		), Nullable: true},
		{Name: "errors", Type: arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "message", Type: arrow.BinaryTypes.String, Nullable: true},
		)), Nullable: true},
		{Name: FieldEventTime, Type: ts, Nullable: true},
	}, nil)
}

// row is a test row; nil pointers are nulls.
type row struct {
	name    *string
	uid     *int64
	success *bool
	actor   *actorVal
	errors  []string // nil: null list
	event   time.Time
}

type actorVal struct {
	id   string
	tags []string // nil: null
}

func ptr[T any](v T) *T { return &v }

func buildRecord(t testing.TB, rows []row) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema())
	defer b.Release()
	for _, r := range rows {
		if r.name == nil {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(*r.name)
		}
		if r.uid == nil {
			b.Field(1).AppendNull()
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
			b.Field(4).AppendNull()
		} else {
			b.Field(1).(*array.Int64Builder).Append(*r.uid)
			b.Field(2).(*array.Int16Builder).Append(int16(*r.uid))
			b.Field(3).(*array.Int32Builder).Append(int32(*r.uid))
			b.Field(4).(*array.Float64Builder).Append(float64(*r.uid) / 2)
		}
		if r.success == nil {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.BooleanBuilder).Append(*r.success)
		}
		b.Field(6).(*array.StringBuilder).Append(`{"k":[1,2]}`)
		sb := b.Field(7).(*array.StructBuilder)
		if r.actor == nil {
			sb.AppendNull()
		} else {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(r.actor.id)
			lb := sb.FieldBuilder(1).(*array.ListBuilder)
			if r.actor.tags == nil {
				lb.AppendNull()
			} else {
				lb.Append(true)
				for _, tag := range r.actor.tags {
					lb.ValueBuilder().(*array.StringBuilder).Append(tag)
				}
			}
		}
		eb := b.Field(8).(*array.ListBuilder)
		if r.errors == nil {
			eb.AppendNull()
		} else {
			eb.Append(true)
			st := eb.ValueBuilder().(*array.StructBuilder)
			for _, m := range r.errors {
				st.Append(true)
				st.FieldBuilder(0).(*array.StringBuilder).Append(m)
			}
		}
		b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(r.event.UnixMicro()))
	}
	return b.NewRecordBatch()
}

// readTable reads every committed data file of a table as JSON rows, sorted.
func readTable(t testing.TB, l *Lake, db, table string) []string {
	t.Helper()
	files, err := l.Files(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		for _, r := range readFile(t, f) {
			b, _ := json.Marshal(r)
			out = append(out, string(b))
		}
	}
	sort.Strings(out)
	return out
}

func readFile(t testing.TB, path string) []map[string]any {
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
	n, err := r.Read(rows)
	if n != len(rows) {
		t.Fatalf("read %s: %d of %d rows: %v", path, n, len(rows), err)
	}
	return rows
}

func TestWriteRoundTrip(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)
	rec := buildRecord(t, []row{
		{name: ptr("root"), uid: ptr[int64](0), success: ptr(false), actor: &actorVal{id: "0", tags: []string{}}, errors: []string{}, event: h},
		{name: ptr(""), uid: ptr[int64](-7), success: ptr(true), actor: &actorVal{id: "a", tags: []string{"x", "y"}}, errors: []string{"e1", "e2"}, event: h.Add(time.Minute)},
		{event: h.Add(2 * time.Minute)}, // everything null
		{name: ptr("late"), uid: ptr[int64](1), actor: &actorVal{id: "b"}, event: h.Add(-26 * time.Hour)},
	})
	defer rec.Release()
	ctx := context.Background()
	if err := w.Write(ctx, DBLogs, "test_table", rec); err != nil {
		t.Fatal(err)
	}
	if got := readTable(t, l, DBLogs, "test_table"); len(got) != 0 {
		t.Fatalf("%d rows visible before the commit", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readTable(t, l, DBLogs, "test_table")
	// parquet-go's reader shows JSON columns parsed and timestamps as microseconds.
	us := func(t time.Time) string { return fmt.Sprint(t.UnixMicro()) }
	want := []string{
		`{"actor":null,"details":{"k":[1,2]},"errors":null,"mid":null,"name":null,"p_event_time":` + us(h.Add(2*time.Minute)) + `,"ratio":null,"small":null,"success":null,"uid":null}`,
		`{"actor":{"id":"0","tags":[]},"details":{"k":[1,2]},"errors":[],"mid":0,"name":"root","p_event_time":` + us(h) + `,"ratio":0,"small":0,"success":false,"uid":0}`,
		`{"actor":{"id":"a","tags":["x","y"]},"details":{"k":[1,2]},"errors":[{"message":"e1"},{"message":"e2"}],"mid":-7,"name":"","p_event_time":` + us(h.Add(time.Minute)) + `,"ratio":-3.5,"small":-7,"success":true,"uid":-7}`,
		`{"actor":{"id":"b","tags":null},"details":{"k":[1,2]},"errors":null,"mid":1,"name":"late","p_event_time":` + us(h.Add(-26*time.Hour)) + `,"ratio":0.5,"small":1,"success":null,"uid":1}`,
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The late row is in its own day's file.
	for _, day := range []time.Time{h, h.Add(-26 * time.Hour)} {
		files, _ := filepath.Glob(filepath.Join(l.DayDir(DBLogs, "test_table", day), "*.parquet"))
		if len(files) != 1 {
			t.Errorf("%s has %d files, want 1", l.DayDir(DBLogs, "test_table", day), len(files))
		}
		for _, f := range files {
			if base, prefix := filepath.Base(f), day.Truncate(24*time.Hour).Format("20060102T150405Z-"); !strings.HasPrefix(base, prefix) {
				t.Errorf("file name %s does not start with %s", base, prefix)
			}
		}
	}
	// Columns keep the schema's order and types.
	files, _ := l.Files(t.Context(), DBLogs, "test_table")
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range pf.Schema().Fields() {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, ","); got != "name,uid,small,mid,ratio,success,details,actor,errors,p_event_time" {
		t.Errorf("column order %s", got)
	}
	schema := pf.Schema().String()
	for _, want := range []string{"(JSON)", "(TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))", "(LIST)", "(INT(16,true))", "(STRING)"} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %s:\n%s", want, schema)
		}
	}
	if sig, err := l.TableSignature(DBLogs, "test_table"); err != nil || sig != Signature(testSchema()) {
		t.Errorf("table signature %q, %v", sig, err)
	}
	tables, err := l.Tables(DBLogs)
	if err != nil || len(tables) != 1 || tables[0].Name != "test_table" {
		t.Errorf("Tables = %v, %v", tables, err)
	}
	if left, _ := os.ReadDir(filepath.Join(l.Dir(), "_osprey", "tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestSchemaMismatch(t *testing.T) {
	l, _ := Open(t.TempDir())
	w, _ := l.NewWriter(DefaultWriterOptions())
	rec := buildRecord(t, []row{{event: time.Now()}})
	if err := w.Write(context.Background(), DBLogs, "t", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	other := arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: FieldEventTime, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, other)
	b.Field(0).(*array.Int64Builder).Append(1)
	b.Field(1).(*array.TimestampBuilder).Append(1)
	w2, _ := l.NewWriter(DefaultWriterOptions())
	defer w2.Close()
	err := w2.Write(context.Background(), DBLogs, "t", b.NewRecordBatch())
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "changes the type of name (utf8 -> int64)") || !strings.Contains(err.Error(), "removes uid, ") {
		t.Errorf("err = %v", err)
	}
}

func TestCompareSignatures(t *testing.T) {
	old := "a utf8\nobj struct\nobj.x int64\nl list\nl.element utf8\np_event_time timestamp[us, tz=UTC] not null\n"
	f := func(new string, want SchemaChange) {
		t.Helper()
		got := CompareSignatures(old, new)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: got %+v, want %+v", new, got, want)
		}
	}
	f(old, SchemaChange{})
	f("a utf8\nb int64\nobj struct\nobj.x int64\nobj.y struct\nobj.y.z utf8\nl list\nl.element utf8\np_event_time timestamp[us, tz=UTC] not null\np_any_emails list\np_any_emails.element utf8\n",
		SchemaChange{Added: []string{"b", "obj.y", "p_any_emails"}})
	f("a utf8\nl list\nl.element int64\np_event_time timestamp[us, tz=UTC] not null\n",
		SchemaChange{Removed: []string{"obj"}, Changed: []string{"l.element (utf8 -> int64)"}})
	f("a json\nobj utf8\nl list\nl.element utf8\np_event_time timestamp[us, tz=UTC] not null\n",
		SchemaChange{Removed: []string{"obj.x"}, Changed: []string{"a (utf8 -> json)", "obj (struct -> utf8)"}})
}

func TestConcurrentWritesAndRotation(t *testing.T) {
	l, _ := Open(t.TempDir())
	opts := DefaultWriterOptions()
	opts.FileSize = 64 << 10 // rotate often
	opts.MaxOpenFiles = 3
	w, err := l.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	const workers, batches, perBatch = 4, 20, 500
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				rows := make([]row, perBatch)
				for j := range rows {
					name := fmt.Sprintf("w%d-b%d-r%d", g, i, j)
					rows[j] = row{name: &name, uid: ptr(int64(j)), event: base.Add(time.Duration((i*perBatch+j)%10) * 24 * time.Hour)}
				}
				rec := buildRecord(t, rows)
				if err := w.Write(context.Background(), DBLogs, "many", rec); err != nil {
					errs <- err
					return
				}
				rec.Release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readTable(t, l, DBLogs, "many")
	if len(got) != workers*batches*perBatch {
		t.Fatalf("read %d rows, want %d", len(got), workers*batches*perBatch)
	}
	seen := map[string]bool{}
	for _, r := range got {
		var m map[string]any
		json.Unmarshal([]byte(r), &m)
		name := m["name"].(string)
		if seen[name] {
			t.Fatalf("row %s twice", name)
		}
		seen[name] = true
	}
	st := w.Stats()
	if st.Rows != int64(len(got)) || st.Files < 10 {
		t.Errorf("stats %+v: want %d rows in many files", st, len(got))
	}
}

func TestStaleTempRemoved(t *testing.T) {
	l, _ := Open(t.TempDir())
	w, _ := l.NewWriter(DefaultWriterOptions())
	rec := buildRecord(t, []row{{event: time.Now()}})
	if err := w.Write(context.Background(), DBLogs, "t", rec); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the lock is released without committing.
	w.lock.Close()
	stale := w.tmp
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp dir still there: %v", err)
	}
	// A live writer's directory is kept.
	w3, _ := l.NewWriter(DefaultWriterOptions())
	defer w3.Close()
	if _, err := os.Stat(w2.tmp); err != nil {
		t.Errorf("live writer's temp dir removed: %v", err)
	}
}

func TestHasHiveData(t *testing.T) {
	l, _ := Open(t.TempDir())
	dir := filepath.Join(l.TableDir(DBLogs, "t"), "year=2026/month=01/day=01/hour=05")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(filepath.Join(l.TableDir(DBLogs, "u"), "year=2026/month=01/day=01/hour=05"), 0o755) // empty
	os.WriteFile(filepath.Join(dir, "x.parquet"), nil, 0o644)
	if !l.HasHiveData(DBLogs, "t") || l.HasHiveData(DBLogs, "u") || l.HasHiveData(DBLogs, "v") {
		t.Error("HasHiveData")
	}
}

// TestFlushWithMeta checks that commit metadata is recorded with the flush that makes its rows
// visible, by writer name.
func TestFlushWithMeta(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m, err := l.CommitMeta("serve"); m != nil || err != nil {
		t.Fatalf("CommitMeta of a new lake = %v, %v", m, err)
	}
	opts := DefaultWriterOptions()
	opts.Name = "serve"
	w, err := l.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC)
	rec := buildRecord(t, []row{{name: ptr("a"), event: h}})
	defer rec.Release()
	ctx := context.Background()
	if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.FlushWith(ctx, map[string]string{"wal": "7"}); err != nil {
		t.Fatal(err)
	}
	if m, err := l.CommitMeta("serve"); err != nil || m["wal"] != "7" {
		t.Fatalf("CommitMeta = %v, %v", m, err)
	}
	if got := readTable(t, l, DBLogs, "t"); len(got) != 1 {
		t.Fatalf("%d rows visible", len(got))
	}
	// Metadata advances without rows too (a flush of records that all failed, say).
	if err := w.FlushWith(ctx, map[string]string{"wal": "9"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := l.CommitMeta("serve"); m["wal"] != "9" {
		t.Errorf("CommitMeta = %v", m)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	unnamed, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer unnamed.Close()
	if err := unnamed.FlushWith(ctx, map[string]string{"x": "1"}); err == nil {
		t.Error("metadata accepted from a writer without a name")
	}
}

// writeDataFile writes rows to path with the lake's encoder (a file as a writer finishes one).
func writeDataFile(t testing.TB, path string, rows []row) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw, err := NewFileWriter(f, testSchema())
	if err != nil {
		t.Fatal(err)
	}
	rec := buildRecord(t, rows)
	defer rec.Release()
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

// createTable creates a table of testSchema in the lake (its schema file and Iceberg table),
// as a writer does on its first write.
func createTable(t testing.TB, l *Lake, table string) {
	t.Helper()
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.table(DBLogs, table, testSchema()); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedFlushIsFinished simulates a writer that crashed while publishing a flush
// (manifest written, one file renamed, one not) and one that crashed before its manifest: the
// next writer finishes the first flush (both files registered, metadata recorded) and drops
// the second writer's files; a third writer does not register the flush again.
func TestInterruptedFlushIsFinished(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	createTable(t, l, "t")
	base := filepath.Join(l.Dir(), "_osprey", "tmp")
	crashed := filepath.Join(base, "w-crashed")
	early := filepath.Join(base, "w-early")
	for _, d := range []string{crashed, early} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "lock"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hour := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	dstDir := l.PartitionDir(DBLogs, "t", hour)
	a, b := filepath.Join(dstDir, "a.parquet"), filepath.Join(dstDir, "b.parquet")
	m := manifest{Writer: "serve", Instance: "w-crashed", Flush: 3, Meta: map[string]string{"wal": "42"}, Renames: [][2]string{
		{filepath.Join(crashed, "a.tmp"), a},
		{filepath.Join(crashed, "b.tmp"), b},
	}}
	// a was renamed before the crash; b was not.
	writeDataFile(t, a, []row{{name: ptr("a"), event: hour}})
	writeDataFile(t, filepath.Join(crashed, "b.tmp"), []row{{name: ptr("b"), event: hour.Add(time.Minute)}})
	if err := writeFileDurably(filepath.Join(crashed, manifestName), m); err != nil {
		t.Fatal(err)
	}
	writeDataFile(t, filepath.Join(early, "c.tmp"), []row{{name: ptr("c"), event: hour}})

	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	files, err := l.Files(t.Context(), DBLogs, "t")
	if err != nil || !slices.Equal(files, []string{a, b}) {
		t.Errorf("registered files %v, %v; want %v", files, err, []string{a, b})
	}
	if meta, err := l.CommitMeta("serve"); err != nil || meta["wal"] != "42" {
		t.Errorf("CommitMeta = %v, %v", meta, err)
	}
	for _, d := range []string{crashed, early} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}

	// The same flush found again (a crash after its commit, before its manifest was removed)
	// is not registered twice.
	again := filepath.Join(base, "w-again")
	os.MkdirAll(again, 0o755)
	os.WriteFile(filepath.Join(again, "lock"), nil, 0o644)
	m2 := manifest{Writer: "serve", Instance: "w-again", Flush: 1, Meta: map[string]string{"wal": "43"}, Renames: [][2]string{
		{filepath.Join(again, "d.tmp"), filepath.Join(dstDir, "d.parquet")}}}
	writeDataFile(t, filepath.Join(again, "d.tmp"), []row{{name: ptr("d"), event: hour}})
	if err := writeFileDurably(filepath.Join(again, manifestName), m2); err != nil {
		t.Fatal(err)
	}
	cat, err := l.OpenCatalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := errors.Join(renameAll(m2.Renames)...); err != nil {
		t.Fatal(err)
	}
	if err := l.finishCommit(t.Context(), cat, m2); err != nil { // committed, manifest left
		t.Fatal(err)
	}
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	files, _ = l.Files(t.Context(), DBLogs, "t")
	if len(files) != 3 {
		t.Errorf("after finishing a committed flush again: %v, want 3 files", files)
	}
}

// TestCompact writes a partition in several flushes (several files) and compacts it: one file
// with every row, read back the same, and the files of a current hour left alone.
func TestCompact(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	old := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	current := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	for i := range 5 {
		rec := buildRecord(t, []row{
			{name: ptr(fmt.Sprint("old", i)), uid: ptr(int64(i)), success: ptr(i%2 == 0), actor: &actorVal{id: "a", tags: []string{"x"}}, errors: []string{"e"}, event: old.Add(time.Duration(5-i) * time.Minute)},
			{name: ptr(fmt.Sprint("new", i)), event: current.Add(time.Duration(i) * time.Minute)},
		})
		if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := readTable(t, l, DBLogs, "t")
	// Compacted by another writer, as osprey lake compact does: it learns the table's columns
	// from its files (the JSON column included).
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	st, err := w2.Compact(ctx, DBLogs, "t", current.Add(30*time.Minute), 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions != 1 || st.FilesIn != 5 || st.FilesOut != 1 || st.Rows != 5 {
		t.Errorf("stats %+v", st)
	}
	var oldFiles, curFiles []string
	files, err := l.Files(ctx, DBLogs, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		switch filepath.Dir(f) {
		case l.DayDir(DBLogs, "t", old):
			oldFiles = append(oldFiles, f)
		case l.DayDir(DBLogs, "t", current):
			curFiles = append(curFiles, f)
		}
	}
	if len(oldFiles) != 1 || len(curFiles) != 5 {
		t.Errorf("%d files of the past day, %d of the current one", len(oldFiles), len(curFiles))
	}
	after := readTable(t, l, DBLogs, "t")
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("rows changed:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	// The five flushes' row groups become one, its rows in event time order, with the
	// footer schema the table's files have.
	pf := openParquet(t, oldFiles[0])
	if src := openParquet(t, curFiles[0]); !sameSchema(pf.Metadata(), src.Metadata()) {
		t.Errorf("merged file's schema differs from the table's other files")
	}
	if n := len(pf.Metadata().RowGroups); n != 1 || pf.NumRows() != 5 {
		t.Errorf("merged file: %d row groups, %d rows; want 1 of 5", n, pf.NumRows())
	}
	var prev int64
	for i, r := range readFile(t, oldFiles[0]) {
		if et := r["p_event_time"].(int64); i > 0 && et < prev {
			t.Errorf("row %d of the merged file is before row %d", i, i-1)
		} else {
			prev = et
		}
	}
	// Nothing left to do the second time.
	if st, err := w2.Compact(ctx, DBLogs, "t", current.Add(30*time.Minute), 2); err != nil || st.Partitions != 0 {
		t.Errorf("second compaction: %+v, %v", st, err)
	}
}

// TestInterruptedCompactionIsFinished: a compaction that crashed after renaming its merged file
// but before its commit is finished by the next writer: the merged file replaces the others.
func TestInterruptedCompactionIsFinished(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	hour := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rec := buildRecord(t, []row{{name: ptr(fmt.Sprint(i)), event: hour.Add(time.Duration(i) * time.Minute)}})
		if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := l.Files(ctx, DBLogs, "t")
	if err != nil || len(old) != 2 {
		t.Fatalf("files before: %v, %v", old, err)
	}
	crashed := filepath.Join(l.Dir(), "_osprey", "tmp", "w-crashed")
	os.MkdirAll(crashed, 0o755)
	os.WriteFile(filepath.Join(crashed, "lock"), nil, 0o644)
	merged := filepath.Join(filepath.Dir(old[0]), "merged.parquet")
	writeDataFile(t, merged, []row{{name: ptr("0"), event: hour}, {name: ptr("1"), event: hour.Add(time.Minute)}})
	m := manifest{Instance: "w-crashed", Flush: 1, Renames: [][2]string{{filepath.Join(crashed, "merged.tmp"), merged}}, Deletes: old}
	if err := writeFileDurably(filepath.Join(crashed, manifestName), m); err != nil {
		t.Fatal(err)
	}
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if files, err := l.Files(ctx, DBLogs, "t"); err != nil || !slices.Equal(files, []string{merged}) {
		t.Errorf("files after recovery: %v, %v; want %s", files, err, merged)
	}
}

// TestMigrate makes a lake as an osprey before the Iceberg catalog left it (Hive files, schema
// files, commit metadata in _osprey/commits), checks that writers and CommitMeta refuse it,
// and that Migrate, interrupted and run again, registers every file once and moves the
// metadata.
func TestMigrate(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w, err := l.NewWriter(WriterOptions{Name: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		for _, table := range []string{"a", "b"} {
			rec := buildRecord(t, []row{{name: ptr(fmt.Sprint(table, i)), event: hour.Add(time.Duration(i) * time.Hour)}})
			if err := w.Write(ctx, DBLogs, table, rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
		if err := w.FlushWith(ctx, map[string]string{"wal": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, table := range []string{"a", "b"} {
		want[table] = readTable(t, l, DBLogs, table)
	}
	// Back to the old layout: each file in an hour directory of its day, no catalog.
	for _, table := range []string{"a", "b"} {
		files, _ := l.Files(ctx, DBLogs, table)
		for _, f := range files {
			dst := filepath.Join(filepath.Dir(f), "hour=10", filepath.Base(f))
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.Rename(f, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm"} {
		os.Remove(filepath.Join(l.Dir(), "_osprey", p))
	}
	for _, table := range []string{"a", "b"} {
		os.RemoveAll(filepath.Join(l.TableDir(DBLogs, table), "metadata"))
	}
	os.MkdirAll(l.oldCommitsDir(), 0o755)
	if err := writeFileDurably(filepath.Join(l.oldCommitsDir(), "serve.json"), map[string]string{"wal": "2"}); err != nil {
		t.Fatal(err)
	}

	if need, err := l.NeedsMigration(ctx); err != nil || !need {
		t.Errorf("NeedsMigration = %v, %v", need, err)
	}
	if _, err := l.CommitMeta("serve"); !errors.Is(err, ErrNeedsMigration) {
		t.Errorf("CommitMeta of an old lake: %v", err)
	}
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	rec := buildRecord(t, []row{{name: ptr("x"), event: hour}})
	if err := w2.Write(ctx, DBLogs, "a", rec); !errors.Is(err, ErrNeedsMigration) {
		t.Errorf("write to an old lake: %v", err)
	}
	rec.Release()
	w2.Abort()

	// Interrupted after the first table.
	cctx, cancel := context.WithCancel(ctx)
	_, err = l.Migrate(cctx, func(db, table string, files int) { cancel() })
	if err == nil {
		t.Fatal("an interrupted migration reported no error")
	}
	st, err := l.Migrate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 || st.Tables != 1 || st.Writers != 1 {
		t.Errorf("resumed migration: %+v, want the second table's 3 files and the writer", st)
	}
	if st, err := l.Migrate(ctx, nil); err != nil || st != (MigrateStats{}) {
		t.Errorf("third migration: %+v, %v; want nothing to do", st, err)
	}
	if need, err := l.NeedsMigration(ctx); err != nil || need {
		t.Errorf("NeedsMigration after = %v, %v", need, err)
	}
	for _, table := range []string{"a", "b"} {
		if got := readTable(t, l, DBLogs, table); !slices.Equal(got, want[table]) {
			t.Errorf("%s after migration: %v, want %v", table, got, want[table])
		}
	}
	if meta, err := l.CommitMeta("serve"); err != nil || meta["wal"] != "2" {
		t.Errorf("CommitMeta after migration: %v, %v", meta, err)
	}
}
