package lake

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Column chunks are encoded here from shredded Arrow arrays with parquet-go's page encodings
// (RLE levels and dictionary indexes), its zstd codec and its Thrift metadata types. parquet-go's
// row writer takes one parquet.Value per value and keeps its own copy of every column until a
// row group is committed; encoding straight from the Arrow buffers costs about a third of that
// and holds only the compressed pages. Pages are version 1 data pages with PLAIN or
// RLE_DICTIONARY values, the encodings every Parquet reader supports.

// column is a leaf column of a table and how its chunks are encoded.
type column struct {
	path   []string
	kind   parquet.Kind
	maxDef int
	maxRep int
	dict   bool // try a dictionary (string columns whose values repeat)
}

// tableColumns returns the leaf columns of a Parquet schema, in order. String columns the schema
// gives a dictionary encoding are dictionary-encoded.
func tableColumns(ps *parquet.Schema) []column {
	var cols []column
	for _, path := range ps.Columns() {
		leaf, ok := ps.Lookup(path...)
		if !ok {
			panic(fmt.Sprintf("BUG: column %v of a schema not found in it", path))
		}
		kind := leaf.Node.Type().Kind()
		enc := leaf.Node.Encoding()
		cols = append(cols, column{
			path:   path,
			kind:   kind,
			maxDef: leaf.MaxDefinitionLevel,
			maxRep: leaf.MaxRepetitionLevel,
			dict:   kind == parquet.ByteArray && enc != nil && enc.Encoding() == format.RLEDictionary,
		})
	}
	return cols
}

// Page and dictionary limits.
const (
	pageBytes      = 1 << 20 // a data page is cut at a row boundary once its values reach this
	maxPageEntries = 1 << 16 // or once it holds this many entries
	maxDictBytes   = 4 << 20 // a dictionary larger than this is dropped for plain values
	maxStatBytes   = 64      // longer strings are left out of min/max statistics
)

// chunkWriter encodes column chunks into a row group's bytes. It is not safe for concurrent use.
type chunkWriter struct {
	out  []byte // the row group: pages of every column chunk, back to back
	dict dictTable
	keys []int32 // dictionary index of each value of the chunk

	body   []byte // the page being built, uncompressed
	comp   []byte // the page compressed
	levels []byte // levels of the page, RLE-encoded
	spans  []pageSpan
	header bytes.Buffer
	enc    *thrift.Encoder
	raw    bool // pages are not compressed (files read once, at once)
}

func newChunkWriter() *chunkWriter {
	cw := &chunkWriter{}
	cw.enc = thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&cw.header))
	cw.dict.seed = maphash.MakeSeed()
	return cw
}

// pageSpan is the entries [e0, e1) of a page, holding values [v0, v1) of the chunk.
type pageSpan struct{ e0, e1, v0, v1 int }

// values reads the values of a leaf's Arrow array.
type values struct {
	str   *array.String
	i64   []int64
	i32   *array.Int32
	i16   *array.Int16
	f64   []float64
	bools *array.Boolean
}

func leafValues(b *leafBuf) (v values) {
	switch a := b.arr.(type) {
	case *array.String:
		v.str = a
	case *array.Int64:
		v.i64 = a.Int64Values()
	case *array.Timestamp:
		ts := a.TimestampValues()
		v.i64 = unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(ts))), len(ts))
	case *array.Int32:
		v.i32 = a
	case *array.Int16:
		v.i16 = a
	case *array.Float64:
		v.f64 = a.Float64Values()
	case *array.Boolean:
		v.bools = a
	case nil:
	default:
		panic(fmt.Sprintf("BUG: leaf array %T", b.arr))
	}
	return v
}

// strBuffers returns a string array's offsets (indexed like the array: one per value and one
// more) and its whole data buffer, which they index. (ValueBytes starts at the first value of
// a sliced array, while its offsets do not start at 0.)
func strBuffers(a *array.String) ([]int32, []byte) {
	var data []byte
	if buf := a.Data().Buffers()[2]; buf != nil {
		data = buf.Bytes()
	}
	return a.ValueOffsets(), data
}

