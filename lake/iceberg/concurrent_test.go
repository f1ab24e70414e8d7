package iceberg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/catalog"

	"github.com/ospreyhq/osprey/internal/pgtest"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// otherTable is the second table of the concurrency tests: a flush writes to both.
const otherTable = "test_other"

// tableFile writes a small lake file named name.parquet to tbl's directory and returns its path.
func tableFile(t testing.TB, dir, tbl, name string, seed uint64) string {
	t.Helper()
	at := day0.Add(time.Duration(seed%24) * time.Hour)
	return writeTableFile(t, dir, tbl, at, name, batch(t, seed, 3, at, time.Hour))
}

// opener opens a lake's catalog: the embedded one (iceberg.Open), or one of PostgreSQL.
type opener func(ctx context.Context, dir string) (*iceberg.Catalog, error)

// postgresCatalogs returns an opener of catalogs in a new database of a PostgreSQL server
// started for the test.
func postgresCatalogs(t *testing.T) opener {
	dsn := pgtest.Start(t).NewDatabase(t)
	return func(ctx context.Context, dir string) (*iceberg.Catalog, error) {
		return iceberg.OpenWith(ctx, iceberg.Options{Dir: dir, Kind: iceberg.Postgres, DSN: dsn})
	}
}

// openWith opens a catalog for the rest of the test.
func openWith(t testing.TB, open opener, dir string) *iceberg.Catalog {
	t.Helper()
	c, err := open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// twoTables creates testTable and otherTable in a new lake and returns its directory.
func twoTables(t *testing.T) string { return twoTablesWith(t, iceberg.Open) }

func twoTablesWith(t *testing.T, open opener) string {
	dir := t.TempDir()
	c := openWith(t, open, dir)
	for _, tbl := range []string{testTable, otherTable} {
		if err := c.CreateTable(t.Context(), testDB, tbl, testSchema()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func currentPaths(t *testing.T, c *iceberg.Catalog, tbl string) []string {
	t.Helper()
	files, err := c.CurrentFiles(t.Context(), testDB, tbl)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	return paths
}

// TestOpenConcurrent: processes that open a new lake at once (osprey serve and osprey ingest
// started together) all open its catalog, and all but one find the table the first created.
func TestOpenConcurrent(t *testing.T) {
	const lakes, openers = 50, 16
	for range lakes {
		dir := t.TempDir()
		errs := make(chan error, openers)
		var wg sync.WaitGroup
		for range openers {
			wg.Go(func() {
				c, err := iceberg.Open(t.Context(), dir)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				err = c.CreateTable(t.Context(), testDB, testTable, testSchema())
				if errors.Is(err, catalog.ErrTableAlreadyExists) {
					err = nil
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		c := openCatalog(t, dir)
		if ok, err := c.HasTable(t.Context(), testDB, testTable); err != nil || !ok {
			t.Fatalf("the table is not in the catalog: %v, %v", ok, err)
		}
	}
}

// TestConcurrentCommits: writers with a catalog each (as separate processes have) commit to the
// same table and to two tables at once, at the same time. Every commit succeeds (Commit stages
// again on the tables as they are now when another won), each table ends with exactly every
// file once, and each writer's record is its last commit. Nothing is logged: a commit that lost
// a race removes nothing, so iceberg-go has no file already gone to warn of.
func TestConcurrentCommits(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testConcurrentCommits(t, iceberg.Open) })
	t.Run("postgres", func(t *testing.T) { testConcurrentCommits(t, postgresCatalogs(t)) })
}

func testConcurrentCommits(t *testing.T, open opener) {
	const writers, commits = 4, 8
	dir := twoTablesWith(t, open)
	var logged bytes.Buffer // iceberg-go logs with the standard logger, which locks around writes
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	// Commit j of writer w adds a file to testTable, and for odd j one to otherTable in the same
	// commit. The files are written before the writers start (t.Fatal belongs to this goroutine).
	type commit struct{ a, b string }
	plan := make([][]commit, writers)
	var wantA, wantB []string
	for w := range writers {
		for j := range commits {
			seed := uint64(w*commits + j)
			c := commit{a: tableFile(t, dir, testTable, fmt.Sprintf("w%d-c%d", w, j), seed)}
			wantA = append(wantA, c.a)
			if j%2 == 1 {
				c.b = tableFile(t, dir, otherTable, fmt.Sprintf("w%d-c%d", w, j), seed)
				wantB = append(wantB, c.b)
			}
			plan[w] = append(plan[w], c)
		}
	}

	ctx := t.Context()
	errs := make(chan error, writers*commits)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c, err := open(ctx, dir)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			writer := fmt.Sprintf("writer-%d", w)
			for j, cm := range plan[w] {
				changes := []iceberg.Change{{DB: testDB, Table: testTable, Add: []string{cm.a}}}
				if cm.b != "" {
					changes = append(changes, iceberg.Change{DB: testDB, Table: otherTable, Add: []string{cm.b}})
				}
				rec := iceberg.Record{Writer: writer, Meta: map[string]string{"commit": strconv.Itoa(j)}, Instance: writer, Flush: int64(j)}
				if err := c.Commit(ctx, changes, rec); err != nil {
					errs <- fmt.Errorf("%s commit %d: %w", writer, j, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	log.SetOutput(os.Stderr)
	if logged.Len() > 0 {
		t.Errorf("commits logged:\n%s", logged.String())
	}

	c := openWith(t, open, dir)
	slices.Sort(wantA)
	slices.Sort(wantB)
	for _, tc := range []struct {
		tbl  string
		want []string
	}{{testTable, wantA}, {otherTable, wantB}} {
		if got := currentPaths(t, c, tc.tbl); !slices.Equal(got, tc.want) {
			t.Errorf("%s holds %d files, want the %d committed once each:\ngot  %v\nwant %v", tc.tbl, len(got), len(tc.want), got, tc.want)
		}
	}
	for w := range writers {
		writer := fmt.Sprintf("writer-%d", w)
		meta, err := c.Meta(ctx, writer)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := meta["commit"], strconv.Itoa(commits-1); got != want {
			t.Errorf("%s's recorded commit %q, want %q", writer, got, want)
		}
		n, err := c.Flushed(ctx, writer)
		if err != nil {
			t.Fatal(err)
		}
		if n != commits-1 {
			t.Errorf("%s flushed %d, want %d", writer, n, commits-1)
		}
	}
}

// TestNoHalfFlush: while a writer commits flushes that each add a file to two tables, a reader
// with a catalog of its own reads the tables' current pointers (Catalog.Current) and their files,
// again and again: it never sees one table's file of a flush without the other's.
func TestNoHalfFlush(t *testing.T) {
	const flushes = 40
	dir := twoTables(t)
	type flush struct{ a, b string }
	var plan []flush
	for k := range flushes {
		name := fmt.Sprintf("flush-%03d", k)
		plan = append(plan, flush{tableFile(t, dir, testTable, name, uint64(k)), tableFile(t, dir, otherTable, name, uint64(k))})
	}

	ctx, cancel := context.WithCancel(t.Context())
	writerErr := make(chan error, 1)
	defer func() {
		cancel()
		// The writer is done before the test's directory is removed; it fails with Canceled
		// only when the reader stopped it.
		if err := <-writerErr; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}()
	go func() {
		defer cancel() // the reader stops once the last flush is committed
		c, err := iceberg.Open(ctx, dir)
		if err != nil {
			writerErr <- err
			return
		}
		defer c.Close()
		for k, f := range plan {
			err := c.Commit(ctx, []iceberg.Change{
				{DB: testDB, Table: testTable, Add: []string{f.a}},
				{DB: testDB, Table: otherTable, Add: []string{f.b}},
			}, iceberg.Record{Instance: "w", Flush: int64(k)})
			if err != nil {
				writerErr <- fmt.Errorf("flush %d: %w", k, err)
				return
			}
		}
		writerErr <- nil
	}()

	r := openCatalog(t, dir)
	// flushesIn returns the flushes whose files a table's snapshot holds.
	flushesIn := func(p iceberg.Pointer) ([]string, error) {
		files, err := r.FilesAt(t.Context(), p.DB, p.Table, p.Location)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(files))
		for i, f := range files {
			out[i] = strings.TrimSuffix(filepath.Base(f.Path), ".parquet")
		}
		slices.Sort(out)
		return out, nil
	}
	reads, partial := 0, 0
	for ctx.Err() == nil {
		ptrs, err := r.Current(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ptrs) != 2 || ptrs[0].Table != testTable || ptrs[1].Table != otherTable {
			t.Fatalf("Current returned %v, want %s and %s", ptrs, testTable, otherTable)
		}
		a, err := flushesIn(ptrs[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := flushesIn(ptrs[1])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Errorf("read %d saw half a flush: %s holds %v, %s holds %v", reads, testTable, a, otherTable, b)
			return
		}
		reads++
		if len(a) > 0 && len(a) < flushes {
			partial++
		}
	}
	t.Logf("%d reads, %d of them between the first and the last flush", reads, partial)
}
