// Package iceberg keeps the lake's tables as Apache Iceberg tables (format v2), through
// github.com/apache/iceberg-go, so that any engine that reads Iceberg (Athena, Trino, Spark,
// DuckDB, ...) can attach to the lake, and so that a table's files are planned from manifests and
// column bounds rather than globbed.
//
// The catalog is embedded in the lake by default, with nothing to start: iceberg-go's SQL catalog
// on SQLite through the pure-Go modernc.org/sqlite driver. A lake shared by several processes
// or machines keeps the same SQL catalog in PostgreSQL (postgres.go), or uses AWS Glue
// (glue.go) or an Iceberg REST catalog (rest.go); its tables are then in S3 (package
// lake/objstore is iceberg-go's file IO for them).
//
//	<lake>/_osprey/catalog.db                        the catalog (lake.CatalogFile): one row per table,
//	                                                 pointing at its current metadata file
//	<lake>/_osprey/catalog.db.lock                   held while a process sets the catalog up
//	<lake>/<database>/<table>/metadata/              the table's metadata: NNNNN-<uuid>.metadata.json,
//	                                                 manifest lists (snap-*.avro), manifests (*.avro)
//	<lake>/<database>/<table>/...                    data files, wherever package lake wrote them
//
// A database is an Iceberg namespace; a table is created from an Arrow schema of the kind package
// lake writes and partitioned by day(p_event_time), the hours of a day pruned by the files' bounds.
// Osprey keeps writing Parquet with its own encoder (package lake) and registers the files
// without rewriting them: Register reads each file's footer and builds its Iceberg entry (exact
// partition value, row count, size, value and null counts, lower and upper bounds of every column
// the footer has statistics for), and commits a call's files as one snapshot. iceberg-go does not
// check what it is given against the file, and a wrong entry is a wrong plan: a file whose
// timestamps are not microseconds UTC would land in 1970, one without statistics in no time range,
// so Register refuses a file that is not exactly what the table declares (see dataFile).
//
// Package lake's writer commits every flush through Catalog.Commit; package query plans from
// Catalog.Current and FilesAt.
package iceberg

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/internal/awsx"
)

// EventTime is the column tables are partitioned and planned by.
const EventTime = "p_event_time"

// Partitioning: one partition field, the day of p_event_time.
const (
	partitionFieldID   = 1000
	partitionFieldName = "p_event_time_day"
)

// TableProperties are the properties of a new table. Manifests are merged and old metadata files
// deleted so that a table committed to every few seconds keeps small metadata (the study in
// ../shared/research/iceberg-go.md measured 1,000 commits: 385 MB of metadata with the defaults,
// about 1.2 MB with these and snapshots expired).
var TableProperties = ice.Properties{
	table.PropertyFormatVersion:                  "2",
	"commit.manifest-merge.enabled":              "true",
	"commit.manifest.min-count-to-merge":         "50",
	"write.metadata.delete-after-commit.enabled": "true",
	"write.metadata.previous-versions-max":       "10",
}

// catalogName names the catalog in its database; every row of catalog.db carries it.
const catalogName = "osprey"

// ErrNoTable is returned for a table the catalog does not hold.
var ErrNoTable = errors.New("no such iceberg table")

// Catalog is the Iceberg catalog of one lake. Its methods may be called concurrently, and
// several Catalog values (or processes) may commit to one lake: a commit that loses a race is
// staged again on the tables as they are now (see Commit).
type Catalog struct {
	dir       string // the lake's local directory
	warehouse string // where tables are: dir, or s3://bucket/prefix
	kind      Kind
	db        *sql.DB        // the SQL catalog's database; nil for Glue
	cat       icebergCatalog // iceberg-go's catalog
	glue      *glueCatalog   // Glue's own API, for a Glue catalog
	// expiry is when commits expire snapshots: expireAbove, keepSnapshots, keepSnapshotsFor,
	// but in tests and benchmarks that make hours of commits in seconds.
	expiry expiryPolicy
}

// Kind is the kind of a lake's catalog.
type Kind string

// Catalogs: Iceberg's SQL catalog, in SQLite in the lake's directory (the default, one
// machine) or in PostgreSQL (shared by several processes and machines), AWS Glue (what
// Athena and EMR read; see glue.go), or an Iceberg REST catalog (rest.go).
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
	Glue     Kind = "glue"
	REST     Kind = "rest"
)

