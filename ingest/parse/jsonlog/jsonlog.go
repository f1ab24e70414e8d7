// Package jsonlog parses JSON records into rows of a log type, driven by its log schema.
//
// A record is read in one pass: keys the schema names are decoded straight into the batch
// builder's columns, other values are checked and skipped (Panther drops keys its schema does not
// name), and json fields keep their text as written. A record that does not fit (invalid JSON,
// missing required field, wrong type, bad timestamp, value rejected by validate) is refused with
// an error naming the field. A key given twice keeps its last value, as Panther's decoder does.
//
// As in Panther (whose decoder follows encoding/json), a key matches the field of the same name,
// else a field whose name differs only in case; an empty array is stored as NULL, as Panther
// leaves it out; and a json field with indicators has every string value inside it scanned.
package jsonlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/indicator"
	"github.com/ospreyhq/osprey/ingest/parse/timefmt"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Parser parses JSON records of one table schema. It is not safe for concurrent use.
type Parser struct {
	root *plan
	s    scanner
	emb  []*scanner // scanners of embedded JSON, one per level in use
	b    *batch.Builder
	gen  uint32 // generation of the object being decoded, for plan.seen
	buf  []byte
	keep []byte // copies of indicator values, which must live until the row ends
}

// plan mirrors a schema node with the scratch space decoding its objects needs.
type plan struct {
	node   *batch.Node
	fields []*plan
	elem   *plan
	seen   []uint32 // generation in which each field got its value
	// indicates says which fields have indicators in their subtree (or are event times): the
	// row's indicators found in a field's value lie between marks[i][0] and marks[i][1], to
	// be dropped if the key comes again.
	indicates []bool
	marks     [][2]indicator.Mark
	hint      int      // index after the last field matched: keys tend to come in the same order
	quoted    [][]byte // each field's key as it appears in compact JSON: "name":
	lens      uint64   // bit n set when a field's name has n bytes (n < 64), for the case-folding fallback
}

func newPlan(n *batch.Node) *plan {
	p := &plan{node: n, seen: make([]uint32, len(n.Fields)), indicates: make([]bool, len(n.Fields)),
		marks: make([][2]indicator.Mark, len(n.Fields))}
	for i, f := range n.Fields {
		p.indicates[i] = hasIndicators(f)
		p.fields = append(p.fields, newPlan(f))
		p.quoted = append(p.quoted, []byte(strconv.Quote(f.Name)+":"))
		if len(f.Name) < 64 {
			p.lens |= 1 << len(f.Name)
		} else {
			p.lens |= 1 << 63 // long names are compared whatever the key's length
		}
	}
	if n.Elem != nil {
		p.elem = newPlan(n.Elem)
	}
	return p
}

// hasIndicators reports whether a node or a node under it has indicator scanners.
func hasIndicators(n *batch.Node) bool {
	if len(n.Scanners) > 0 || n.Elem != nil && hasIndicators(n.Elem) {
		return true
	}
	return slices.ContainsFunc(n.Fields, hasIndicators)
}

// expected checks whether the key at the scanner is the field after the last one matched,
// written plainly ("name": with no escapes or space); if so it consumes it and returns the
// field's index. Keys usually come in the same order record after record.
func (pl *plan) expected(s *scanner) int {
	h := pl.hint
	if h >= len(pl.quoted) {
		return -1
	}
	q := pl.quoted[h]
	if !bytes.HasPrefix(s.data[s.pos:], q) {
		return -1
	}
	s.pos += len(q)
	pl.hint = h + 1
	return h
}

// index returns the index of the field named key, or -1.
func (pl *plan) index(key []byte) int {
	// Try the field after the last one matched, and the one after it (an absent optional field).
	for h := pl.hint; h < pl.hint+2 && h < len(pl.fields); h++ {
		if string(key) == pl.fields[h].node.Name {
			pl.hint = h + 1
			return h
		}
	}
	i := pl.node.FieldIndex(unsafe.String(unsafe.SliceData(key), len(key)))
	if i >= 0 {
		pl.hint = i + 1
	}
	return i
}

