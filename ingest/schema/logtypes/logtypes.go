// Package logtypes is the registry of log types: the built-in schemas embedded in the binary
// (schemas/*.yml), the native parsers some of them name, and custom schemas loaded from a
// directory at run time.
//
// A log type's records are parsed by the first that applies of: its native parser (written in
// Go, such as Linux.Auditd or Syslog.RFC5424); its text parser (fastmatch, regex or csv, package
// textlog), which feeds the JSON decoder; the JSON decoder (package jsonlog). Transformations
// (package transform) run in front of the JSON decoder when the schema has any. A native name
// without a Go parser (Panther names many formats that are JSON, such as Okta.SystemLog) is
// read as JSON.
package logtypes

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/ospreyhq/osprey/ingest/parse/auditd"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/parse/syslog"
	"github.com/ospreyhq/osprey/ingest/parse/textlog"
	"github.com/ospreyhq/osprey/ingest/parse/transform"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

//go:embed schemas/*.yml
var builtin embed.FS

// goldens are the golden tests of the built-in types (testdata/<table>_tests.yml): each type's
// sample records and the rows they give, checked by TestGolden; osprey schema show prints the
// first as the type's example.
//
//go:embed testdata/*_tests.yml
var goldens embed.FS

// Vendor returns the vendor part of a log type's name: what comes before its first dot.
func (t *LogType) Vendor() string {
	v, _, _ := strings.Cut(t.Name, ".")
	return v
}

// Example returns a record of a built-in log type and the row it gives, from the type's golden
// tests; ok is false for other types.
func (t *LogType) Example() (record, row string, ok bool) {
	if !t.Builtin {
		return "", "", false
	}
	data, err := goldens.ReadFile("testdata/" + t.Table.Table + "_tests.yml")
	if err != nil {
		return "", "", false
	}
	// The first document of the file, up to the second document's separator.
	if i := bytes.Index(data, []byte("\n---")); i >= 0 {
		data = data[:i]
	}
	var c struct {
		Input   string   `yaml:"input"`
		Result  string   `yaml:"result"`
		Results []string `yaml:"results"`
	}
	if yaml.Unmarshal(data, &c) != nil || c.Input == "" {
		return "", "", false
	}
	row = c.Result
	if row == "" && len(c.Results) > 0 {
		row = c.Results[0]
	}
	return c.Input, row, row != ""
}

// Parser decodes one record into a batch builder's open row: the caller calls Begin before and
// End or Rollback after. Parsers are not safe for concurrent use.
type Parser interface {
	Parse(rec []byte, b *batch.Builder) error
}

// The parsers a log type may have.
var (
	_ Parser = (*jsonlog.Parser)(nil)
	_ Parser = (*textlog.Parser)(nil)
	_ Parser = (*transform.Transformer)(nil)
	_ Parser = (*auditd.Parser)(nil)
	_ Parser = (*syslog.Parser)(nil)
)

// ErrSkip is returned by a parser for a record that holds no data (a CSV header): it is
// skipped, not a failure.
var ErrSkip = textlog.ErrSkip

// Native is a parser written in Go for the log types whose schema names it
// (parser: native: name: ...).
type Native struct {
	// New makes the parser of a table schema; nil means the records are JSON.
	New func(*batch.Schema) (Parser, error)
	// Check rejects, cheaply, records that cannot be of the format; nil accepts any.
	Check func(rec []byte) error
	// Payload names a field that holds the whole record, as it came (Panther's parsers of
	// Microsoft 365's general audit records and of CrowdStrike's unknown events keep it).
	Payload string
	// Generic marks a format that others refine (a Juniper log line is a syslog line): its
	// type is tried after the other text types, whichever won last.
	Generic bool
	// Envelope names a key whose array holds the records, when a whole document may arrive as
	// one record ({"Records": [...]} of CloudTrail).
	Envelope string
	// Indicators adds indicators to fields of the schema, by dotted path (through objects and
	// array elements), for the values Panther's own parser of the format scans beyond what its
	// schema lists.
	Indicators map[string][]string
}

