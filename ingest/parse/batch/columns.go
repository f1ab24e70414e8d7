package batch

import (
	"bytes"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Column accumulates the values of one column (or of an array's elements). Each value is
// appended once per row; Rollback truncates every column back to the last ended row.
type Column interface {
	Node() *Node
	AppendNull()
	Len() int
	Truncate(n int)         // drops values from the n-th on
	build() arrow.ArrayData // hands the values to Arrow and starts empty
	size() int              // bytes held
	recycle()               // reuses the memory of the last build, whose arrays are no longer in use
}

// validity records which values are null. Until the first null it is only a count: most
// columns never hold a null, and appending to them then costs nothing here.
type validity struct {
	n     int
	valid []byte // one byte per value, allocated at the first null
	nulls int
	spare []byte // valid of the last build, for recycle
}

func (v *validity) set(ok bool) {
	if ok {
		if v.valid != nil {
			v.valid = append(v.valid, 1)
		}
	} else {
		if v.valid == nil {
			if cap(v.spare) >= v.n+1 {
				v.valid, v.spare = v.spare[:v.n], nil
			} else {
				v.valid = make([]byte, v.n, max(2*v.n, 64))
			}
			for i := range v.valid {
				v.valid[i] = 1
			}
		}
		v.valid = append(v.valid, 0)
		v.nulls++
	}
	v.n++
}

func (v *validity) shrink(n int) {
	if v.valid != nil {
		for _, b := range v.valid[n:] {
			if b == 0 {
				v.nulls--
			}
		}
		v.valid = v.valid[:n]
	}
	v.n = n
}

// bitmap packs the validity into an Arrow bitmap (nil when nothing is null) and resets it.
func (v *validity) bitmap() (*memory.Buffer, int) {
	nulls := v.nulls
	var buf *memory.Buffer
	if nulls > 0 {
		bits := make([]byte, bitutil.CeilByte(v.n)/8)
		for i, b := range v.valid {
			if b != 0 {
				bits[i>>3] |= 1 << (i & 7)
			}
		}
		buf = memory.NewBufferBytes(bits)
	}
	spare := v.valid // only read above: the bits went to Arrow, not this slice
	if spare == nil {
		spare = v.spare
	}
	*v = validity{spare: spare[:0]}
	return buf, nulls
}

// StringCol holds strings and JSON text. Values that are not valid UTF-8 are stored with the
// bad bytes replaced by U+FFFD: Parquet strings must be UTF-8.
type StringCol struct {
	node    *Node
	b       *Builder // receives the indicator values, when the node has scanners
	offsets []int32
	data    []byte
	validity

	spareOffsets []int32 // the buffers of the last build, for recycle
	spareData    []byte
}

func newStringCol(n *Node, b *Builder) *StringCol {
	return &StringCol{node: n, b: b, offsets: []int32{0}}
}

// Node implements Column.
func (c *StringCol) Node() *Node { return c.node }

// Len implements Column.
func (c *StringCol) Len() int { return c.n }

// reserve makes room for n more bytes of data and one more offset, taking larger buffers from
// the builder's arena when there is one (else append grows them).
func (c *StringCol) reserve(n int) {
	if c.b == nil || c.b.arena == nil {
		return
	}
	if len(c.data)+n > cap(c.data) {
		c.data = growBytes(c.b, c.data, n)
	}
	if len(c.offsets) == cap(c.offsets) {
		c.offsets = grow(c.b, c.offsets, 1)
	}
}

// Append adds a value.
func (c *StringCol) Append(v []byte) {
	if len(c.data)+len(v) > cap(c.data) || len(c.offsets) == cap(c.offsets) {
		c.reserve(len(v))
	}
	start := len(c.data)
	if utf8.Valid(v) {
		c.data = append(c.data, v...)
	} else {
		c.data = appendValidUTF8(c.data, v)
	}
	c.offsets = append(c.offsets, int32(len(c.data)))
	c.set(true)
	if len(c.node.Scanners) > 0 {
		c.scan(c.data[start:len(c.data):len(c.data)])
	}
}

// AppendUTF8 adds a value the caller knows to be valid UTF-8.
func (c *StringCol) AppendUTF8(v []byte) {
	if len(c.data)+len(v) > cap(c.data) || len(c.offsets) == cap(c.offsets) {
		c.reserve(len(v))
	}
	start := len(c.data)
	c.data = append(c.data, v...)
	c.offsets = append(c.offsets, int32(len(c.data)))
	c.set(true)
	if len(c.node.Scanners) > 0 {
		c.scan(c.data[start:len(c.data):len(c.data)])
	}
}

func (c *StringCol) scan(stored []byte) {
	for _, sc := range c.node.Scanners {
		c.b.ind.Scan(sc, stored)
	}
}

// AppendString adds a value.
func (c *StringCol) AppendString(s string) {
	c.Append(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// AppendNull implements Column.
func (c *StringCol) AppendNull() {
	c.reserve(0)
	c.offsets = append(c.offsets, int32(len(c.data)))
	c.set(false)
}

func (c *StringCol) Truncate(n int) {
	c.offsets = c.offsets[:n+1]
	c.data = c.data[:c.offsets[n]]
	c.validity.shrink(n)
}

func (c *StringCol) size() int { return len(c.data) + 4*c.n }

func (c *StringCol) build() arrow.ArrayData {
	n := c.n
	bits, nulls := c.bitmap()
	offsets := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.offsets))), 4*len(c.offsets))
	d := array.NewData(arrow.BinaryTypes.String, n,
		[]*memory.Buffer{bits, memory.NewBufferBytes(offsets), memory.NewBufferBytes(c.data)}, nil, nulls, 0)
	c.spareOffsets, c.spareData = c.offsets, c.data
	c.offsets, c.data = []int32{0}, nil
	return d
}

