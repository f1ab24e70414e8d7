package batch

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/ingest/parse/indicator"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Source identifies where rows come from: p_source_id and p_source_label.
type Source struct {
	ID    string
	Label string
}

// SourceFile is the S3 object rows were read from: p_source_file. The zero value is none.
type SourceFile struct {
	Bucket string
	Key    string
}

// fileRun says that rows from row on (until the next run) were read from file.
type fileRun struct {
	row  int
	file SourceFile
}

// Builder accumulates rows of one table. It is not safe for concurrent use: give each
// goroutine its own.
type Builder struct {
	schema *Schema
	Root   *StructCol // the log's fields; Root.Fields[i] is the column of schema.Fields[i]

	rowID                *StringCol
	eventTime, parseTime *TimeCol
	any                  []*ListCol // parallel to schema.Kinds

	ind indicator.Set
	// valid holds the row's values given to Indicate that were not valid UTF-8, with the
	// invalid bytes replaced, as string columns store them: the indicator set refers to them
	// until the row ends.
	valid     []byte
	rank      int   // event-time rank of the row's event time so far; 0 when none
	event     int64 // the row's event time so far, microseconds
	rows      int
	inRow     bool
	parseUS   int64
	source    Source
	ids       *RowIDs
	idBlock   [2]uint64 // next id and end of the reserved block
	hexbuf    [32]byte
	minEvent  int64
	maxEvent  int64
	haveEvent bool

	arena   *Arena
	retired [][]byte // buffers replaced during the current row, given to the arena when it ends

	file      SourceFile // p_source_file of the rows that follow
	files     []fileRun  // p_source_file by runs of rows: a file changes once per object, not per row
	nullFiles nullFiles  // without an arena

	logTypeBytes, sourceIDBytes, sourceLabelBytes []byte      // valid UTF-8 copies of the names
	consts                                        [3]constant // their columns: p_log_type, p_source_id, p_source_label
}

// SetArena makes the builder take and give back large buffers through an arena shared with the
// other builders of its goroutine.
func (b *Builder) SetArena(a *Arena) { b.arena = a }

// retire hands a buffer replaced by a larger one to the arena once the row is over: values of
// the row (indicators) may still point into it.
func (b *Builder) retire(buf []byte) {
	if b.inRow {
		b.retired = append(b.retired, buf)
	} else if b.arena != nil {
		b.arena.putBytes(buf)
	}
}

func (b *Builder) releaseRetired() {
	for i, buf := range b.retired {
		b.arena.putBytes(buf)
		b.retired[i] = nil
	}
	b.retired = b.retired[:0]
}

// NewBuilder returns a builder of the schema's rows. ids makes p_row_id; share one RowIDs
// between the builders of a process.
func NewBuilder(s *Schema, ids *RowIDs) *Builder {
	b := &Builder{schema: s, ids: ids}
	b.Root = newColumn(s.Root, b).(*StructCol)
	str := func(name string) *StringCol {
		return newStringCol(&Node{Name: name, Type: logschema.TypeString, Arrow: arrow.BinaryTypes.String}, b)
	}
	b.rowID = str(FieldRowID)
	ts := func(name string) *TimeCol {
		return &TimeCol{fixed: fixed[int64]{node: &Node{Name: name, Type: logschema.TypeTimestamp, Arrow: TimestampType}, typ: TimestampType, b: b}}
	}
	b.eventTime, b.parseTime = ts(FieldEventTime), ts(FieldParseTime)
	for _, k := range s.Kinds {
		elem := &Node{Name: "element", Type: logschema.TypeString, Arrow: arrow.BinaryTypes.String}
		n := &Node{Name: k.Column(), Type: logschema.TypeArray, Elem: elem, Arrow: stringList}
		b.any = append(b.any, newColumn(n, b).(*ListCol))
	}
	b.parseUS = time.Now().UnixMicro()
	b.logTypeBytes = []byte(strings.ToValidUTF8(s.LogType, "\uFFFD"))
	b.SetSource(Source{})
	return b
}

// Schema returns the builder's table schema.
func (b *Builder) Schema() *Schema { return b.schema }

