package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/catalog"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// codec compresses every page. It is shared so that its pool of zstd encoders (each with a
// window of several MiB) is reused across files instead of rebuilt for each one.
var codec = &zstd.Codec{Level: zstd.SpeedFastest}

// FieldEventTime is the column whose UTC day partitions a table.
const FieldEventTime = "p_event_time"

// WriterOptions configure a Writer.
type WriterOptions struct {
	// FileSize is the size at which a partition's file is committed and a new one started.
	FileSize int64
	// MaxOpenFiles bounds the partition files open at once; the least recently written one is
	// committed to make room.
	MaxOpenFiles int
	// Logger receives a line for each committed file at debug level.
	Logger *slog.Logger
	// Name identifies the writer's commit metadata (see FlushWith); a writer without one
	// records none.
	Name string
}

// DefaultWriterOptions returns the defaults: 256 MiB files, 256 open partitions.
func DefaultWriterOptions() WriterOptions {
	return WriterOptions{FileSize: 256 << 20, MaxOpenFiles: 256, Logger: slog.New(slog.DiscardHandler)}
}

// Writer writes record batches into partition files of a lake. Write may be called from several
// goroutines; rows are durable and visible only after the file holding them is committed (by
// Flush, by Close, or when a file reaches FileSize).
type Writer struct {
	lake *Lake
	opts WriterOptions
	tmp  string
	lock *os.File
	cat  *iceberg.Catalog

	mu     sync.Mutex
	tables map[tableKey]*tableState
	files  map[partKey]*partFile
	clock  uint64 // orders partition files by last use
	stats  Stats
	closed bool

	inflight sync.WaitGroup // Write calls in progress

	// Files are finished (footer written, closed) in the temporary directory and published by
	// Flush all at once: one syncfs makes their data durable, they are renamed into their
	// partitions, and a second syncfs makes the new directory entries durable. Two syncs per
	// flush instead of two fsyncs per file, which cost milliseconds each on most disks.
	finished  []finishedFile // guarded by mu
	publishMu sync.Mutex     // serializes publishing
	flushes   int64          // flushes published; guarded by publishMu
}

type finishedFile struct {
	tmp, dst   string
	rows, size int64
}

type tableKey struct{ db, table string }

type partKey struct {
	tableKey
	day int64 // days since the epoch
}

type tableState struct {
	schema    *arrow.Schema
	signature string
	template  format.FileMetaData // the footer fields every file of the table shares
	encoders  encoderPool

	// columns are the leaf columns files are written with; their string encodings are chosen
	// from the first large batch of the table this writer sees.
	mu      sync.Mutex
	columns []column
}

// columnsFor returns the leaf columns to write a batch with, choosing the string encodings from
// rec once a batch large enough to judge by comes (until then, dictionaries throughout).
func (ts *tableState) columnsFor(rec arrow.RecordBatch) []column {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.columns != nil {
		return ts.columns
	}
	var plain map[string]bool
	if rec.NumRows() >= minSampleRows {
		plain = plainColumns(rec)
	}
	ps, err := parquetSchema(ts.schema, plain)
	if err != nil {
		panic("BUG: table schema without a Parquet schema: " + err.Error())
	}
	cols := tableColumns(ps)
	if plain != nil {
		ts.columns = cols
	}
	return cols
}

type partFile struct {
	key   partKey
	table *tableState
	path  string // temporary path

	mu sync.Mutex // guards pq; row groups are appended with it held
	pq *pqFile

	used    uint64 // guarded by Writer.mu
	writing int    // Write calls using this file; guarded by Writer.mu
	done    bool   // guarded by Writer.mu
}

// Stats count what a writer committed.
type Stats struct {
	Files int64
	Rows  int64
	Bytes int64
}

