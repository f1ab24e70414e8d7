package engine

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Rules see only the parts of a batch they refer to: the columns, and of a struct column the
// fields (actor.name binds actor with its field name only). Less to bind is less to write and
// for DuckDB to read.

const fieldRowID = "p_row_id"

// need is what the rules read of a column: all of it, or some fields of a struct.
type need struct {
	all    bool
	fields map[string]*need // by lowercase name
}

func (n *need) mark(t arrow.DataType, rest []string) {
	st, ok := t.(*arrow.StructType)
	if n.all || len(rest) == 0 || !ok {
		n.all, n.fields = true, nil
		return
	}
	i, ok := fieldIndexFold(st.Fields(), rest[0])
	if !ok {
		// Not a field: the rest of the name is something else (a method-style call, a
		// lambda); the whole column, to be safe.
		n.all, n.fields = true, nil
		return
	}
	if n.fields == nil {
		n.fields = map[string]*need{}
	}
	name := strings.ToLower(st.Field(i).Name)
	c := n.fields[name]
	if c == nil {
		c = &need{}
		n.fields[name] = c
	}
	c.mark(st.Field(i).Type, rest[1:])
}

func fieldIndexFold(fields []arrow.Field, name string) (int, bool) {
	for i, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return i, true
		}
	}
	return 0, false
}

// projection is the part of a schema the rules read.
type projection struct {
	of     *arrow.Schema // the schema it was made for
	schema *arrow.Schema // the projected schema
	cols   []int         // index in of of each projected column
	needs  []*need
}

// reset recomputes what the table's rules read and drops the plan.
func (tr *tableRules) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.resetLocked()
}

func (tr *tableRules) resetLocked() {
	tr.plan, tr.proj = nil, nil
	tr.rowID = true
	tr.all = false
	tr.refs = nil
	for _, r := range tr.rules {
		tr.all = tr.all || r.all.Load()
		tr.refs = append(tr.refs, r.refs...)
	}
}

// refersTo reports whether a rule refers to a top-level column (or a field of that name).
func (tr *tableRules) refersTo(name string) bool {
	for _, ref := range tr.refs {
		for _, part := range ref {
			if part == name {
				return true
			}
		}
	}
	return false
}

// projectionFor works out the projection of a schema.
func (tr *tableRules) projectionFor(s *arrow.Schema) *projection {
	p := &projection{of: s}
	fields := s.Fields()
	needs := make([]*need, len(fields))
	mark := func(ref []string) {
		if i, ok := fieldIndexFold(fields, ref[0]); ok {
			if needs[i] == nil {
				needs[i] = &need{}
			}
			needs[i].mark(fields[i].Type, ref[1:])
		}
	}
	for _, ref := range tr.refs {
		if len(ref) == 0 {
			continue
		}
		mark(ref)
		if len(ref) > 1 {
			mark(ref[1:]) // table.column
		}
	}
	if tr.rowID {
		mark([]string{fieldRowID})
	}
	var out []arrow.Field
	for i, f := range fields {
		n := needs[i]
		if tr.all {
			n = &need{all: true}
		}
		if n == nil {
			continue
		}
		if !n.all {
			f.Type = pruneType(f.Type, n)
		}
		p.cols = append(p.cols, i)
		p.needs = append(p.needs, n)
		out = append(out, f)
	}
	p.schema = arrow.NewSchema(out, nil)
	return p
}

// pruneType returns the struct type t with only the fields n needs.
func pruneType(t arrow.DataType, n *need) arrow.DataType {
	st := t.(*arrow.StructType)
	var fields []arrow.Field
	for _, f := range st.Fields() {
		c := n.fields[strings.ToLower(f.Name)]
		if c == nil {
			continue
		}
		if !c.all {
			f.Type = pruneType(f.Type, c)
		}
		fields = append(fields, f)
	}
	return arrow.StructOf(fields...)
}

// project returns the part of rec the rules read, sharing rec's buffers.
func (tr *tableRules) project(rec arrow.RecordBatch) arrow.RecordBatch {
	tr.mu.Lock()
	p := tr.proj
	if p == nil || p.of != rec.Schema() {
		p = tr.projectionFor(rec.Schema())
		tr.proj = p
	}
	tr.mu.Unlock()
	cols := make([]arrow.Array, len(p.cols))
	for i, c := range p.cols {
		cols[i] = pruneArray(rec.Column(c), p.needs[i], p.schema.Field(i).Type)
	}
	out := array.NewRecordBatch(p.schema, cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}

// pruneArray returns arr (retained) with only the struct fields n needs; t is its pruned type.
func pruneArray(arr arrow.Array, n *need, t arrow.DataType) arrow.Array {
	if n.all {
		arr.Retain()
		return arr
	}
	st := arr.(*array.Struct)
	data := st.Data()
	// The children of a sliced struct come sliced (array.Struct.Field); its validity bitmap
	// does not, so a sliced one is copied to start at bit 0.
	validity := data.Buffers()[0]
	if data.Offset() != 0 && validity != nil {
		bits := make([]byte, bitutil.BytesForBits(int64(data.Len())))
		bitutil.CopyBitmap(validity.Bytes(), data.Offset(), data.Len(), bits, 0)
		validity = memory.NewBufferBytes(bits)
	}
	pt := t.(*arrow.StructType)
	children := make([]arrow.ArrayData, 0, pt.NumFields())
	var release []arrow.Array
	for _, f := range pt.Fields() {
		i, _ := fieldIndexFold(arr.DataType().(*arrow.StructType).Fields(), f.Name)
		child := pruneArray(st.Field(i), n.fields[strings.ToLower(f.Name)], f.Type)
		release = append(release, child)
		children = append(children, child.Data())
	}
	d := array.NewData(t, data.Len(), []*memory.Buffer{validity}, children, data.NullN(), 0)
	out := array.MakeFromData(d)
	d.Release()
	for _, c := range release {
		c.Release()
	}
	return out
}