// fold returns the index of the field whose name equals key without regard to case, or -1:
// the rule of encoding/json, which Panther's decoder follows, for keys without an exact match.
// A key matched this way does not replace the value of a key that matched exactly.
//
// A key at_sign_x is the field @x: Panther stores fields whose names start with @ under that
// name, so its rows (exports, the events of its rule tests) name them so.
func (pl *plan) fold(key []byte) int {
	if rest, ok := bytes.CutPrefix(key, atSign); ok && len(rest) > 0 {
		for i, f := range pl.fields {
			if n := f.node.Name; len(n) == len(rest)+1 && n[0] == '@' && bytes.EqualFold(rest, []byte(n[1:])) {
				return i
			}
		}
	}
	if n := len(key); n < 63 && pl.lens&(1<<n) == 0 && pl.lens&(1<<63) == 0 {
		return -1 // no field has a name of this length
	}
	for i, f := range pl.fields {
		if len(f.node.Name) == len(key) && bytes.EqualFold(key, []byte(f.node.Name)) {
			return i
		}
	}
	return -1
}

var atSign = []byte(logschema.AtSign)

// New returns a parser of the schema's records.
func New(s *batch.Schema) *Parser {
	return &Parser{root: newPlan(s.Root)}
}

// Parse decodes one JSON object into the builder's open row (the caller calls Begin before and
// End or Rollback after).
func (p *Parser) Parse(rec []byte, b *batch.Builder) error {
	p.b = b
	p.keep = p.keep[:0]
	p.s.reset(rec)
	for _, e := range p.emb {
		e.data = nil // free the scanners a failed record left in use
	}
	s := &p.s
	if k := s.kind(); k != kindObject {
		if k == kindEnd {
			return fmt.Errorf("empty record")
		}
		// Name the kind only of a valid value ("nope" is not a null).
		if _, err := s.skip(); err != nil {
			return err
		}
		return fmt.Errorf("record is a JSON %s, not an object", k)
	}
	if err := p.object(s, p.root, b.Root.Fields, b.Rows(), 0); err != nil {
		return err
	}
	if s.peek() != 0 {
		return s.errorf("unexpected data after the object")
	}
	return nil
}

// object decodes the object at the scanner into the columns of pl's fields, which hold base
// values before it.
func (p *Parser) object(s *scanner, pl *plan, cols []batch.Column, base, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	p.gen++
	gen := p.gen
	s.pos++ // '{'
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.peek() != '"' {
				return s.errorf("want a key")
			}
			i := pl.expected(s)
			if i < 0 {
				key, err := s.str()
				if err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
				i = pl.index(key)
				if i < 0 {
					if i = pl.fold(key); i >= 0 && pl.seen[i] == gen {
						i = -1 // the field has a value already
					}
				}
			}
			if i < 0 {
				if err := s.skipValue(depth + 1); err != nil {
					return err
				}
			} else {
				ind := pl.indicates[i]
				if pl.seen[i] == gen {
					// A repeated key: the last value wins. What the row holds of the earlier
					// one goes: its indicators (which may point into the bytes truncated)
					// and its event time.
					if ind {
						p.b.DropIndicators(pl.marks[i][0], pl.marks[i][1])
					}
					p.b.ForgetEventTime(pl.fields[i].node.EventTime)
					cols[i].Truncate(base)
				}
				pl.seen[i] = gen
				if ind {
					pl.marks[i][0] = p.b.IndicatorMark()
				}
				if err := p.value(s, pl.fields[i], cols[i], depth+1); err != nil {
					return err
				}
				if ind {
					pl.marks[i][1] = p.b.IndicatorMark()
				}
			}
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				goto done
			default:
				return s.errorf("want ',' or '}'")
			}
		}
	}
done:
	for i, f := range pl.fields {
		if pl.seen[i] != gen {
			if f.node.Required {
				return fmt.Errorf("required field %s is missing", f.node.Path)
			}
			cols[i].AppendNull()
		}
	}
	return nil
}

