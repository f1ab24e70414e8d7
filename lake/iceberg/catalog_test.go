package iceberg_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/catalog"
	"github.com/parquet-go/parquet-go"

	"github.com/ospreyhq/osprey/internal/disktest"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

const (
	testDB    = "panther_logs"
	testTable = "test_audit"
)

var (
	tsType   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})
	plain    = arrow.NewMetadata([]string{lake.EncodingKey}, []string{"plain"})
)

// testSchema is a table of the kind package lake writes: every type it uses.
func testSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "p_log_type", Type: arrow.BinaryTypes.String},
		{Name: "p_row_id", Type: arrow.BinaryTypes.String, Metadata: plain},
		{Name: "p_event_time", Type: tsType},
		{Name: "p_parse_time", Type: tsType},
		{Name: "action", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "agent", Type: arrow.BinaryTypes.String, Nullable: true}, // long and distinct: no bounds
		{Name: "count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "small", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "mid", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "ratio", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "detail", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "src", Type: arrow.StructOf(
			arrow.Field{Name: "ip", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "port", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		), Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "never", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, // always null
	}, nil)
}

// batch builds n rows with event times spread over [from, from+span), from a seeded generator.
func batch(t testing.TB, seed uint64, n int, from time.Time, span time.Duration) arrow.RecordBatch {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema())
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	null := func() bool { return r.IntN(5) == 0 }
	for i := range n {
		str(0).Append("Test.Audit")
		str(1).Append(fmt.Sprintf("row-%d-%d", seed, i))
		et := from.Add(time.Duration(r.Int64N(int64(span))))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(et.UnixMicro()))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(et.Add(time.Minute).UnixMicro()))
		if null() {
			str(4).AppendNull()
		} else {
			str(4).Append([]string{"Login", "Logout", "CreateUser", "DeleteUser"}[r.IntN(4)])
		}
		if null() {
			str(5).AppendNull()
		} else {
			str(5).Append(fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) %d", r.Int64()))
		}
		if null() {
			for f := 6; f <= 9; f++ {
				b.Field(f).AppendNull()
			}
		} else {
			v := r.Int64N(2_000_000) - 1_000_000
			b.Field(6).(*array.Int64Builder).Append(v * 1_000_000)
			b.Field(7).(*array.Int16Builder).Append(int16(v % 30_000))
			b.Field(8).(*array.Int32Builder).Append(int32(v))
			b.Field(9).(*array.Float64Builder).Append(float64(v) / 3)
		}
		if null() {
			b.Field(10).AppendNull()
		} else {
			b.Field(10).(*array.BooleanBuilder).Append(r.IntN(2) == 0)
		}
		if null() {
			str(11).AppendNull()
		} else {
			str(11).Append(fmt.Sprintf(`{"k":%d}`, r.IntN(10)))
		}
		sb := b.Field(12).(*array.StructBuilder)
		if null() {
			sb.AppendNull()
		} else {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("10.0.0.%d", r.IntN(20)))
			if null() {
				sb.FieldBuilder(1).AppendNull()
			} else {
				sb.FieldBuilder(1).(*array.Int32Builder).Append(int32(r.IntN(65536)))
			}
		}
		lb := b.Field(13).(*array.ListBuilder)
		if null() {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for range r.IntN(3) {
				lb.ValueBuilder().(*array.StringBuilder).Append([]string{"a", "b", "c"}[r.IntN(3)])
			}
		}
		b.Field(14).AppendNull()
	}
	return b.NewRecordBatch()
}

// writeLakeFile writes batches with the lake's encoder to a file of the table's hour directory,
// one row group per batch, and returns its path.
func writeLakeFile(t testing.TB, dir string, hour time.Time, name string, recs ...arrow.RecordBatch) string {
	t.Helper()
	return writeTableFile(t, dir, testTable, hour, name, recs...)
}