// NewWriter returns a writer into the lake.
func (l *Lake) NewWriter(opts WriterOptions) (*Writer, error) {
	if opts.FileSize <= 0 {
		opts.FileSize = DefaultWriterOptions().FileSize
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = DefaultWriterOptions().MaxOpenFiles
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base := filepath.Join(l.dir, "_osprey", "tmp")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	cat, err := l.OpenCatalog(context.Background())
	if err != nil {
		return nil, err
	}
	l.cleanStaleTemp(cat, base, opts.Logger)
	if l.store != nil {
		// Tables another machine created: their columns, to compare batches with.
		ptrs, err := cat.Current(context.Background())
		if err == nil {
			err = l.SyncSchemas(context.Background(), ptrs)
		}
		if err != nil {
			cat.Close()
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp(base, "w-")
	if err != nil {
		cat.Close()
		return nil, err
	}
	// The lock is taken before it is named lock: another process's cleanStaleTemp that opened
	// it in between would take it, think the writer gone and remove its directory.
	lock, err := os.CreateTemp(tmp, "lock-")
	if err != nil {
		cat.Close()
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		cat.Close()
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	if err := os.Rename(lock.Name(), filepath.Join(tmp, "lock")); err != nil {
		lock.Close()
		cat.Close()
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	return &Writer{
		lake: l, opts: opts, tmp: tmp, lock: lock, cat: cat,
		tables: map[tableKey]*tableState{}, files: map[partKey]*partFile{},
	}, nil
}

// cleanStaleTemp removes the tmp directories of writers that are gone: their lock is free.
func (l *Lake) cleanStaleTemp(cat *iceberg.Catalog, base string, log *slog.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		f, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			// A writer creates its lock right after its directory: a directory without one is
			// either being created this instant or abandoned. Leave young ones alone.
			if info, serr := e.Info(); serr == nil && time.Since(info.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			// The writer is gone. A flush it had begun to publish is finished; its other
			// files were never visible and are dropped.
			if err := l.finishFlush(context.Background(), cat, dir); err != nil {
				log.Error("could not finish the flush of an interrupted writer: its files are kept", "dir", dir, "err", err)
				f.Close()
				continue
			}
			log.Info("removing files of an interrupted writer", "dir", dir)
			if os.RemoveAll(dir) == nil {
				cat.ForgetInstance(context.Background(), l.scoped(e.Name()))
			}
		}
		f.Close()
	}
}

// Stats returns what the writer has committed so far.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Write adds a record batch's rows to the table, each row to the partition of its p_event_time.
func (w *Writer) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec.NumRows() == 0 {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("writer is closed")
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()
	ts, err := w.table(db, table, rec.Schema())
	if err != nil {
		return err
	}
	idx := rec.Schema().FieldIndices(FieldEventTime)
	if len(idx) != 1 {
		return fmt.Errorf("write %s.%s: no %s column", db, table, FieldEventTime)
	}
	times, ok := rec.Column(idx[0]).(*array.Timestamp)
	if !ok || times.NullN() > 0 {
		return fmt.Errorf("write %s.%s: %s must be a timestamp without nulls", db, table, FieldEventTime)
	}
	for _, part := range splitDays(times) {
		if err := w.writePart(partKey{tableKey{db, table}, part.day}, ts, rec, part.rows); err != nil {
			return fmt.Errorf("write %s.%s: %w", db, table, err)
		}
	}
	return nil
}

type dayRows struct {
	day  int64
	rows []int32 // nil: every row, in order
}

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

func dayOf(us int64) int64 {
	d := us / microsPerDay
	if us%microsPerDay < 0 {
		d--
	}
	return d
}

// splitDays groups row indexes by day, each day's rows in event time order, so that a row
// group's rows go forward in time and its statistics are as narrow as its rows allow. A batch
// of one day already in order needs no index.
func splitDays(times *array.Timestamp) []dayRows {
	vals := times.TimestampValues()
	first := dayOf(int64(vals[0]))
	same, sorted := true, true
	for i, v := range vals[1:] {
		if dayOf(int64(v)) != first {
			same = false
		}
		if v < vals[i] {
			sorted = false
		}
	}
	if same && sorted {
		return []dayRows{{day: first}}
	}
	byDay := map[int64][]int32{}
	for i, v := range vals {
		d := dayOf(int64(v))
		byDay[d] = append(byDay[d], int32(i))
	}
	out := make([]dayRows, 0, len(byDay))
	for d, rows := range byDay {
		if !sorted {
			slices.SortStableFunc(rows, func(a, b int32) int { return cmp.Compare(vals[a], vals[b]) })
		}
		out = append(out, dayRows{d, rows})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].day < out[j].day })
	return out
}

// table returns the state of a table, checking that the batch has the table's schema and
// creating the table's schema file for a new table.
func (w *Writer) table(db, table string, s *arrow.Schema) (*tableState, error) {
	key := tableKey{db, table}
	sig := Signature(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ts, ok := w.tables[key]; ok {
		if ts.signature != sig {
			return nil, fmt.Errorf("write %s.%s: batch schema differs from the table's", db, table)
		}
		return ts, nil
	}
	if err := CheckName(db); err != nil {
		return nil, err
	}
	if err := CheckName(table); err != nil {
		return nil, err
	}
	existing, err := w.lake.TableSignature(db, table)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := w.writeSchemaFile(db, table, s, sig, false); err != nil {
			return nil, fmt.Errorf("create table %s.%s: %w", db, table, err)
		}
	case err != nil:
		return nil, err
	case existing != sig:
		// The table's columns may only grow (see evolve.go).
		if err := checkChange(db, table, existing, sig); err != nil {
			return nil, err
		}
		if err := w.writeSchemaFile(db, table, s, sig, true); err != nil {
			return nil, fmt.Errorf("add columns to table %s.%s: %w", db, table, err)
		}
		w.opts.Logger.Info("table gained columns", "table", db+"."+table, "columns", strings.Join(CompareSignatures(existing, sig).Added, ","))
	}
	if err := w.icebergTable(db, table, s); err != nil {
		return nil, err
	}
	ps, err := ParquetSchema(s)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: %w", db, table, err)
	}
	template, err := fileTemplate(ps, sig)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: %w", db, table, err)
	}
	if _, err := newEncoder(s); err != nil {
		return nil, err
	}
	ts := &tableState{schema: s, signature: sig, template: template, encoders: encoderPool{schema: s}}
	w.tables[key] = ts
	return ts, nil
}

