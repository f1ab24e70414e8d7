package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/pgtest"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// TestSharedCatalogWriters: two machines (two local directories) write one lake in S3
// (moto_server) through one PostgreSQL catalog, each with a writer of the same name, as two
// osprey serve processes do. Their flushes, with commit metadata, land in the same table at
// the same time: every row is in the table once, and each machine's CommitMeta and flush
// numbers are its own, never the other's.
func TestSharedCatalogWriters(t *testing.T) {
	m := s3test.StartMoto(t)
	m.CreateBucket(t, "shared")
	m.SetEnv(t)
	dsn := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	machines := []string{"a", "b"}
	lakes := map[string]*Lake{}
	for _, name := range machines {
		l, err := OpenWith(ctx, Options{Dir: t.TempDir(), Location: "s3://shared/lake", Catalog: iceberg.Postgres, CatalogDSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		lakes[name] = l
	}
	if lakes["a"].node == "" || lakes["a"].node == lakes["b"].node {
		t.Fatalf("node ids %q and %q: want two, not empty", lakes["a"].node, lakes["b"].node)
	}

	// Each machine flushes its rows one at a time, recording how far it is, while the other
	// does the same into the same table and hours.
	const flushes = 12
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	writers := map[string]*Writer{}
	var wg sync.WaitGroup
	errs := make(chan error, len(machines))
	for _, name := range machines {
		opts := DefaultWriterOptions()
		opts.Name = "serve"
		w, err := lakes[name].NewWriter(opts)
		if err != nil {
			t.Fatal(err)
		}
		writers[name] = w
		wg.Go(func() {
			for i := range flushes {
				rec := buildRecord(t, []row{{name: ptr(fmt.Sprintf("%s-%d", name, i)), event: at.Add(time.Duration(i) * time.Minute)}})
				err := w.Write(ctx, DBLogs, "t", rec)
				rec.Release()
				if err == nil {
					err = w.FlushWith(ctx, map[string]string{"machine": name, "next": fmt.Sprint(i + 1)})
				}
				if err != nil {
					errs <- fmt.Errorf("machine %s, flush %d: %w", name, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for _, name := range machines {
		got, err := lakes[name].CommitMeta("serve")
		if want := map[string]string{"machine": name, "next": fmt.Sprint(flushes)}; err != nil || !maps.Equal(got, want) {
			t.Errorf("machine %s: CommitMeta = %v, %v, want %v", name, got, err, want)
		}
		// The writer's flush number is recorded under its machine's node: another machine's
		// writer whose directory has the same name is another writer.
		w := writers[name]
		cat, err := lakes[name].OpenCatalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := cat.Flushed(ctx, lakes[name].scoped(filepath.Base(w.tmp)))
		cat.Close()
		if err != nil || n != flushes {
			t.Errorf("machine %s: flush number %d, %v, want %d", name, n, err, flushes)
		}
	}

	// Every row once, whichever machine lists the table.
	var want []string
	for _, name := range machines {
		for i := range flushes {
			want = append(want, fmt.Sprintf("%s-%d", name, i))
		}
	}
	for _, name := range machines {
		if got := s3Names(t, lakes[name]); strings.Join(got, ",") != strings.Join(sortedCopy(want), ",") {
			t.Errorf("machine %s reads rows %v, want %v", name, got, sortedCopy(want))
		}
	}
	for _, name := range machines {
		if err := writers[name].Close(); err != nil {
			t.Error(err)
		}
	}
}

// s3Names returns the name column of every row of table t of a lake in an object store, sorted.
func s3Names(t *testing.T, l *Lake) []string {
	t.Helper()
	files, err := l.Files(context.Background(), DBLogs, "t")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out []string
	for _, f := range files {
		for _, r := range readFile(t, download(t, l, f, dir)) {
			out = append(out, fmt.Sprint(r["name"]))
		}
	}
	return sortedCopy(out)
}

// TestLostCompaction: a compaction whose files another compaction replaced first (serve's
// compactions on two machines of a shared catalog, or a retention) cannot commit, and never
// will. Its manifest is dropped: a writer that later finishes the manifests it finds
// (Recover after a failed flush, the cleanup after a crash) would otherwise try that commit
// again and fail, forever.
func TestLostCompaction(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	hour := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		rec := buildRecord(t, []row{{name: ptr(fmt.Sprint("r", i)), event: hour.Add(time.Duration(i) * time.Minute)}})
		err := w.Write(ctx, DBLogs, "t", rec)
		rec.Release()
		if err == nil {
			err = w.Flush(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	before := readTable(t, l, DBLogs, "t")
	paths, err := l.Files(ctx, DBLogs, "t")
	if err != nil {
		t.Fatal(err)
	}
	// Another writer merges the files first.
	other, err := l.NewWriter(DefaultWriterOptions())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := other.Compact(ctx, DBLogs, "t", hour.Add(24*time.Hour), 2); err != nil || st.FilesIn != 3 {
		t.Fatalf("compaction: %+v, %v", st, err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.compactFiles(DBLogs, "t", hour.Truncate(24*time.Hour), true, paths); !errors.Is(err, iceberg.ErrConflict) {
		t.Fatalf("compaction of files no longer in the table: %v, want a conflict", err)
	}
	if _, err := os.Stat(filepath.Join(w.tmp, manifestName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lost compaction's manifest is still there (%v)", err)
	}
	if err := w.Recover(); err != nil {
		t.Errorf("Recover after a lost compaction: %v", err)
	}
	if got := readTable(t, l, DBLogs, "t"); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Errorf("rows %v, want %v", got, before)
	}
}