// perTable reports whether the catalog commits table by table, with the writers' records in
// the lake's store (Glue, REST), rather than in one transaction of its database (SQL).
func (c *Catalog) perTable() bool { return c.kind == Glue || c.kind == REST }

// icebergCatalog is what Catalog uses of iceberg-go's catalogs.
type icebergCatalog interface {
	catalog.Catalog
	Close() error
}

// Options say where a lake's tables and catalog are.
type Options struct {
	// Dir is the lake's local directory. The SQLite catalog is in it.
	Dir string
	// Warehouse is where the tables' data and metadata are: Dir when empty, or an object
	// store location s3://bucket/prefix whose store package objstore has opened.
	Warehouse string
	// Kind is the catalog's kind; SQLite when empty.
	Kind Kind
	// DSN is the PostgreSQL catalog's database, as a postgres:// URL or key=value string.
	DSN string
	// AWS reaches Glue (its region, a role to assume; the endpoint is the SDK's, such as
	// AWS_ENDPOINT_URL_GLUE or AWS_ENDPOINT_URL), and GlueCatalogID is the Glue catalog's
	// account when not the caller's.
	AWS           awsx.AWS
	GlueCatalogID string
	// REST reaches an Iceberg REST catalog.
	REST RESTOptions
}

// Open opens the embedded catalog of the lake in dir, creating its database if needed.
func Open(ctx context.Context, dir string) (*Catalog, error) {
	return OpenWith(ctx, Options{Dir: dir})
}