// natives are the native parsers, by the name in parser.native.name.
var natives = map[string]Native{
	"Linux.Auditd": {
		New:   func(s *batch.Schema) (Parser, error) { return auditd.New(s) },
		Check: auditd.Check,
	},
	"Syslog.RFC5424": {
		New:     func(s *batch.Schema) (Parser, error) { return syslog.New(s, syslog.RFC5424) },
		Check:   syslog.Check5424,
		Generic: true,
	},
	"Syslog.RFC3164": {
		New:     func(s *batch.Schema) (Parser, error) { return syslog.New(s, syslog.RFC3164) },
		Check:   syslog.Check3164,
		Generic: true,
	},
	"AWS.CloudTrail": {
		Envelope: "Records",
		// ARNs in the free-form parts of an event (KMS keys, trails, buckets, functions).
		Indicators: map[string][]string{
			"requestParameters":   {"aws_arn"},
			"responseElements":    {"aws_arn"},
			"additionalEventData": {"aws_arn"},
			"serviceEventDetails": {"aws_arn"},
		},
	},
	"AWS.CloudTrailInsight":      {Envelope: "Records"},
	"Microsoft365.Audit.General": {Payload: "payload"},
	"Crowdstrike.Unknown":        {Payload: "unknown_payload"},
	"AWS.VPCDns": {
		Indicators: map[string][]string{
			"query_name":    {"domain"},
			"answers.Rdata": {"hostname"},
		},
	},
}

