package lake

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/restcattest"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/ospreyhq/osprey/lake/objstore"
)

// openS3Lake opens a lake whose tables are in a bucket of a moto_server started for the test,
// reached through the AWS SDK's standard variables, with a catalog of kind (moto_server is
// Glue too).
func openS3Lake(t *testing.T, kind iceberg.Kind) (*Lake, *s3test.Moto) {
	t.Helper()
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "lake-bucket")
	m.SetEnv(t)
	o := Options{Dir: t.TempDir(), Location: "s3://lake-bucket/osprey/lake", Catalog: kind}
	if kind == iceberg.REST {
		// A server of the REST protocol over iceberg-go's SQL catalog: no open-source REST
		// catalog server can be installed here (see internal/restcattest).
		o.REST.URI = restcattest.Start(t, o.Location).URI
	}
	l, err := OpenWith(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return l, m
}

// download copies a lake's data file from its object store into dir.
func download(t testing.TB, l *Lake, loc, dir string) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := l.Store().Get(context.Background(), loc, &b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(loc))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestS3Lake: a lake whose tables are in S3 takes flushes, compaction and retention there,
// and keeps no data file of its own; with its catalog in the lake's directory, in Glue, whose
// tables carry what Athena reads, and in an Iceberg REST catalog.
func TestS3Lake(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testS3Lake(t, iceberg.SQLite) })
	t.Run("rest", func(t *testing.T) { testS3Lake(t, iceberg.REST) })
	t.Run("glue", func(t *testing.T) {
		l := testS3Lake(t, iceberg.Glue)
		cfg, err := l.Options().AWS.Config(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out, err := glue.NewFromConfig(cfg).GetTable(context.Background(), &glue.GetTableInput{DatabaseName: aws.String(DBLogs), Name: aws.String("t")})
		if err != nil {
			t.Fatal(err)
		}
		cat, err := l.OpenCatalog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer cat.Close()
		ptrs, err := cat.Current(context.Background())
		if err != nil || len(ptrs) != 1 {
			t.Fatalf("current tables %v, %v", ptrs, err)
		}
		p := out.Table.Parameters
		if !strings.EqualFold(p["table_type"], "ICEBERG") || p["metadata_location"] != ptrs[0].Location || !strings.HasPrefix(p["metadata_location"], "s3://lake-bucket/osprey/lake/panther_logs/t/metadata/") {
			t.Errorf("glue table parameters %v, want table_type ICEBERG and metadata_location %s", p, ptrs[0].Location)
		}
		if loc := aws.ToString(out.Table.StorageDescriptor.Location); loc != "s3://lake-bucket/osprey/lake/panther_logs/t" {
			t.Errorf("glue table location %s", loc)
		}
	})
}

