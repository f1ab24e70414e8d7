// Package query answers SQL over a lake with DuckDB. It is the only package that imports DuckDB.
//
// Open starts an in-memory DuckDB with extension installation and loading off (a query must never
// reach the network), a memory limit and a spill directory in the lake, and the session time zone
// UTC; then it locks the database down so that a statement can read the lake and nothing else
// (see lockdown and DB.Run). Every table of the lake is a view panther_logs.<table> (and so on for
// the other databases) over the table's schema file and the Parquet files of its current Iceberg
// snapshot (files.go). Before a statement runs, Panther's macros (p_occurs_since and friends) are
// expanded into plain predicates, and each table whose rows the statement restricts by
// p_event_time (or by a column's value) is read from the files whose bounds allow them only.
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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/ospreyhq/osprey/lake/objcache"
)

// Options configure a DB.
type Options struct {
	// MemoryLimit is DuckDB's memory_limit, such as "4GB"; default a quarter of the machine's
	// memory, at least 1GB.
	MemoryLimit string
	// Threads is DuckDB's thread count; default GOMAXPROCS.
	Threads int
	// TimeZone is the session's time zone (timestamps without an offset are read in it);
	// default UTC. Statements cannot change it.
	TimeZone string
	// LazyViews leaves the creation of the lake's views to the first Refresh or statement
	// instead of Open: a shell shows its prompt at once and lists a long lake's files (every
	// hour partition) while the user types.
	LazyViews bool
	// Now is the time macros count back from; default time.Now. A scheduled query sets its
	// scheduled time.
	Now func() time.Time
	// CacheBytes bounds the local cache of a lake in an object store (see lake.OpenCache).
	CacheBytes int64
}

// DB is a DuckDB session over a lake.
type DB struct {
	lake *lake.Lake
	opts Options
	conn *duckdb.Connector
	db   *sql.DB

	cat   *iceberg.Catalog
	files fileCache
	// cache holds the data files of a lake in an object store, for DuckDB to read.
	cache *objcache.Cache

	mu     sync.Mutex
	views  map[string]view     // by "db.table"
	unions map[string][]string // union view name -> the tables it was built over
	// alertsView is set once panther_monitor.alerts exists (over alert_history).
	alertsView bool
}

// view is what a table's view reads.
type view struct {
	loc     string // the table's metadata: its files are the view's
	evolved bool   // files with different columns, matched by name
}