// constant holds n copies of a string in Arrow's layout. Its buffers are never written once
// built: a batch of up to n rows shares them.
type constant struct {
	s       []byte
	data    []byte
	offsets []int32
}

// array returns an Arrow array of n copies of s.
func (c *constant) array(s []byte, n int) arrow.ArrayData {
	if string(s) != string(c.s) || len(c.offsets) < n+1 {
		m := max(n, 2*(len(c.offsets)-1), 1024)
		c.s = append([]byte(nil), s...)
		c.data = bytes.Repeat(s, m)
		c.offsets = make([]int32, m+1)
		for i := range c.offsets {
			c.offsets[i] = int32(i * len(s))
		}
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.offsets))), 4*(n+1))
	return array.NewData(arrow.BinaryTypes.String, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(raw), memory.NewBufferBytes(c.data[:n*len(s)])}, nil, 0, 0)
}

func (c *StringCol) recycle() {
	if c.n == 0 && c.b != nil && c.b.arena != nil {
		// The arena lends the buffers to whichever builder grows next.
		c.b.arena.putBytes(c.spareData)
		c.b.arena.putBytes(asBytes(c.spareOffsets))
		c.spareOffsets, c.spareData = nil, nil
		return
	}
	if c.n == 0 && c.spareOffsets != nil {
		c.offsets, c.data = append(c.spareOffsets[:0], 0), c.spareData[:0]
		c.spareOffsets, c.spareData = nil, nil
	}
}

func appendValidUTF8(dst, v []byte) []byte {
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, v[:size]...)
		}
		v = v[size:]
	}
	return dst
}

// fixed is the storage of fixed-width columns.
type fixed[T int16 | int32 | int64 | float64] struct {
	node *Node
	typ  arrow.DataType
	b    *Builder // lends buffers from its arena; receives event times (TimeCol)
	vals []T
	validity
	spareVals []T
}

// Node implements Column.
func (c *fixed[T]) Node() *Node { return c.node }

// Len implements Column.
func (c *fixed[T]) Len() int { return len(c.vals) }

// AppendNull implements Column.
func (c *fixed[T]) AppendNull() {
	c.push(0)
	c.set(false)
}

func (c *fixed[T]) append(v T) {
	c.push(v)
	c.set(true)
}

func (c *fixed[T]) push(v T) {
	if len(c.vals) == cap(c.vals) && c.b != nil && c.b.arena != nil {
		c.vals = grow(c.b, c.vals, 1)
	}
	c.vals = append(c.vals, v)
}

func (c *fixed[T]) Truncate(n int) {
	c.vals = c.vals[:n]
	c.validity.shrink(n)
}

func (c *fixed[T]) size() int { return int(unsafe.Sizeof(*new(T))+1) * len(c.vals) }