// encodeChunk appends the pages of a column chunk to cw.out and returns its metadata, with
// offsets relative to the start of cw.out, and whether it starts with a dictionary page.
func (cw *chunkWriter) encodeChunk(col *column, b *leafBuf) (format.ColumnChunk, bool, error) {
	hasDef, hasRep := col.maxDef > 0, col.maxRep > 0
	n := b.entries(hasDef)
	vals := leafValues(b)
	md := format.ColumnMetaData{
		Type:         format.Type(col.kind),
		PathInSchema: col.path,
		Codec:        format.Zstd,
		NumValues:    int64(n),
	}
	if cw.raw {
		md.Codec = format.Uncompressed
	}
	md.Statistics.NullCount = int64(n - len(b.idx))

	useDict := col.dict && len(b.idx) > 0 && cw.buildDict(vals.str, b.idx)
	if useDict {
		md.DictionaryPageOffset = int64(len(cw.out))
		cw.body = append(cw.body[:0], cw.dict.plain...)
		h := format.PageHeader{Type: format.DictionaryPage}
		h.DictionaryPageHeader.Set(format.DictionaryPageHeader{
			NumValues: int32(len(cw.dict.offs)),
			Encoding:  format.Plain,
		})
		if err := cw.writePage(&h, &md); err != nil {
			return format.ColumnChunk{}, false, err
		}
		cw.dictStats(&md.Statistics)
	} else if !cw.raw {
		valueStats(col.kind, vals, b.idx, &md.Statistics)
	}

	md.DataPageOffset = int64(len(cw.out))
	cw.spans = pageSpans(cw.spans[:0], col, b, vals, useDict)
	for _, sp := range cw.spans {
		cw.body = cw.body[:0]
		if hasRep {
			cw.body = cw.appendLevels(cw.body, b.reps[sp.e0:sp.e1], col.maxRep)
		}
		if hasDef {
			cw.body = cw.appendLevels(cw.body, b.defs[sp.e0:sp.e1], col.maxDef)
		}
		encoding := format.Plain
		if useDict {
			encoding = format.RLEDictionary
			var err error
			if cw.levels, err = (&rle.DictionaryEncoding{}).EncodeInt32(cw.levels, cw.keys[sp.v0:sp.v1]); err != nil {
				return format.ColumnChunk{}, false, err
			}
			cw.body = append(cw.body, cw.levels...)
		} else {
			cw.body = appendPlain(cw.body, col.kind, vals, b.idx[sp.v0:sp.v1])
		}
		h := format.PageHeader{Type: format.DataPage}
		h.DataPageHeader.Set(format.DataPageHeader{
			NumValues:               int32(sp.e1 - sp.e0),
			Encoding:                encoding,
			DefinitionLevelEncoding: format.RLE,
			RepetitionLevelEncoding: format.RLE,
			Statistics:              format.Statistics{NullCount: int64((sp.e1 - sp.e0) - (sp.v1 - sp.v0))},
		})
		if err := cw.writePage(&h, &md); err != nil {
			return format.ColumnChunk{}, false, err
		}
	}
	pages := int32(len(cw.spans))
	switch {
	case useDict && (hasDef || hasRep):
		md.Encoding = encodingsDictLevels
	case useDict:
		md.Encoding = encodingsDict
	case hasDef || hasRep:
		md.Encoding = encodingsPlainLevels
	default:
		md.Encoding = encodingsPlain
	}
	if useDict {
		md.EncodingStats = []format.PageEncodingStats{
			{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
			{PageType: format.DataPage, Encoding: format.RLEDictionary, Count: pages},
		}
	} else {
		md.EncodingStats = []format.PageEncodingStats{{PageType: format.DataPage, Encoding: format.Plain, Count: pages}}
	}
	return format.ColumnChunk{MetaData: md}, useDict, nil
}

// The encodings a chunk's pages use (shared, never modified).
var (
	encodingsPlain       = []format.Encoding{format.Plain}
	encodingsPlainLevels = []format.Encoding{format.Plain, format.RLE}
	encodingsDict        = []format.Encoding{format.Plain, format.RLEDictionary}
	encodingsDictLevels  = []format.Encoding{format.Plain, format.RLE, format.RLEDictionary}
)

// writePage compresses cw.body and appends it with its header to cw.out.
func (cw *chunkWriter) writePage(h *format.PageHeader, md *format.ColumnMetaData) error {
	payload := cw.body
	if !cw.raw {
		var err error
		if cw.comp, err = codec.Encode(cw.comp[:0], cw.body); err != nil {
			return fmt.Errorf("compress page: %w", err)
		}
		payload = cw.comp
	}
	h.UncompressedPageSize = int32(len(cw.body))
	h.CompressedPageSize = int32(len(payload))
	cw.header.Reset()
	if err := cw.enc.Encode(h); err != nil {
		return fmt.Errorf("encode page header: %w", err)
	}
	cw.out = append(cw.out, cw.header.Bytes()...)
	cw.out = append(cw.out, payload...)
	md.TotalUncompressedSize += int64(cw.header.Len() + len(cw.body))
	md.TotalCompressedSize += int64(cw.header.Len() + len(payload))
	return nil
}

// appendLevels appends levels RLE-encoded, with the 4-byte length prefix of version 1 pages.
func (cw *chunkWriter) appendLevels(dst []byte, levels []uint8, max int) []byte {
	var err error
	cw.levels, err = (&rle.Encoding{BitWidth: bits.Len(uint(max))}).EncodeLevels(cw.levels, levels)
	if err != nil {
		panic(fmt.Sprintf("BUG: levels above their maximum %d: %v", max, err))
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(cw.levels)))
	return append(dst, cw.levels...)
}

