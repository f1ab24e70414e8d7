package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Compaction merges small files into large ones. Flushing on age makes a file per partition
// hour per flush (a minute's rows, say); compaction rewrites the files of a period that is over
// into files of up to CompactTarget bytes: the files of an hour once the hour is over, then the
// files of a day (its hours' merged files) once the day is over. Each row is thus rewritten at
// most twice, and a table of past days holds a file or a few per day. The rows are decoded and
// encoded again (rewrite) into row groups of compactRowGroup rows in p_event_time order: a
// flush's small row groups become large ones, which a full scan reads faster, and their
// statistics prune an hour's query inside a day's file. Only files written with the table's
// current columns are merged (after an additive schema change, older files are left as they
// are).
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
	// Lost counts periods another commit changed first (another machine's compaction, or
	// retention): left as they are.
	Lost int
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
		if errors.Is(err, iceberg.ErrConflict) {
			// Another machine on a shared catalog compacted these files (or retention
			// dropped them) first: nothing is lost, the period is done or left for later.
			w.opts.Logger.Info("compaction lost to another commit", "table", db+"."+table, "period", group.start, "err", err)
			st.Lost++
			continue
		}
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
		f, err := w.openData(p)
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
	if err := w.rewrite(pq, db, table, sig, merge); err != nil {
		pq.f.Close()
		os.Remove(tmp.Name())
		return st, err
	}
	template := *merge[0].meta
	template.RowGroups, template.NumRows = nil, 0
	size, err := pq.finish(template)
	if err != nil {
		os.Remove(tmp.Name())
		return st, err
	}
	name := fmt.Sprintf("%s-%s.parquet", start.Format("20060102T150405Z"), newUUID())
	w.publishMu.Lock()
	m := w.newManifest()
	m.Renames = [][2]string{{tmp.Name(), w.lake.dataLocation(db, table, start, name)}}
	m.Props = map[string]string{iceberg.PropLastCompaction: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	for _, s := range merge {
		m.Deletes = append(m.Deletes, s.path)
	}
	_, err = w.publishManifest(m)
	if errors.Is(err, iceberg.ErrConflict) {
		// Another commit replaced or dropped some of the files first (a compaction on another
		// machine of a shared catalog, retention): this one did not happen and never can. Its
		// manifest goes, or whoever finishes the manifests it finds (Recover, the cleanup
		// after a crash) would try it again, and fail, forever. The merged file is an orphan,
		// which Maintain removes.
		err = errors.Join(err, w.dropManifest(m))
	}
	w.publishMu.Unlock()
	if err != nil {
		return st, err
	}
	w.opts.Logger.Info("compacted", "table", db+"."+table, "period", start, "files", len(merge), "rows", pq.rows, "bytes", size)
	return CompactStats{Partitions: 1, FilesIn: len(merge), FilesOut: 1, Rows: pq.rows, Bytes: size}, nil
}

