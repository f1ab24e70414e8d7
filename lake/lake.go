package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/ospreyhq/osprey/lake/objstore"
)

// Databases of a lake.
const (
	DBLogs        = "panther_logs"
	DBMonitor     = "panther_monitor"
	DBRuleMatches = "panther_rule_matches"
	DBRuleErrors  = "panther_rule_errors"
	DBViews       = "panther_views"
)

// Databases lists the databases a lake may hold, in the order they are shown.
var Databases = []string{DBLogs, DBRuleMatches, DBRuleErrors, DBMonitor, DBViews}

// Lake is a lake: a local directory, and the tables' files either in it or in an object store.
type Lake struct {
	dir   string
	opts  Options
	store *objstore.Store // nil when the tables are in dir
	// node names the lake's directory among those that share its catalog (see scoped).
	node string
}

// scoped returns the name under which a writer or a writer instance of this directory keeps
// its records in the catalog. A shared catalog (PostgreSQL, Glue, REST) serves several
// machines, each with its own write-ahead log and writers: their records are kept apart by
// the directory's node id. The embedded catalog serves this directory only.
func (l *Lake) scoped(name string) string {
	if l.node == "" {
		return name
	}
	return l.node + "/" + name
}

// nodeID returns the node id of a lake's directory, made once (a random UUID).
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, "_osprey", "node-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	unlock, err := durable.Lock(path)
	if err != nil {
		return "", err
	}
	defer unlock()
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := uuid.NewString()
	if err := durable.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write the lake's node id: %w", err)
	}
	return id, nil
}

// Options say where a lake is. The zero value but Dir is a lake all in its directory, with
// the embedded SQLite catalog.
type Options struct {
	// Dir is the lake's local directory: its state (write-ahead log, alert state, tokens,
	// schedules), the embedded catalog and, for a lake in an object store, its local cache.
	Dir string
	// Location, when set, is where the tables' data and metadata are: s3://bucket/prefix.
	Location string
	// AWS says how to reach the object store.
	AWS awsx.AWS
	// Catalog is the catalog's kind (iceberg.SQLite when empty) and CatalogDSN its
	// database for iceberg.Postgres.
	Catalog    iceberg.Kind
	CatalogDSN string
	// GlueCatalogID is the account of a Glue catalog that is not the caller's.
	GlueCatalogID string
	// REST reaches an Iceberg REST catalog.
	REST iceberg.RESTOptions
}

// OpenWith opens a lake as o says, creating its directory if needed; a lake in an object store
// needs its bucket to exist.
func OpenWith(ctx context.Context, o Options) (*Lake, error) {
	l, err := Open(o.Dir)
	if err != nil {
		return nil, err
	}
	return l.with(ctx, o)
}

// OpenExistingWith opens a lake as o says; a lake all in its directory must exist.
func OpenExistingWith(ctx context.Context, o Options) (*Lake, error) {
	if o.Location != "" {
		return OpenWith(ctx, o)
	}
	l, err := OpenExisting(o.Dir)
	if err != nil {
		return nil, err
	}
	return l.with(ctx, o)
}

func (l *Lake) with(ctx context.Context, o Options) (*Lake, error) {
	o.Dir = l.dir
	l.opts = o
	if o.Catalog == iceberg.Postgres || o.Catalog == iceberg.Glue || o.Catalog == iceberg.REST {
		id, err := nodeID(l.dir)
		if err != nil {
			return nil, err
		}
		l.node = id
	}
	if o.Location == "" {
		return l, nil
	}
	s, err := objstore.Open(ctx, o.Location, o.AWS)
	if err != nil {
		return nil, err
	}
	l.store = s
	return l, nil
}

// Remote reports whether the lake's tables are in an object store.
func (l *Lake) Remote() bool { return l.store != nil }

// Store returns the object store of the lake's tables, or nil when they are in its directory.
func (l *Lake) Store() *objstore.Store { return l.store }

// Location returns where the lake's tables are: its directory, or s3://bucket/prefix.
func (l *Lake) Location() string {
	if l.store != nil {
		return l.store.Root()
	}
	return l.dir
}

// ErrNotLake means a directory exists but is not a lake.
var ErrNotLake = errors.New("not an osprey lake")

// Open returns the lake in dir, creating the directory if needed.
func Open(dir string) (*Lake, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "_osprey"), 0o755); err != nil {
		return nil, fmt.Errorf("open lake: %w", err)
	}
	return &Lake{dir: abs, opts: Options{Dir: abs}}, nil
}

// OpenExisting returns the lake in dir, which must exist.
func OpenExisting(dir string) (*Lake, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "_osprey")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(abs); err != nil {
				return nil, fmt.Errorf("lake %s does not exist (ingest something first)", dir)
			}
			return nil, fmt.Errorf("%s: %w", dir, ErrNotLake)
		}
		return nil, err
	}
	return &Lake{dir: abs, opts: Options{Dir: abs}}, nil
}

