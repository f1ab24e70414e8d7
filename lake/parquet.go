package lake

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// Parquet files are written column by column from Arrow arrays: each leaf column of the Parquet
// schema gets its values with repetition and definition levels (Dremel encoding) computed from
// the Arrow validity bitmaps and list offsets. Writing parquet.Value rows directly keeps zeros
// and false as values (parquet-go's struct and map paths turn them into NULL in optional
// columns).

// IsJSON reports whether an Arrow field holds JSON text (the canonical arrow.json extension).
func IsJSON(f arrow.Field) bool {
	v, ok := f.Metadata.GetValue("ARROW:extension:name")
	return ok && v == "arrow.json"
}

// ParquetSchema returns the Parquet schema of an Arrow schema, with columns in the Arrow order.
func ParquetSchema(s *arrow.Schema) (*parquet.Schema, error) { return parquetSchema(s, nil) }

// parquetSchema is ParquetSchema with the string columns (by dotted path) to write without a
// dictionary.
func parquetSchema(s *arrow.Schema, plain map[string]bool) (*parquet.Schema, error) {
	root, err := groupNode(s.Fields(), "", plain)
	if err != nil {
		return nil, err
	}
	return parquet.NewSchema("osprey", root), nil
}

func groupNode(fields []arrow.Field, prefix string, plain map[string]bool) (parquet.Node, error) {
	g := orderedGroup{fields: make([]parquet.Field, len(fields))}
	for i, f := range fields {
		n, err := fieldNode(f, prefix+f.Name, plain)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		g.fields[i] = namedField{Node: n, name: f.Name}
	}
	return g, nil
}

// The string columns of a table whose values are mostly distinct (JSON documents, free text,
// ids) are written without a dictionary, which would cost a hash lookup per value and save
// nothing. The choice is made from up to sampleSize values of the table's first batch of at least
// minSampleRows rows; a sample much smaller than the number of distinct values a column can take
// would see most of them once and mistake a column of a few thousand values for a unique one.
const (
	sampleSize    = 4096
	minSampleRows = 1024
)

// plainColumns returns the string columns of a record whose sampled values are mostly distinct.
func plainColumns(rec arrow.RecordBatch) map[string]bool {
	plain := map[string]bool{}
	var visit func(arr arrow.Array, path string)
	visit = func(arr arrow.Array, path string) {
		switch a := arr.(type) {
		case *array.String:
			n := a.Len()
			step := max(1, n/sampleSize)
			seen := make(map[string]struct{}, min(n, sampleSize))
			sampled := 0
			for i := 0; i < n; i += step {
				if a.IsValid(i) {
					seen[a.Value(i)] = struct{}{}
					sampled++
				}
			}
			if sampled >= 256 && len(seen)*2 > sampled {
				plain[path] = true
			}
		case *array.Struct:
			st := a.DataType().(*arrow.StructType)
			for i := range st.NumFields() {
				visit(a.Field(i), path+"."+st.Field(i).Name)
			}
		case *array.List:
			visit(a.ListValues(), path+".element")
		}
	}
	for i, f := range rec.Schema().Fields() {
		visit(rec.Column(i), f.Name)
	}
	return plain
}

// EncodingKey is Arrow field metadata naming the Parquet encoding of a string column: "plain"
// for values that rarely repeat (row ids), where a dictionary only costs time. Strings are
// dictionary-encoded otherwise (with a fallback to plain pages when the dictionary grows large).
const EncodingKey = "osprey.encoding"

func fieldNode(f arrow.Field, path string, plain map[string]bool) (parquet.Node, error) {
	var n parquet.Node
	switch t := f.Type.(type) {
	case *arrow.StringType:
		if IsJSON(f) {
			n = parquet.JSON()
		} else {
			n = parquet.String()
		}
		if enc, _ := f.Metadata.GetValue(EncodingKey); enc != "plain" && !plain[path] {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		}
	case *arrow.Int16Type:
		n = parquet.Int(16)
	case *arrow.Int32Type:
		n = parquet.Int(32)
	case *arrow.Int64Type:
		n = parquet.Int(64)
	case *arrow.Float64Type:
		n = parquet.Leaf(parquet.DoubleType)
	case *arrow.BooleanType:
		n = parquet.Leaf(parquet.BooleanType)
	case *arrow.TimestampType:
		if t.Unit != arrow.Microsecond {
			return nil, fmt.Errorf("timestamp unit %s (want microseconds)", t.Unit)
		}
		n = parquet.Timestamp(parquet.Microsecond)
	case *arrow.StructType:
		g, err := groupNode(t.Fields(), path+".", plain)
		if err != nil {
			return nil, err
		}
		n = g
	case *arrow.ListType:
		elem, err := fieldNode(t.ElemField(), path+".element", plain)
		if err != nil {
			return nil, err
		}
		n = parquet.List(elem)
	default:
		return nil, fmt.Errorf("unsupported Arrow type %s", f.Type)
	}
	if !f.Nullable {
		return parquet.Required(n), nil
	}
	return parquet.Optional(n), nil
}