// value decodes the value at the scanner into col.
func (p *Parser) value(s *scanner, pl *plan, col batch.Column, depth int) error {
	n := pl.node
	k := s.kind()
	if k == kindNull {
		s.pos += 4
		if s.pos > len(s.data) || string(s.data[s.pos-4:s.pos]) != "null" {
			return s.errorf("invalid literal")
		}
		if n.Required {
			return fmt.Errorf("required field %s is missing", n.Path)
		}
		col.AppendNull()
		return nil
	}
	switch c := col.(type) {
	case *batch.StringCol:
		var v []byte
		var err error
		trusted := false // v is known to be valid UTF-8
		switch {
		case n.Type == logschema.TypeJSON:
			v, err = p.jsonValue(s, pl, k)
			trusted = err == nil && isASCII(v)
		case k == kindString:
			v, err = s.str()
			trusted = s.ascii
		default:
			v, err = s.skip() // another value stands as its JSON text
		}
		if err != nil {
			return err
		}
		if n.HasChecks() {
			if err := n.CheckValue(v); err != nil {
				return err
			}
		}
		if n.Required && len(v) == 0 && n.Type != logschema.TypeJSON {
			return fmt.Errorf("required field %s is empty", n.Path)
		}
		if trusted {
			c.AppendUTF8(v)
		} else {
			c.Append(v)
		}
	case *batch.IntCol:
		v, err := s.scalar(k)
		if err != nil {
			return err
		}
		i, err := parseInt(v, c.Bits())
		if err != nil {
			return fmt.Errorf("field %s: %w", n.Path, err)
		}
		c.Append(i)
	case *batch.FloatCol:
		v, err := s.scalar(k)
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
		if err != nil {
			return fmt.Errorf("field %s: %q is not a number", n.Path, v)
		}
		c.Append(f)
	case *batch.BoolCol:
		v, err := s.scalar(k)
		if err != nil {
			return err
		}
		b, err := strconv.ParseBool(strings.ToLower(string(v)))
		if err != nil || k == kindNumber {
			return fmt.Errorf("field %s: %q is not a boolean", n.Path, v)
		}
		c.Append(b)
	case *batch.TimeCol:
		if k != kindString && k != kindNumber {
			return fmt.Errorf("field %s: a %s is not a timestamp", n.Path, k)
		}
		v, err := s.scalar(k)
		if err != nil {
			return err
		}
		if len(v) == 0 {
			if n.Required {
				return fmt.Errorf("required field %s is empty", n.Path)
			}
			c.AppendNull()
			return nil
		}
		t, err := n.Time.Parse(v)
		if err != nil {
			return fmt.Errorf("field %s: %w", n.Path, err)
		}
		if n.YearLess {
			t = timefmt.CompleteYear(t, p.b.ParseTime())
		}
		c.Append(t)
	case *batch.StructCol:
		in, err := p.unembed(s, n, k)
		if err != nil {
			return err
		}
		if in.kind() != kindObject {
			return fmt.Errorf("field %s: a %s is not an object", n.Path, in.kind())
		}
		c.Append()
		if err := p.object(in, pl, c.Fields, c.Len()-1, depth); err != nil {
			if in != s {
				return fmt.Errorf("field %s: embedded JSON: %w", n.Path, err)
			}
			return err
		}
		if in != s {
			return p.embeddedEnd(in)
		}
	case *batch.ListCol:
		in, err := p.unembed(s, n, k)
		if err != nil {
			return err
		}
		if err := p.array(in, pl, c, depth); err != nil {
			if in != s {
				return fmt.Errorf("field %s: embedded JSON: %w", n.Path, err)
			}
			return err
		}
		if in != s {
			return p.embeddedEnd(in)
		}
	default:
		panic(fmt.Sprintf("BUG: column %T", col))
	}
	return nil
}

// array decodes an array into a list column; a single value stands for an array of one.
func (p *Parser) array(s *scanner, pl *plan, c *batch.ListCol, depth int) error {
	n := pl.node
	switch k := s.kind(); k {
	case kindArray:
	case kindObject:
		if n.Elem.Type != logschema.TypeObject && n.Elem.Type != logschema.TypeJSON {
			return fmt.Errorf("field %s: an object is not an array", n.Path)
		}
		fallthrough
	default:
		if err := p.value(s, pl.elem, c.Elem, depth+1); err != nil {
			return err
		}
		c.Close()
		return nil
	}
	s.pos++ // '['
	if s.peek() == ']' {
		s.pos++
		c.AppendNull() // Panther leaves empty arrays out
		return nil
	}
	for {
		if err := p.value(s, pl.elem, c.Elem, depth+1); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			c.Close()
			return nil
		default:
			return s.errorf("want ',' or ']'")
		}
	}
}

