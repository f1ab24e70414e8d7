// Package query answers SQL over a lake with DuckDB. It is the only package that imports DuckDB.
//
// Open starts an in-memory DuckDB with extension installation and loading off (a query must never
// reach the network), a memory limit and a spill directory in the lake, and the session time zone
// UTC. Every table of the lake is a view panther_logs.<table> (and so on for the other
// databases) over the table's schema file and its Parquet files. Before a statement runs, Panther's
// macros (p_occurs_since and friends) are expanded into plain predicates, and each table whose rows
// the statement restricts by p_event_time is read from the partitions of that time range only.
package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/lake"
)

// Options configure a DB.
type Options struct {
	// MemoryLimit is DuckDB's memory_limit, such as "4GB"; default a quarter of the machine's
	// memory, at least 1GB.
	MemoryLimit string
	// Threads is DuckDB's thread count; default GOMAXPROCS.
	Threads int
	// Now is the time macros count back from; default time.Now. A scheduled query sets its
	// scheduled time.
	Now func() time.Time
}

// DB is a DuckDB session over a lake.
type DB struct {
	lake *lake.Lake
	opts Options
	conn *duckdb.Connector
	db   *sql.DB

	mu    sync.Mutex
	views map[string]view // by "db.table"
}

// view is what a table's view reads.
type view struct {
	data    bool // data files (not only the schema file)
	evolved bool // files with different columns, matched by name
}

// Open opens a DuckDB session over the lake.
func Open(ctx context.Context, l *lake.Lake, opts Options) (*DB, error) {
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = defaultMemoryLimit()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// DuckDB reads the lake's paths as glob patterns, which have no escape.
	if strings.ContainsAny(l.Dir(), "*?[]{}") {
		return nil, fmt.Errorf("the lake's path %s contains one of *?[]{}, which DuckDB reads as a glob pattern: use a path without them", l.Dir())
	}
	spill := filepath.Join(l.Dir(), "_osprey", "spill")
	if err := os.MkdirAll(spill, 0o755); err != nil {
		return nil, err
	}
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		fmt.Sprintf("SET memory_limit = '%s'", opts.MemoryLimit),
		fmt.Sprintf("SET temp_directory = %s", quote(spill)),
		fmt.Sprintf("SET threads = %d", opts.Threads),
		"SET TimeZone = 'UTC'",
	}
	conn, err := duckdb.NewConnector("?autoinstall_known_extensions=false&autoload_known_extensions=false", func(ex driver.ExecerContext) error {
		for _, s := range settings {
			if _, err := ex.ExecContext(context.Background(), s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	d := &DB{lake: l, opts: opts, conn: conn, db: sql.OpenDB(conn), views: map[string]view{}}
	if err := d.Refresh(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func defaultMemoryLimit() string {
	total := physicalMemory()
	limit := total / 4
	if limit < 1<<30 {
		limit = 1 << 30
	}
	return fmt.Sprintf("%dMB", limit>>20)
}

// physicalMemory reads MemTotal from /proc/meminfo (4 GiB when it cannot).
func physicalMemory() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 4 << 30
}

// Close ends the session.
func (d *DB) Close() error {
	return errors.Join(d.db.Close(), d.conn.Close())
}

// SQL returns the database/sql handle, for callers that run statements themselves.
func (d *DB) SQL() *sql.DB { return d.db }

// Lake returns the lake the session reads.
func (d *DB) Lake() *lake.Lake { return d.lake }

// quote returns s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident returns s as a quoted SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Refresh creates the views of tables that appeared since the last refresh and points every
// view at the files its table has now.
func (d *DB) Refresh(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, db := range lake.Databases {
		tables, err := d.lake.Tables(db)
		if err != nil {
			return err
		}
		if len(tables) == 0 {
			continue
		}
		if _, err := d.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(db)); err != nil {
			return err
		}
		for _, t := range tables {
			name := t.DB + "." + t.Name
			evolved, err := d.lake.TableEvolved(t.DB, t.Name)
			if err != nil {
				return err
			}
			old, seen := d.views[name]
			now := view{data: d.lake.HasData(t.DB, t.Name), evolved: evolved}
			if seen && (old.data || !now.data) && old.evolved == now.evolved {
				continue // its view already reads every data file there will be, the right way
			}
			stmt := fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", ident(t.DB), ident(t.Name), tableQuery(d.fileList(t.DB, t.Name, nil, true), evolved))
			if _, err := d.db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create view %s: %w", name, d.explainError(err))
			}
			d.views[name] = now
		}
	}
	return nil
}

// fileList returns the SQL list of files to read for a table: its schema file, then the given
// globs, or all its data files. Every glob must match a file (DuckDB refuses one that does not).
func (d *DB) fileList(db, table string, globs []string, all bool) string {
	items := []string{quote(d.lake.SchemaFile(db, table))}
	if all && d.lake.HasData(db, table) {
		globs = []string{d.lake.DataGlob(db, table)}
	}
	for _, g := range globs {
		items = append(items, quote(g))
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// tableQuery reads a table's files with the partition columns last. The files of a table whose
// columns grew (evolved) are matched by column name: older files read NULL for the new columns.
func tableQuery(files string, evolved bool) string {
	union := ""
	if evolved {
		union = "union_by_name = true, "
	}
	return fmt.Sprintf("SELECT * EXCLUDE (year, month, day, hour), year, month, day, hour FROM read_parquet(%s, "+
		"%shive_partitioning = true, hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER})", files, union)
}