// icebergTable makes sure the catalog has the table with at least the columns of s: it creates
// the table, or adds the columns it lacks. A table whose schema file exists with data files
// but which the catalog lacks is of a lake written before the catalog: it must be migrated
// first, so that its files are registered.
func (w *Writer) icebergTable(db, table string, s *arrow.Schema) error {
	ctx := context.Background()
	has, err := w.cat.HasTable(ctx, db, table)
	if err != nil {
		return err
	}
	if !has {
		if w.lake.HasHiveData(db, table) {
			return fmt.Errorf("table %s.%s: %w", db, table, ErrNeedsMigration)
		}
		err := w.cat.CreateTable(ctx, db, table, s)
		if err == nil || !errors.Is(err, catalog.ErrTableAlreadyExists) {
			return err
		}
	}
	// Adding columns the table has already changes nothing and commits nothing.
	return w.cat.Commit(ctx, []iceberg.Change{{DB: db, Table: table, Schema: s}}, iceberg.Record{})
}

// writeSchemaFile commits a table's schema file: its columns and no rows. evolved marks a table
// whose older files lack some of the columns.
func (w *Writer) writeSchemaFile(db, table string, s *arrow.Schema, sig string, evolved bool) error {
	ps, err := ParquetSchema(s)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(w.tmp, "schema-*.parquet.tmp")
	if err != nil {
		return err
	}
	opts := []parquet.WriterOption{ps, parquet.Compression(codec), parquet.KeyValueMetadata(signatureKey, sig)}
	if evolved {
		opts = append(opts, parquet.KeyValueMetadata(evolvedKey, "true"))
	}
	pw := parquet.NewGenericWriter[any](f, opts...)
	if err := errors.Join(pw.Close(), f.Sync(), f.Close()); err != nil {
		os.Remove(f.Name())
		return err
	}
	if w.lake.store != nil {
		// Other machines on the lake read it from the store (see SyncSchemas).
		if err := w.lake.store.Put(context.Background(), w.lake.remoteSchemaFile(db, table), f.Name()); err != nil {
			os.Remove(f.Name())
			return err
		}
	}
	return commit(f.Name(), w.lake.SchemaFile(db, table))
}

const signatureKey = "osprey.schema"

// TableSignature returns the schema signature recorded in a table's schema file
// (fs.ErrNotExist when the table does not exist).
func (l *Lake) TableSignature(db, table string) (string, error) {
	pf, closeFile, err := l.openSchemaFile(db, table)
	if err != nil {
		return "", err
	}
	defer closeFile()
	sig, ok := pf.Lookup(signatureKey)
	if !ok {
		return "", fmt.Errorf("schema file of %s.%s has no %s metadata", db, table, signatureKey)
	}
	return sig, nil
}

