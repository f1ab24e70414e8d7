// Package textlog parses text records with the text parsers of Panther's log schemas: fastmatch
// patterns, regular expressions (with grok-style named patterns) and CSV.
//
// A parser cuts a record into named values, applies the parser's emptyValues, trimSpace and
// expandFields (an empty value of a field that is not a string is no value), and writes the values as one flat JSON object that a Decoder (the schema's JSON
// parser) turns into a row. A value from a text log is therefore typed, validated and scanned
// for indicators exactly as the same value in a JSON log: "200" fills an int column, a time
// string is parsed with the field's time formats, and a value that looks like JSON fills an
// object, array or json field.
package textlog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// ErrSkip is returned for a record that holds no data, such as a CSV header: the caller skips
// it rather than counting it as a failure.
var ErrSkip = errors.New("not a data record")

// Decoder turns a JSON object into a row of the builder (package jsonlog).
type Decoder interface {
	Parse(rec []byte, b *batch.Builder) error
}

// Parser parses text records of one log type. It is not safe for concurrent use.
type Parser struct {
	split  splitter
	common common
	next   Decoder
	raw    map[string]bool // top-level fields whose value may be JSON (object, array, json)
	typed  map[string]bool // top-level fields that are not strings: an empty value is no value

	vals []value
	obj  []byte
	exp  []byte
}

// value is a named value cut from a record; expanded values point into Parser.exp.
type value struct {
	name string
	v    []byte
}

// splitter cuts a record into values, appending them to vals. It returns false when the record
// does not have the parser's shape.
type splitter interface {
	split(rec []byte, vals []value) ([]value, error)
}

// common holds the options every text parser has.
type common struct {
	empty      [][]byte
	trim       bool
	skipPrefix []byte
	expand     []expansion
}

// expansion is an expandFields entry: a field built from a template of other fields.
type expansion struct {
	name  string
	parts []templatePart
}

type templatePart struct {
	lit   string
	field string // the field to insert when lit is ""
}

