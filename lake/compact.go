package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Compaction merges small files into large ones. Flushing on age makes a file per partition
// hour per flush (a minute's rows, say); compaction rewrites the files of a period that is over
// into files of up to CompactTarget bytes: the files of an hour once the hour is over, then the
// files of a day (its hours' merged files) once the day is over. Each row is thus rewritten at
// most twice, and a table of past days holds a file or a few per day. Row groups are copied
// verbatim, bytes and metadata, without decoding, in the order of the files' first event
// time: a merged file's row groups go forward in time hour by hour, so that their statistics
// prune an hour's query inside it. Only files written with the table's current columns are
// merged (after an additive schema change, older files are left as they are).
//
// The merged file replaces the others in one Iceberg commit (the flush manifest and
// Catalog.Commit, see commit.go): a reader sees either the old files or the merged one. The
// replaced files stay on disk while snapshots that a reader may still be reading reference
// them; Maintain removes them.

// CompactTarget is the size up to which compaction merges files.
const CompactTarget = 128 << 20

// CompactStats tell what a compaction did.
type CompactStats struct {
	Partitions int   // periods (hours or days) compacted
	FilesIn    int   // files merged
	FilesOut   int   // files written
	Rows       int64 // rows in the merged files
	Bytes      int64 // bytes of the merged files
}

// Compact merges the files of each hour (and each day) of a table that ended before cutoff and
// holds at least minFiles files (at least 2) into files of up to CompactTarget bytes.
func (w *Writer) Compact(ctx context.Context, db, table string, cutoff time.Time, minFiles int) (CompactStats, error) {
	var st CompactStats
	minFiles = max(minFiles, 2)
	// Two compactions of one period at once would each merge its files: one at a time per
	// lake, whatever the process.
	lock, err := os.OpenFile(filepath.Join(w.lake.dir, "_osprey", "compact.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return st, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return st, errors.New("another compaction of the lake is running")
	}
	files, err := w.cat.CurrentFiles(ctx, db, table)
	if errors.Is(err, iceberg.ErrNoTable) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	for _, group := range compactionGroups(files, cutoff, minFiles) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		paths := make([]string, len(group.files))
		for i, f := range group.files {
			paths[i] = f.Path
		}
		n, err := w.compactFiles(db, table, group.start, group.day, paths)
		if err != nil {
			return st, fmt.Errorf("compact %s.%s %s: %w", db, table, group.start.Format(time.DateTime), err)
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

// compactGroup is files to merge into one.
type compactGroup struct {
	start time.Time // the period's start
	day   bool      // the period is a day (else an hour)
	files []iceberg.DataFile
}

// compactionGroups returns the groups of files to merge: for each day over before cutoff with
// at least minFiles files, and else for each hour over, its files in order of first event
// time, cut into groups of up to CompactTarget bytes; groups of one file are left out.
func compactionGroups(files []iceberg.DataFile, cutoff time.Time, minFiles int) []compactGroup {
	type period struct {
		start time.Time
		day   bool
	}
	byPeriod := map[period][]iceberg.DataFile{}
	for _, f := range files {
		day := f.MinTime.Truncate(24 * time.Hour)
		hour := f.MinTime.Truncate(time.Hour)
		switch {
		case !day.Add(24 * time.Hour).After(cutoff):
			byPeriod[period{day, true}] = append(byPeriod[period{day, true}], f)
		case !hour.Add(time.Hour).After(cutoff) && f.MaxTime.Truncate(time.Hour).Equal(hour):
			byPeriod[period{hour, false}] = append(byPeriod[period{hour, false}], f)
		}
	}
	var groups []compactGroup
	for p, fs := range byPeriod {
		if len(fs) < minFiles {
			continue
		}
		slices.SortFunc(fs, func(a, b iceberg.DataFile) int {
			return cmp.Or(a.MinTime.Compare(b.MinTime), strings.Compare(a.Path, b.Path))
		})
		var cur []iceberg.DataFile
		var size int64
		flush := func() {
			if len(cur) > 1 {
				groups = append(groups, compactGroup{start: p.start, day: p.day, files: cur})
			}
			cur, size = nil, 0
		}
		for _, f := range fs {
			if len(cur) > 0 && size+f.Size > CompactTarget {
				flush()
			}
			cur = append(cur, f)
			size += f.Size
		}
		flush()
	}
	slices.SortFunc(groups, func(a, b compactGroup) int { return a.start.Compare(b.start) })
	return groups
}

// source is an open data file being merged.
type source struct {
	path string
	f    *os.File
	meta *format.FileMetaData
}

// compactFiles merges files of a period (an hour, or a day) into one.
func (w *Writer) compactFiles(db, table string, start time.Time, day bool, paths []string) (CompactStats, error) {
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
	// Merge the files written with the table's current columns.
	sig, err := w.lake.TableSignature(db, table)
	if err != nil {
		return st, err
	}
	var merge []source
	for _, s := range sources {
		if kv(s.meta, signatureKey) == sig && (len(merge) == 0 || sameSchema(s.meta, merge[0].meta)) {
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
	template := *merge[0].meta
	template.RowGroups, template.NumRows = nil, 0
	size, err := pq.finish(template)
	if err != nil {
		os.Remove(tmp.Name())
		return st, err
	}
	dir := w.lake.DayDir(db, table, start)
	name := fmt.Sprintf("%s-%s.parquet", start.Format("20060102T150405Z"), newUUID())
	w.publishMu.Lock()
	m := w.newManifest()
	m.Renames = [][2]string{{tmp.Name(), filepath.Join(dir, name)}}
	m.Props = map[string]string{iceberg.PropLastCompaction: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	for _, s := range merge {
		m.Deletes = append(m.Deletes, s.path)
	}
	_, err = w.publishManifest(m)
	w.publishMu.Unlock()
	if err != nil {
		return st, err
	}
	w.opts.Logger.Info("compacted", "table", db+"."+table, "period", start, "files", len(merge), "rows", pq.rows, "bytes", size)
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