// pageSpans cuts a chunk's entries into pages at row boundaries.
func pageSpans(spans []pageSpan, col *column, b *leafBuf, vals values, dict bool) []pageSpan {
	hasDef, hasRep := col.maxDef > 0, col.maxRep > 0
	n := b.entries(hasDef)
	fixed := 0 // bytes per value, or 0 for strings
	switch {
	case dict:
		fixed = 2 // an estimate: dictionary indexes bit-pack well
	case col.kind == parquet.Int64 || col.kind == parquet.Double:
		fixed = 8
	case col.kind == parquet.Int32:
		fixed = 4
	case col.kind == parquet.Boolean:
		fixed = 1
	}
	if !hasDef && !hasRep && fixed > 0 {
		// One entry per value, one value per row: cut by count.
		per := min(maxPageEntries, pageBytes/fixed)
		for e := 0; e < n; e += per {
			end := min(e+per, n)
			spans = append(spans, pageSpan{e, end, e, end})
		}
		if n == 0 {
			spans = append(spans, pageSpan{})
		}
		return spans
	}
	offs := []int32(nil)
	if vals.str != nil {
		offs = vals.str.ValueOffsets()
	}
	// Most chunks make one page: bound their size without a walk. The values at idx lie in
	// offs[idx[0]] .. offs[last+1], which bounds their bytes from above.
	if n <= maxPageEntries {
		size := fixed * len(b.idx)
		if fixed == 0 && len(b.idx) > 0 {
			size = 4*len(b.idx) + int(offs[b.idx[len(b.idx)-1]+1]-offs[b.idx[0]])
		}
		if size < pageBytes {
			return append(spans, pageSpan{0, n, 0, len(b.idx)})
		}
	}
	sp := pageSpan{}
	size := 0
	v := 0
	for e := 0; e < n; e++ {
		if e > sp.e0 && (size >= pageBytes || e-sp.e0 >= maxPageEntries) && (!hasRep || b.reps[e] == 0) {
			sp.e1, sp.v1 = e, v
			spans = append(spans, sp)
			sp = pageSpan{e0: e, v0: v}
			size = 0
		}
		if !hasDef || b.defs[e] == uint8(col.maxDef) {
			if fixed > 0 {
				size += fixed
			} else {
				i := b.idx[v]
				size += 4 + int(offs[i+1]-offs[i])
			}
			v++
		}
	}
	sp.e1, sp.v1 = n, v
	return append(spans, sp)
}