// Signature describes an Arrow schema's columns, types and JSON flags, one column per line.
func Signature(s *arrow.Schema) string {
	var b strings.Builder
	for _, f := range s.Fields() {
		writeSig(&b, f, "")
	}
	return b.String()
}

func writeSig(b *strings.Builder, f arrow.Field, prefix string) {
	name := prefix + f.Name
	switch t := f.Type.(type) {
	case *arrow.StructType:
		fmt.Fprintf(b, "%s struct\n", name)
		for _, c := range t.Fields() {
			writeSig(b, c, name+".")
		}
	case *arrow.ListType:
		fmt.Fprintf(b, "%s list\n", name)
		writeSig(b, t.ElemField(), name+".")
	default:
		typ := f.Type.String()
		if IsJSON(f) {
			typ = "json"
		}
		if enc, ok := f.Metadata.GetValue(EncodingKey); ok {
			typ += " " + enc
		}
		if !f.Nullable {
			typ += " not null"
		}
		fmt.Fprintf(b, "%s %s\n", name, typ)
	}
}

// writePart encodes rows of rec into a row group of the partition's open file.
func (w *Writer) writePart(key partKey, ts *tableState, rec arrow.RecordBatch, rows []int32) error {
	pf, err := w.file(key, ts)
	if err != nil {
		return err
	}
	// Encoding and compressing the row group runs outside the file's lock, in parallel with
	// others; appending it to the file is done under it.
	enc := ts.encoders.get()
	rg, encErr := enc.encode(ts.columnsFor(rec), rec, rows)
	pf.mu.Lock()
	if encErr == nil {
		encErr = pf.pq.append(rg)
	}
	full := pf.pq.off >= w.opts.FileSize || len(pf.pq.rowGroups) >= maxRowGroups
	pf.mu.Unlock()
	ts.encoders.put(enc)

	w.mu.Lock()
	pf.writing--
	// Commit the file when it is full, or when it was evicted while this row group was encoded.
	commitNow := !pf.done && pf.writing == 0 && (full || w.files[key] != pf)
	if commitNow {
		pf.done = true
		if w.files[key] == pf {
			delete(w.files, key)
		}
	}
	w.mu.Unlock()
	if encErr != nil {
		return encErr
	}
	if commitNow {
		return w.finishFile(pf)
	}
	return nil
}

// file returns the open file of a partition, opening one (and committing the least recently
// used file when too many are open).
func (w *Writer) file(key partKey, ts *tableState) (*partFile, error) {
	w.mu.Lock()
	w.clock++
	if pf, ok := w.files[key]; ok {
		pf.used = w.clock
		pf.writing++
		w.mu.Unlock()
		return pf, nil
	}
	var evict []*partFile
	for len(w.files) >= w.opts.MaxOpenFiles {
		var lru *partFile
		for _, pf := range w.files {
			if lru == nil || pf.used < lru.used {
				lru = pf
			}
		}
		delete(w.files, lru.key)
		if lru.writing == 0 {
			lru.done = true
			evict = append(evict, lru)
		} // else the writer of its last row group commits it
	}
	pf, err := w.newFile(key, ts)
	if err == nil {
		pf.used = w.clock
		pf.writing++
		w.files[key] = pf
	}
	w.mu.Unlock()
	for _, e := range evict {
		err = errors.Join(err, w.finishFile(e))
	}
	return pf, err
}

func (w *Writer) newFile(key partKey, ts *tableState) (*partFile, error) {
	f, err := os.CreateTemp(w.tmp, "part-*.parquet.tmp")
	if err != nil {
		return nil, err
	}
	pq, err := createPQFile(f)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &partFile{key: key, table: ts, path: f.Name(), pq: pq}, nil
}

// finishFile writes a partition file's footer and closes it; Flush publishes it.
func (w *Writer) finishFile(pf *partFile) error {
	if pf.pq.rows == 0 {
		return errors.Join(pf.pq.f.Close(), os.Remove(pf.path))
	}
	size, err := pf.pq.finish(pf.table.template)
	if err != nil {
		os.Remove(pf.path)
		return fmt.Errorf("finish %s: %w", pf.path, err)
	}
	day := time.Unix(pf.key.day*86400, 0).UTC()
	name := fmt.Sprintf("%s-%s.parquet", day.Format("20060102T150405Z"), newUUID())
	dst := w.lake.dataLocation(pf.key.db, pf.key.table, day, name)
	w.mu.Lock()
	w.finished = append(w.finished, finishedFile{tmp: pf.path, dst: dst, rows: pf.pq.rows, size: size})
	w.mu.Unlock()
	return nil
}

