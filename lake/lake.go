package lake

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"
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

// Lake is a lake directory.
type Lake struct {
	dir string
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
	return &Lake{dir: abs}, nil
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
	return &Lake{dir: abs}, nil
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
// directory and the tables' schema files. A query session may read these and nothing else of
// the lake (not the write-ahead log, tokens, sources, alert state or commit records).
func (l *Lake) ReadDirs() []string {
	dirs := make([]string, 0, len(Databases)+1)
	for _, db := range Databases {
		dirs = append(dirs, filepath.Join(l.dir, db))
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

// PartitionDir returns the directory of the partition holding the hour of t.
func (l *Lake) PartitionDir(db, table string, t time.Time) string {
	return filepath.Join(l.TableDir(db, table), PartitionPath(t))
}

// PartitionPath returns year=YYYY/month=MM/day=DD/hour=HH for the UTC hour of t.
func PartitionPath(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("year=%04d/month=%02d/day=%02d/hour=%02d", t.Year(), int(t.Month()), t.Day(), t.Hour())
}

// DataGlob returns the glob of a table's data files.
func (l *Lake) DataGlob(db, table string) string {
	return filepath.Join(l.TableDir(db, table), "year=*", "month=*", "day=*", "hour=*", "*.parquet")
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

// HourRange calls fn with each partition directory of a table that exists and whose hour is in
// [from, to] (zero times mean unbounded), in time order, without listing directories outside
// the range.
func (l *Lake) HourRange(db, table string, from, to time.Time, fn func(dir string, hour time.Time) error) error {
	root := l.TableDir(db, table)
	years, err := listInts(root, "year=")
	if err != nil {
		return err
	}
	inRange := func(t, unitEnd time.Time) bool {
		return (from.IsZero() || !unitEnd.Before(from.Truncate(time.Hour))) && (to.IsZero() || !t.After(to))
	}
	for _, y := range years {
		ys := time.Date(y.v, 1, 1, 0, 0, 0, 0, time.UTC)
		if !inRange(ys, ys.AddDate(1, 0, 0).Add(-time.Hour)) {
			continue
		}
		months, err := listInts(filepath.Join(root, y.name), "month=")
		if err != nil {
			return err
		}
		for _, m := range months {
			ms := time.Date(y.v, time.Month(m.v), 1, 0, 0, 0, 0, time.UTC)
			if !inRange(ms, ms.AddDate(0, 1, 0).Add(-time.Hour)) {
				continue
			}
			days, err := listInts(filepath.Join(root, y.name, m.name), "day=")
			if err != nil {
				return err
			}
			for _, d := range days {
				ds := time.Date(y.v, time.Month(m.v), d.v, 0, 0, 0, 0, time.UTC)
				if !inRange(ds, ds.Add(23*time.Hour)) {
					continue
				}
				hours, err := listInts(filepath.Join(root, y.name, m.name, d.name), "hour=")
				if err != nil {
					return err
				}
				for _, h := range hours {
					hs := ds.Add(time.Duration(h.v) * time.Hour)
					if !inRange(hs, hs) {
						continue
					}
					if err := fn(filepath.Join(root, y.name, m.name, d.name, h.name), hs); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// HasData reports whether a table has at least one data file.
func (l *Lake) HasData(db, table string) bool {
	return hasParquet(l.TableDir(db, table), 4)
}

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

// Globs returns globs that together match exactly the data files of a table whose partition
// hour is in [from, to] (zero times mean unbounded). A year, month or day wholly inside the
// range is one glob; every glob matches at least one file.
func (l *Lake) Globs(db, table string, from, to time.Time) ([]string, error) {
	root := l.TableDir(db, table)
	from = from.Truncate(time.Hour)
	covers := func(start, lastHour time.Time) bool {
		return (from.IsZero() || !start.Before(from)) && (to.IsZero() || !lastHour.After(to))
	}
	overlaps := func(start, lastHour time.Time) bool {
		return (from.IsZero() || !lastHour.Before(from)) && (to.IsZero() || !start.After(to))
	}
	var globs []string
	add := func(dir string, depth int) {
		if hasParquet(dir, depth) {
			pattern := dir
			for _, level := range []string{"month=*", "day=*", "hour=*"}[3-depth:] {
				pattern = filepath.Join(pattern, level)
			}
			globs = append(globs, filepath.Join(pattern, "*.parquet"))
		}
	}
	years, err := listInts(root, "year=")
	if err != nil {
		return nil, err
	}
	for _, y := range years {
		ys := time.Date(y.v, 1, 1, 0, 0, 0, 0, time.UTC)
		ye := ys.AddDate(1, 0, 0).Add(-time.Hour)
		ydir := filepath.Join(root, y.name)
		if !overlaps(ys, ye) {
			continue
		}
		if covers(ys, ye) {
			add(ydir, 3)
			continue
		}
		months, err := listInts(ydir, "month=")
		if err != nil {
			return nil, err
		}
		for _, m := range months {
			ms := time.Date(y.v, time.Month(m.v), 1, 0, 0, 0, 0, time.UTC)
			me := ms.AddDate(0, 1, 0).Add(-time.Hour)
			mdir := filepath.Join(ydir, m.name)
			if !overlaps(ms, me) {
				continue
			}
			if covers(ms, me) {
				add(mdir, 2)
				continue
			}
			days, err := listInts(mdir, "day=")
			if err != nil {
				return nil, err
			}
			for _, d := range days {
				ds := time.Date(y.v, time.Month(m.v), d.v, 0, 0, 0, 0, time.UTC)
				de := ds.Add(23 * time.Hour)
				ddir := filepath.Join(mdir, d.name)
				if !overlaps(ds, de) {
					continue
				}
				if covers(ds, de) {
					add(ddir, 1)
					continue
				}
				hours, err := listInts(ddir, "hour=")
				if err != nil {
					return nil, err
				}
				for _, h := range hours {
					hs := ds.Add(time.Duration(h.v) * time.Hour)
					if overlaps(hs, hs) {
						add(filepath.Join(ddir, h.name), 0)
					}
				}
			}
		}
	}
	return globs, nil
}

type intDir struct {
	name string
	v    int
}

// listInts lists the subdirectories named prefix<int>, sorted by the number.
func listInts(dir, prefix string) ([]intDir, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []intDir
	for _, e := range entries {
		if !e.IsDir() || len(e.Name()) <= len(prefix) || e.Name()[:len(prefix)] != prefix {
			continue
		}
		v := 0
		ok := true
		for _, c := range e.Name()[len(prefix):] {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + int(c-'0')
		}
		if ok {
			out = append(out, intDir{e.Name(), v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].v < out[j].v })
	return out, nil
}