// appendPlain appends the values at idx PLAIN-encoded.
func appendPlain(dst []byte, kind parquet.Kind, v values, idx []int32) []byte {
	switch kind {
	case parquet.ByteArray:
		offs, data := strBuffers(v.str)
		for _, i := range idx {
			s := data[offs[i]:offs[i+1]]
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
			dst = append(dst, s...)
		}
	case parquet.Int64:
		if contiguous(idx) {
			vals := v.i64[idx[0] : int(idx[0])+len(idx)]
			return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), 8*len(vals))...)
		}
		for _, i := range idx {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v.i64[i]))
		}
	case parquet.Int32:
		for _, i := range idx {
			var x int32
			if v.i32 != nil {
				x = v.i32.Value(int(i))
			} else {
				x = int32(v.i16.Value(int(i)))
			}
			dst = binary.LittleEndian.AppendUint32(dst, uint32(x))
		}
	case parquet.Double:
		for _, i := range idx {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.f64[i]))
		}
	case parquet.Boolean:
		// Bit-packed, least significant bit first.
		var cur byte
		for k, i := range idx {
			if v.bools.Value(int(i)) {
				cur |= 1 << (k & 7)
			}
			if k&7 == 7 {
				dst = append(dst, cur)
				cur = 0
			}
		}
		if len(idx)&7 != 0 {
			dst = append(dst, cur)
		}
	default:
		panic(fmt.Sprintf("BUG: plain encoding of %v", kind))
	}
	return dst
}

// contiguous reports whether idx is a non-empty run of consecutive indexes (it is increasing).
func contiguous(idx []int32) bool {
	return len(idx) > 0 && int(idx[len(idx)-1]-idx[0]) == len(idx)-1
}

// valueStats sets the min and max statistics of a chunk without a dictionary. Strings get none:
// their bounds prune little and long ones would bloat the footer.
func valueStats(kind parquet.Kind, v values, idx []int32, st *format.Statistics) {
	if len(idx) == 0 {
		return
	}
	switch kind {
	case parquet.Int64:
		lo, hi := v.i64[idx[0]], v.i64[idx[0]]
		if contiguous(idx) {
			for _, x := range v.i64[idx[0] : int(idx[0])+len(idx)] {
				lo, hi = min(lo, x), max(hi, x)
			}
		} else {
			for _, i := range idx {
				x := v.i64[i]
				lo, hi = min(lo, x), max(hi, x)
			}
		}
		st.MinValue = binary.LittleEndian.AppendUint64(nil, uint64(lo))
		st.MaxValue = binary.LittleEndian.AppendUint64(nil, uint64(hi))
	case parquet.Int32:
		lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
		for _, i := range idx {
			var x int32
			if v.i32 != nil {
				x = v.i32.Value(int(i))
			} else {
				x = int32(v.i16.Value(int(i)))
			}
			lo, hi = min(lo, x), max(hi, x)
		}
		st.MinValue = binary.LittleEndian.AppendUint32(nil, uint32(lo))
		st.MaxValue = binary.LittleEndian.AppendUint32(nil, uint32(hi))
	case parquet.Double:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, i := range idx {
			x := v.f64[i]
			if math.IsNaN(x) {
				return // NaN has no place in an order: leave the bounds out
			}
			lo, hi = min(lo, x), max(hi, x)
		}
		st.MinValue = binary.LittleEndian.AppendUint64(nil, math.Float64bits(lo))
		st.MaxValue = binary.LittleEndian.AppendUint64(nil, math.Float64bits(hi))
	case parquet.Boolean:
		seen := [2]bool{}
		for _, i := range idx {
			if v.bools.Value(int(i)) {
				seen[1] = true
			} else {
				seen[0] = true
			}
		}
		lo, hi := byte(1), byte(0)
		if seen[0] {
			lo = 0
		}
		if seen[1] {
			hi = 1
		}
		st.MinValue, st.MaxValue = []byte{lo}, []byte{hi}
	}
	st.Min, st.Max = st.MinValue, st.MaxValue // the deprecated fields, for older readers
}