// SetSource sets p_source_id and p_source_label. They are the same for every row of a batch: set
// them before the first row.
func (b *Builder) SetSource(s Source) {
	b.source = s
	b.sourceIDBytes = []byte(strings.ToValidUTF8(s.ID, "\uFFFD"))
	b.sourceLabelBytes = []byte(strings.ToValidUTF8(s.Label, "\uFFFD"))
}

// nullFiles is an all-null p_source_file column, sliced to the length of each batch that has no
// source file (the batches of every source but S3): it is made once, not for every batch.
type nullFiles struct{ data arrow.ArrayData }

func (c *nullFiles) array(n int) arrow.ArrayData {
	if c.data == nil || c.data.Len() < n {
		if c.data != nil {
			c.data.Release()
		}
		size := max(n, 8192)
		offs := memory.NewBufferBytes(make([]byte, 4*(size+1)))
		child := array.NewData(arrow.BinaryTypes.String, size, []*memory.Buffer{nil, offs, memory.NewBufferBytes(nil)}, nil, 0, 0)
		c.data = array.NewData(SourceFileType, size, []*memory.Buffer{memory.NewBufferBytes(make([]byte, bitutil.CeilByte(size)/8))},
			[]arrow.ArrayData{child, child}, size, 0)
		child.Release()
	}
	return array.NewSliceData(c.data, 0, int64(n))
}

// SetSourceFile sets p_source_file of the rows that follow (the zero SourceFile: none). It costs
// nothing per row: the builder keeps runs of rows, and Build writes the column.
func (b *Builder) SetSourceFile(f SourceFile) {
	if f == b.file {
		return
	}
	b.file = f
	if n := len(b.files); n > 0 && b.files[n-1].row == b.rows {
		b.files = b.files[:n-1] // no row was read from the previous file
	}
	b.files = append(b.files, fileRun{row: b.rows, file: f})
}

// SetParseTime sets p_parse_time of the rows that follow (and p_event_time of rows without an
// event time).
func (b *Builder) SetParseTime(t time.Time) { b.parseUS = t.UnixMicro() }

// ParseTime returns p_parse_time of the rows that follow. Parsers of formats that leave out
// the year (syslog RFC 3164) read it to complete their timestamps.
func (b *Builder) ParseTime() time.Time { return time.UnixMicro(b.parseUS).UTC() }

// Rows returns the number of ended rows.
func (b *Builder) Rows() int { return b.rows }

// Size returns an estimate of the bytes held.
func (b *Builder) Size() int {
	return b.Root.size() + b.rowID.size() + (len(b.logTypeBytes)+len(b.sourceIDBytes)+len(b.sourceLabelBytes)+16)*b.rows
}

// Begin starts a row. Every column of Root.Fields then receives exactly one value or null.
func (b *Builder) Begin() {
	if b.inRow {
		panic("BUG: Begin inside a row")
	}
	b.inRow = true
	b.rank = 0
	b.ind.Reset()
	b.valid = b.valid[:0]
}

// Indicate scans a value for the indicators of a node that has no column of its own (a key
// inside a json field).
func (b *Builder) Indicate(n *Node, v []byte) {
	if !utf8.Valid(v) {
		// A grown b.valid leaves the values already taken in the array they point into.
		start := len(b.valid)
		b.valid = appendValidUTF8(b.valid, v)
		v = b.valid[start:len(b.valid):len(b.valid)]
	}
	for _, sc := range n.Scanners {
		b.ind.Scan(sc, v)
	}
}

// IndicatorMark returns where the current row's indicators stand, for DropIndicators.
func (b *Builder) IndicatorMark() indicator.Mark { return b.ind.Mark() }

// DropIndicators drops the current row's indicators found between two marks: those of a value
// the row no longer holds. A parser that truncates a column within a row (a JSON key given
// twice) must drop them before, since they may point into the truncated bytes.
func (b *Builder) DropIndicators(from, to indicator.Mark) { b.ind.Drop(from, to) }

// ForgetEventTime forgets the event time a field of the given rank (Node.EventTime) offered
// for the current row, when it was the one kept: the row no longer holds its value. Offers of
// fields later in schema order, which it outranked, were not kept: the row's event time is
// then the parse time unless a field offers one again.
func (b *Builder) ForgetEventTime(rank int) {
	if rank > 0 && b.rank == rank {
		b.rank = 0
	}
}