// Natives returns the names of the native parsers written in Go, sorted.
func Natives() []string {
	names := make([]string, 0, len(natives))
	for n, nat := range natives {
		if nat.New != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// LogType is a log type: its schema, its table and how its records are parsed.
type LogType struct {
	Name    string
	Schema  *logschema.Schema
	Table   *batch.Schema
	Builtin bool
	// Envelope is the key of a document whose array holds this type's records, if any.
	Envelope string

	native *Native
	check  func(rec []byte) error
}

// NeedsHeader reports whether the log type's parser takes its columns from the first line of a
// stream (a CSV schema with hasHeader and no columns): ingest then hands that line to the
// parsers of every worker (see textlog.Parser.SetHeader).
func (t *LogType) NeedsHeader() bool { return textlog.NeedsHeader(t.Schema.Parser) }

// ParserName describes how the records are parsed: json, fastmatch, regex, csv or native
// <name> (with "as JSON" when the native name has no Go parser).
func (t *LogType) ParserName() string {
	p := t.Schema.Parser
	switch {
	case p == nil:
		return "json"
	case p.Native != nil && t.native != nil && t.native.New != nil:
		return "native " + p.Native.Name
	case p.Native != nil:
		return "native " + p.Native.Name + " (JSON)"
	case p.FastMatch != nil:
		return "fastmatch"
	case p.Regex != nil:
		return "regex"
	case p.CSV != nil:
		return "csv"
	}
	return "json"
}

// NewParser returns a new parser of the log type's records.
func (t *LogType) NewParser() (Parser, error) {
	if t.native != nil && t.native.New != nil {
		return t.native.New(t.Table)
	}
	var p Parser = jsonlog.New(t.Table)
	if tr := transform.New(t.Schema, p); tr != nil {
		p = tr
	}
	if t.native != nil && t.native.Payload != "" {
		p = &payload{key: []byte(`{"` + t.native.Payload + `":`), next: p}
	}
	if spec := t.Schema.Parser; spec != nil && (spec.FastMatch != nil || spec.Regex != nil || spec.CSV != nil) {
		tp, err := textlog.New(spec, t.Table, p)
		if err != nil {
			line := spec.Line
			if line == 0 {
				line = t.Schema.Line
			}
			return nil, &logschema.Error{File: t.Schema.File, Line: line, Msg: "parser: " + err.Error()}
		}
		p = tp
	}
	return p, nil
}

// Generic reports whether the log type's format is one that other types refine (syslog).
func (t *LogType) Generic() bool { return t.native != nil && t.native.Generic }

// ReadsJSON reports whether the log type's records are JSON objects read by the JSON decoder
// (a native parser or a text parser reads the others).
func (t *LogType) ReadsJSON() bool {
	if t.native != nil && t.native.New != nil {
		return false
	}
	spec := t.Schema.Parser
	return spec == nil || (spec.FastMatch == nil && spec.Regex == nil && spec.CSV == nil)
}

// Check rejects, without parsing, a record that cannot be of the log type: it is cheap, so
// that classifying a record against many log types stays fast. A nil error does not mean the
// record parses.
func (t *LogType) Check(rec []byte) error {
	if t.check == nil {
		return nil
	}
	return t.check(rec)
}

// Registry holds log types by name.
type Registry struct {
	types map[string]*LogType
}

// New returns an empty registry.
func New() *Registry { return &Registry{types: map[string]*LogType{}} }

// loadBatch is the number of built-in schemas decoded between two garbage collections.
const loadBatch = 16

// Builtin returns a registry of the built-in log types.
func Builtin() (*Registry, error) {
	r := New()
	entries, err := fs.Glob(builtin, "schemas/*.yml")
	if err != nil {
		return nil, err
	}
	for i, name := range entries {
		if i > 0 && i%loadBatch == 0 {
			// Decoding YAML makes about 0.7 MB of garbage per schema, 120 MB for them all:
			// collected as it goes, it does not raise serve's peak memory.
			runtime.GC()
		}
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

// BuiltinSchema returns the YAML of a built-in schema file, for osprey schema show.
func BuiltinSchema(file string) ([]byte, error) { return builtin.ReadFile("schemas/" + file) }

// Add compiles a schema and adds its log type.
func (r *Registry) Add(s *logschema.Schema, builtin bool) error {
	if old, dup := r.types[s.Schema]; dup {
		where := "a built-in log type"
		if !old.Builtin {
			where = "defined in " + old.Schema.File
		}
		return &logschema.Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("log type %s is already %s", s.Schema, where)}
	}
	if s.Parser != nil && s.Parser.Native != nil {
		if nat, ok := natives[s.Parser.Native.Name]; ok {
			addIndicators(s, nat.Indicators)
		}
	}
	table, err := batch.Compile(s)
	if err != nil {
		return &logschema.Error{File: s.File, Line: s.Line, Msg: err.Error()}
	}
	for _, other := range r.types {
		if other.Table.Table == table.Table {
			return &logschema.Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("log type %s has the same table as %s (%s)", s.Schema, other.Name, table.Table)}
		}
	}
	t := &LogType{Name: s.Schema, Schema: s, Table: table, Builtin: builtin}
	if s.Parser != nil && s.Parser.Native != nil {
		if nat, ok := natives[s.Parser.Native.Name]; ok {
			t.native = &nat
			t.Envelope = nat.Envelope
			t.check = nat.Check
		}
	}
	if t.check == nil {
		t.check = makeCheck(s, table)
	}
	// Build a parser now so that a schema the parser cannot serve fails here, not mid-ingest.
	if _, err := t.NewParser(); err != nil {
		var se *logschema.Error
		if errors.As(err, &se) {
			return err
		}
		return &logschema.Error{File: s.File, Line: s.Line, Msg: err.Error()}
	}
	r.types[s.Schema] = t
	return nil
}

// LoadDir loads every schema file (*.yml, *.yaml) under dir, recursively, and adds the log
// types as custom ones. Files named *_tests.yml hold schema tests and are left out. Every
// mistake found is returned, joined, each with its file and line; the schemas without
// mistakes are added.
func (r *Registry) LoadDir(dir string) ([]*LogType, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if IsSchemaFile(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoSchemas, dir)
	}
	var added []*LogType
	var errs []error
	for _, f := range files {
		s, err := logschema.LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.Add(s, false); err != nil {
			errs = append(errs, err)
			continue
		}
		added = append(added, r.types[s.Schema])
	}
	return added, errors.Join(errs...)
}

// ErrNoSchemas is returned by LoadDir for a directory without schema files.
var ErrNoSchemas = errors.New("no schema files (*.yml, *.yaml)")

// AddBuiltins adds the built-in log types that the registry does not define already (by name or
// by table), so that custom schemas may stand in for built-in ones (osprey schema test).
func (r *Registry) AddBuiltins() error {
	b, err := Builtin()
	if err != nil {
		return err
	}
	tables := map[string]bool{}
	for _, t := range r.types {
		tables[t.Table.Table] = true
	}
	for _, t := range b.All() {
		if _, ok := r.types[t.Name]; ok || tables[t.Table.Table] {
			continue
		}
		r.types[t.Name] = t
	}
	return nil
}

// IsSchemaFile reports whether a file name is that of a schema (not of schema tests).
func IsSchemaFile(name string) bool {
	base := filepath.Base(name)
	ext := filepath.Ext(base)
	if ext != ".yml" && ext != ".yaml" {
		return false
	}
	stem := strings.TrimSuffix(base, ext)
	return !strings.HasSuffix(stem, "_tests") && !strings.HasSuffix(stem, "_test")
}

// Lookup returns a log type by name.
func (r *Registry) Lookup(name string) (*LogType, error) {
	if t, ok := r.types[name]; ok {
		return t, nil
	}
	if now, ok := Renamed[name]; ok {
		if t, ok := r.types[now]; ok {
			return t, nil
		}
	}
	names := r.Names()
	// Suggest a name that differs only in case.
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return nil, fmt.Errorf("unknown log type %q (did you mean %s?)", name, n)
		}
	}
	return nil, fmt.Errorf("unknown log type %q (%d known: osprey schema list shows them)", name, len(names))
}

