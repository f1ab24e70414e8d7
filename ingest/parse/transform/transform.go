// Package transform applies the transformations of a log schema (rename, copy, concat, split,
// mask) to JSON records before they are decoded into rows.
//
// A field's value normally comes from the key of the same name. A transformation says where
// else it comes from, or how it is changed:
//
//   - rename.from: the value of another key of the same object, which is removed.
//   - copy.from: the value at a dotted path from the field's object ("user.email"), which stays.
//   - concat.paths: the values at the paths that are present, as text joined by separator.
//   - split.from, separator, index: one part of the text at a path, split by separator (a
//     negative index counts from the end); absent when there is no such part.
//   - mask: the value (after the steps above) redacted (replaced by with, default "***") or
//     hashed (md5, sha1 or sha256 of salt followed by the value, lowercase hex).
//
// Only schemas with transformations pay for them: the record is read into a tree, changed and
// written back as compact JSON for the schema's single-pass decoder.
package transform

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Decoder turns a JSON record into a row of the builder (package jsonlog).
type Decoder interface {
	Parse(rec []byte, b *batch.Builder) error
}

// Transformer applies transformations and hands the result to a decoder. It is not safe for
// concurrent use.
type Transformer struct {
	root  *object
	next  Decoder
	p     fastjson.Parser
	arena fastjson.Arena
	buf   []byte
	text  []byte
}

// object is the plan of one object's fields.
type object struct {
	fields []*field
}

type field struct {
	name   string
	v      *logschema.Value
	copy   []string
	concat [][]string
	split  []string
	child  *object // an object field's own fields, or an array's element object
	isList bool
}

// Has reports whether a schema has transformations anywhere.
func Has(s *logschema.Schema) bool { return compile(s.Fields) != nil }

// New returns a transformer of the schema's records in front of next, or nil when the schema
// has no transformations.
func New(s *logschema.Schema, next Decoder) *Transformer {
	root := compile(s.Fields)
	if root == nil {
		return nil
	}
	return &Transformer{root: root, next: next}
}

// compile returns the plan of fields that have transformations or contain some, or nil.
func compile(fields []logschema.Field) *object {
	var o object
	for i := range fields {
		f := &fields[i]
		fp := &field{name: f.Name, v: &f.Value}
		if c := f.Copy; c != nil {
			fp.copy = splitPath(c.From)
		}
		if c := f.Concat; c != nil {
			for _, p := range c.Paths {
				fp.concat = append(fp.concat, splitPath(p))
			}
		}
		if s := f.Split; s != nil {
			fp.split = splitPath(s.From)
		}
		switch f.Type {
		case logschema.TypeObject:
			fp.child = compile(f.Fields)
		case logschema.TypeArray:
			if f.Element != nil && f.Element.Type == logschema.TypeObject {
				fp.child = compile(f.Element.Fields)
				fp.isList = true
			}
		}
		if fp.child != nil || f.Rename != nil || f.Copy != nil || f.Concat != nil || f.Split != nil || f.Mask != nil {
			o.fields = append(o.fields, fp)
		}
	}
	if len(o.fields) == 0 {
		return nil
	}
	return &o
}

func splitPath(p string) []string { return strings.Split(p, ".") }

// Parse transforms a record and decodes it into the builder's open row.
func (t *Transformer) Parse(rec []byte, b *batch.Builder) error {
	v, err := t.p.ParseBytes(rec)
	if err != nil || v.Type() != fastjson.TypeObject {
		return t.next.Parse(rec, b) // the decoder says what is wrong with it
	}
	t.arena.Reset()
	if err := t.object(v, t.root); err != nil {
		return err
	}
	t.buf = v.MarshalTo(t.buf[:0])
	return t.next.Parse(t.buf, b)
}

func (t *Transformer) object(v *fastjson.Value, o *object) error {
	obj, err := v.Object()
	if err != nil {
		return nil // not an object: the decoder reports the type
	}
	for _, f := range o.fields {
		if r := f.v.Rename; r != nil {
			if from := obj.Get(r.From); from != nil {
				obj.Del(r.From)
				obj.Set(f.name, from)
			}
		}
		if f.copy != nil {
			if from := v.Get(f.copy...); from != nil {
				obj.Set(f.name, from)
			}
		}
		if f.concat != nil {
			var parts []string
			for _, p := range f.concat {
				if x := v.Get(p...); x != nil && x.Type() != fastjson.TypeNull {
					parts = append(parts, t.textOf(x))
				}
			}
			if len(parts) > 0 {
				obj.Set(f.name, t.arena.NewString(strings.Join(parts, f.v.Concat.Separator)))
			}
		}
		if f.split != nil {
			if x := v.Get(f.split...); x != nil && x.Type() != fastjson.TypeNull {
				parts := strings.Split(t.textOf(x), f.v.Split.Separator)
				i := f.v.Split.Index
				if i < 0 {
					i += len(parts)
				}
				if i >= 0 && i < len(parts) {
					obj.Set(f.name, t.arena.NewString(parts[i]))
				}
			}
		}
		if f.child != nil {
			if x := obj.Get(f.name); x != nil {
				if f.isList {
					if arr, err := x.Array(); err == nil {
						for _, e := range arr {
							if err := t.object(e, f.child); err != nil {
								return err
							}
						}
					}
				} else if err := t.object(x, f.child); err != nil {
					return err
				}
			}
		}
		if m := f.v.Mask; m != nil {
			if x := obj.Get(f.name); x != nil && x.Type() != fastjson.TypeNull {
				masked, err := mask(m, t.textOf(x))
				if err != nil {
					return fmt.Errorf("field %s: %w", f.name, err)
				}
				obj.Set(f.name, t.arena.NewString(masked))
			}
		}
	}
	return nil
}

// textOf returns a string's value, or another value's JSON text.
func (t *Transformer) textOf(v *fastjson.Value) string {
	if v.Type() == fastjson.TypeString {
		return string(v.GetStringBytes())
	}
	t.text = v.MarshalTo(t.text[:0])
	return string(t.text)
}

// DefaultRedaction replaces a value masked with type redact and no with.
const DefaultRedaction = "***"

func mask(m *logschema.Mask, s string) (string, error) {
	var h hash.Hash
	switch m.Type {
	case "", "redact":
		if m.With == "" {
			return DefaultRedaction, nil
		}
		return m.With, nil
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	default:
		return "", fmt.Errorf("unknown mask type %q", m.Type)
	}
	h.Write([]byte(m.Salt))
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)), nil
}