// publishFinished publishes the finished files, with the flush's metadata (see commit.go).
func (w *Writer) publishFinished(meta map[string]string) error {
	w.publishMu.Lock()
	defer w.publishMu.Unlock()
	w.mu.Lock()
	todo := w.finished
	w.finished = nil
	w.mu.Unlock()
	done, err := w.publish(todo, meta)
	var failed []finishedFile
	w.mu.Lock()
	for i, f := range todo {
		if !done[i] {
			failed = append(failed, f)
			continue
		}
		w.stats.Files++
		w.stats.Rows += f.rows
		w.stats.Bytes += f.size
		w.opts.Logger.Debug("committed", "file", f.dst, "rows", f.rows, "bytes", f.size)
	}
	w.finished = append(failed, w.finished...)
	w.mu.Unlock()
	return err
}

func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func newUUID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// Flush commits every open partition file. Rows written before Flush are durable and visible
// when it returns.
func (w *Writer) Flush(ctx context.Context) error { return w.FlushWith(ctx, nil) }

// FlushWith is Flush that also records meta as the writer's commit metadata (Lake.CommitMeta
// of its Name) in the same unit: after a crash the metadata is the last one whose rows are
// visible. Rows written by Write calls that return after FlushWith is called may or may not
// be part of the flush: callers that tie metadata to rows stop writing while they flush.
func (w *Writer) FlushWith(ctx context.Context, meta map[string]string) error {
	if meta != nil && w.opts.Name == "" {
		return errors.New("commit metadata for a writer without a name")
	}
	w.mu.Lock()
	var todo []*partFile
	for k, pf := range w.files {
		delete(w.files, k)
		if pf.writing == 0 {
			pf.done = true
			todo = append(todo, pf)
		} // else the writer of its last row group commits it
	}
	w.mu.Unlock()
	var errs []error
	for _, pf := range todo {
		errs = append(errs, w.finishFile(pf))
	}
	if err := errors.Join(errs...); err != nil {
		// Publishing the rest would record metadata for rows of which some are lost.
		return err
	}
	return w.publishFinished(meta)
}

// Close waits for writes in progress, commits every open file and releases the writer's
// temporary directory.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.inflight.Wait()
	err := w.Flush(context.Background())
	if err != nil {
		// The tmp directory may hold a flush to finish: the next writer does.
		return errors.Join(err, w.lock.Close(), w.cat.Close())
	}
	err = os.RemoveAll(w.tmp)
	if err == nil {
		err = w.cat.ForgetInstance(context.Background(), w.lake.scoped(filepath.Base(w.tmp)))
	}
	return errors.Join(err, w.lock.Close(), w.cat.Close())
}

// Abort waits for writes in progress and drops every uncommitted file.
func (w *Writer) Abort() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.inflight.Wait()
	w.mu.Lock()
	files := w.files
	w.files = map[partKey]*partFile{}
	w.mu.Unlock()
	for _, pf := range files {
		pf.pq.f.Close()
	}
	// A flush whose manifest is written is finished, not dropped (see Recover).
	if err := w.lake.finishFlush(context.Background(), w.cat, w.tmp); err != nil {
		return errors.Join(err, w.lock.Close(), w.cat.Close())
	}
	err := os.RemoveAll(w.tmp)
	if err == nil {
		err = w.cat.ForgetInstance(context.Background(), w.lake.scoped(filepath.Base(w.tmp)))
	}
	return errors.Join(err, w.lock.Close(), w.cat.Close())
}

// commit moves a finished file to dst durably: the file was fsynced by the caller; the
// directories created for it and the directory it lands in are fsynced here.
func commit(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := mkdirAllSynced(dir); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return durable.SyncDir(dir)
}

// mkdirAllSynced creates dir and its missing parents, fsyncing each new directory's parent so
// that the new entries are durable.
func mkdirAllSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return durable.SyncDir(parent)
}