// Renamed maps the names of built-in log types that osprey has renamed to Panther's names for
// them: a configuration or command that names the old one gets the new one.
var Renamed = map[string]string{"Teleport.Audit": "Gravitational.TeleportAudit"}

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

// makeCheck returns the cheap test of a schema's records: a JSON record is an object that names
// every required top-level field (unless a transformation fills it); a fastmatch record starts
// with the literal text of one of its patterns; a regex record has the literal text the
// expression requires.
func makeCheck(s *logschema.Schema, t *batch.Schema) func([]byte) error {
	if s.Parser != nil {
		if fm := s.Parser.FastMatch; fm != nil {
			return fastMatchCheck(fm.Match)
		}
		if re := s.Parser.Regex; re != nil {
			return regexCheck(re)
		}
		if s.Parser.CSV != nil {
			return nil
		}
	}
	var keys [][]byte
	var missing []error
	for i := range s.Fields {
		f := &s.Fields[i]
		if !f.Required || f.Rename != nil || f.Copy != nil || f.Concat != nil || f.Split != nil {
			continue
		}
		keys = append(keys, []byte(`"`+f.Name+`"`))
		missing = append(missing, fmt.Errorf("required field %s is missing", f.Name))
	}
	return func(rec []byte) error {
		i := 0
		for i < len(rec) && (rec[i] == ' ' || rec[i] == '\t' || rec[i] == '\r' || rec[i] == '\n') {
			i++
		}
		if i == len(rec) || rec[i] != '{' {
			return errNotJSONObject
		}
		for k, key := range keys {
			if !bytes.Contains(rec, key) {
				return missing[k]
			}
		}
		return nil
	}
}

var errNotJSONObject = errors.New("not a JSON object")

func regexCheck(re *logschema.RegexParser) func([]byte) error {
	lits, err := textlog.RequiredLiterals(re.Match, re.PatternDefinitions)
	if err != nil || len(lits) == 0 {
		return nil // NewParser reports the error
	}
	errs := make([]error, len(lits))
	for i, l := range lits {
		errs[i] = fmt.Errorf("does not match the regex: no %q", l)
	}
	return func(rec []byte) error {
		for i, l := range lits {
			if !bytes.Contains(rec, l) {
				return errs[i]
			}
		}
		return nil
	}
}

func fastMatchCheck(patterns []string) func([]byte) error {
	var prefixes [][]byte
	for _, p := range patterns {
		i := strings.Index(p, "%{")
		if i <= 0 {
			return nil // a pattern that starts with a field: any record may match
		}
		prefixes = append(prefixes, []byte(p[:i]))
	}
	err := errors.New("does not start like the fastmatch patterns")
	return func(rec []byte) error {
		for _, p := range prefixes {
			if bytes.HasPrefix(rec, p) {
				return nil
			}
		}
		return err
	}
}

// addIndicators adds indicators to the fields at the given paths, when the schema has them.
func addIndicators(s *logschema.Schema, byPath map[string][]string) {
	for path, names := range byPath {
		v := findValue(s.Fields, strings.Split(path, "."))
		if v == nil {
			continue
		}
		for _, n := range names {
			if !slices.Contains(v.Indicators, n) {
				v.Indicators = append(v.Indicators, n)
			}
		}
	}
}

func findValue(fields []logschema.Field, path []string) *logschema.Value {
	for i := range fields {
		f := &fields[i]
		if f.Name != path[0] {
			continue
		}
		v := &f.Value
		for v.Type == logschema.TypeArray && v.Element != nil {
			v = v.Element
		}
		if len(path) == 1 {
			return v
		}
		return findValue(v.Fields, path[1:])
	}
	return nil
}

// payload hands its parser the record with one more member, the whole record under a key.
type payload struct {
	key  []byte // {"name":
	next Parser
	buf  []byte
}

func (p *payload) Parse(rec []byte, b *batch.Builder) error {
	rec = bytes.TrimSpace(rec)
	if len(rec) < 2 || rec[0] != '{' {
		return p.next.Parse(rec, b) // not an object: the parser says so
	}
	p.buf = append(append(p.buf[:0], p.key...), rec...)
	if rest := bytes.TrimLeft(rec[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		p.buf = append(p.buf, ',')
	}
	p.buf = append(p.buf, rec[1:]...)
	return p.next.Parse(p.buf, b)
}