// orderedGroup is a Parquet group whose fields keep the order they were given in
// (parquet.Group sorts them by name).
type orderedGroup struct{ fields []parquet.Field }

var _ parquet.Node = orderedGroup{}

func (g orderedGroup) ID() int                         { return 0 }
func (g orderedGroup) String() string                  { return parquet.Group{}.String() }
func (g orderedGroup) Type() parquet.Type              { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool                  { return false }
func (g orderedGroup) Repeated() bool                  { return false }
func (g orderedGroup) Required() bool                  { return true }
func (g orderedGroup) Leaf() bool                      { return false }
func (g orderedGroup) Fields() []parquet.Field         { return g.fields }
func (g orderedGroup) Encoding() encoding.Encoding     { return nil }
func (g orderedGroup) Compression() compress.Codec     { return nil }
func (g orderedGroup) GoType() reflect.Type            { return reflect.TypeFor[map[string]any]() }
func (f namedField) Name() string                      { return f.name }
func (f namedField) Value(reflect.Value) reflect.Value { return reflect.Value{} }

type namedField struct {
	parquet.Node
	name string
}

// leafWriter collects the values of one leaf column.
type leafWriter struct {
	values []parquet.Value
}

func (l *leafWriter) null(rep, def int) {
	l.values = append(l.values, levels(parquet.Value{}, rep, def))
}

// levels returns v at the given repetition and definition levels. It leaves the column index
// unset: a column writer takes the values of its own column and does not read it, and the
// single-field setters inline where Value.Level, a call per value, does not.
func levels(v parquet.Value, rep, def int) parquet.Value {
	v.SetRepetitionLevel(rep)
	v.SetDefinitionLevel(def)
	return v
}

// node writes the values of an Arrow array (at some depth) into its leaf columns.
type node interface {
	// write emits the value at index i of the node's array; rep is the repetition level of its
	// first value, def the definition level of its parent.
	write(i int, rep, def int)
	// writeNull emits a null at definition level def in every leaf below.
	writeNull(rep, def int)
	// bind points the node (and its children) at an array.
	bind(arr arrow.Array)
	// writeRange writes rows [start, end) of a top-level column; writeRows the listed rows.
	writeRange(start, end int)
	writeRows(rows []int32)
}

// leaf is the part of every leaf node that handles nulls. The validity bitmap is cached at bind
// so that the per-value null test is a bit test, not a call.
type leaf struct {
	arr   arrow.Array
	out   *leafWriter
	bits  []byte // validity bitmap; nil when the array has no null
	shift int    // the array's offset into its bitmap
	step  int    // definition levels a value adds: 0 for a required column, else 1
}

func (n *leaf) bindLeaf(arr arrow.Array) {
	n.arr, n.bits, n.shift = arr, nil, arr.Data().Offset()
	if arr.NullN() > 0 {
		if n.step == 0 {
			panic("BUG: null in a required column")
		}
		n.bits = arr.NullBitmapBytes()
	}
}

func (n *leaf) isNull(i int) bool {
	if n.bits == nil {
		return false
	}
	j := n.shift + i
	return n.bits[j>>3]&(1<<(j&7)) == 0
}

func (n *leaf) writeNull(rep, def int) { n.out.null(rep, def) }

// rangeLoop and rowsLoop are the generic top-level loops, for nodes without a faster one.
func rangeLoop(n node, start, end int) {
	for i := start; i < end; i++ {
		n.write(i, 0, 0)
	}
}

func rowsLoop(n node, rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}

type stringLeaf struct {
	leaf
	offsets []int32
	data    []byte
}

func (n *stringLeaf) bind(arr arrow.Array) {
	a := arr.(*array.String)
	n.bindLeaf(a)
	// The offsets index the whole value buffer.
	n.offsets, n.data = a.ValueOffsets(), nil
	if buf := a.Data().Buffers()[2]; buf != nil {
		n.data = buf.Bytes()
	}
}

func (n *stringLeaf) write(i int, rep, def int) {
	if n.isNull(i) {
		n.out.null(rep, def)
		return
	}
	v := parquet.ByteArrayValue(n.data[n.offsets[i]:n.offsets[i+1]])
	n.out.values = append(n.out.values, levels(v, rep, def+n.step))
}

func (n *stringLeaf) writeRange(start, end int) {
	out := n.out.values
	for i := start; i < end; i++ {
		if n.isNull(i) {
			out = append(out, parquet.Value{})
			continue
		}
		v := parquet.ByteArrayValue(n.data[n.offsets[i]:n.offsets[i+1]])
		v.SetDefinitionLevel(n.step)
		out = append(out, v)
	}
	n.out.values = out
}

func (n *stringLeaf) writeRows(rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}

type int64Leaf struct {
	leaf
	vals []int64
}

func (n *int64Leaf) bind(arr arrow.Array) {
	n.bindLeaf(arr)
	switch a := arr.(type) {
	case *array.Int64:
		n.vals = a.Int64Values()
	case *array.Timestamp:
		ts := a.TimestampValues()
		n.vals = unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(ts))), len(ts))
	}
}

