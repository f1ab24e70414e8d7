package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Compaction merges the files of a partition into one. Flushing on age makes a file per
// partition per flush (a minute's rows, say); a partition whose hour is over is compacted into
// a single file, so that the lake holds few large files rather than many small ones. Row groups
// are copied verbatim, bytes and metadata, without decoding: compaction costs about a read and
// a write of the files. Only files written with the table's current columns are merged (after
// an additive schema change, older files are left as they are).
//
// The merged file replaces the others as one unit, through the flush manifest (commit.go): a
// crash leaves either the old files or the merged one, never both nor neither. A query that
// lists the partition during the few milliseconds between the rename and the removals may see
// both and count rows twice; compaction only touches partitions whose hour is over.

// CompactStats tell what a compaction did.
type CompactStats struct {
	Partitions int   // partitions compacted
	FilesIn    int   // files merged
	FilesOut   int   // files written
	Rows       int64 // rows in the merged files
	Bytes      int64 // bytes of the merged files
}

// Compact merges the files of each partition of a table whose hour ended before cutoff and
// which holds at least minFiles files (at least 2).
func (w *Writer) Compact(ctx context.Context, db, table string, cutoff time.Time, minFiles int) (CompactStats, error) {
	var st CompactStats
	minFiles = max(minFiles, 2)
	// Two compactions of one partition at once would each merge its files: one at a time per
	// lake, whatever the process.
	lock, err := os.OpenFile(filepath.Join(w.lake.dir, "_osprey", "compact.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return st, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return st, errors.New("another compaction of the lake is running")
	}
	dirs, err := filepath.Glob(filepath.Join(w.lake.TableDir(db, table), "year=*", "month=*", "day=*", "hour=*"))
	if err != nil {
		return st, err
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hour, ok := partitionHour(dir)
		if !ok || !hour.Add(time.Hour).Before(cutoff) {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
		if err != nil || len(files) < minFiles {
			continue
		}
		n, err := w.compactPartition(db, table, hour, files)
		if err != nil {
			return st, fmt.Errorf("compact %s: %w", dir, err)
		}
		if n.FilesIn > 0 {
			st.Partitions++
			st.FilesIn += n.FilesIn
			st.FilesOut += n.FilesOut
			st.Rows += n.Rows
			st.Bytes += n.Bytes
		}
	}
	return st, nil
}

// partitionHour reads the hour of a partition directory .../year=Y/month=M/day=D/hour=H.
func partitionHour(dir string) (time.Time, bool) {
	parts := strings.Split(filepath.ToSlash(dir), "/")
	if len(parts) < 4 {
		return time.Time{}, false
	}
	var y, m, d, h int
	_, err := fmt.Sscanf(strings.Join(parts[len(parts)-4:], "/"), "year=%d/month=%d/day=%d/hour=%d", &y, &m, &d, &h)
	if err != nil {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, h, 0, 0, 0, time.UTC), true
}

// source is an open data file being merged.
type source struct {
	path string
	f    *os.File
	meta *format.FileMetaData
}

func (w *Writer) compactPartition(db, table string, hour time.Time, paths []string) (CompactStats, error) {
	var st CompactStats
	var sources []source
	defer func() {
		for _, s := range sources {
			s.f.Close()
		}
	}()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return st, err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return st, err
		}
		pf, err := parquet.OpenFile(f, info.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			f.Close()
			return st, fmt.Errorf("open %s: %w", p, err)
		}
		sources = append(sources, source{path: p, f: f, meta: pf.Metadata()})
	}
	// Merge the files of the newest schema: the signature of the newest file.
	newest := sources[0]
	for _, s := range sources[1:] {
		if filepath.Base(s.path) > filepath.Base(newest.path) {
			newest = s
		}
	}
	sig := kv(newest.meta, signatureKey)
	var merge []source
	for _, s := range sources {
		if kv(s.meta, signatureKey) == sig && sameSchema(s.meta, newest.meta) {
			merge = append(merge, s)
		}
	}
	if len(merge) < 2 {
		return st, nil
	}
	tmp, err := os.CreateTemp(w.tmp, "compact-*.parquet.tmp")
	if err != nil {
		return st, err
	}
	pq, err := createPQFile(tmp)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return st, err
	}
	for _, s := range merge {
		for _, rg := range s.meta.RowGroups {
			g, err := copyRowGroup(s.f, rg)
			if err != nil {
				pq.f.Close()
				os.Remove(tmp.Name())
				return st, fmt.Errorf("%s: %w", s.path, err)
			}
			if err := pq.append(g); err != nil {
				pq.f.Close()
				os.Remove(tmp.Name())
				return st, err
			}
		}
	}
	template := *newest.meta
	template.RowGroups, template.NumRows = nil, 0
	size, err := pq.finish(template)
	if err != nil {
		os.Remove(tmp.Name())
		return st, err
	}
	name := fmt.Sprintf("%s-%s.parquet", hour.Format("20060102T150405Z"), newUUID())
	m := manifest{Renames: [][2]string{{tmp.Name(), filepath.Join(filepath.Dir(merge[0].path), name)}}}
	for _, s := range merge {
		m.Deletes = append(m.Deletes, s.path)
	}
	w.publishMu.Lock()
	_, err = w.publishManifest(m)
	w.publishMu.Unlock()
	if err != nil {
		return st, err
	}
	w.opts.Logger.Info("compacted", "partition", filepath.Dir(merge[0].path), "files", len(merge), "rows", pq.rows, "bytes", size)
	return CompactStats{Partitions: 1, FilesIn: len(merge), FilesOut: 1, Rows: pq.rows, Bytes: size}, nil
}

func kv(md *format.FileMetaData, key string) string {
	for _, e := range md.KeyValueMetadata {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// sameSchema reports whether two files have the same schema elements.
func sameSchema(a, b *format.FileMetaData) bool {
	if len(a.Schema) != len(b.Schema) {
		return false
	}
	for i := range a.Schema {
		x, y := a.Schema[i], b.Schema[i]
		if x.Name != y.Name || x.Type != y.Type || x.RepetitionType != y.RepetitionType || x.NumChildren != y.NumChildren {
			return false
		}
	}
	return true
}

// copyRowGroup reads a row group's bytes (its column chunks lie back to back) and returns it
// with offsets relative to its start, as the encoder makes them.
func copyRowGroup(f *os.File, rg format.RowGroup) (rowGroup, error) {
	start, end := int64(-1), int64(0)
	dict := make([]bool, len(rg.Columns))
	for i, c := range rg.Columns {
		md := c.MetaData
		first := md.DataPageOffset
		if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < first {
			first, dict[i] = md.DictionaryPageOffset, true
		}
		if start < 0 || first < start {
			start = first
		}
		end = max(end, first+md.TotalCompressedSize)
	}
	if start < 4 || end <= start {
		return rowGroup{}, errors.New("row group with no data")
	}
	data := make([]byte, end-start)
	if _, err := f.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
		return rowGroup{}, err
	}
	meta := rg
	meta.Columns = make([]format.ColumnChunk, len(rg.Columns))
	for i, c := range rg.Columns {
		c.MetaData.DataPageOffset -= start
		if dict[i] {
			c.MetaData.DictionaryPageOffset -= start
		}
		// The page index of the source file (if any) is not copied.
		c.OffsetIndexOffset, c.OffsetIndexLength, c.ColumnIndexOffset, c.ColumnIndexLength = 0, 0, 0, 0
		c.FileOffset = 0
		meta.Columns[i] = c
	}
	return rowGroup{data: data, meta: meta, dict: dict}, nil
}
