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

// inRange returns the paths of the files whose p_event_time bounds overlap [lo, hi] (zero
// times leave a side open).
func inRange(files []iceberg.DataFile, lo, hi time.Time) []string {
	var out []string
	for _, f := range files {
		if !lo.IsZero() && f.MaxTime.Before(lo) || !hi.IsZero() && f.MinTime.After(hi) {
			continue
		}
		out = append(out, f.Path)
	}
	return out
}

// fileList returns the SQL list of files to read for a table: its schema file, then paths.
func (d *DB) fileList(db, table string, paths []string) string {
	items := make([]string, 0, len(paths)+1)
	items = append(items, quote(d.lake.SchemaFile(db, table)))
	for _, p := range paths {
		items = append(items, quote(p))
	}
	return "[" + strings.Join(items, ", ") + "]"
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