func (n *int64Leaf) write(i int, rep, def int) {
	if n.isNull(i) {
		n.out.null(rep, def)
		return
	}
	n.out.values = append(n.out.values, levels(parquet.Int64Value(n.vals[i]), rep, def+n.step))
}

func (n *int64Leaf) writeRange(start, end int) {
	out := n.out.values
	for i := start; i < end; i++ {
		if n.isNull(i) {
			out = append(out, parquet.Value{})
			continue
		}
		v := parquet.Int64Value(n.vals[i])
		v.SetDefinitionLevel(n.step)
		out = append(out, v)
	}
	n.out.values = out
}

func (n *int64Leaf) writeRows(rows []int32) {
	for _, i := range rows {
		n.write(int(i), 0, 0)
	}
}

type int32Leaf struct{ leaf }

func (n *int32Leaf) bind(arr arrow.Array)      { n.bindLeaf(arr) }
func (n *int32Leaf) writeRange(start, end int) { rangeLoop(n, start, end) }
func (n *int32Leaf) writeRows(rows []int32)    { rowsLoop(n, rows) }

func (n *int32Leaf) write(i int, rep, def int) {
	if n.isNull(i) {
		n.out.null(rep, def)
		return
	}
	var v int32
	switch a := n.arr.(type) {
	case *array.Int32:
		v = a.Value(i)
	case *array.Int16:
		v = int32(a.Value(i))
	}
	n.out.values = append(n.out.values, levels(parquet.Int32Value(v), rep, def+n.step))
}

type float64Leaf struct{ leaf }

func (n *float64Leaf) bind(arr arrow.Array)      { n.bindLeaf(arr) }
func (n *float64Leaf) writeRange(start, end int) { rangeLoop(n, start, end) }
func (n *float64Leaf) writeRows(rows []int32)    { rowsLoop(n, rows) }

func (n *float64Leaf) write(i int, rep, def int) {
	if n.isNull(i) {
		n.out.null(rep, def)
		return
	}
	v := n.arr.(*array.Float64).Value(i)
	n.out.values = append(n.out.values, levels(parquet.DoubleValue(v), rep, def+n.step))
}

type boolLeaf struct{ leaf }

func (n *boolLeaf) bind(arr arrow.Array)      { n.bindLeaf(arr) }
func (n *boolLeaf) writeRange(start, end int) { rangeLoop(n, start, end) }
func (n *boolLeaf) writeRows(rows []int32)    { rowsLoop(n, rows) }

func (n *boolLeaf) write(i int, rep, def int) {
	if n.isNull(i) {
		n.out.null(rep, def)
		return
	}
	v := n.arr.(*array.Boolean).Value(i)
	n.out.values = append(n.out.values, levels(parquet.BooleanValue(v), rep, def+n.step))
}

type structNode struct {
	arr      *array.Struct
	children []node
}

func (n *structNode) bind(arr arrow.Array) {
	n.arr = arr.(*array.Struct)
	for i, c := range n.children {
		c.bind(n.arr.Field(i))
	}
}

func (n *structNode) write(i int, rep, def int) {
	if n.arr.IsNull(i) {
		n.writeNull(rep, def)
		return
	}
	for _, c := range n.children {
		c.write(i, rep, def+1)
	}
}