// openData opens a data file of the lake to read it whole: the file itself in a local lake;
// in an object store, a copy downloaded into the writer's tmp directory, which is gone once
// the file is closed.
func (w *Writer) openData(loc string) (*os.File, error) {
	if w.lake.store == nil {
		return os.Open(loc)
	}
	path, err := w.lake.localCopy(context.Background(), loc, w.tmp)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	os.Remove(path) // the open file stays readable
	return f, err
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

// compactRowGroup is the rows compaction puts in a row group (DuckDB's own row group size):
// fewer, larger row groups cost a full scan less than a flush's small ones.
const compactRowGroup = 122_880

// rewrite writes the rows of files into pq in row groups of about compactRowGroup rows, each
// row group's rows in p_event_time order. Files are read in order of their first event, a row
// group at a time, with arrow-go's Parquet reader, and re-encoded with the table's encoder; no
// more than a row group's rows (and a source row group) are held at once. Rows of files that
// arrived in time order come out in time order; those of a bulk load in random order come out
// in row groups sorted inside, as their files were.
func (w *Writer) rewrite(pq *pqFile, db, table, sig string, merge []source) error {
	ctx := context.Background()
	var ts *tableState
	w.mu.Lock()
	if t, ok := w.tables[tableKey{db, table}]; ok && t.signature == sig {
		ts = t
	}
	w.mu.Unlock()
	var buf [][]arrow.Array // per column, the chunks read since the last row group
	var rows int64
	emit := func() error {
		if rows == 0 {
			return nil
		}
		cols := make([]arrow.Array, len(buf))
		for i, parts := range buf {
			a, err := array.Concatenate(parts, memory.DefaultAllocator)
			for _, p := range parts {
				p.Release()
			}
			if err != nil {
				return err
			}
			cols[i] = a
		}
		buf, rows = nil, 0
		rec := array.NewRecordBatch(ts.schema, cols, int64(cols[0].Len()))
		for _, a := range cols {
			a.Release()
		}
		defer rec.Release()
		times := rec.Column(ts.schema.FieldIndices(FieldEventTime)[0]).(*array.Timestamp).TimestampValues()
		order := make([]int32, rec.NumRows())
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(times[a], times[b]) })
		enc := ts.encoders.get()
		defer ts.encoders.put(enc)
		rg, err := enc.encode(ts.columnsFor(rec), rec, order)
		if err != nil {
			return err
		}
		return pq.append(rg)
	}
	for _, src := range merge {
		r, err := file.NewParquetReader(src.f)
		if err != nil {
			return fmt.Errorf("%s: %w", src.path, err)
		}
		fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			return fmt.Errorf("%s: %w", src.path, err)
		}
		if ts == nil {
			s, err := fr.Schema()
			if err != nil {
				return fmt.Errorf("%s: %w", src.path, err)
			}
			s = lakeSchema(s)
			// The footer is the merged files' own (compactFiles): no template is needed.
			ts = &tableState{schema: s, signature: sig, encoders: encoderPool{schema: s}}
		}
		leaves := make([]int, r.MetaData().Schema.NumColumns())
		for i := range leaves {
			leaves[i] = i
		}
		for g := range r.NumRowGroups() {
			tbl, err := fr.ReadRowGroups(ctx, leaves, []int{g})
			if err != nil {
				return fmt.Errorf("%s: row group %d: %w", src.path, g, err)
			}
			if int(tbl.NumCols()) != len(ts.schema.Fields()) {
				tbl.Release()
				return fmt.Errorf("%s: %d columns, the table has %d", src.path, tbl.NumCols(), len(ts.schema.Fields()))
			}
			if buf == nil {
				buf = make([][]arrow.Array, tbl.NumCols())
			}
			for i := range buf {
				for _, c := range tbl.Column(i).Data().Chunks() {
					buf[i] = append(buf[i], array.MakeFromData(retype(c.Data(), ts.schema.Field(i).Type)))
				}
			}
			rows += tbl.NumRows()
			tbl.Release()
			if rows >= compactRowGroup {
				if err := emit(); err != nil {
					return err
				}
			}
		}
		r.Close()
	}
	return emit()
}

// lakeSchema turns the Arrow schema arrow-go reads from a lake file into the one the lake wrote
// it from: no field IDs, JSON columns (read as binary) as strings marked arrow.json, list
// elements named item.
func lakeSchema(s *arrow.Schema) *arrow.Schema {
	var fix func(f arrow.Field) arrow.Field
	fix = func(f arrow.Field) arrow.Field {
		f.Metadata = arrow.Metadata{}
		switch t := f.Type.(type) {
		case arrow.ExtensionType:
			if t.ExtensionName() == "arrow.json" {
				f.Metadata = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})
			}
			f.Type = t.StorageType()
		case *arrow.BinaryType:
			// The lake's only byte arrays without the STRING logical type are JSON's.
			f.Metadata = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})
			f.Type = arrow.BinaryTypes.String
		case *arrow.StructType:
			children := make([]arrow.Field, t.NumFields())
			for i, c := range t.Fields() {
				children[i] = fix(c)
			}
			f.Type = arrow.StructOf(children...)
		case *arrow.ListType:
			elem := fix(t.ElemField())
			elem.Name = "item"
			f.Type = arrow.ListOfField(elem)
		}
		return f
	}
	fields := make([]arrow.Field, s.NumFields())
	for i, f := range s.Fields() {
		fields[i] = fix(f)
	}
	return arrow.NewSchema(fields, nil)
}

// retype gives array data the type t, which has the same physical layout (arrow-go reads a
// list's element as "element" where the lake says "item", JSON as an extension of strings).
func retype(d arrow.ArrayData, t arrow.DataType) arrow.ArrayData {
	children := d.Children()
	var ct []arrow.DataType
	switch t := t.(type) {
	case *arrow.ListType:
		ct = []arrow.DataType{t.Elem()}
	case *arrow.StructType:
		for _, f := range t.Fields() {
			ct = append(ct, f.Type)
		}
	}
	nc := make([]arrow.ArrayData, len(children))
	for i, c := range children {
		nc[i] = retype(c, ct[i])
		defer nc[i].Release()
	}
	return array.NewData(t, d.Len(), d.Buffers(), nc, d.NullN(), d.Offset())
}

// dropManifest removes the manifest of a compaction that cannot commit, and the local copy of
// its merged file in an object store.
func (w *Writer) dropManifest(m manifest) error {
	if err := os.Remove(filepath.Join(w.tmp, manifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return w.lake.dropUploaded(m)
}