// Open opens a DuckDB session over the lake.
func Open(ctx context.Context, l *lake.Lake, opts Options) (*DB, error) {
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = defaultMemoryLimit()
	}
	if opts.TimeZone == "" {
		opts.TimeZone = "UTC"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// DuckDB reads the lake's paths as glob patterns, which have no escape.
	if strings.ContainsAny(l.Dir(), "*?[]{}") {
		return nil, fmt.Errorf("the lake's path %s contains one of *?[]{}, which DuckDB reads as a glob pattern: use a path without them", l.Dir())
	}
	spill := l.SpillDir()
	if err := os.MkdirAll(spill, 0o755); err != nil {
		return nil, err
	}
	// Settings are the database's, not a connection's: they are applied once, by the first
	// connection, which then locks the database down (see lockdown).
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		fmt.Sprintf("SET memory_limit = '%s'", opts.MemoryLimit),
		fmt.Sprintf("SET temp_directory = %s", quote(spill)),
		fmt.Sprintf("SET threads = %d", opts.Threads),
		"SET TimeZone = " + quote(opts.TimeZone),
	}
	settings = append(settings, lockdown(l.ReadDirs()...)...)
	var (
		setupMu sync.Mutex
		setup   bool
	)
	conn, err := duckdb.NewConnector("?autoinstall_known_extensions=false&autoload_known_extensions=false", func(ex driver.ExecerContext) error {
		setupMu.Lock()
		defer setupMu.Unlock()
		if setup {
			return nil
		}
		for _, s := range settings {
			if _, err := ex.ExecContext(context.Background(), s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		setup = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	d := &DB{lake: l, opts: opts, conn: conn, db: sql.OpenDB(conn), views: map[string]view{}, unions: map[string][]string{}}
	if d.cat, err = l.OpenCatalog(ctx); err != nil {
		d.db.Close()
		conn.Close()
		return nil, err
	}
	if l.Remote() {
		if d.cache, err = l.OpenCache(opts.CacheBytes); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := registerFunctions(ctx, d.db); err != nil {
		d.Close()
		return nil, err
	}
	if !opts.LazyViews {
		if err := d.Refresh(ctx); err != nil {
			d.Close()
			return nil, err
		}
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
	err := errors.Join(d.db.Close(), d.conn.Close(), d.cat.Close())
	if d.cache != nil {
		err = errors.Join(err, d.cache.Close())
	}
	return err
}

// SQL returns the database/sql handle, for callers that run statements themselves.
func (d *DB) SQL() *sql.DB { return d.db }

// Lake returns the lake the session reads.
func (d *DB) Lake() *lake.Lake { return d.lake }

// lockdown returns the statements that confine DuckDB to reading the given directories (for a
// lake, its tables' files: lake.ReadDirs) and its own spill directory: no other file, no
// extension loading, no configuration changes. DuckDB applies enable_external_access and
// allowed_directories to the database, so they hold for every connection, and
// lock_configuration makes every later SET, RESET or PRAGMA that changes a setting fail. DuckDB
// normalizes a path before it tests it (dir/../x is x). What DuckDB still allows inside those
// directories (COPY TO a file in them, ATTACH ':memory:', CREATE) is refused before it runs:
// DB.Run runs one SELECT statement only (see guard.go).
func lockdown(dirs ...string) []string {
	allowed := make([]string, len(dirs))
	for i, d := range dirs {
		allowed[i] = quote(strings.TrimSuffix(d, string(filepath.Separator)) + string(filepath.Separator))
	}
	return []string{
		fmt.Sprintf("SET allowed_directories = [%s]", strings.Join(allowed, ", ")),
		"SET enable_external_access = false",
		"SET allow_community_extensions = false",
		"SET lock_configuration = true",
	}
}

// quote returns s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident returns s as a quoted SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Refresh creates the views of tables that appeared since the last refresh, points every
// view at the files its table has now, and rebuilds the union views (panther_views.all_logs,
// panther_views.all_rule_matches) when their set of tables changed.
func (d *DB) Refresh(ctx context.Context) error {
	_, err := d.refresh(ctx)
	return err
}

// refresh is Refresh; it returns the snapshot of the lake the views now read.
func (d *DB) refresh(ctx context.Context) (snapshot, error) {
	snap, err := d.current(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return snap, d.refreshViews(ctx, snap)
}

func (d *DB) refreshViews(ctx context.Context, snap snapshot) error {
	tablesOf := map[string][]string{}
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
			tablesOf[db] = append(tablesOf[db], t.Name)
			name := t.DB + "." + t.Name
			evolved, err := d.lake.TableEvolved(t.DB, t.Name)
			if err != nil {
				return err
			}
			loc, ok := snap[name]
			if !ok && d.lake.HasHiveData(t.DB, t.Name) {
				return fmt.Errorf("table %s: %w", name, lake.ErrNeedsMigration)
			}
			if old, seen := d.views[name]; seen && old == (view{loc, evolved}) {
				continue // its view reads the table's current files already
			}
			files, err := d.tableFiles(ctx, snap, t.DB, t.Name)
			if err != nil {
				return err
			}
			if d.cache != nil {
				// A lake in an object store: statements read the files they need, fetched
				// into the cache (see narrow); the view has the table's columns only.
				files = nil
			}
			stmt := fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", ident(t.DB), ident(t.Name), tableQuery(d.fileList(ctx, t.DB, t.Name, files), evolved))
			if _, err := d.db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create view %s: %w", name, d.explainError(err))
			}
			d.views[name] = view{loc, evolved}
		}
	}
	for _, u := range unionViews {
		tables := tablesOf[u.db]
		if built, ok := d.unions[u.name]; ok && slices.Equal(built, tables) {
			continue
		}
		if _, err := d.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(lake.DBViews)); err != nil {
			return err
		}
		sel := u.union(tables, func(table string) string { return ident(u.db) + "." + ident(table) })
		stmt := fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", ident(lake.DBViews), ident(u.name), sel)
		if _, err := d.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create view %s.%s: %w", lake.DBViews, u.name, d.explainError(err))
		}
		d.unions[u.name] = tables
	}
	if !d.alertsView && slices.Contains(tablesOf[lake.DBMonitor], alertHistoryTable) {
		if _, err := d.db.ExecContext(ctx, alertsViewSQL); err != nil {
			return fmt.Errorf("create view %s.alerts: %w", lake.DBMonitor, d.explainError(err))
		}
		d.alertsView = true
	}
	return nil
}

// alertHistoryTable is the table of panther_monitor with a row for each change of an alert
// (written by the detections engine).
const alertHistoryTable = "alert_history"

// alertsViewSQL creates panther_monitor.alerts: each alert as its latest row in alert_history.
const alertsViewSQL = `CREATE OR REPLACE VIEW panther_monitor.alerts AS ` + alertsSelect

// alertsSelect is the alerts view's query; a statement on a lake in an object store reads it
// with alert_history's files in place of its view (see narrowed).
const alertsSelect = `SELECT * EXCLUDE (p_event_time) FROM panther_monitor.alert_history
QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY update_time DESC, event_count DESC) = 1`

// unionView is a view of panther_views over every table of a database: the tables' p_ columns
// (UNION ALL BY NAME: a column a table lacks is NULL) and p_db_name, as Panther's all_logs.
type unionView struct {
	name, db string
	empty    string // the view's columns when the database has no table
}

var unionViews = []unionView{
	{name: "all_logs", db: lake.DBLogs, empty: "SELECT NULL::VARCHAR AS p_db_name, NULL::VARCHAR AS p_log_type, NULL::VARCHAR AS p_row_id, " +
		"NULL::TIMESTAMPTZ AS p_event_time, NULL::TIMESTAMPTZ AS p_parse_time, NULL::VARCHAR AS p_source_id, NULL::VARCHAR AS p_source_label WHERE false"},
	{name: "all_rule_matches", db: lake.DBRuleMatches, empty: "SELECT NULL::VARCHAR AS p_db_name, NULL::VARCHAR AS p_log_type, NULL::VARCHAR AS p_row_id, " +
		"NULL::TIMESTAMPTZ AS p_event_time, NULL::TIMESTAMPTZ AS p_parse_time, NULL::VARCHAR AS p_source_id, NULL::VARCHAR AS p_source_label, " +
		"NULL::VARCHAR AS p_rule_id, NULL::VARCHAR AS p_alert_id, NULL::TIMESTAMPTZ AS p_alert_creation_time, NULL::TIMESTAMPTZ AS p_alert_update_time, " +
		"NULL::VARCHAR AS p_rule_severity, NULL::VARCHAR[] AS p_rule_tags WHERE false"},
}

func findUnionView(db, name string) *unionView {
	if db != lake.DBViews {
		return nil
	}
	for i := range unionViews {
		if unionViews[i].name == name {
			return &unionViews[i]
		}
	}
	return nil
}

// union returns the view's query over tables, each read from source(table).
func (u *unionView) union(tables []string, source func(table string) string) string {
	if len(tables) == 0 {
		return u.empty
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf("SELECT %s AS p_db_name, COLUMNS('^p_') FROM %s", quote(u.db), source(t))
	}
	return strings.Join(parts, " UNION ALL BY NAME ")
}