// OpenWith opens a lake's catalog, creating its tables if needed.
func OpenWith(ctx context.Context, o Options) (*Catalog, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	warehouse := o.Warehouse
	if warehouse == "" {
		warehouse = dir
		// iceberg-go reads a table's location as a URL: # and ? would cut it.
		if strings.ContainsAny(dir, "#?") {
			return nil, fmt.Errorf("the lake's path %s contains # or ?, which Iceberg locations cannot hold: use a path without them", dir)
		}
	}
	c := &Catalog{dir: dir, warehouse: strings.TrimSuffix(warehouse, "/"), kind: o.Kind,
		expiry: expiryPolicy{above: expireAbove, keep: keepSnapshots, max: maxSnapshots, age: keepSnapshotsFor}}
	switch o.Kind {
	case "", SQLite:
		c.kind = SQLite
		err = c.openSQLite(ctx)
	case Postgres:
		err = c.openPostgres(ctx, o.DSN)
	case Glue:
		err = c.openGlue(ctx, o)
	case REST:
		err = c.openREST(ctx, o)
	default:
		err = fmt.Errorf("unknown catalog %q (want sqlite, postgres, glue or rest)", o.Kind)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// openSQLite opens the catalog in the lake's directory.
func (c *Catalog) openSQLite(ctx context.Context) error {
	path := CatalogFile(c.dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("open iceberg catalog: %w", err)
	}
	// Setting the catalog up (the switch to the WAL journal, the tables created if missing) is
	// one process at a time: SQLite fails there at once with "database is locked", without
	// the busy timeout, when another process sets up the same new catalog.
	unlock, err := durable.Lock(path)
	if err != nil {
		return fmt.Errorf("open iceberg catalog: %w", err)
	}
	defer unlock()
	// WAL journal with full syncs: a commit is durable when the catalog's transaction returns.
	// The busy timeout lets writers of other processes wait for each other's transactions.
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open iceberg catalog: %w", err)
	}
	// Creating the tables takes the write lock and syncs: only when they are not all there,
	// so that a reader (a query, osprey sql) opens the catalog without writing.
	var have int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
		('iceberg_tables', 'iceberg_namespace_properties', 'osprey_commits', 'osprey_flushes')`).Scan(&have)
	if err != nil {
		db.Close()
		return fmt.Errorf("open iceberg catalog %s: %w", path, err)
	}
	if err := c.setUp(ctx, db, sqlcat.SQLite, have < 4); err != nil {
		db.Close()
		return fmt.Errorf("open iceberg catalog %s: %w", path, err)
	}
	return nil
}

// setUp opens iceberg-go's catalog on db and creates the catalog's tables when create is set.
func (c *Catalog) setUp(ctx context.Context, db *sql.DB, dialect sqlcat.SupportedDialect, create bool) error {
	cat, err := sqlcat.NewCatalog(catalogName, db, dialect, ice.Properties{
		"init_catalog_tables": strconv.FormatBool(create),
		"warehouse":           c.warehouse,
	})
	if err != nil {
		return err
	}
	if create {
		if _, err := db.ExecContext(ctx, ospreySchema); err != nil {
			cat.Close()
			return err
		}
	}
	c.db, c.cat = db, cat
	return nil
}

// CatalogFile is the catalog's SQLite database in the lake in dir.
func CatalogFile(dir string) string { return filepath.Join(dir, "_osprey", "catalog.db") }

// Remote reports whether the lake's tables are in an object store.
func (c *Catalog) Remote() bool { return c.warehouse != c.dir }

// Warehouse returns where the lake's tables are: its directory or s3://bucket/prefix.
func (c *Catalog) Warehouse() string { return c.warehouse }

// fileIO returns the file IO of the lake's tables.
func (c *Catalog) fileIO(ctx context.Context) (icebergio.IO, error) {
	return icebergio.LoadFS(ctx, nil, c.warehouse)
}

// q rewrites a statement's ? placeholders for the catalog's database ($1, $2, ... on
// PostgreSQL). Statements here hold no ? in literals.
func (c *Catalog) q(stmt string) string {
	if c.kind != Postgres {
		return stmt
	}
	var b strings.Builder
	n := 0
	for _, r := range stmt {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid table name %q (want lowercase letters, digits and _)", name)
	}
	return nil
}

// Close closes the catalog's database.
func (c *Catalog) Close() error {
	err := c.cat.Close()
	if c.db != nil {
		err = errors.Join(err, c.db.Close())
	}
	return err
}

func ident(db, tbl string) table.Identifier { return table.Identifier{db, tbl} }

// Location is the directory of a table, where its data and its metadata directory are.
func (c *Catalog) Location(db, tbl string) string {
	if c.Remote() {
		return c.warehouse + "/" + db + "/" + tbl
	}
	return filepath.Join(c.dir, db, tbl)
}

// CreateTable creates the Iceberg table db.tbl (format v2, partitioned by day(p_event_time),
// TableProperties) with the columns of an Arrow schema of the lake's types, and its namespace if
// needed. The schema must have a non-null p_event_time of microseconds UTC, and every timestamp
// must be microseconds UTC. It fails with catalog.ErrTableAlreadyExists if the table exists.
func (c *Catalog) CreateTable(ctx context.Context, db, tbl string, s *arrow.Schema) (err error) {
	defer func() { err = diskFull(err) }()
	if err := checkName(db); err != nil {
		return err
	}
	if err := checkName(tbl); err != nil {
		return err
	}
	if err := checkArrowSchema(s); err != nil {
		return fmt.Errorf("create iceberg table %s.%s: %w", db, tbl, err)
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(s, false)
	if err != nil {
		return fmt.Errorf("create iceberg table %s.%s: %w", db, tbl, err)
	}
	et, _ := sc.FindFieldByName(EventTime)
	spec := ice.NewPartitionSpec(ice.PartitionField{
		SourceIDs: []int{et.ID}, FieldID: partitionFieldID, Name: partitionFieldName, Transform: ice.DayTransform{},
	})
	ns := table.Identifier{db}
	exists, err := c.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return fmt.Errorf("create iceberg table %s.%s: %w", db, tbl, err)
	}
	if !exists {
		err := c.cat.CreateNamespace(ctx, ns, nil)
		if err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			return fmt.Errorf("create iceberg namespace %s: %w", db, err)
		}
	}
	_, err = c.cat.CreateTable(ctx, ident(db, tbl), sc,
		catalog.WithLocation(c.Location(db, tbl)),
		catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(TableProperties))
	if err != nil {
		return fmt.Errorf("create iceberg table %s.%s: %w", db, tbl, err)
	}
	return nil
}

// checkArrowSchema refuses what a table of the lake cannot hold or plan by: a missing or
// nullable p_event_time, and timestamps that are not microseconds UTC.
func checkArrowSchema(s *arrow.Schema) error {
	idx := s.FieldIndices(EventTime)
	if len(idx) != 1 {
		return fmt.Errorf("schema needs one %s column", EventTime)
	}
	if f := s.Field(idx[0]); !isMicrosUTC(f.Type) {
		return fmt.Errorf("%s must be a timestamp of microseconds UTC, not %s", EventTime, f.Type)
	}
	var check func(path string, t arrow.DataType) error
	check = func(path string, t arrow.DataType) error {
		switch t := t.(type) {
		case *arrow.TimestampType:
			if !isMicrosUTC(t) {
				return fmt.Errorf("column %s: timestamp %s (want microseconds UTC)", path, t)
			}
		case *arrow.StructType:
			for _, f := range t.Fields() {
				if err := check(path+"."+f.Name, f.Type); err != nil {
					return err
				}
			}
		case *arrow.ListType:
			return check(path+".element", t.Elem())
		}
		return nil
	}
	for _, f := range s.Fields() {
		if err := check(f.Name, f.Type); err != nil {
			return err
		}
	}
	return nil
}

func isMicrosUTC(t arrow.DataType) bool {
	ts, ok := t.(*arrow.TimestampType)
	return ok && ts.Unit == arrow.Microsecond && (ts.TimeZone == "UTC" || ts.TimeZone == "+00:00" || ts.TimeZone == "Etc/UTC")
}

// load loads a table's current metadata. Callers drop the table when done: keeping the *Table a
// commit returns, commit after commit, leaks (see the study).
func (c *Catalog) load(ctx context.Context, db, tbl string) (*table.Table, error) {
	t, err := c.cat.LoadTable(ctx, ident(db, tbl))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("%w: %s.%s", ErrNoTable, db, tbl)
	}
	if err != nil {
		return nil, fmt.Errorf("load iceberg table %s.%s: %w", db, tbl, err)
	}
	return t, nil
}

// Register adds Parquet files written by package lake to db.tbl without rewriting them, in one
// snapshot whose summary carries props. It is Commit of one change without a writer's record.
func (c *Catalog) Register(ctx context.Context, db, tbl string, paths []string, props map[string]string) error {
	if len(paths) == 0 {
		return nil
	}
	return c.Commit(ctx, []Change{{DB: db, Table: tbl, Add: paths}}, Record{Meta: props})
}

// Files returns the entries of the data files in db.tbl's current snapshot.
func (c *Catalog) Files(ctx context.Context, db, tbl string) ([]ice.DataFile, error) {
	tasks, err := c.plan(ctx, db, tbl, ice.AlwaysTrue{})
	if err != nil {
		return nil, err
	}
	files := make([]ice.DataFile, len(tasks))
	for i, task := range tasks {
		files[i] = task.File
	}
	return files, nil
}

// Plan returns the local paths, sorted, of the data files of db.tbl that may hold rows whose
// p_event_time is in [from, to); a zero from or to leaves that side open. Files are pruned by
// their day partition and by the bounds of p_event_time.
func (c *Catalog) Plan(ctx context.Context, db, tbl string, from, to time.Time) ([]string, error) {
	var filter ice.BooleanExpression = ice.AlwaysTrue{}
	ref := ice.Reference(EventTime)
	if !from.IsZero() {
		filter = ice.GreaterThanEqual(ref, ice.Timestamp(from.UnixMicro()))
	}
	if !to.IsZero() {
		end := to.UnixMicro() // rows hold microseconds: a row in the microsecond to starts in is before to
		if to.Nanosecond()%1000 != 0 {
			end++
		}
		filter = ice.NewAnd(filter, ice.LessThan(ref, ice.Timestamp(end)))
	}
	tasks, err := c.plan(ctx, db, tbl, filter)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(tasks))
	for i, task := range tasks {
		paths[i] = localPath(task.File.FilePath())
	}
	slices.Sort(paths)
	return paths, nil
}

func (c *Catalog) plan(ctx context.Context, db, tbl string, filter ice.BooleanExpression) ([]table.FileScanTask, error) {
	t, err := c.load(ctx, db, tbl)
	if err != nil {
		return nil, err
	}
	tasks, err := t.Scan(table.WithRowFilter(filter)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan %s.%s: %w", db, tbl, err)
	}
	return tasks, nil
}

// localPath turns a data file's location into a local path.
func localPath(loc string) string {
	if rest, ok := strings.CutPrefix(loc, "file://"); ok {
		return rest
	}
	return loc
}

// Table loads a table's current metadata, for callers that read it (status, tests). Drop the
// table when done (see load).
func (c *Catalog) Table(ctx context.Context, db, tbl string) (*table.Table, error) {
	return c.load(ctx, db, tbl)
}

// HasTable reports whether the catalog holds db.tbl.
func (c *Catalog) HasTable(ctx context.Context, db, tbl string) (bool, error) {
	return c.cat.CheckTableExists(ctx, ident(db, tbl))
}

// DataFile is a data file of a table as a query plans it: where it is, its size, and the
// bounds of its p_event_time.
type DataFile struct {
	Path             string
	Rows, Size       int64
	MinTime, MaxTime time.Time
	// Bounds are the lower and upper bounds of the file's top-level string and integer
	// columns that have them, by lowercase column name: a string or an int64 each.
	Bounds map[string][2]any
}

// FilesAt returns the data files of the snapshot of db.tbl whose metadata is at loc (a
// Pointer's Location), sorted by path.
func (c *Catalog) FilesAt(ctx context.Context, db, tbl, loc string) ([]DataFile, error) {
	t, err := table.NewFromLocation(ctx, ident(db, tbl), loc, icebergio.LoadFSFunc(nil, loc), c.cat)
	if err != nil {
		return nil, fmt.Errorf("load iceberg table %s.%s: %w", db, tbl, err)
	}
	return filesOf(ctx, t)
}

// filesOf returns the data files of a table's snapshot, sorted by path.
func filesOf(ctx context.Context, t *table.Table) ([]DataFile, error) {
	db, tbl := t.Identifier()[0], t.Identifier()[1]
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan %s.%s: %w", db, tbl, err)
	}
	et, ok := t.Schema().FindFieldByName(EventTime)
	if !ok {
		return nil, fmt.Errorf("iceberg table %s.%s has no %s", db, tbl, EventTime)
	}
	out := make([]DataFile, len(tasks))
	for i, task := range tasks {
		f := task.File
		out[i] = DataFile{Path: localPath(f.FilePath()), Rows: f.Count(), Size: f.FileSizeBytes()}
		lo, hi := f.LowerBoundValues()[et.ID], f.UpperBoundValues()[et.ID]
		if len(lo) != 8 || len(hi) != 8 {
			return nil, fmt.Errorf("%s: no bounds of %s", out[i].Path, EventTime)
		}
		out[i].MinTime = time.UnixMicro(int64(binary.LittleEndian.Uint64(lo))).UTC()
		out[i].MaxTime = time.UnixMicro(int64(binary.LittleEndian.Uint64(hi))).UTC()
		out[i].Bounds = columnBounds(t.Schema(), f)
	}
	slices.SortFunc(out, func(a, b DataFile) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// CurrentFiles returns the data files of db.tbl's current snapshot, sorted by path.
func (c *Catalog) CurrentFiles(ctx context.Context, db, tbl string) ([]DataFile, error) {
	t, err := c.load(ctx, db, tbl)
	if err != nil {
		return nil, err
	}
	return filesOf(ctx, t)
}

// columnBounds decodes a file's bounds of top-level string and integer columns (Iceberg's
// single-value serialization: UTF-8 bytes, 4- or 8-byte little-endian integers).
func columnBounds(sc *ice.Schema, f ice.DataFile) map[string][2]any {
	lower, upper := f.LowerBoundValues(), f.UpperBoundValues()
	out := map[string][2]any{}
	for _, field := range sc.Fields() {
		lo, okl := lower[field.ID]
		hi, okh := upper[field.ID]
		if !okl || !okh {
			continue
		}
		name := strings.ToLower(field.Name)
		switch field.Type.(type) {
		case ice.StringType:
			out[name] = [2]any{string(lo), string(hi)}
		case ice.Int32Type:
			if len(lo) == 4 && len(hi) == 4 {
				out[name] = [2]any{int64(int32(binary.LittleEndian.Uint32(lo))), int64(int32(binary.LittleEndian.Uint32(hi)))}
			}
		case ice.Int64Type:
			if len(lo) == 8 && len(hi) == 8 {
				out[name] = [2]any{int64(binary.LittleEndian.Uint64(lo)), int64(binary.LittleEndian.Uint64(hi))}
			}
		}
	}
	return out
}

// diskFull marks SQLite's "database or disk is full" (SQLITE_FULL) as syscall.ENOSPC, which the
// file system's own errors are, so that callers treat a full disk alike wherever it is met
// (osprey serve reports it as such, and retries).
func diskFull(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqliteFull && !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w (%w)", err, syscall.ENOSPC)
	}
	return err
}

// sqliteFull is SQLite's result code SQLITE_FULL.
const sqliteFull = 13