func (c *fixed[T]) build() arrow.ArrayData {
	n := len(c.vals)
	bits, nulls := c.bitmap()
	var raw []byte
	if n > 0 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.vals))), n*int(unsafe.Sizeof(c.vals[0])))
	}
	d := array.NewData(c.typ, n, []*memory.Buffer{bits, memory.NewBufferBytes(raw)}, nil, nulls, 0)
	c.spareVals, c.vals = c.vals, nil
	return d
}

func (c *fixed[T]) recycle() {
	if len(c.vals) == 0 && c.b != nil && c.b.arena != nil {
		c.b.arena.putBytes(asBytes(c.spareVals))
		c.spareVals = nil
		return
	}
	if len(c.vals) == 0 && c.spareVals != nil {
		c.vals, c.spareVals = c.spareVals[:0], nil
	}
}

// IntCol holds int, smallint and bigint values.
type IntCol struct{ fixed[int64] }

// Append adds a value; the caller has checked that it fits the column's type.
func (c *IntCol) Append(v int64) { c.append(v) }

// Bits returns the width of the column's integers.
func (c *IntCol) Bits() int {
	switch c.node.Type {
	case logschema.TypeSmallInt:
		return 16
	case logschema.TypeInt:
		return 32
	}
	return 64
}

func (c *IntCol) build() arrow.ArrayData {
	switch c.Bits() {
	case 16:
		return narrowBuild[int16](&c.fixed, arrow.PrimitiveTypes.Int16)
	case 32:
		return narrowBuild[int32](&c.fixed, arrow.PrimitiveTypes.Int32)
	}
	return c.fixed.build()
}

func narrowBuild[T int16 | int32](c *fixed[int64], typ arrow.DataType) arrow.ArrayData {
	out := fixed[T]{node: c.node, typ: typ, vals: make([]T, len(c.vals)), validity: c.validity}
	for i, v := range c.vals {
		out.vals[i] = T(v)
	}
	c.vals = c.vals[:0]
	c.validity = validity{}
	return out.build()
}

// FloatCol holds float values.
type FloatCol struct{ fixed[float64] }

// Append adds a value.
func (c *FloatCol) Append(v float64) { c.append(v) }

// TimeCol holds timestamps as microseconds since the epoch, UTC.
type TimeCol struct{ fixed[int64] }

// Append adds a value and, for an event-time field, offers it as the row's event time.
func (c *TimeCol) Append(t time.Time) {
	us := t.UnixMicro()
	c.append(us)
	if c.node != nil && c.node.EventTime > 0 && c.b != nil {
		c.b.offerEventTime(c.node.EventTime, us)
	}
}

// BoolCol holds booleans.
type BoolCol struct {
	node *Node
	vals []byte
	validity
	spareVals []byte
}

// Node implements Column.
func (c *BoolCol) Node() *Node { return c.node }

// Len implements Column.
func (c *BoolCol) Len() int { return len(c.vals) }

// Append adds a value.
func (c *BoolCol) Append(v bool) {
	if v {
		c.vals = append(c.vals, 1)
	} else {
		c.vals = append(c.vals, 0)
	}
	c.set(true)
}

// AppendNull implements Column.
func (c *BoolCol) AppendNull() {
	c.vals = append(c.vals, 0)
	c.set(false)
}

func (c *BoolCol) Truncate(n int) {
	c.vals = c.vals[:n]
	c.validity.shrink(n)
}

func (c *BoolCol) size() int { return 2 * len(c.vals) }

func (c *BoolCol) build() arrow.ArrayData {
	n := len(c.vals)
	bits, nulls := c.bitmap()
	vals := make([]byte, bitutil.CeilByte(n)/8)
	for i, b := range c.vals {
		if b != 0 {
			vals[i>>3] |= 1 << (i & 7)
		}
	}
	c.spareVals, c.vals = c.vals, nil
	return array.NewData(arrow.FixedWidthTypes.Boolean, n, []*memory.Buffer{bits, memory.NewBufferBytes(vals)}, nil, nulls, 0)
}

func (c *BoolCol) recycle() {
	if len(c.vals) == 0 && c.spareVals != nil {
		c.vals, c.spareVals = c.spareVals[:0], nil
	}
}

// StructCol holds objects: a validity and one column per field.
type StructCol struct {
	node   *Node
	Fields []Column
	validity
}

// Node implements Column.
func (c *StructCol) Node() *Node { return c.node }

// Len implements Column.
func (c *StructCol) Len() int { return c.n }