// offerEventTime records an event-time field's value; the field first in schema order wins.
func (b *Builder) offerEventTime(rank int, us int64) {
	if b.rank == 0 || rank < b.rank {
		b.rank, b.event = rank, us
	}
}

// EventTime returns the current row's event time so far: the first isEventTime field with a
// value, else the parse time.
// EventMicros returns the current row's event time so far, in microseconds since the epoch.
func (b *Builder) EventMicros() int64 {
	if b.rank > 0 {
		return b.event
	}
	return b.parseUS
}

func (b *Builder) EventTime() time.Time {
	if b.rank > 0 {
		return time.UnixMicro(b.event).UTC()
	}
	return time.UnixMicro(b.parseUS).UTC()
}

// Rollback discards the current row.
func (b *Builder) Rollback() {
	b.Root.Truncate(b.rows)
	b.inRow = false
	b.releaseRetired()
}

// End completes the current row: it checks that every field got a value and appends the
// standard fields.
func (b *Builder) End() {
	b.Root.Append()
	event := b.parseUS
	if b.rank > 0 {
		event = b.event
	}
	if !b.haveEvent || event < b.minEvent {
		b.minEvent = event
	}
	if !b.haveEvent || event > b.maxEvent {
		b.maxEvent = event
	}
	b.haveEvent = true
	// These strings are valid UTF-8: the schema's and source's names were checked when set, and
	// indicator values are parts of values already stored.
	// p_log_type, p_source_id and p_source_label are the same for every row of a batch (see
	// SetSource): Build writes them.
	b.appendRowID()
	b.eventTime.append(event)
	b.parseTime.append(b.parseUS)
	for i, k := range b.schema.Kinds {
		l := b.any[i]
		vals := b.ind.Sorted(k)
		elem := l.Elem.(*StringCol)
		for _, v := range vals {
			elem.AppendUTF8(v)
		}
		if len(vals) == 0 {
			l.AppendNull()
		} else {
			l.Close()
		}
	}
	b.rows++
	b.inRow = false
	b.releaseRetired()
}

// constant returns the column of n copies of s, from the arena's shared columns when the
// builder has one (builders come and go with the hours they hold), else its own (column i).
func (b *Builder) constant(i int, s []byte, n int) arrow.ArrayData {
	if b.arena != nil {
		return b.arena.constant(s).array(s, n)
	}
	return b.consts[i].array(s, n)
}

// appendRowID appends the next id of the builder's block. hexbuf holds it in hex: within a
// block ids follow each other, so after the first only its last digits change.
func (b *Builder) appendRowID() {
	if b.idBlock[0] == b.idBlock[1] {
		b.idBlock[0] = b.ids.reserve(idBlockSize)
		b.idBlock[1] = b.idBlock[0] + idBlockSize
		var raw [16]byte
		copy(raw[:8], b.ids.prefix[:])
		binary.BigEndian.PutUint64(raw[8:], b.idBlock[0])
		hex.Encode(b.hexbuf[:], raw[:])
	}
	b.rowID.AppendUTF8(b.hexbuf[:])
	b.idBlock[0]++
	incHex(b.hexbuf[16:])
}

// incHex adds one to a lowercase hex number in place (wrapping around at the top).
func incHex(h []byte) {
	for i := len(h) - 1; i >= 0; i-- {
		switch c := h[i]; c {
		case '9':
			h[i] = 'a'
			return
		case 'f':
			h[i] = '0' // and carry
		default:
			h[i] = c + 1
			return
		}
	}
}

// EventRange returns the smallest and largest p_event_time of the rows built so far.
func (b *Builder) EventRange() (lo, hi time.Time, ok bool) {
	return time.UnixMicro(b.minEvent).UTC(), time.UnixMicro(b.maxEvent).UTC(), b.haveEvent
}

