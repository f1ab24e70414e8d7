package lake

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Shredding turns the rows of an Arrow record into Parquet's columnar form (Dremel encoding):
// for each leaf column, a definition level and (inside lists) a repetition level per entry,
// and the indexes, in the leaf's Arrow array, of the entries that hold a value. Values are not
// copied: the chunk encoder reads them from the Arrow arrays, which outlive the encoding.

// leafBuf is a leaf column's shredded entries for one row group.
type leafBuf struct {
	arr  arrow.Array // the leaf's Arrow array (a descendant of a top-level column)
	defs []uint8     // definition level of each entry; nil when the column's maximum is 0
	reps []uint8     // repetition level of each entry; nil when the column's maximum is 0
	idx  []int32     // index in arr of each entry that has a value, in order
}

func (b *leafBuf) reset() {
	b.defs, b.reps, b.idx = b.defs[:0], b.reps[:0], b.idx[:0]
}

// entries is the number of entries (values and nulls).
func (b *leafBuf) entries(hasDef bool) int {
	if hasDef {
		return len(b.defs)
	}
	return len(b.idx)
}

// shredNode writes the entries of an Arrow array (at some depth) into its leaves.
type shredNode interface {
	// bind points the node (and its children) at an array.
	bind(arr arrow.Array)
	// write emits the value at index i of the bound array; rep is the repetition level of its
	// first entry, def the definition level of its parent.
	write(i int, rep, def int)
	// writeNull emits an entry at definition level def in every leaf below.
	writeNull(rep, def int)
	// writeRange and writeRows emit rows of a top-level column: [start, end) or the listed ones.
	writeRange(start, end int)
	writeRows(rows []int32)
}

// shredder shreds records of one Arrow schema.
type shredder struct {
	roots  []shredNode // one per top-level field
	leaves []*leafBuf  // in the order of the Parquet schema's leaf columns
}

func newShredder(s *arrow.Schema) (*shredder, error) {
	sh := &shredder{}
	for _, f := range s.Fields() {
		n, err := sh.node(f, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		sh.roots = append(sh.roots, n)
	}
	return sh, nil
}

// node builds the shredder of a field whose parent has maximum levels maxDef and maxRep.
func (sh *shredder) node(f arrow.Field, maxDef, maxRep int) (shredNode, error) {
	step := 0
	if f.Nullable {
		step = 1
	}
	switch t := f.Type.(type) {
	case *arrow.StructType:
		n := &structShred{step: step}
		for _, c := range t.Fields() {
			cn, err := sh.node(c, maxDef+step, maxRep)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, cn)
		}
		return n, nil
	case *arrow.ListType:
		// A list is a group (optional or required) holding a repeated group holding the element.
		elem, err := sh.node(t.ElemField(), maxDef+step+1, maxRep+1)
		if err != nil {
			return nil, err
		}
		return &listShred{elem: elem, step: step, repLevel: maxRep + 1}, nil
	case *arrow.StringType, *arrow.Int64Type, *arrow.TimestampType, *arrow.Int32Type,
		*arrow.Int16Type, *arrow.Float64Type, *arrow.BooleanType:
	default:
		return nil, fmt.Errorf("unsupported Arrow type %s", f.Type)
	}
	out := &leafBuf{}
	sh.leaves = append(sh.leaves, out)
	return &leafShred{out: out, step: step, hasDef: maxDef+step > 0, hasRep: maxRep > 0}, nil
}

// shred shreds the listed rows of rec (all rows when rows is nil) into the leaves.
func (sh *shredder) shred(rec arrow.RecordBatch, rows []int32) {
	for _, l := range sh.leaves {
		l.reset()
	}
	for i, r := range sh.roots {
		r.bind(rec.Column(i))
		if rows == nil {
			r.writeRange(0, int(rec.NumRows()))
		} else {
			r.writeRows(rows)
		}
	}
}

// release drops the references to the last record's arrays.
func (sh *shredder) release() {
	for _, l := range sh.leaves {
		l.arr = nil
	}
	for _, r := range sh.roots {
		r.bind(nil)
	}
}

// validity caches an array's validity bitmap so that the per-entry null test is a bit test.
type validity struct {
	bits  []byte // nil when the array has no null
	shift int    // the array's offset into its bitmap
}