// Append marks a present object; the caller appends exactly one value (or null) to every field.
func (c *StructCol) Append() { c.set(true) }

// AppendNull implements Column.
func (c *StructCol) AppendNull() {
	c.set(false)
	for _, f := range c.Fields {
		f.AppendNull()
	}
}

func (c *StructCol) Truncate(n int) {
	c.validity.shrink(n)
	for _, f := range c.Fields {
		f.Truncate(n)
	}
}

func (c *StructCol) size() int {
	s := c.n
	for _, f := range c.Fields {
		s += f.size()
	}
	return s
}

func (c *StructCol) build() arrow.ArrayData {
	n := c.n
	bits, nulls := c.bitmap()
	children := make([]arrow.ArrayData, len(c.Fields))
	for i, f := range c.Fields {
		children[i] = f.build()
	}
	return array.NewData(c.node.Arrow, n, []*memory.Buffer{bits}, children, nulls, 0)
}

func (c *StructCol) recycle() {
	for _, f := range c.Fields {
		f.recycle()
	}
}

// ListCol holds arrays: offsets into its element column.
type ListCol struct {
	node    *Node
	typ     arrow.DataType
	b       *Builder // lends buffers from its arena
	Elem    Column
	offsets []int32
	validity
	spareOffsets []int32
}

// Node implements Column.
func (c *ListCol) Node() *Node { return c.node }

// Len implements Column.
func (c *ListCol) Len() int { return c.n }

// Close ends an array whose elements were appended to Elem since the previous array.
func (c *ListCol) Close() {
	c.pushOffset()
	c.set(true)
}

// AppendNull implements Column.
func (c *ListCol) AppendNull() {
	c.pushOffset()
	c.set(false)
}

func (c *ListCol) pushOffset() {
	if len(c.offsets) == cap(c.offsets) && c.b != nil && c.b.arena != nil {
		c.offsets = grow(c.b, c.offsets, 1)
	}
	c.offsets = append(c.offsets, int32(c.Elem.Len()))
}

func (c *ListCol) Truncate(n int) {
	c.offsets = c.offsets[:n+1]
	c.Elem.Truncate(int(c.offsets[n]))
	c.validity.shrink(n)
}

func (c *ListCol) size() int { return 4*c.n + c.Elem.size() }

func (c *ListCol) build() arrow.ArrayData {
	n := c.n
	bits, nulls := c.bitmap()
	offsets := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.offsets))), 4*len(c.offsets))
	child := c.Elem.build()
	d := array.NewData(c.typ, n, []*memory.Buffer{bits, memory.NewBufferBytes(offsets)}, []arrow.ArrayData{child}, nulls, 0)
	c.spareOffsets, c.offsets = c.offsets, []int32{0}
	return d
}

func (c *ListCol) recycle() {
	if c.n == 0 && c.b != nil && c.b.arena != nil {
		c.b.arena.putBytes(asBytes(c.spareOffsets))
		c.spareOffsets = nil
	} else if c.n == 0 && c.spareOffsets != nil {
		c.offsets, c.spareOffsets = append(c.spareOffsets[:0], 0), nil
	}
	c.Elem.recycle()
}

// newColumn creates the column of a node; b receives indicators and event times.
func newColumn(n *Node, b *Builder) Column {
	switch n.Type {
	case logschema.TypeString, logschema.TypeJSON:
		return newStringCol(n, b)
	case logschema.TypeInt, logschema.TypeSmallInt, logschema.TypeBigInt:
		return &IntCol{fixed: fixed[int64]{node: n, typ: arrow.PrimitiveTypes.Int64, b: b}}
	case logschema.TypeFloat:
		return &FloatCol{fixed[float64]{node: n, typ: arrow.PrimitiveTypes.Float64, b: b}}
	case logschema.TypeBoolean:
		return &BoolCol{node: n}
	case logschema.TypeTimestamp:
		return &TimeCol{fixed: fixed[int64]{node: n, typ: TimestampType, b: b}}
	case logschema.TypeObject:
		c := &StructCol{node: n, Fields: make([]Column, len(n.Fields))}
		for i, f := range n.Fields {
			c.Fields[i] = newColumn(f, b)
		}
		return c
	case logschema.TypeArray:
		return &ListCol{node: n, typ: n.Arrow, b: b, Elem: newColumn(n.Elem, b), offsets: []int32{0}}
	}
	panic("BUG: column of unknown type " + string(n.Type))
}