// buildDict dictionary-encodes the chunk's strings into cw.keys. It reports false when the
// values are mostly distinct or the dictionary grows too large, and the chunk is better plain.
func (cw *chunkWriter) buildDict(a *array.String, idx []int32) bool {
	d := &cw.dict
	d.reset(len(idx))
	keys := cw.keys[:0]
	offs, data := strBuffers(a)
	var last []byte
	lastKey := int32(-1)
	for _, i := range idx {
		s := data[offs[i]:offs[i+1]]
		if lastKey >= 0 && len(s) == len(last) && string(s) == string(last) {
			keys = append(keys, lastKey)
			continue
		}
		k := d.insert(s)
		if len(d.plain) > maxDictBytes {
			cw.keys = keys
			return false
		}
		keys = append(keys, k)
		last, lastKey = s, k
	}
	cw.keys = keys
	return len(idx) < 256 || 2*len(d.offs) <= len(idx)
}

// dictStats sets a dictionary-encoded chunk's string bounds from its dictionary, unless a bound
// is long.
func (cw *chunkWriter) dictStats(st *format.Statistics) {
	d := &cw.dict
	lo, hi := d.entry(0), d.entry(0)
	for e := 1; e < len(d.offs); e++ {
		s := d.entry(int32(e))
		if bytes.Compare(s, lo) < 0 {
			lo = s
		}
		if bytes.Compare(s, hi) > 0 {
			hi = s
		}
	}
	if len(lo) <= maxStatBytes && len(hi) <= maxStatBytes {
		st.MinValue = bytes.Clone(lo)
		st.MaxValue = bytes.Clone(hi)
	}
}

// dictTable is a hash table of distinct strings, kept PLAIN-encoded in insertion order, ready to
// be a dictionary page.
type dictTable struct {
	seed   maphash.Seed
	slots  []int32  // entry index + 1, or 0 for an empty slot; a power of two long
	hashes []uint64 // each entry's hash
	offs   []int32  // where each entry's bytes start in plain, after its length
	plain  []byte   // the entries, each as a 4-byte length and its bytes
}

func (d *dictTable) reset(values int) {
	size := 1024
	for size < 2*min(values, 1<<16) {
		size *= 2
	}
	if cap(d.slots) >= size {
		d.slots = d.slots[:size]
		clear(d.slots)
	} else {
		d.slots = make([]int32, size)
	}
	d.hashes, d.offs, d.plain = d.hashes[:0], d.offs[:0], d.plain[:0]
}

func (d *dictTable) entry(e int32) []byte {
	start := d.offs[e]
	n := binary.LittleEndian.Uint32(d.plain[start-4:])
	return d.plain[start : start+int32(n)]
}

// insert returns the index of s, adding it if it is new.
func (d *dictTable) insert(s []byte) int32 {
	h := maphash.Bytes(d.seed, s)
	mask := len(d.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		e := d.slots[i]
		if e == 0 {
			k := int32(len(d.offs))
			d.plain = binary.LittleEndian.AppendUint32(d.plain, uint32(len(s)))
			d.offs = append(d.offs, int32(len(d.plain)))
			d.plain = append(d.plain, s...)
			d.hashes = append(d.hashes, h)
			d.slots[i] = k + 1
			if 2*len(d.offs) > len(d.slots) {
				d.grow()
			}
			return k
		}
		if d.hashes[e-1] == h && bytes.Equal(d.entry(e-1), s) {
			return e - 1
		}
	}
}

func (d *dictTable) grow() {
	d.slots = make([]int32, 2*len(d.slots))
	mask := len(d.slots) - 1
	for k, h := range d.hashes {
		i := int(h) & mask
		for d.slots[i] != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = int32(k) + 1
	}
}
