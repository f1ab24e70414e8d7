package iceberg_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// TestMetadataStaysSmall commits flush after flush, one new file each, with Expire every
// expireEvery commits as serve's maintenance runs it, and checks that what a commit adds to the
// metadata does not stay: snapshots are expired on commit past a number, old metadata.json
// files are deleted past write.metadata.previous-versions-max, and Expire removes the manifests
// and manifest lists of expired snapshots, and only those: every file registered is still in
// the table and on disk.
//
// It is BenchmarkCommits's policy scaled down to run in seconds (the figures of 10,000 commits
// are the benchmark's): expiry past 20 snapshots keeping 5 instead of past expireAbove keeping
// keepSnapshots, and no age, as minutes of flushes are made in seconds here.
func TestMetadataStaysSmall(t *testing.T) {
	const (
		commits     = 60
		expireEvery = 30
		above, keep = 20, 5
	)
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	iceberg.SetExpiry(c, above, keep, 0)
	versionsMax, err := strconv.Atoi(iceberg.TableProperties["write.metadata.previous-versions-max"])
	if err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(c.Location(testDB, testTable), "metadata")
	var mostSnapshots, mostVersions int
	var paths []string
	for i := range commits {
		from := day0.Add(time.Duration(i) * 5 * time.Second)
		path := writeLakeFile(t, dir, from, fmt.Sprintf("f%04d", i), batch(t, uint64(i), 3, from, 5*time.Second))
		paths = append(paths, path)
		rec := iceberg.Record{Writer: "serve", Meta: map[string]string{"wal.next": strconv.Itoa(i + 1)}, Instance: "test", Flush: int64(i + 1)}
		if err := c.Commit(ctx, []iceberg.Change{{DB: testDB, Table: testTable, Add: []string{path}}}, rec); err != nil {
			t.Fatal(err)
		}
		tbl, err := c.Table(ctx, testDB, testTable)
		if err != nil {
			t.Fatal(err)
		}
		mostSnapshots = max(mostSnapshots, len(tbl.Metadata().Snapshots()))
		versions, err := filepath.Glob(filepath.Join(meta, "*.metadata.json"))
		if err != nil {
			t.Fatal(err)
		}
		mostVersions = max(mostVersions, len(versions))
		if (i+1)%expireEvery == 0 {
			if _, err := c.Expire(ctx, testDB, testTable, time.Time{}, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := above + 1; mostSnapshots > want {
		t.Errorf("%d snapshots at most over %d commits, want at most %d", mostSnapshots, commits, want)
	}
	if want := versionsMax + 2; mostVersions > want {
		t.Errorf("%d metadata.json files at most over %d commits, want at most %d", mostVersions, commits, want)
	}

	st, err := c.Status(ctx, testDB, testTable)
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshots > keep {
		t.Errorf("%d snapshots after Expire, want at most %d", st.Snapshots, keep)
	}
	// What the snapshots kept reference: the last metadata.json files, a manifest list each,
	// and their manifests: a merged one and one a commit since the last merge (a merge happens
	// every min-count-to-merge manifests).
	minMerge, err := strconv.Atoi(iceberg.TableProperties["commit.manifest.min-count-to-merge"])
	if err != nil {
		t.Fatal(err)
	}
	if want := versionsMax + 1 + keep + minMerge; st.MetadataFiles > want {
		t.Errorf("%d metadata files after Expire, want at most %d", st.MetadataFiles, want)
	}
	if st.Files != commits {
		t.Errorf("%d files in the table, want the %d registered", st.Files, commits)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a registered file is gone: %v", err)
		}
	}
}

// TestSnapshotsCapped commits faster than the age that protects snapshots from expiry (a bulk
// load), and checks that past the cap commits keep only the last few whatever their age, so
// that the metadata file every commit rewrites stays small.
func TestSnapshotsCapped(t *testing.T) {
	const (
		commits          = 40
		above, keep, cap = 10, 2, 25
	)
	dir := t.TempDir()
	ctx := t.Context()
	c := openCatalog(t, dir)
	createTable(t, c)
	iceberg.SetExpiry(c, above, keep, time.Hour) // no snapshot is old enough to expire by age
	iceberg.SetMaxSnapshots(c, cap)
	most := 0
	for i := range commits {
		from := day0.Add(time.Duration(i) * 5 * time.Second)
		path := writeLakeFile(t, dir, from, fmt.Sprintf("f%04d", i), batch(t, uint64(i), 3, from, 5*time.Second))
		if err := c.Register(ctx, testDB, testTable, []string{path}, nil); err != nil {
			t.Fatal(err)
		}
		tbl, err := c.Table(ctx, testDB, testTable)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(tbl.Metadata().Snapshots()))
	}
	if most > cap+1 {
		t.Errorf("%d snapshots at most over %d commits, want at most %d", most, commits, cap+1)
	}
	if st, err := c.Status(ctx, testDB, testTable); err != nil || st.Files != commits {
		t.Errorf("status %+v, %v: want the %d files registered", st, err, commits)
	}
}
