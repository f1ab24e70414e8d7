// Package schematest runs log schema tests written in Panther's format, and turns records into
// the normalized rows osprey stores, as JSON, for tools and golden tests.
//
// A test file (*_tests.yml) holds YAML documents, each a case: name, logType, an input record
// and the row expected (result) or, for an input that holds several records (a CloudTrail
// {"Records": [...]} document), the rows (results). A row is compared field by field with what
// osprey builds: timestamps as instants (the expected text is read with the field's time
// formats), numbers as numbers, json values as JSON, p_any_* columns as sets; a field absent on
// one side and null on the other is the same. p_row_id, p_parse_time, p_source_id and
// p_source_label are not compared: they depend on the run. RunMatch compares less strictly:
// Contains asks the row to hold the expected row (Panther's row of a case, which osprey's may
// exceed), Holds asks it to hold a rule test's Log (keys as the parser reads them).
package schematest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/goccy/go-yaml"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// Case is one test case.
type Case struct {
	Name    string   `yaml:"name"`
	LogType string   `yaml:"logType"`
	Input   string   `yaml:"input"`
	Result  string   `yaml:"result"`
	Results []string `yaml:"results"`

	File string `yaml:"-"`
	Line int    `yaml:"-"` // line of the case's document in File
}

// Want returns the expected rows.
func (c *Case) Want() []string {
	if c.Result != "" {
		return append([]string{c.Result}, c.Results...)
	}
	return c.Results
}