func (v *validity) bindValidity(arr arrow.Array) {
	v.bits, v.shift = nil, 0
	if arr != nil && arr.NullN() > 0 {
		v.bits, v.shift = arr.NullBitmapBytes(), arr.Data().Offset()
	}
}

func (v *validity) isNull(i int) bool {
	if v.bits == nil {
		return false
	}
	j := v.shift + i
	return v.bits[j>>3]&(1<<(j&7)) == 0
}

type leafShred struct {
	validity
	out    *leafBuf
	step   int  // definition levels a value adds: 1 for a nullable leaf, else 0
	hasDef bool // the column has definition levels
	hasRep bool // the column has repetition levels
}

func (n *leafShred) bind(arr arrow.Array) {
	n.out.arr = arr
	n.bindValidity(arr)
	if n.bits != nil && n.step == 0 {
		panic("BUG: null in a required column")
	}
}

func (n *leafShred) write(i int, rep, def int) {
	if n.isNull(i) {
		n.writeNull(rep, def)
		return
	}
	if n.hasDef {
		n.out.defs = append(n.out.defs, uint8(def+n.step))
	}
	if n.hasRep {
		n.out.reps = append(n.out.reps, uint8(rep))
	}
	n.out.idx = append(n.out.idx, int32(i))
}

func (n *leafShred) writeNull(rep, def int) {
	n.out.defs = append(n.out.defs, uint8(def))
	if n.hasRep {
		n.out.reps = append(n.out.reps, uint8(rep))
	}
}

// writeRange is the top-level loop: no repetition, and the definition level is the leaf's own.
func (n *leafShred) writeRange(start, end int) {
	out := n.out
	if n.bits == nil {
		for i := start; i < end; i++ {
			out.idx = append(out.idx, int32(i))
		}
		if n.hasDef {
			for range end - start {
				out.defs = append(out.defs, 1)
			}
		}
		return
	}
	for i := start; i < end; i++ {
		if n.isNull(i) {
			out.defs = append(out.defs, 0)
			continue
		}
		out.defs = append(out.defs, 1)
		out.idx = append(out.idx, int32(i))
	}
}

func (n *leafShred) writeRows(rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}

type structShred struct {
	validity
	children []shredNode
	step     int
}

func (n *structShred) bind(arr arrow.Array) {
	n.bindValidity(arr)
	a, _ := arr.(*array.Struct)
	for i, c := range n.children {
		if a == nil {
			c.bind(nil)
		} else {
			c.bind(a.Field(i))
		}
	}
}

func (n *structShred) write(i int, rep, def int) {
	if n.isNull(i) {
		n.writeNull(rep, def)
		return
	}
	for _, c := range n.children {
		c.write(i, rep, def+n.step)
	}
}

func (n *structShred) writeNull(rep, def int) {
	for _, c := range n.children {
		c.writeNull(rep, def)
	}
}

func (n *structShred) writeRange(start, end int) {
	for i := start; i < end; i++ {
		n.write(i, 0, 0)
	}
}

func (n *structShred) writeRows(rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}

type listShred struct {
	validity
	offsets  []int32
	elem     shredNode
	step     int
	repLevel int // the repetition level of this list's elements
}

func (n *listShred) bind(arr arrow.Array) {
	n.bindValidity(arr)
	a, _ := arr.(*array.List)
	if a == nil {
		n.offsets = nil
		n.elem.bind(nil)
		return
	}
	// Offsets() is the whole buffer, also for a sliced array: index it from the array's own
	// offset. The values are the whole child array, which the offsets index.
	n.offsets = a.Offsets()[a.Data().Offset():]
	n.elem.bind(a.ListValues())
}

func (n *listShred) write(i int, rep, def int) {
	if n.isNull(i) {
		n.elem.writeNull(rep, def)
		return
	}
	start, end := int(n.offsets[i]), int(n.offsets[i+1])
	if start == end {
		n.elem.writeNull(rep, def+n.step) // an empty list
		return
	}
	for j := start; j < end; j++ {
		n.elem.write(j, rep, def+n.step+1)
		rep = n.repLevel
	}
}

func (n *listShred) writeNull(rep, def int) { n.elem.writeNull(rep, def) }

func (n *listShred) writeRange(start, end int) {
	for i := start; i < end; i++ {
		n.write(i, 0, 0)
	}
}

func (n *listShred) writeRows(rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}