// New returns the parser of a schema's text parser (spec) whose values go to next. s is the
// compiled table schema; it tells which fields may receive JSON values.
func New(spec *logschema.Parser, s *batch.Schema, next Decoder) (*Parser, error) {
	p := &Parser{next: next, raw: map[string]bool{}, typed: map[string]bool{}}
	for _, f := range s.Fields {
		switch f.Type {
		case logschema.TypeObject, logschema.TypeArray, logschema.TypeJSON:
			p.raw[f.Name] = true
		}
		if f.Type != logschema.TypeString {
			p.typed[f.Name] = true
		}
	}
	var err error
	switch {
	case spec.FastMatch != nil:
		fm := spec.FastMatch
		p.common, err = newCommon(fm.EmptyValues, fm.TrimSpace, fm.SkipPrefix, fm.ExpandFields)
		if err == nil {
			p.split, err = newFastMatch(fm.Match)
		}
	case spec.Regex != nil:
		re := spec.Regex
		p.common, err = newCommon(re.EmptyValues, re.TrimSpace, re.SkipPrefix, re.ExpandFields)
		if err == nil {
			p.split, err = newRegex(re.Match, re.PatternDefinitions)
		}
	case spec.CSV != nil:
		c := spec.CSV
		p.common, err = newCommon(c.EmptyValues, c.TrimSpace, c.SkipPrefix, c.ExpandFields)
		if err == nil {
			p.split, err = newCSV(c)
		}
	default:
		return nil, errors.New("not a text parser (want fastmatch, regex or csv)")
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func newCommon(empty []string, trim bool, skipPrefix string, expand logschema.Expand) (common, error) {
	c := common{trim: trim, skipPrefix: []byte(skipPrefix)}
	for _, e := range empty {
		c.empty = append(c.empty, []byte(e))
	}
	names := make([]string, 0, len(expand))
	for name := range expand {
		names = append(names, name)
	}
	slices.Sort(names) // a fixed order: expansions may not refer to each other
	for _, name := range names {
		parts, err := parseTemplate(expand[name])
		if err != nil {
			return c, fmt.Errorf("expandFields %s: %w", name, err)
		}
		c.expand = append(c.expand, expansion{name: name, parts: parts})
	}
	return c, nil
}

// parseTemplate reads a template such as '%{year}-%{month}-%{day}T%{time}Z'.
func parseTemplate(t string) ([]templatePart, error) {
	var parts []templatePart
	for len(t) > 0 {
		i := strings.Index(t, "%{")
		if i < 0 {
			parts = append(parts, templatePart{lit: t})
			break
		}
		if i > 0 {
			parts = append(parts, templatePart{lit: t[:i]})
		}
		end := strings.IndexByte(t[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed %%{ in %q", t)
		}
		name := t[i+2 : i+end]
		if name == "" {
			return nil, fmt.Errorf("empty field name in %q", t)
		}
		parts = append(parts, templatePart{field: name})
		t = t[i+end+1:]
	}
	return parts, nil
}

// SetHeader tells a CSV parser whose columns come from a header row (hasHeader without columns)
// the first line of the stream its records come from: with records of one stream parsed by
// several workers, the one that reads the header is not the only one that needs it.
func (p *Parser) SetHeader(line []byte) {
	if c, ok := p.split.(*csvSplit); ok {
		if len(p.common.skipPrefix) > 0 {
			line = bytes.TrimPrefix(line, p.common.skipPrefix)
		}
		c.setHeader(line)
	}
}

// NeedsHeader reports whether a schema's parser takes its columns from a header row.
func NeedsHeader(spec *logschema.Parser) bool {
	return spec != nil && spec.CSV != nil && spec.CSV.HasHeader && len(spec.CSV.Columns) == 0
}

// Parse cuts a record into values and decodes them into the builder's open row.
func (p *Parser) Parse(rec []byte, b *batch.Builder) error {
	if len(p.common.skipPrefix) > 0 {
		rec = bytes.TrimPrefix(rec, p.common.skipPrefix)
	}
	vals, err := p.split.split(rec, p.vals[:0])
	p.vals = vals[:0]
	if err != nil {
		return err
	}
	vals = p.clean(vals)
	vals = p.expandFields(vals)
	p.obj = p.appendObject(p.obj[:0], vals)
	return p.next.Parse(p.obj, b)
}

// clean trims values (trimSpace) and drops the empty ones (emptyValues, and "" for a field
// that is not a string: a CSV column left empty has no number).
func (p *Parser) clean(vals []value) []value {
	out := vals[:0]
	for _, v := range vals {
		if p.common.trim {
			v.v = bytes.TrimSpace(v.v)
		}
		if p.isEmpty(v.v) || len(v.v) == 0 && p.typed[v.name] {
			continue
		}
		out = append(out, v)
	}
	return out
}

func (p *Parser) isEmpty(v []byte) bool {
	for _, e := range p.common.empty {
		if bytes.Equal(v, e) {
			return true
		}
	}
	return false
}

func (p *Parser) expandFields(vals []value) []value {
	if len(p.common.expand) == 0 {
		return vals
	}
	p.exp = p.exp[:0]
	n := len(vals)
	var spans [][2]int
	for _, e := range p.common.expand {
		start := len(p.exp)
		for _, part := range e.parts {
			if part.field == "" {
				p.exp = append(p.exp, part.lit...)
				continue
			}
			for _, v := range vals[:n] {
				if v.name == part.field {
					p.exp = append(p.exp, v.v...)
					break
				}
			}
		}
		spans = append(spans, [2]int{start, len(p.exp)})
	}
	// p.exp no longer grows: its slices are stable.
	for i, e := range p.common.expand {
		v := p.exp[spans[i][0]:spans[i][1]]
		if len(v) == 0 || p.isEmpty(v) {
			continue
		}
		vals = append(vals, value{name: e.name, v: v})
	}
	return vals
}

// appendObject writes the values as a JSON object. A value of an object, array or json field
// that is itself a JSON object or array is written as it is; every other value is a JSON
// string (which the decoder refuses for an object or an array).
func (p *Parser) appendObject(dst []byte, vals []value) []byte {
	dst = append(dst, '{')
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, v.name)
		dst = append(dst, ':')
		if p.raw[v.name] && looksLikeJSON(v.v) {
			dst = append(dst, v.v...)
		} else {
			dst = appendString(dst, v.v)
		}
	}
	return append(dst, '}')
}

// looksLikeJSON reports whether v is a JSON object or array.
func looksLikeJSON(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || !(v[0] == '{' && v[len(v)-1] == '}' || v[0] == '[' && v[len(v)-1] == ']') {
		return false
	}
	return fastjson.ValidateBytes(v) == nil
}

func appendString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