// LoadFile reads the cases of a test file.
func LoadFile(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads the cases of a test file's contents; file names it in errors.
func Parse(data []byte, file string) ([]Case, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	lines := documentLines(data)
	var cases []Case
	for i := 0; ; i++ {
		var c Case
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if c.Name == "" && c.LogType == "" && c.Input == "" {
			continue // an empty document
		}
		c.File = file
		if i < len(lines) {
			c.Line = lines[i]
		}
		if c.LogType == "" {
			return nil, &logschema.Error{File: file, Line: c.Line, Msg: fmt.Sprintf("test %q has no logType", c.Name)}
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// documentLines returns the first line of each YAML document (after a --- separator).
func documentLines(data []byte) []int {
	var starts []int
	line := 1
	docStart := 1
	sawContent := false
	for _, l := range bytes.Split(data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		switch {
		case bytes.Equal(t, []byte("---")):
			if sawContent {
				starts = append(starts, docStart)
			}
			docStart, sawContent = line+1, false
		case len(t) > 0 && t[0] != '#' && !sawContent:
			sawContent, docStart = true, line
		}
		line++
	}
	if sawContent {
		starts = append(starts, docStart)
	}
	return starts
}

// Rows parses an input of a log type into the rows osprey would store, each a JSON object
// (see batch.AppendRowJSON). An input that is an envelope of the log type ({"Records": [...]})
// gives a row per record. parseTime sets p_parse_time (and the year of syslog timestamps).
func Rows(lt *logtypes.LogType, input []byte, parseTime time.Time) ([][]byte, error) {
	rec, err := Record(lt, input, parseTime)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	rows := make([][]byte, rec.NumRows())
	for i := range rows {
		rows[i] = batch.AppendRowJSON(nil, rec, i)
	}
	return rows, nil
}

// Record is Rows as the record batch osprey would write to the log type's table: the same
// parser, standard fields and checks as ingest. Release it when done.
func Record(lt *logtypes.LogType, input []byte, parseTime time.Time) (arrow.RecordBatch, error) {
	recs := [][]byte{bytes.TrimSpace(input)}
	if lt.Envelope != "" {
		if elems, ok, err := stream.SplitEnvelope(recs[0], []string{lt.Envelope}); ok {
			if err != nil {
				return nil, err
			}
			recs = elems
		}
	}
	p, err := lt.NewParser()
	if err != nil {
		return nil, err
	}
	b := batch.NewBuilder(lt.Table, batch.NewRowIDs())
	b.SetParseTime(parseTime)
	b.SetSource(batch.Source{ID: "schematest", Label: "osprey schema test"})
	for _, rec := range recs {
		b.Begin()
		if err := p.Parse(rec, b); err != nil {
			b.Rollback()
			if errors.Is(err, logtypes.ErrSkip) {
				continue
			}
			return nil, err
		}
		b.End()
	}
	rec := b.Build()
	if err := lt.Table.Check(rec); err != nil {
		rec.Release()
		return nil, fmt.Errorf("a row does not fit the table: %w", err)
	}
	return rec, nil
}

// Records cuts the contents of a log file into records the way ingest does: lines, or the JSON
// values of a file of JSON documents (an array, pretty-printed objects, envelopes), with the
// records of envelopes split out. Blank lines are left out.
func Records(data []byte, envelopes []string) ([][]byte, error) {
	var recs [][]byte
	add := func(rec []byte) {
		if elems, ok, err := stream.SplitEnvelope(rec, envelopes); ok && err == nil {
			recs = append(recs, elems...)
			return
		}
		if len(bytes.TrimSpace(rec)) > 0 {
			recs = append(recs, rec)
		}
	}
	if stream.Sniff(data[:min(len(data), stream.SniffSize)], envelopes) == stream.Lines {
		for _, line := range bytes.Split(data, []byte("\n")) {
			add(bytes.TrimSuffix(line, []byte("\r")))
		}
		return recs, nil
	}
	out := make(chan stream.Chunk, 16)
	pool := stream.NewPool(1)
	errc := make(chan error, 1)
	go func() {
		_, err := stream.JSONChunks(context.Background(), bytes.NewReader(data), stream.Options{}, envelopes, pool, out)
		close(out)
		errc <- err
	}()
	for c := range out {
		if c.Oversized != nil {
			continue
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(c.Data, []byte("\n")), []byte("\n")) {
			add(append([]byte(nil), line...))
		}
		c.Release(pool)
	}
	return recs, <-errc
}

// Failure is a case whose rows differ from the expected ones.
type Failure struct {
	Case  *Case
	Diffs []string // one line per difference
	Err   error    // the input did not parse, or the test is malformed
}

func (f *Failure) Error() string {
	where := f.Case.Name
	if f.Case.File != "" {
		where = fmt.Sprintf("%s:%d: %s", f.Case.File, f.Case.Line, f.Case.Name)
	}
	if f.Err != nil {
		return where + ": " + f.Err.Error()
	}
	return where + ": " + strings.Join(f.Diffs, "; ")
}

// Match says how much of a row must be as expected.
type Match int

const (
	// Exact: every field of the row is as expected, p_any_* sets included.
	Exact Match = iota
	// Contains: the row holds every field and value of the expected row, and may hold more:
	// fields the expected row lacks and p_any_* values beyond its own (a built-in type may
	// keep fields Panther's schema drops, and find more indicators).
	Contains
	// Holds: as Contains, but the expected row's p_ fields are not compared (a Log of a rule's
	// test, which names the event's own fields).
	Holds
)

// Run runs a case with the log types of a registry; it returns nil when the rows are as
// expected, else a *Failure.
func Run(reg *logtypes.Registry, c *Case, parseTime time.Time) error {
	return RunMatch(reg, c, parseTime, Exact)
}

// RunMatch is Run with a chosen Match.
func RunMatch(reg *logtypes.Registry, c *Case, parseTime time.Time, m Match) error {
	fail := func(err error) error { return &Failure{Case: c, Err: err} }
	lt, err := reg.Lookup(c.LogType)
	if err != nil {
		return fail(err)
	}
	want := c.Want()
	if len(want) == 0 {
		return fail(errors.New("no result or results"))
	}
	rows, err := Rows(lt, []byte(c.Input), parseTime)
	if err != nil {
		return fail(fmt.Errorf("input does not parse as %s: %w", c.LogType, err))
	}
	if len(rows) != len(want) {
		return fail(fmt.Errorf("input gives %d rows, want %d", len(rows), len(want)))
	}
	var diffs []string
	for i, w := range want {
		// Panther's test files may write the log type as a template.
		w = strings.ReplaceAll(w, "{{.LogType}}", c.LogType)
		d, err := CompareMatch(lt.Table, rows[i], []byte(w), m)
		if err != nil {
			return fail(err)
		}
		if len(want) > 1 {
			for j := range d {
				d[j] = fmt.Sprintf("row %d: %s", i+1, d[j])
			}
		}
		diffs = append(diffs, d...)
	}
	if len(diffs) > 0 {
		return &Failure{Case: c, Diffs: diffs}
	}
	return nil
}

// Ignored are the standard fields that depend on the run, left out of comparisons.
var Ignored = []string{batch.FieldRowID, batch.FieldParseTime, batch.FieldSourceID, batch.FieldSourceLabel}

// Compare compares a row osprey built (got, from batch.AppendRowJSON) with an expected one and
// returns the differences.
func Compare(s *batch.Schema, got, want []byte) ([]string, error) {
	return CompareMatch(s, got, want, Exact)
}

// CompareMatch is Compare with a chosen Match.
func CompareMatch(s *batch.Schema, got, want []byte, m Match) ([]string, error) {
	g, err := decode(got)
	if err != nil {
		return nil, fmt.Errorf("row: %w", err)
	}
	w, err := decode(want)
	if err != nil {
		return nil, fmt.Errorf("expected row is not JSON: %w", err)
	}
	gm, ok1 := g.(map[string]any)
	wm, ok2 := w.(map[string]any)
	if !ok1 || !ok2 {
		return nil, errors.New("expected row is not a JSON object")
	}
	for _, k := range Ignored {
		delete(gm, k)
		delete(wm, k)
	}
	if m == Holds {
		for k := range wm {
			if strings.HasPrefix(k, "p_") {
				delete(wm, k)
			}
		}
	}
	c := comparer{match: m}
	c.object("", s.Root, gm, wm, true)
	return c.diffs, nil
}

func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

type comparer struct {
	match Match
	diffs []string
}

func (c *comparer) errorf(format string, args ...any) {
	c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
}

func (c *comparer) object(path string, n *batch.Node, got, want map[string]any, top bool) {
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		p := path + k
		g, w := got[k], want[k]
		if c.match != Exact && w == nil {
			continue
		}
		if a, ok := w.([]any); ok && len(a) == 0 && g == nil && c.match != Exact {
			continue // an empty array is stored as nothing
		}
		var child *batch.Node
		if i := n.FieldIndex(k); i >= 0 {
			child = n.Fields[i]
		} else if c.match != Exact && got[k] == nil {
			// The parser reads a key that differs from the field's name only in case, and
			// Panther's at_sign_x as the field @x.
			for _, f := range n.Fields {
				if logschema.ReadsKey(f.Name, k) {
					child, g = f, got[f.Name]
					break
				}
			}
		}
		switch {
		case top && k == batch.FieldEventTime:
			c.time(p, nil, g, w)
		case top && strings.HasPrefix(k, "p_any_"):
			c.set(p, g, w, c.match != Exact)
		case child == nil && !(top && strings.HasPrefix(k, "p_")):
			if w != nil {
				c.errorf("%s: not a field of the schema (want %s)", p, show(w))
			} else if g != nil {
				c.errorf("%s: unexpected (got %s)", p, show(g))
			}
		default:
			c.value(p, child, g, w)
		}
	}
}

func (c *comparer) value(path string, n *batch.Node, got, want any) {
	if got == nil || want == nil {
		if got != nil || want != nil {
			c.errorf("%s: got %s, want %s", path, show(got), show(want))
		}
		return
	}
	if n == nil {
		c.json(path, got, want)
		return
	}
	switch n.Type {
	case logschema.TypeTimestamp:
		c.time(path, n, got, want)
	case logschema.TypeJSON:
		c.json(path, got, want)
	case logschema.TypeString:
		// A Log may write as a number what the field keeps as text: the parser reads it so.
		if wn, ok := want.(json.Number); ok && c.match != Exact {
			want = wn.String()
		}
		c.json(path, got, want)
	case logschema.TypeInt, logschema.TypeSmallInt, logschema.TypeBigInt, logschema.TypeFloat:
		// A Log may write a number as text, which the parser reads as the number.
		if ws, ok := want.(string); ok && c.match != Exact {
			want = json.Number(ws)
		}
		c.json(path, got, want)
	case logschema.TypeObject:
		gm, ok1 := got.(map[string]any)
		wm, ok2 := want.(map[string]any)
		if !ok1 || !ok2 {
			c.errorf("%s: got %s, want %s", path, show(got), show(want))
			return
		}
		c.object(path+".", n, gm, wm, false)
	case logschema.TypeArray:
		ga, ok1 := got.([]any)
		wa, ok2 := want.([]any)
		if !ok1 || !ok2 {
			c.errorf("%s: got %s, want %s", path, show(got), show(want))
			return
		}
		if len(ga) != len(wa) {
			c.errorf("%s: got %d elements %s, want %d %s", path, len(ga), show(got), len(wa), show(want))
			return
		}
		for i := range ga {
			c.value(fmt.Sprintf("%s[%d]", path, i), n.Elem, ga[i], wa[i])
		}
	default:
		c.json(path, got, want)
	}
}

// time compares timestamps as instants; the expected text is read with the field's formats or
// as RFC 3339.
func (c *comparer) time(path string, n *batch.Node, got, want any) {
	if got == nil || want == nil {
		if got != nil || want != nil {
			c.errorf("%s: got %s, want %s", path, show(got), show(want))
		}
		return
	}
	gs, _ := got.(string)
	gt, err := time.Parse(time.RFC3339Nano, gs)
	if err != nil {
		c.errorf("%s: got %s, not a timestamp", path, show(got))
		return
	}
	ws := fmt.Sprint(want)
	var wt time.Time
	ok := false
	if n != nil && n.Time != nil {
		if t, err := n.Time.Parse([]byte(ws)); err == nil {
			wt, ok = t, true
		}
	}
	if !ok {
		if t, err := time.Parse(time.RFC3339Nano, ws); err == nil {
			wt, ok = t, true
		}
	}
	if !ok {
		c.errorf("%s: expected %s is not a timestamp of the field's formats", path, show(want))
		return
	}
	// Timestamps are stored in microseconds.
	if !gt.Equal(wt.Truncate(time.Microsecond)) {
		c.errorf("%s: got %s, want %s", path, gs, wt.UTC().Format(time.RFC3339Nano))
	}
}

// set compares lists as sets of values; with more, got may hold values want lacks.
func (c *comparer) set(path string, got, want any, more bool) {
	gs, ws := strs(got), strs(want)
	slices.Sort(gs)
	slices.Sort(ws)
	gs, ws = slices.Compact(gs), slices.Compact(ws)
	if more {
		for _, w := range ws {
			if _, found := slices.BinarySearch(gs, w); !found {
				c.errorf("%s: got %q, want %q among them", path, gs, w)
			}
		}
		return
	}
	if !slices.Equal(gs, ws) {
		c.errorf("%s: got %q, want %q", path, gs, ws)
	}
}

func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func (c *comparer) json(path string, got, want any) {
	if !jsonEqual(got, want) {
		c.errorf("%s: got %s, want %s", path, show(got), show(want))
	}
}

// jsonEqual compares decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, ok1 := new(big.Float).SetString(x.String())
		fy, ok2 := new(big.Float).SetString(y.String())
		return ok1 && ok2 && fx.Cmp(fy) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		// null members are the same as absent ones.
		for k, v := range x {
			if v != nil && !jsonEqual(v, y[k]) {
				return false
			}
		}
		for k, v := range y {
			if v != nil && x[k] == nil {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func show(v any) string {
	if v == nil {
		return "nothing"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const max = 200
	if len(data) > max {
		return string(data[:max]) + "..."
	}
	return string(data)
}

// Format writes cases as a test file, one YAML document each. Results are written as indented
// JSON blocks; inputs as blocks when they are one printable line, else as quoted strings.
func Format(cases []Case) []byte {
	var b bytes.Buffer
	for _, c := range cases {
		b.WriteString("---\n")
		fmt.Fprintf(&b, "name: %s\n", quoteYAML(c.Name))
		fmt.Fprintf(&b, "logType: %s\n", c.LogType)
		writeBlock(&b, "input", c.Input)
		want := c.Want()
		if len(want) == 1 {
			writeBlock(&b, "result", indentJSON(want[0]))
			continue
		}
		b.WriteString("results:\n")
		for _, w := range want {
			var item bytes.Buffer
			writeBlock(&item, "", indentJSON(w))
			b.WriteString("  -" + strings.TrimPrefix(item.String(), ":"))
		}
	}
	return b.Bytes()
}

func writeBlock(b *bytes.Buffer, key, text string) {
	if !blockable(text) {
		fmt.Fprintf(b, "%s: %s\n", key, quoteJSON(text))
		return
	}
	indent := "  "
	if key == "" {
		indent = "    "
	}
	fmt.Fprintf(b, "%s: |-\n", key)
	for _, line := range strings.Split(text, "\n") {
		b.WriteString(indent + line + "\n")
	}
}

// blockable reports whether text can be a YAML literal block: printable lines without
// leading white space on the first or trailing white space on any.
func blockable(text string) bool {
	if text == "" || text[0] == ' ' || text[0] == '\t' {
		return false
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, " \t") != line {
			return false
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f || r == '\ufeff' {
				return false
			}
		}
	}
	return true
}

func quoteJSON(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func quoteYAML(s string) string {
	if s == "" || strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`") || s != strings.TrimSpace(s) {
		return quoteJSON(s)
	}
	return s
}

func indentJSON(s string) string {
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(s), "", "  "); err != nil {
		return s
	}
	return out.String()
}