// writeTableFile is writeLakeFile into the table tbl of testDB; it releases the batches.
func writeTableFile(t testing.TB, dir, tbl string, hour time.Time, name string, recs ...arrow.RecordBatch) string {
	t.Helper()
	path := filepath.Join(dir, testDB, tbl, lake.PartitionPath(hour), name+".parquet")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw, err := lake.NewFileWriter(f, testSchema())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func openCatalog(t testing.TB, dir string) *iceberg.Catalog {
	t.Helper()
	c, err := iceberg.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func createTable(t testing.TB, c *iceberg.Catalog) {
	t.Helper()
	if err := c.CreateTable(t.Context(), testDB, testTable, testSchema()); err != nil {
		t.Fatal(err)
	}
}

var day0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// lakeFiles writes files over three days: two files of two row groups on day 0 (hours 3 and
// 20), one on day 1 (hour 12) and one on day 2 spanning most of the day. It returns them by day.
func lakeFiles(t testing.TB, dir string) [][]string {
	h := func(day, hour int) time.Time { return day0.AddDate(0, 0, day).Add(time.Duration(hour) * time.Hour) }
	return [][]string{
		{
			writeLakeFile(t, dir, h(0, 3), "a", batch(t, 1, 300, h(0, 3), time.Hour), batch(t, 2, 200, h(0, 3), time.Hour)),
			writeLakeFile(t, dir, h(0, 20), "b", batch(t, 3, 2000, h(0, 20), time.Hour), batch(t, 4, 100, h(0, 20), time.Hour)),
		},
		{writeLakeFile(t, dir, h(1, 12), "c", batch(t, 5, 700, h(1, 12), time.Hour))},
		{writeLakeFile(t, dir, h(2, 0), "d", batch(t, 6, 1500, h(2, 1), 22*time.Hour))},
	}
}

func TestRegisterPlanReload(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	if err := c.CreateTable(ctx, testDB, testTable, testSchema()); !errors.Is(err, catalog.ErrTableAlreadyExists) {
		t.Fatalf("second CreateTable: %v, want ErrTableAlreadyExists", err)
	}
	days := lakeFiles(t, dir)
	if err := c.Register(ctx, testDB, testTable, days[0], map[string]string{"osprey.wal": "10"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, testDB, testTable, slices.Concat(days[1], days[2]), map[string]string{"osprey.wal": "20"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = openCatalog(t, dir) // a fresh catalog reads everything back from the lake
	plan := func(from, to time.Time) []string {
		t.Helper()
		got, err := c.Plan(ctx, testDB, testTable, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"all", time.Time{}, time.Time{}, slices.Concat(days...)},
		{"day 1", day0.AddDate(0, 0, 1), day0.AddDate(0, 0, 2), days[1]},
		{"day 0 hour 20, pruned by bounds", day0.Add(20 * time.Hour), day0.Add(21 * time.Hour), days[0][1:]},
		{"from day 1 on", day0.AddDate(0, 0, 1), time.Time{}, slices.Concat(days[1], days[2])},
		{"before day 0", time.Time{}, day0, nil},
		{"between two files", day0.AddDate(0, 0, 1).Add(13 * time.Hour), day0.AddDate(0, 0, 2).Add(time.Hour), nil},
	} {
		got := plan(tc.from, tc.to)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: planned %v, want %v", tc.name, got, tc.want)
		}
	}

	tbl, err := c.Table(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	snap := tbl.CurrentSnapshot()
	if got := snap.Summary.Properties["osprey.wal"]; got != "20" {
		t.Errorf("last snapshot's osprey.wal = %q, want 20", got)
	}
	if got := len(tbl.Metadata().Snapshots()); got != 2 {
		t.Errorf("%d snapshots, want 2 (one per Register)", got)
	}
	if v := tbl.Metadata().Version(); v != 2 {
		t.Errorf("format version %d, want 2", v)
	}
	spec := tbl.Spec()
	if spec.NumFields() != 1 || spec.Field(0).Transform.String() != "day" {
		t.Errorf("partition spec %v, want day(p_event_time)", spec)
	} else if src, _ := tbl.Schema().FindFieldByID(spec.Field(0).SourceID()); src.Name != iceberg.EventTime {
		t.Errorf("partition on %s, want %s", src.Name, iceberg.EventTime)
	}
	if got, want := tbl.Location(), c.Location(testDB, testTable); got != want {
		t.Errorf("table location %s, want %s", got, want)
	}
	meta := tbl.MetadataLocation()
	if !strings.HasPrefix(meta, filepath.Join(c.Location(testDB, testTable), "metadata")+"/") {
		t.Errorf("metadata %s not in the table's metadata directory", meta)
	}
	if _, err := os.Stat(iceberg.CatalogFile(dir)); err != nil {
		t.Error(err)
	}
	var mode string
	var sync int
	if err := iceberg.DBOf(c).QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := iceberg.DBOf(c).QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 {
		t.Errorf("catalog journal_mode %s, synchronous %d; want wal, 2 (FULL)", mode, sync)
	}

	// A reader of the planned files finds exactly the day's rows.
	var rows int64
	for _, p := range plan(day0.AddDate(0, 0, 2), day0.AddDate(0, 0, 3)) {
		rows += countRows(t, p)
	}
	if rows != 1500 {
		t.Errorf("day 2's planned files hold %d rows, want 1500", rows)
	}
}

func countRows(t testing.TB, path string) int64 {
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
	return pf.NumRows()
}

func TestPlanUnknownTable(t *testing.T) {
	c := openCatalog(t, t.TempDir())
	if _, err := c.Plan(t.Context(), testDB, "nope", time.Time{}, time.Time{}); !errors.Is(err, iceberg.ErrNoTable) {
		t.Fatalf("Plan of a missing table: %v, want ErrNoTable", err)
	}
}

func TestCreateTableRefuses(t *testing.T) {
	c := openCatalog(t, t.TempDir())
	mk := func(fields ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fields, nil) }
	for _, tc := range []struct {
		name   string
		schema *arrow.Schema
		want   string
	}{
		{"no event time", mk(arrow.Field{Name: "x", Type: arrow.BinaryTypes.String}), "needs one p_event_time"},
		{"millis", mk(arrow.Field{Name: "p_event_time", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}}), "microseconds UTC"},
		{"local time", mk(arrow.Field{Name: "p_event_time", Type: tsType},
			arrow.Field{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond}})}), "column s.t"},
	} {
		err := c.CreateTable(t.Context(), testDB, "t", tc.schema)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestPlanSubMicrosecond: rows hold microseconds, so a range ending inside the microsecond of a
// row holds it.
func TestPlanSubMicrosecond(t *testing.T) {
	dir := t.TempDir()
	c := openCatalog(t, dir)
	createTable(t, c)
	at := day0.Add(5 * time.Hour)
	path := writeLakeFile(t, dir, at, "one", batch(t, 1, 1, at, time.Nanosecond))
	if err := c.Register(t.Context(), testDB, testTable, []string{path}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		to   time.Time
		want int
	}{{at, 0}, {at.Add(500 * time.Nanosecond), 1}, {at.Add(time.Microsecond), 1}} {
		got, err := c.Plan(t.Context(), testDB, testTable, day0, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("plan to %s: %d files, want %d", tc.to.Format(time.RFC3339Nano), len(got), tc.want)
		}
	}
}

// TestMetadataBounded: the table's properties keep the metadata files of the last versions
// only, and merge manifests.
func TestMetadataBounded(t *testing.T) {
	dir := t.TempDir()
	c := openCatalog(t, dir)
	createTable(t, c)
	at := day0.Add(5 * time.Hour)
	path := writeLakeFile(t, dir, at, "one", batch(t, 1, 10, at, time.Hour))
	const commits = 60
	for range commits {
		// The same file each time: Register does not check, and the metadata costs the same.
		if err := c.Register(t.Context(), testDB, testTable, []string{path}, nil); err != nil {
			t.Fatal(err)
		}
	}
	versions, err := filepath.Glob(filepath.Join(c.Location(testDB, testTable), "metadata", "*.metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) > 11 {
		t.Errorf("%d metadata.json files after %d commits, want at most 11", len(versions), commits)
	}
	tbl, err := c.Table(t.Context(), testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := tbl.FS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) >= commits {
		t.Errorf("%d manifests in the snapshot after %d commits: not merged", len(manifests), commits)
	}
}

// TestReadByIcebird reads a table with icebird (tools/parquet-check/iceberg.mjs), an
// implementation of Iceberg that is neither iceberg-go nor osprey's: it finds every row of the
// files registered, through the metadata, manifest lists and manifests iceberg-go wrote.
func TestReadByIcebird(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the table is not read with icebird")
	}
	tool, err := filepath.Abs(filepath.Join("..", "..", "tools", "parquet-check"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "icebird")); err != nil {
		t.Fatalf("icebird is not installed: run `make tools` (npm ci in %s)", tool)
	}
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	days := lakeFiles(t, dir)
	for _, files := range days {
		if err := c.Register(ctx, testDB, testTable, files, nil); err != nil {
			t.Fatal(err)
		}
	}
	var want int64
	for _, p := range slices.Concat(days...) {
		want += countRows(t, p)
	}
	tbl, err := c.Table(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	meta := tbl.MetadataLocation()
	out, err := exec.Command(node, filepath.Join(tool, "iceberg.mjs"), c.Location(testDB, testTable), filepath.Base(meta)).CombinedOutput()
	if err != nil {
		t.Fatalf("icebird: %v\n%s", err, out)
	}
	var got struct {
		Rows int64 `json:"rows"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("icebird's output %q: %v", out, err)
	}
	if got.Rows != want {
		t.Errorf("icebird read %d rows, want the %d of the files registered", got.Rows, want)
	}
}

// TestCatalogDiskFull: a catalog that cannot write because its disk is full (SQLite's
// SQLITE_FULL) fails with an error that is syscall.ENOSPC, as the file system's own are, so
// that osprey serve reports a full disk and retries.
func TestCatalogDiskFull(t *testing.T) {
	dir := disktest.Tmpfs(t, "8m")
	c := openCatalog(t, dir)
	disktest.Fill(t, dir, 4<<10)
	err := c.CreateTable(t.Context(), testDB, testTable, testSchema())
	if err == nil {
		t.Fatal("created a table on a full disk")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error %v is not ENOSPC", err)
	}
}
