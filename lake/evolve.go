package lake

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
)

// Schema evolution. A table's columns may only grow: files already written keep the columns
// they have, so a column removed or retyped would make them unreadable next to newer files.
// When a writer gets a batch whose columns are a superset of the table's (new fields, new
// indicator columns), it rewrites the table's schema file with the new columns and marks it
// evolved; readers then match the columns of each file by name and read NULL for the columns
// an older file lacks (DuckDB's union_by_name). Tables that never evolved are read without it,
// which spares DuckDB reading the footer of every file before a query.

// evolvedKey marks, in a schema file's metadata, a table whose older files lack columns.
const evolvedKey = "osprey.evolved"

// ErrIncompatible is returned for a batch whose columns are not a superset of its table's.
var ErrIncompatible = errors.New("incompatible table schema")

// SchemaChange is what a new table schema does to an existing table's columns.
type SchemaChange struct {
	Added   []string // columns (dotted paths for nested ones) that are new
	Removed []string // columns the new schema lacks
	Changed []string // columns whose type changed: "name: old -> new"
}

// Compatible reports whether the change only adds columns.
func (c SchemaChange) Compatible() bool { return len(c.Removed) == 0 && len(c.Changed) == 0 }

// Explain says what is wrong with an incompatible change.
func (c SchemaChange) Explain() string {
	var parts []string
	if len(c.Removed) > 0 {
		parts = append(parts, "removes "+strings.Join(c.Removed, ", "))
	}
	if len(c.Changed) > 0 {
		parts = append(parts, "changes the type of "+strings.Join(c.Changed, ", "))
	}
	return strings.Join(parts, "; ")
}

// CompareSignatures compares a table's signature (see Signature) with a new one.
func CompareSignatures(old, new string) SchemaChange {
	parse := func(sig string) (map[string]string, []string) {
		types := map[string]string{}
		var order []string
		for _, line := range strings.Split(strings.TrimSpace(sig), "\n") {
			if line == "" {
				continue
			}
			name, typ, _ := strings.Cut(line, " ")
			types[name] = typ
			order = append(order, name)
		}
		return types, order
	}
	oldTypes, oldOrder := parse(old)
	newTypes, newOrder := parse(new)
	var c SchemaChange
	for _, name := range oldOrder {
		nt, ok := newTypes[name]
		switch {
		case !ok:
			if !covered(name, c.Removed) {
				c.Removed = append(c.Removed, name)
			}
		case nt != oldTypes[name]:
			c.Changed = append(c.Changed, fmt.Sprintf("%s (%s -> %s)", name, oldTypes[name], nt))
		}
	}
	for _, name := range newOrder {
		if _, ok := oldTypes[name]; !ok && !covered(name, c.Added) {
			c.Added = append(c.Added, name)
		}
	}
	return c
}

// covered reports whether a column is inside one already listed (a.b inside a).
func covered(name string, listed []string) bool {
	for _, l := range listed {
		if strings.HasPrefix(name, l+".") {
			return true
		}
	}
	return false
}

// CheckSchema reports whether a batch of the given columns can be written to a table: the table
// does not exist, has these columns, or has a subset of them (the table then evolves when the
// batch is written). Otherwise the error, wrapping ErrIncompatible, says which columns are
// removed or retyped.
func (l *Lake) CheckSchema(db, table string, s *arrow.Schema) error {
	existing, err := l.TableSignature(db, table)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkChange(db, table, existing, Signature(s))
}

func checkChange(db, table, old, new string) error {
	if old == new {
		return nil
	}
	c := CompareSignatures(old, new)
	if c.Compatible() {
		return nil
	}
	return fmt.Errorf("%w: table %s.%s: the new schema %s. Files already written keep their columns, so a schema may only add fields and indicators: put the fields back as they were, or give the log type a new name",
		ErrIncompatible, db, table, c.Explain())
}

// TableEvolved reports whether a table's columns grew after some of its files were written:
// those files lack the new columns, and readers must match columns by name.
func (l *Lake) TableEvolved(db, table string) (bool, error) {
	pf, closeFile, err := l.openSchemaFile(db, table)
	if err != nil {
		return false, err
	}
	defer closeFile()
	v, ok := pf.Lookup(evolvedKey)
	return ok && v == "true", nil
}

func (l *Lake) openSchemaFile(db, table string) (*parquet.File, func(), error) {
	f, err := os.Open(l.SchemaFile(db, table))
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read schema of %s.%s: %w", db, table, err)
	}
	return pf, func() { f.Close() }, nil
}
