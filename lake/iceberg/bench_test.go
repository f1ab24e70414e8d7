package iceberg_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRegister commits one small file per Register, as a daemon flushing every few seconds
// would, and reports the commits' p50 and p99 and the table's metadata on disk at the end.
// Snapshots are not expired (no policy yet), so the figures grow with -benchtime: run with
// -benchtime=200x (or 10000x) to compare.
//
//	go test -run '^$' -bench Register -benchtime=200x ./lake/iceberg/
func BenchmarkRegister(b *testing.B) {
	dir := b.TempDir()
	c := openCatalog(b, dir)
	createTable(b, c)
	// 24 files, one per hour of a day, registered in turn: the same file may be registered
	// again (Register does not check), which costs the metadata what a new file would.
	var files []string
	for h := range 24 {
		hour := day0.Add(time.Duration(h) * time.Hour)
		files = append(files, writeLakeFile(b, dir, hour, "f", batch(b, uint64(h), 100, hour, time.Hour)))
	}
	ctx := b.Context()
	var took []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		if err := c.Register(ctx, testDB, testTable, files[i%len(files):i%len(files)+1], map[string]string{"osprey.wal": strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	var bytes, n int64
	filepath.WalkDir(filepath.Join(c.Location(testDB, testTable), "metadata"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			bytes += info.Size()
			n++
		}
		return nil
	})
	b.ReportMetric(float64(bytes), "metadata-bytes")
	b.ReportMetric(float64(n), "metadata-files")
}