// scalar reads a string's value or a number's or literal's text.
func (s *scanner) scalar(k kind) ([]byte, error) {
	switch k {
	case kindString:
		return s.str()
	case kindNumber, kindTrue, kindFalse:
		return s.skip()
	}
	return nil, s.errorf("a %s is not a scalar", k)
}

// jsonValue returns the text of a json field's value as written (embedded JSON is unwrapped),
// and scans the keys the field lists for indicators.
func (p *Parser) jsonValue(s *scanner, pl *plan, k kind) ([]byte, error) {
	n := pl.node
	var v []byte
	var err error
	compactable := true // v may have white space between tokens
	if n.Embedded && k == kindString {
		if v, err = s.str(); err != nil {
			return nil, err
		}
		inner, err := p.embedded(v, n)
		if err != nil {
			return nil, err
		}
		v, err = inner.skip()
		if err != nil {
			return nil, fmt.Errorf("field %s: embedded JSON: %w", n.Path, err)
		}
		if err := p.embeddedEnd(inner); err != nil {
			return nil, err
		}
		if len(n.Fields) > 0 && len(v) > 0 && v[0] == '{' {
			p.indicate(v, n)
		}
	} else {
		s.sawWS = false
		s.ws()
		start := s.pos
		if len(n.Fields) > 0 && k == kindObject {
			err = p.skipIndicate(s, n, 0)
		} else {
			err = s.skipValue(0)
		}
		if err != nil {
			return nil, err
		}
		v = s.data[start:s.pos]
		compactable = s.sawWS
	}
	// The column must hold valid JSON: white space between tokens goes, and control
	// characters that some writers leave raw inside strings are escaped.
	if compactable && bytes.IndexAny(v, " \t\r\n") >= 0 || hasControl(v) {
		p.buf = compact(p.buf[:0], v)
		v = p.buf
	}
	if len(n.Scanners) > 0 {
		p.indicateAll(v, n)
	}
	return v, nil
}

// indicateAll scans every string value of a json field's text with the field's indicators.
func (p *Parser) indicateAll(text []byte, n *batch.Node) {
	var s scanner
	s.reset(text)
	p.indicateValue(&s, n, 0)
}

func (p *Parser) indicateValue(s *scanner, n *batch.Node, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch s.kind() {
	case kindString:
		v, err := s.str()
		if err != nil {
			return false
		}
		start := len(p.keep) // v may be in s.scratch, which dies with s: keep a copy
		p.keep = append(p.keep, v...)
		p.b.Indicate(n, p.keep[start:])
		return true
	case kindObject:
		s.pos++
		for s.peek() == '"' {
			if err := s.skipString(); err != nil || s.expect(':') != nil {
				return false
			}
			if !p.indicateValue(s, n, depth+1) {
				return false
			}
			if s.peek() != ',' {
				break
			}
			s.pos++
		}
		return s.expect('}') == nil
	case kindArray:
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return true
		}
		for {
			if !p.indicateValue(s, n, depth+1) {
				return false
			}
			if s.peek() != ',' {
				break
			}
			s.pos++
		}
		return s.expect(']') == nil
	}
	_, err := s.skip()
	return err == nil
}