// Dir returns the lake's directory.
func (l *Lake) Dir() string { return l.dir }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// CheckName checks a database or table name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid table name %q (want lowercase letters, digits and _)", name)
	}
	return nil
}

// ReadDirs returns the directories whose files make up the lake's tables: each database's
// directory, the tables' schema files and, for a lake in an object store, the local cache of
// its data files. A query session may read these and nothing else of
// the lake (not the write-ahead log, tokens, sources, alert state or commit records).
func (l *Lake) ReadDirs() []string {
	dirs := make([]string, 0, len(Databases)+1)
	for _, db := range Databases {
		dirs = append(dirs, filepath.Join(l.dir, db))
	}
	if l.store != nil {
		dirs = append(dirs, l.CacheDir())
	}
	return append(dirs, filepath.Join(l.dir, "_osprey", "schemas"))
}

// SpillDir returns the directory where DuckDB spills what does not fit in its memory limit.
// It is outside _osprey because DuckDB lets a query read its spill directory.
func (l *Lake) SpillDir() string { return filepath.Join(l.dir, "_spill") }

// TableDir returns the directory of a table's data files.
func (l *Lake) TableDir(db, table string) string { return filepath.Join(l.dir, db, table) }

// SchemaFile returns the path of a table's schema file.
func (l *Lake) SchemaFile(db, table string) string {
	return filepath.Join(l.dir, "_osprey", "schemas", db, table, "year=0000", "month=00", "day=00", "hour=00", "schema.parquet")
}

// DayDir returns the directory of a table's data files of the UTC day of t:
// <table>/year=YYYY/month=MM/day=DD.
func (l *Lake) DayDir(db, table string, t time.Time) string {
	return filepath.Dir(l.PartitionDir(db, table, t))
}

// dataLocation returns where a new data file of a table's UTC day of t named name goes: in the
// table's day directory, or at the same path in the object store.
func (l *Lake) dataLocation(db, table string, t time.Time, name string) string {
	if l.store == nil {
		return filepath.Join(l.DayDir(db, table, t), name)
	}
	return l.store.Location(db + "/" + table + "/" + filepath.Dir(PartitionPath(t)) + "/" + name)
}

// PartitionDir returns the directory of the partition holding the hour of t.
func (l *Lake) PartitionDir(db, table string, t time.Time) string {
	return filepath.Join(l.TableDir(db, table), PartitionPath(t))
}

// PartitionPath returns year=YYYY/month=MM/day=DD/hour=HH for the UTC hour of t.
func PartitionPath(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("year=%04d/month=%02d/day=%02d/hour=%02d", t.Year(), int(t.Month()), t.Day(), t.Hour())
}

// Files returns the data files of a table's current Iceberg snapshot, sorted (none for a table
// the catalog does not hold).
func (l *Lake) Files(ctx context.Context, db, table string) ([]string, error) {
	cat, err := l.OpenCatalog(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	files, err := cat.CurrentFiles(ctx, db, table)
	if errors.Is(err, iceberg.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	return paths, nil
}

// Table is a table of the lake.
type Table struct {
	DB, Name string
}

// Tables lists the tables of a database that have a schema file, sorted by name.
func (l *Lake) Tables(db string) ([]Table, error) {
	dir := filepath.Join(l.dir, "_osprey", "schemas", db)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var tables []Table
	for _, e := range entries {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(l.SchemaFile(db, e.Name())); err == nil {
			tables = append(tables, Table{DB: db, Name: e.Name()})
		}
	}
	sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
	return tables, nil
}

// HasHiveData reports whether a table's directory holds a data file in the Hive layout that
// lakes used before the Iceberg catalog (year=/month=/day=/hour=/*.parquet).
func (l *Lake) HasHiveData(db, table string) bool {
	if l.store != nil {
		return false // osprey never wrote the Hive layout to an object store
	}
	return hasParquet(l.TableDir(db, table), 4)
}

// ErrNeedsMigration means a lake holds tables written before the Iceberg catalog.
var ErrNeedsMigration = errors.New("this lake was written by an older osprey: its tables are not in the Iceberg catalog yet; run `osprey lake migrate` once to register their files (nothing is rewritten)")

// hasParquet reports whether dir holds a .parquet file depth levels of partition directories down.
func hasParquet(dir string, depth int) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		switch {
		case depth == 0 && !e.IsDir() && filepath.Ext(e.Name()) == ".parquet":
			return true
		case depth > 0 && e.IsDir() && hasParquet(filepath.Join(dir, e.Name()), depth-1):
			return true
		}
	}
	return false
}
