package iceberg_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// BenchmarkCommits commits as serve's lake writer does, one flush after another: each commit
// registers one new small file (written with the lake's encoder, outside the timed part) through
// Catalog.Commit with the writer's record, and every expireEvery commits Expire runs as serve's
// maintenance would (no retention, orphans of any age removed), timed apart. It reports the
// commits' p50 and p99, Expire's p50 and max, the table's metadata directory and snapshots at the
// end (and the directory's largest size, sampled before each Expire), the catalog database, and
// the live heap after runtime.GC() at the end and at its largest (sampled after each Expire).
//
//	go test -run '^$' -bench Commits -benchtime=10000x ./lake/iceberg/
//
// Snapshots younger than keepSnapshotsFor (10 minutes) are never expired, so that a query that
// began on one can still read its files. This benchmark makes in minutes the commits a daemon
// makes in hours, and with that age every snapshot it makes would be young and kept (10,000 of
// them, in a metadata.json each commit parses and rewrites): it sets the age to 0, keeping
// expireAbove and keepSnapshots, and so measures the floor, 21 to 101 snapshots. A daemon that
// flushes every F seconds keeps 600/F snapshots more (120 at F = 5 s), about 0.8 KB each in each
// of the 11 metadata.json files kept (about 1 MB at F = 5 s), and a manifest list each (3 KB)
// until Expire removes them.
//
// Measured on the 2-core machine while others' tests ran (load average 8 to 12), 10,000 commits
// of 20 rows, 7m37s:
//
//	commit p50 22.7 ms, p99 483 ms (last 1,000: p50 19.4 ms, p99 735 ms)
//	expire p50 782 ms, max 1,420 ms
//	metadata at the end 4.4 MB in 84 files (metadata.json 21 KB, 20 snapshots),
//	  26.8 MB at most (before an Expire)
//	catalog.db 36 KB and its WAL 4.1 MB (SQLite checkpoints it every 1,000 pages)
//	heap in use 9.1 MB at the end, 9.1 MB at most: nothing grows with the commits
//
// What grows is the data files' entries: no compaction runs here, so the table holds 10,000 files
// at the end, about 200 bytes of manifest each. Every 49th commit (commit.manifest.min-count-
// to-merge is 50) merges the manifests, rewriting every entry into a new one (2 MB at the end):
// those commits are the p99, and the merged manifests they replace are on disk until Expire
// removes them once no kept snapshot references them (about ten between two Expire calls: the
// 26.8 MB). Both scale with the table's files, which compaction bounds: a closed day's files
// become one, and one entry.
func BenchmarkCommits(b *testing.B) {
	const (
		rows        = 20              // rows a flush writes
		flushSpan   = 5 * time.Second // event time a flush covers
		expireEvery = 500             // commits between two Expire calls
	)
	dir := b.TempDir()
	c := openCatalog(b, dir)
	createTable(b, c)
	iceberg.SetExpiry(c, iceberg.ExpireAbove, iceberg.KeepSnapshots, 0)
	ctx := b.Context()
	status := func() iceberg.Status {
		st, err := c.Status(ctx, testDB, testTable)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var (
		commits, expires []time.Duration
		metaMax          int64
		heapMax          uint64
		i                int
	)
	for b.Loop() {
		b.StopTimer()
		// A new file each time, in the hour directory of its event time: files written ahead
		// would be orphans for Expire to delete.
		from := day0.Add(time.Duration(i) * flushSpan)
		path := writeLakeFile(b, dir, from, fmt.Sprintf("f%06d", i), batch(b, uint64(i), rows, from, flushSpan))
		rec := iceberg.Record{
			Writer:   "serve",
			Meta:     map[string]string{"wal.next": strconv.Itoa(1000 * (i + 1)), "cursor.syslog": strconv.Itoa(i)},
			Instance: "bench",
			Flush:    int64(i + 1),
		}
		b.StartTimer()
		start := time.Now()
		if err := c.Commit(ctx, []iceberg.Change{{DB: testDB, Table: testTable, Add: []string{path}}}, rec); err != nil {
			b.Fatal(err)
		}
		commits = append(commits, time.Since(start))
		i++
		if i%expireEvery == 0 {
			b.StopTimer()
			metaMax = max(metaMax, status().MetadataBytes)
			start := time.Now()
			if _, err := c.Expire(ctx, testDB, testTable, time.Time{}, 0, time.Now()); err != nil {
				b.Fatal(err)
			}
			expires = append(expires, time.Since(start))
			heapMax = max(heapMax, heap())
			b.StartTimer()
		}
	}
	b.StopTimer()
	st := status()
	heapEnd := heap()
	size := func(path string) int64 {
		info, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return info.Size()
	}
	tbl, err := c.Table(ctx, testDB, testTable)
	if err != nil {
		b.Fatal(err)
	}
	jsonBytes := size(iceberg.LocalPath(tbl.MetadataLocation()))
	if st.Files != i {
		b.Fatalf("%d files in the table after %d commits", st.Files, i)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// The last tenth of the commits apart: their cost against all of them shows what grows.
	last := slices.Clone(commits[len(commits)-len(commits)/10:])
	slices.Sort(last)
	slices.Sort(commits)
	b.ReportMetric(ms(commits[len(commits)/2]), "commit-p50-ms")
	b.ReportMetric(ms(commits[len(commits)*99/100]), "commit-p99-ms")
	if len(last) > 0 {
		b.ReportMetric(ms(last[len(last)/2]), "last-tenth-p50-ms")
		b.ReportMetric(ms(last[len(last)*99/100]), "last-tenth-p99-ms")
	}
	if len(expires) > 0 {
		slices.Sort(expires)
		b.ReportMetric(ms(expires[len(expires)/2]), "expire-p50-ms")
		b.ReportMetric(ms(expires[len(expires)-1]), "expire-max-ms")
	}
	b.ReportMetric(float64(st.MetadataBytes), "metadata-bytes")
	b.ReportMetric(float64(max(metaMax, st.MetadataBytes)), "metadata-max-bytes")
	b.ReportMetric(float64(st.MetadataFiles), "metadata-files")
	b.ReportMetric(float64(jsonBytes), "metadata-json-bytes")
	b.ReportMetric(float64(st.Snapshots), "snapshots")
	b.ReportMetric(float64(size(iceberg.CatalogFile(dir))), "catalog-bytes")
	b.ReportMetric(float64(size(iceberg.CatalogFile(dir)+"-wal")), "catalog-wal-bytes")
	b.ReportMetric(float64(heapEnd), "heap-bytes")
	b.ReportMetric(float64(max(heapMax, heapEnd)), "heap-max-bytes")
}