func (n *structNode) writeRange(start, end int) { rangeLoop(n, start, end) }
func (n *structNode) writeRows(rows []int32)    { rowsLoop(n, rows) }

func (n *structNode) writeNull(rep, def int) {
	for _, c := range n.children {
		c.writeNull(rep, def)
	}
}

type listNode struct {
	arr      *array.List
	offsets  []int32
	elem     node
	repLevel int // the repetition level of this list's elements
}

func (n *listNode) bind(arr arrow.Array) {
	n.arr = arr.(*array.List)
	n.offsets = n.arr.Offsets()
	n.elem.bind(n.arr.ListValues())
}

func (n *listNode) write(i int, rep, def int) {
	if n.arr.IsNull(i) {
		n.elem.writeNull(rep, def)
		return
	}
	start, end := int(n.offsets[i]), int(n.offsets[i+1])
	if start == end {
		n.elem.writeNull(rep, def+1) // an empty list
		return
	}
	for j := start; j < end; j++ {
		n.elem.write(j, rep, def+2)
		rep = n.repLevel
	}
}

func (n *listNode) writeNull(rep, def int)    { n.elem.writeNull(rep, def) }
func (n *listNode) writeRange(start, end int) { rangeLoop(n, start, end) }
func (n *listNode) writeRows(rows []int32)    { rowsLoop(n, rows) }

// encoder turns Arrow records of one schema into Parquet column values.
type encoder struct {
	schema *arrow.Schema
	roots  []node // one per top-level field
	leaves []*leafWriter
}

func newEncoder(s *arrow.Schema) (*encoder, error) {
	e := &encoder{schema: s}
	for _, f := range s.Fields() {
		n, err := e.node(f, 0)
		if err != nil {
			return nil, err
		}
		e.roots = append(e.roots, n)
	}
	return e, nil
}

func (e *encoder) node(f arrow.Field, repDepth int) (node, error) {
	switch t := f.Type.(type) {
	case *arrow.StructType:
		n := &structNode{}
		for _, c := range t.Fields() {
			cn, err := e.node(c, repDepth)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, cn)
		}
		return n, nil
	case *arrow.ListType:
		elem, err := e.node(t.ElemField(), repDepth+1)
		if err != nil {
			return nil, err
		}
		return &listNode{elem: elem, repLevel: repDepth + 1}, nil
	}
	out := &leafWriter{}
	l := leaf{out: out, step: 1}
	if !f.Nullable {
		l.step = 0
	}
	var n node
	switch f.Type.(type) {
	case *arrow.StringType:
		n = &stringLeaf{leaf: l}
	case *arrow.Int64Type, *arrow.TimestampType:
		n = &int64Leaf{leaf: l}
	case *arrow.Int32Type, *arrow.Int16Type:
		n = &int32Leaf{leaf: l}
	case *arrow.Float64Type:
		n = &float64Leaf{leaf: l}
	case *arrow.BooleanType:
		n = &boolLeaf{leaf: l}
	default:
		return nil, fmt.Errorf("column %s: unsupported Arrow type %s", f.Name, f.Type)
	}
	e.leaves = append(e.leaves, out)
	return n, nil
}

// pageRows is how many rows are written to the column writers at a time; parquet-go cuts a page
// only between writes, so this bounds the page size.
const pageRows = 4096

// encode writes the selected rows of rec (all rows when rows is nil) into a row group.
func (e *encoder) encode(rg *parquet.ConcurrentRowGroupWriter, rec arrow.RecordBatch, rows []int32) error {
	cols := rg.ColumnWriters()
	if len(cols) != len(e.leaves) {
		panic(fmt.Sprintf("BUG: %d leaf columns for %d column writers", len(e.leaves), len(cols)))
	}
	for i, r := range e.roots {
		r.bind(rec.Column(i))
	}
	n := int(rec.NumRows())
	if rows != nil {
		n = len(rows)
	}
	for start := 0; start < n; start += pageRows {
		end := min(start+pageRows, n)
		for _, r := range e.roots {
			if rows == nil {
				r.writeRange(start, end)
			} else {
				r.writeRows(rows[start:end])
			}
		}
		for i, l := range e.leaves {
			if _, err := cols[i].WriteRowValues(l.values); err != nil {
				return fmt.Errorf("write column %d: %w", i, err)
			}
			clear(l.values) // drop references to the record's buffers
			l.values = l.values[:0]
		}
	}
	return nil
}