// compact appends JSON text without the white space between tokens, escaping control
// characters inside strings.
func compact(dst, v []byte) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ' ', '\t', '\r', '\n':
		case '"':
			j := i + 1
			for j < len(v) && v[j] != '"' {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			end := min(j+1, len(v))
			str := v[i:end]
			if !hasControl(str) {
				dst = append(dst, str...)
			} else {
				for _, b := range str {
					if b < 0x20 {
						dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
					} else {
						dst = append(dst, b)
					}
				}
			}
			i = j
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// hasControl reports whether b holds a byte below 0x20, eight bytes at a time.
func hasControl(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-lsb*0x20)&^x&msb != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// skipIndicate reads a json field's object, checking its grammar as skipValue does, and scans
// the keys the field lists for indicators on the way: one pass where skip then indicate made two.
func (p *Parser) skipIndicate(s *scanner, n *batch.Node, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	s.pos++ // '{'
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("want a key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		var f *batch.Node
		for _, c := range n.Fields {
			if c.Name == string(key) {
				f = c
				break
			}
		}
		switch k := s.kind(); {
		case f != nil && k == kindString && len(f.Scanners) > 0:
			v, err := s.str()
			if err != nil {
				return err
			}
			start := len(p.keep) // the value may be in s.scratch: keep a copy until the row ends
			p.keep = append(p.keep, v...)
			p.b.Indicate(f, p.keep[start:])
		case f != nil && k == kindObject && len(f.Fields) > 0:
			if err := p.skipIndicate(s, f, depth+1); err != nil {
				return err
			}
		default:
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// indicate scans the keys a json field lists (an object's text) for indicators.
func (p *Parser) indicate(text []byte, n *batch.Node) {
	var s scanner
	s.reset(text)
	s.pos++ // '{'
	for s.peek() == '"' {
		key, err := s.str()
		if err != nil || s.expect(':') != nil {
			return
		}
		i := n.FieldIndex(unsafe.String(unsafe.SliceData(key), len(key)))
		var f *batch.Node
		if i >= 0 {
			f = n.Fields[i]
		}
		switch k := s.kind(); {
		case f != nil && k == kindString && len(f.Scanners) > 0:
			v, err := s.str()
			if err != nil {
				return
			}
			// The value may be in s.scratch, which dies with s: keep a copy.
			start := len(p.keep)
			p.keep = append(p.keep, v...)
			p.b.Indicate(f, p.keep[start:])
		case f != nil && k == kindObject && len(f.Fields) > 0:
			v, err := s.skip()
			if err != nil {
				return
			}
			p.indicate(v, f)
		default:
			if _, err := s.skip(); err != nil {
				return
			}
		}
		if s.peek() != ',' {
			return
		}
		s.pos++
	}
}

// unembed returns a scanner over the JSON held in a string value when the node is embedded JSON,
// else s itself.
func (p *Parser) unembed(s *scanner, n *batch.Node, k kind) (*scanner, error) {
	if !n.Embedded || k != kindString {
		return s, nil
	}
	v, err := s.str()
	if err != nil {
		return nil, err
	}
	return p.embedded(v, n)
}

// embedded returns a free scanner over text.
func (p *Parser) embedded(text []byte, n *batch.Node) (*scanner, error) {
	var e *scanner
	for _, x := range p.emb {
		if x.data == nil {
			e = x
			break
		}
	}
	if e == nil {
		e = new(scanner)
		p.emb = append(p.emb, e)
	}
	// Copy: text may be in a scratch buffer that keeps growing while e is read.
	e.reset(append([]byte(nil), text...))
	if e.kind() == kindEnd {
		e.data = nil
		return nil, fmt.Errorf("field %s: embedded JSON is empty", n.Path)
	}
	return e, nil
}

// embeddedEnd checks that an embedded scanner was read to its end and frees it.
func (p *Parser) embeddedEnd(s *scanner) error {
	if s.peek() != 0 {
		s.data = nil
		return fmt.Errorf("embedded JSON: unexpected data after the value")
	}
	s.data = nil
	return nil
}

// parseInt reads an integer of the given width from a number or a string holding one.
func parseInt(v []byte, bits int) (int64, error) {
	str := strings.TrimSpace(unsafe.String(unsafe.SliceData(v), len(v)))
	i, err := strconv.ParseInt(str, 10, bits)
	if err == nil {
		return i, nil
	}
	// Integers written as 12.0 or 1e3 are accepted when they are whole and fit.
	f, ferr := strconv.ParseFloat(str, 64)
	limit := math.Ldexp(1, bits-1)
	if ferr != nil || f != math.Trunc(f) || f < -limit || f >= limit {
		return 0, fmt.Errorf("%q is not a %d-bit integer", v, bits)
	}
	return int64(f), nil
}
