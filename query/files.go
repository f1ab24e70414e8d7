package query

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Files: every table of the lake is an Iceberg table (package lake/iceberg), and a statement
// reads the files of the tables' snapshots that were current when it began. The catalog's
// pointers are read in one statement (Catalog.Current), so a flush that changed several tables
// is seen whole or not at all. A table's files are listed once per snapshot and kept (the last
// snapshot of each table); a statement that restricts p_event_time reads only the files whose
// bounds overlap its range (see narrow.go).

// snapshot is where the metadata of each table was when a statement began, by "db.table".
type snapshot map[string]string

// fileCache keeps the files of the last snapshot read of each table.
type fileCache struct {
	mu     sync.Mutex
	tables map[string]cachedFiles // by "db.table"
}

type cachedFiles struct {
	loc   string
	files []iceberg.DataFile
}

// current reads every table's current metadata location.
func (d *DB) current(ctx context.Context) (snapshot, error) {
	ptrs, err := d.cat.Current(ctx)
	if err != nil {
		return nil, err
	}
	// Tables another machine created on a lake in an object store.
	if err := d.lake.SyncSchemas(ctx, ptrs); err != nil {
		return nil, err
	}
	snap := make(snapshot, len(ptrs))
	for _, p := range ptrs {
		snap[p.DB+"."+p.Table] = p.Location
	}
	return snap, nil
}

// tableFiles returns the data files of a table in a snapshot (none for a table the snapshot
// does not have).
func (d *DB) tableFiles(ctx context.Context, snap snapshot, db, table string) ([]iceberg.DataFile, error) {
	key := db + "." + table
	loc, ok := snap[key]
	if !ok {
		return nil, nil
	}
	d.files.mu.Lock()
	c, ok := d.files.tables[key]
	d.files.mu.Unlock()
	if ok && c.loc == loc {
		return c.files, nil
	}
	files, err := d.cat.FilesAt(ctx, db, table, loc)
	if err != nil {
		return nil, err
	}
	d.files.mu.Lock()
	if d.files.tables == nil {
		d.files.tables = map[string]cachedFiles{}
	}
	d.files.tables[key] = cachedFiles{loc: loc, files: files}
	d.files.mu.Unlock()
	return files, nil
}

// inRange returns the files whose p_event_time bounds overlap [lo, hi] (zero times leave a
// side open).
func inRange(files []iceberg.DataFile, lo, hi time.Time) []iceberg.DataFile {
	var out []iceberg.DataFile
	for _, f := range files {
		if !lo.IsZero() && f.MaxTime.Before(lo) || !hi.IsZero() && f.MinTime.After(hi) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// fileList returns the SQL list of files to read for a table: its schema file, then the data
// files. Those of a lake in an object store are read from the local cache: they are added to
// the statement's reads (from ctx), which Run fetches before the statement runs.
func (d *DB) fileList(ctx context.Context, db, table string, files []iceberg.DataFile) string {
	items := make([]string, 0, len(files)+1)
	items = append(items, quote(d.lake.SchemaFile(db, table)))
	rd, _ := ctx.Value(readsKey{}).(*reads)
	for _, f := range files {
		path := f.Path
		if d.cache != nil {
			path = d.cache.Path(f.Path)
			if rd != nil {
				rd.add(f)
			}
		}
		items = append(items, quote(path))
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// reads are the data files a statement reads from a lake in an object store.
type reads struct {
	mu    sync.Mutex
	files map[string]int64 // size by location
}

type readsKey struct{}

// withReads returns a context that collects the files a statement reads.
func withReads(ctx context.Context) (context.Context, *reads) {
	rd := &reads{files: map[string]int64{}}
	return context.WithValue(ctx, readsKey{}, rd), rd
}

func (rd *reads) add(f iceberg.DataFile) {
	rd.mu.Lock()
	rd.files[f.Path] = f.Size
	rd.mu.Unlock()
}

// fetch brings the files of a statement's reads into the cache, a few at once, and pins them
// until release is called (when the statement's rows are closed).
func (d *DB) fetch(ctx context.Context, rd *reads) (release func(), err error) {
	if d.cache == nil || len(rd.files) == 0 {
		return func() {}, nil
	}
	release, err = d.lake.FetchFiles(ctx, d.cache, rd.files)
	if ctx.Err() != nil {
		if err == nil {
			release()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the statement's files from %s: %w", d.lake.Location(), err)
	}
	return release, nil
}

// tableQuery reads a table's files, with the partition columns year, month, day and hour of
// p_event_time (UTC) last, as Panther's tables have them. The files of a table whose columns
// grew (evolved) are matched by column name: older files read NULL for the new columns.
func tableQuery(files string, evolved bool) string {
	union := ""
	if evolved {
		union = "union_by_name = true, "
	}
	part := func(name string) string {
		return fmt.Sprintf("%s(timezone('UTC', p_event_time))::INTEGER AS %s", name, name)
	}
	return fmt.Sprintf("SELECT *, %s, %s, %s, %s FROM read_parquet(%s, %shive_partitioning = false)",
		part("year"), part("month"), part("day"), part("hour"), files, union)
}
