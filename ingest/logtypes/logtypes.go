// Package logtypes is the registry of log types: the built-in schemas embedded in the binary
// (schemas/*.yml), the native parsers some of them name, and custom schemas added at run time.
package logtypes

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"

	"github.com/ospreyhq/osprey/ingest/auditd"
	"github.com/ospreyhq/osprey/ingest/batch"
	"github.com/ospreyhq/osprey/ingest/jsonlog"
	"github.com/ospreyhq/osprey/ingest/logschema"
)

//go:embed schemas/*.yml
var builtin embed.FS

// Parser decodes one record into a batch builder's open row: the caller calls Begin before and
// End or Rollback after. Parsers are not safe for concurrent use.
type Parser interface {
	Parse(rec []byte, b *batch.Builder) error
}

// NativeParser makes the parser of a native log type from its table schema.
type NativeParser func(*batch.Schema) (Parser, error)

// natives are the parsers written in Go, by the name in parser.native.name.
var natives = map[string]NativeParser{
	"Linux.Auditd": func(s *batch.Schema) (Parser, error) { return auditd.New(s) },
}

// LogType is a log type: its schema, its table and how its records are parsed.
type LogType struct {
	Name    string
	Schema  *logschema.Schema
	Table   *batch.Schema
	Builtin bool
	native  NativeParser
}

// NewParser returns a new parser of the log type's records.
func (t *LogType) NewParser() (Parser, error) {
	if t.native != nil {
		return t.native(t.Table)
	}
	return jsonlog.New(t.Table), nil
}

// Registry holds log types by name.
type Registry struct {
	types map[string]*LogType
}

// Builtin returns a registry of the built-in log types.
func Builtin() (*Registry, error) {
	r := &Registry{types: map[string]*LogType{}}
	entries, err := fs.Glob(builtin, "schemas/*.yml")
	if err != nil {
		return nil, err
	}
	for _, name := range entries {
		data, err := builtin.ReadFile(name)
		if err != nil {
			return nil, err
		}
		s, err := logschema.Parse(data, path.Base(name))
		if err != nil {
			return nil, fmt.Errorf("built-in schema: %w", err)
		}
		if err := r.Add(s, true); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add compiles a schema and adds its log type.
func (r *Registry) Add(s *logschema.Schema, builtin bool) error {
	if _, dup := r.types[s.Schema]; dup {
		return fmt.Errorf("log type %s is defined twice", s.Schema)
	}
	table, err := batch.Compile(s)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Schema, err)
	}
	t := &LogType{Name: s.Schema, Schema: s, Table: table, Builtin: builtin}
	if s.Parser != nil {
		switch {
		case s.Parser.Native != nil:
			t.native = natives[s.Parser.Native.Name]
			if t.native == nil {
				return &logschema.Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("unknown native parser %q", s.Parser.Native.Name)}
			}
		case s.Parser.FastMatch != nil, s.Parser.Regex != nil, s.Parser.CSV != nil:
			return &logschema.Error{File: s.File, Line: s.Line, Msg: "fastmatch, regex and csv parsers are not supported yet"}
		}
	}
	// Build a parser now so that a schema the parser cannot serve fails here, not mid-ingest.
	if _, err := t.NewParser(); err != nil {
		return err
	}
	r.types[s.Schema] = t
	return nil
}

// Lookup returns a log type by name.
func (r *Registry) Lookup(name string) (*LogType, error) {
	if t, ok := r.types[name]; ok {
		return t, nil
	}
	names := r.Names()
	// Suggest a name that differs only in case.
	for _, n := range names {
		if equalFold(n, name) {
			return nil, fmt.Errorf("unknown log type %q (did you mean %s?)", name, n)
		}
	}
	return nil, fmt.Errorf("unknown log type %q (known: %v)", name, names)
}

// Names returns the names of the log types, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.types))
	for n := range r.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the log types, sorted by name.
func (r *Registry) All() []*LogType {
	var all []*LogType
	for _, n := range r.Names() {
		all = append(all, r.types[n])
	}
	return slices.Clip(all)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