// Build returns the rows as an Arrow record batch and empties the builder. The record owns
// the memory; release it when done.
func (b *Builder) Build() arrow.RecordBatch {
	if b.inRow {
		panic("BUG: Build inside a row")
	}
	n := b.rows
	// A parser that gave a column no value for a row would shift every later row of it.
	for _, c := range b.Root.Fields {
		if c.Len() != n {
			panic(fmt.Sprintf("BUG: column %s has %d values for %d rows", c.Node().Path, c.Len(), n))
		}
	}
	root := b.Root.build()
	cols := make([]arrow.Array, 0, len(b.schema.Arrow.Fields()))
	for _, child := range root.Children() {
		cols = append(cols, array.MakeFromData(child))
	}
	for _, d := range []arrow.ArrayData{
		b.constant(0, b.logTypeBytes, n), b.rowID.build(), b.eventTime.build(), b.parseTime.build(),
		b.constant(1, b.sourceIDBytes, n), b.constant(2, b.sourceLabelBytes, n), b.sourceFiles(n),
	} {
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}
	for _, l := range b.any {
		cols = append(cols, array.MakeFromData(l.build()))
	}
	rec := array.NewRecordBatch(b.schema.Arrow, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	root.Release()
	b.rows = 0
	b.haveEvent = false
	b.files = b.files[:0]
	if b.file != (SourceFile{}) {
		b.files = append(b.files, fileRun{row: 0, file: b.file})
	}
	return rec
}

// sourceFiles builds p_source_file of n rows from the runs of files. Rows before the first run
// have none.
func (b *Builder) sourceFiles(n int) arrow.ArrayData {
	if len(b.files) == 0 || len(b.files) == 1 && b.files[0].file == (SourceFile{}) {
		nf := &b.nullFiles
		if b.arena != nil {
			nf = &b.arena.nullFiles
		}
		return nf.array(n)
	}
	valid := make([]byte, bitutil.CeilByte(n)/8)
	bucketOffs := make([]int32, n+1)
	keyOffs := make([]int32, n+1)
	var buckets, keys []byte
	nulls := n
	for i, r := range b.files {
		end := n
		if i+1 < len(b.files) {
			end = b.files[i+1].row
		}
		if r.file == (SourceFile{}) {
			for row := r.row; row < end; row++ {
				bucketOffs[row+1], keyOffs[row+1] = int32(len(buckets)), int32(len(keys))
			}
			continue
		}
		bucket := strings.ToValidUTF8(r.file.Bucket, "\uFFFD")
		key := strings.ToValidUTF8(r.file.Key, "\uFFFD")
		for row := r.row; row < end; row++ {
			bitutil.SetBit(valid, row)
			buckets = append(buckets, bucket...)
			keys = append(keys, key...)
			bucketOffs[row+1], keyOffs[row+1] = int32(len(buckets)), int32(len(keys))
		}
		nulls -= end - r.row
	}
	child := func(offs []int32, data []byte) arrow.ArrayData {
		return array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{nil,
			memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)), memory.NewBufferBytes(data)}, nil, 0, 0)
	}
	bc, kc := child(bucketOffs, buckets), child(keyOffs, keys)
	defer bc.Release()
	defer kc.Release()
	var bitmap *memory.Buffer
	if nulls > 0 {
		bitmap = memory.NewBufferBytes(valid)
	}
	return array.NewData(SourceFileType, n, []*memory.Buffer{bitmap}, []arrow.ArrayData{bc, kc}, nulls, 0)
}

// Recycle lets the builder reuse the memory of the record batch its last Build returned. Call
// it only when nothing uses that record any more: it was released and no one kept its buffers.
func (b *Builder) Recycle() {
	if b.rows != 0 || b.inRow {
		return
	}
	b.Root.recycle()
	for _, c := range []Column{b.rowID, b.eventTime, b.parseTime} {
		c.recycle()
	}
	for _, l := range b.any {
		l.recycle()
	}
}

const idBlockSize = 4096

// RowIDs makes p_row_id values: 32 hex digits, a random 64-bit prefix chosen when the RowIDs is
// made followed by a 64-bit counter, so ids are unique within a run and, with overwhelming
// probability, across runs.
type RowIDs struct {
	prefix [8]byte
	next   atomic.Uint64
}

// NewRowIDs returns a RowIDs with a fresh random prefix.
func NewRowIDs() *RowIDs {
	r := &RowIDs{}
	if _, err := rand.Read(r.prefix[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return r
}

func (r *RowIDs) reserve(n uint64) uint64 { return r.next.Add(n) - n }