func testS3Lake(t *testing.T, kind iceberg.Kind) *Lake {
	t.Helper()
	l, _ := openS3Lake(t, kind)
	ctx := context.Background()
	opts := DefaultWriterOptions()
	opts.Name = "test"
	w, err := l.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour)
	current := time.Now().UTC().Add(-time.Minute)
	var want []string
	for i := range 4 {
		rec := buildRecord(t, []row{
			{name: ptr(fmt.Sprint("old", i)), uid: ptr(int64(i)), event: old.Add(time.Duration(i) * time.Minute)},
			{name: ptr(fmt.Sprint("new", i)), uid: ptr(int64(10 + i)), event: current},
		})
		if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := w.FlushWith(ctx, map[string]string{"flush": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("old", i), fmt.Sprint("new", i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if meta, err := l.CommitMeta("test"); err != nil || meta["flush"] != "3" {
		t.Errorf("commit metadata %v (%v), want that of the last flush", meta, err)
	}
	names := func() []string {
		t.Helper()
		files, err := l.Files(ctx, DBLogs, "t")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var out []string
		for _, f := range files {
			if !strings.HasPrefix(f, "s3://lake-bucket/osprey/lake/panther_logs/t/year=") {
				t.Errorf("data file %s is not in the lake's bucket", f)
				continue
			}
			for _, r := range readFile(t, download(t, l, f, dir)) {
				out = append(out, fmt.Sprint(r["name"]))
			}
		}
		return sortedCopy(out)
	}
	if got := names(); strings.Join(got, ",") != strings.Join(sortedCopy(want), ",") {
		t.Fatalf("rows %v, want %v", got, sortedCopy(want))
	}
	if files, _ := l.Files(ctx, DBLogs, "t"); len(files) != 8 {
		t.Errorf("%d files, want 8 (4 flushes of two days)", len(files))
	}
	// The local directory keeps state, not data.
	filepath.WalkDir(l.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "schemas") {
			t.Errorf("data file %s in the local directory", p)
		}
		return nil
	})
	// Metadata is in the bucket too.
	var metadata int
	if err := l.Store().Walk(ctx, l.Store().Location("panther_logs/t/metadata/"), func(o objstore.Object) error {
		metadata++
		return nil
	}); err != nil || metadata == 0 {
		t.Errorf("%d metadata objects in the bucket (%v)", metadata, err)
	}

	// Compaction merges the past day's four files into one, in the bucket.
	w2, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	st, err := w2.Compact(ctx, DBLogs, "t", current.Add(-time.Hour), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if st.FilesIn != 4 || st.FilesOut != 1 || st.Rows != 4 {
		t.Errorf("compaction %+v, want 4 files of 4 rows into 1", st)
	}
	if got := names(); strings.Join(got, ",") != strings.Join(sortedCopy(want), ",") {
		t.Fatalf("after compaction, rows %v, want %v", got, sortedCopy(want))
	}

	// Retention of two days drops the past day's file from the table, and the files no
	// snapshot references are deleted from the bucket once old enough.
	keep := func(db, table string) time.Duration { return 48 * time.Hour }
	if _, _, err := l.Expire(ctx, keep, time.Now()); err != nil {
		t.Fatal(err)
	}
	var wantNew []string
	for i := range 4 {
		wantNew = append(wantNew, fmt.Sprint("new", i))
	}
	if got := names(); strings.Join(got, ",") != strings.Join(sortedCopy(wantNew), ",") {
		t.Fatalf("after retention, rows %v, want %v", got, wantNew)
	}
	countData := func() int {
		n := 0
		l.Store().Walk(ctx, l.Store().Location("panther_logs/t/year="), func(o objstore.Object) error {
			n++
			return nil
		})
		return n
	}
	before := countData()
	if _, _, err := l.Expire(ctx, keep, time.Now().Add(2*OrphanAge)); err != nil {
		t.Fatal(err)
	}
	// moto stamps objects with the real time: orphans are "old" only to a later now. Expire
	// takes now for retention, and the orphan age from the objects' own times, so the files
	// dropped an instant ago stay.
	if after := countData(); after > before {
		t.Errorf("%d data objects after expiry, %d before", after, before)
	}
	return l
}

// sortedCopy returns the strings of s sorted, leaving s as it is.
func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestCopyToS3: Copy puts a local lake's tables into a lake in S3 (the same rows, the tables'
// columns for a machine that did not write them), and a second Copy copies nothing again.
func TestCopyToS3(t *testing.T) {
	dst, _ := openS3Lake(t, iceberg.SQLite)
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := src.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var want []string
	for i := range 3 {
		rec := buildRecord(t, []row{{name: ptr(fmt.Sprint("r", i)), uid: ptr(int64(i)), event: day.Add(time.Duration(i) * 24 * time.Hour)}})
		if err := w.Write(ctx, DBLogs, "t", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("r", i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := src.Copy(ctx, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tables != 1 || st.Files != 3 || st.Rows != 3 {
		t.Errorf("copied %+v, want 1 table, 3 files of 3 rows", st)
	}
	files, err := dst.Files(ctx, DBLogs, "t")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	dir := t.TempDir()
	for _, f := range files {
		if !strings.HasPrefix(f, "s3://lake-bucket/osprey/lake/panther_logs/t/year=2026/") {
			t.Errorf("copied file %s is not under the lake's location", f)
		}
		for _, r := range readFile(t, download(t, dst, f, dir)) {
			got = append(got, fmt.Sprint(r["name"]))
		}
	}
	if strings.Join(sortedCopy(got), ",") != strings.Join(want, ",") {
		t.Errorf("rows %v, want %v", sortedCopy(got), want)
	}
	if sig, err := dst.TableSignature(DBLogs, "t"); err != nil || sig == "" {
		t.Errorf("the copy has no columns of the table: %q, %v", sig, err)
	}
	if st, err := src.Copy(ctx, dst, nil); err != nil || st.Files != 0 || st.Tables != 0 {
		t.Errorf("a second copy: %+v, %v; want nothing copied", st, err)
	}
}
