package iceberg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"

	ice "github.com/apache/iceberg-go"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// dataFile builds the Iceberg entry of a Parquet file for a table of schema sc and spec, from the
// file's footer: the partition value (the day of p_event_time), the row count, the file size,
// and for each column outside a list its size, value and null counts and, when every row group
// that holds a value has min/max statistics, its lower and upper bounds (Iceberg's single-value
// encodings of these types are Parquet's PLAIN statistics bytes). Columns are matched by name.
//
// It refuses a file that a plan would get wrong: no rows, a column the table does not have or
// of another type, timestamps that are not microseconds UTC, a p_event_time without min/max
// statistics in a row group or with nulls, or rows of more than one day.
func dataFile(sc *ice.Schema, spec ice.PartitionSpec, path, local string) (ice.DataFile, error) {
	md, size, err := readFooter(local)
	if err != nil {
		return nil, err
	}
	if md.NumRows == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	leaves, err := matchSchema(md.Schema, sc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	stats := columnStats(md, leaves)

	et, _ := sc.FindFieldByName(EventTime)
	est, ok := stats[et.ID]
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: no %s column", path, EventTime)
	case !est.bounded:
		return nil, fmt.Errorf("%s: %s lacks min/max statistics", path, EventTime)
	case est.nulls != 0 || !est.nullsKnown:
		return nil, fmt.Errorf("%s: %s has nulls, or no null count", path, EventTime)
	}
	lo := ice.NewLiteral(ice.Timestamp(int64(binary.LittleEndian.Uint64(est.lo))))
	hi := ice.NewLiteral(ice.Timestamp(int64(binary.LittleEndian.Uint64(est.hi))))
	partition := map[int]any{}
	for _, f := range spec.Fields() {
		if f.SourceID() != et.ID {
			return nil, fmt.Errorf("%s: partition field %s is not on %s", path, f.Name, EventTime)
		}
		plo := f.Transform.Apply(ice.Optional[ice.Literal]{Valid: true, Val: lo})
		phi := f.Transform.Apply(ice.Optional[ice.Literal]{Valid: true, Val: hi})
		if !plo.Valid || !phi.Valid || !plo.Val.Equals(phi.Val) {
			return nil, fmt.Errorf("%s: rows from %s to %s span more than one %s partition",
				path, lo, hi, f.Transform)
		}
		partition[f.FieldID] = plo.Val.Any()
	}

	b, err := ice.NewDataFileBuilder(spec, ice.EntryContentData, path, ice.ParquetFile,
		partition, logicalTypes(spec, sc), nil, md.NumRows, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sizes, values, nulls := map[int]int64{}, map[int]int64{}, map[int]int64{}
	lower, upper := map[int][]byte{}, map[int][]byte{}
	for id, st := range stats {
		sizes[id], values[id] = st.size, st.values
		if st.nullsKnown {
			nulls[id] = st.nulls
		}
		if st.bounded {
			lower[id], upper[id] = st.lo, st.hi
		}
	}
	b.ColumnSizes(sizes).ValueCounts(values).NullValueCounts(nulls)
	b.LowerBoundValues(lower).UpperBoundValues(upper)
	b.SplitOffsets(splitOffsets(md))
	return b.Build(), nil
}

// readFooter returns a Parquet file's footer and size.
func readFooter(path string) (*format.FileMetaData, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	pf, err := parquet.OpenFile(f, info.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, 0, fmt.Errorf("read footer of %s: %w", path, err)
	}
	return pf.Metadata(), info.Size(), nil
}

// leaf is a Parquet leaf column matched to the table: the field id and type it takes its
// statistics for, or id 0 for a leaf inside a list, whose counts and bounds are not recorded.
type leaf struct {
	id       int
	typ      ice.PrimitiveType
	required bool // the leaf and its groups are required: it has no nulls
}

// matchSchema matches a Parquet file's schema (the footer's flattened tree) to the table's
// fields by name, and returns its leaves in column order.
func matchSchema(elems []format.SchemaElement, sc *ice.Schema) ([]leaf, error) {
	if len(elems) == 0 {
		return nil, fmt.Errorf("empty schema")
	}
	m := matcher{elems: elems, pos: 1}
	if err := m.group(int(elems[0].NumChildren.V), sc.AsStruct(), "", false, true); err != nil {
		return nil, err
	}
	if m.pos != len(elems) {
		return nil, fmt.Errorf("malformed schema")
	}
	return m.leaves, nil
}

type matcher struct {
	elems  []format.SchemaElement
	pos    int
	leaves []leaf
}

// group matches the n children of a group, from m.pos on, to a struct's fields. A required
// field must be in the file: a reader would find it null.
func (m *matcher) group(n int, st ice.StructType, prefix string, inList, required bool) error {
	seen := map[string]bool{}
	for range n {
		if m.pos >= len(m.elems) {
			return fmt.Errorf("malformed schema")
		}
		e := m.elems[m.pos]
		var field *ice.NestedField
		for i := range st.FieldList {
			if st.FieldList[i].Name == e.Name {
				field = &st.FieldList[i]
			}
		}
		if field == nil {
			return fmt.Errorf("column %s%s is not in the table", prefix, e.Name)
		}
		seen[e.Name] = true
		if err := m.node(*field, prefix+e.Name, inList, required); err != nil {
			return err
		}
	}
	for _, f := range st.FieldList {
		if f.Required && !seen[f.Name] {
			return fmt.Errorf("required column %s%s is not in the file", prefix, f.Name)
		}
	}
	return nil
}

// node matches the element at m.pos, and its children, to a field; required tells whether
// the groups it is in are all required.
func (m *matcher) node(f ice.NestedField, path string, inList, required bool) error {
	e := m.elems[m.pos]
	m.pos++
	required = required && e.RepetitionType.V == format.Required
	if e.RepetitionType.V == format.Repeated {
		return fmt.Errorf("column %s: repeated field outside a LIST", path)
	}
	if f.Required && e.RepetitionType.V != format.Required {
		return fmt.Errorf("column %s: optional in the file, required in the table", path)
	}
	switch t := f.Type.(type) {
	case *ice.StructType:
		if e.NumChildren.V == 0 || e.LogicalType.Value != nil {
			return fmt.Errorf("column %s: want a group for %s", path, t)
		}
		return m.group(int(e.NumChildren.V), *t, path+".", inList, required)
	case *ice.ListType:
		if _, ok := e.LogicalType.Value.(*format.ListType); !ok || e.NumChildren.V != 1 || m.pos >= len(m.elems) {
			return fmt.Errorf("column %s: want a LIST for %s", path, t)
		}
		rep := m.elems[m.pos]
		m.pos++
		if rep.RepetitionType.V != format.Repeated || rep.NumChildren.V != 1 || m.pos >= len(m.elems) {
			return fmt.Errorf("column %s: want a 3-level LIST", path)
		}
		return m.node(t.ElementField(), path+".element", true, false)
	}
	pt, ok := f.Type.(ice.PrimitiveType)
	if !ok || e.NumChildren.V != 0 || !e.Type.Valid {
		return fmt.Errorf("column %s: want a primitive column for %s", path, f.Type)
	}
	if err := checkLeaf(e, pt); err != nil {
		return fmt.Errorf("column %s: %w", path, err)
	}
	id := f.ID
	if inList {
		id = 0
	}
	m.leaves = append(m.leaves, leaf{id: id, typ: pt, required: required})
	return nil
}

// checkLeaf checks that a Parquet leaf holds values of an Iceberg type whose bounds are the
// leaf's statistics bytes as they are.
func checkLeaf(e format.SchemaElement, t ice.PrimitiveType) error {
	phys := e.Type.V
	ts, isTS := e.LogicalType.Value.(*format.TimestampType)
	want := map[ice.Type]format.Type{
		ice.PrimitiveTypes.String:      format.ByteArray,
		ice.PrimitiveTypes.Int32:       format.Int32,
		ice.PrimitiveTypes.Int64:       format.Int64,
		ice.PrimitiveTypes.Float64:     format.Double,
		ice.PrimitiveTypes.Bool:        format.Boolean,
		ice.PrimitiveTypes.TimestampTz: format.Int64,
	}
	wp, ok := want[t]
	if !ok {
		return fmt.Errorf("unsupported table type %s", t)
	}
	if phys != wp {
		return fmt.Errorf("%s in the file, want %s for %s", phys, wp, t)
	}
	if t.Equals(ice.PrimitiveTypes.TimestampTz) {
		if !isTS {
			return fmt.Errorf("no TIMESTAMP logical type, want TIMESTAMP(MICROS, UTC)")
		}
		if _, micros := ts.Unit.Value.(*format.MicroSeconds); !micros || !ts.IsAdjustedToUTC {
			return fmt.Errorf("%s, want TIMESTAMP(MICROS, UTC)", strings.ToUpper(ts.String()))
		}
	} else if isTS {
		return fmt.Errorf("%s in the file, want %s", ts, t)
	}
	return nil
}

// colStats is what a file's footer says of one column, over all its row groups.
type colStats struct {
	typ        ice.PrimitiveType
	size       int64
	values     int64
	nulls      int64
	nullsKnown bool
	bounded    bool   // lo and hi hold the column's min and max
	lo, hi     []byte // Parquet PLAIN statistics = Iceberg's single-value encoding here
}

// columnStats aggregates the chunks' statistics of each leaf outside a list. A column is bounded
// when every chunk that holds a value has min_value and max_value (the deprecated min and max are
// in signed order and are not used); a chunk whose values are all null needs none. A chunk with
// neither bounds nor nulls may have no statistics at all (a zero null count and an absent one read
// the same), so then the null count of a column that may hold nulls is left out too.
func columnStats(md *format.FileMetaData, leaves []leaf) map[int]*colStats {
	stats := map[int]*colStats{}
	for i, l := range leaves {
		if l.id == 0 {
			continue
		}
		st := &colStats{typ: l.typ, nullsKnown: true, bounded: true}
		stats[l.id] = st
		for _, rg := range md.RowGroups {
			if i >= len(rg.Columns) {
				st.nullsKnown, st.bounded = false, false
				continue
			}
			cm := rg.Columns[i].MetaData
			s := cm.Statistics
			st.size += cm.TotalCompressedSize
			st.values += cm.NumValues
			st.nulls += s.NullCount
			hasBounds := s.MinValue != nil && s.MaxValue != nil
			allNull := cm.NumValues > 0 && s.NullCount == cm.NumValues
			switch {
			case hasBounds:
				if !st.widen(s.MinValue, s.MaxValue) {
					st.bounded = false
				}
			case allNull || cm.NumValues == 0:
			default:
				st.bounded = false
				if s.NullCount == 0 && !l.required {
					st.nullsKnown = false
				}
			}
		}
		if st.lo == nil {
			st.bounded = false // no values at all
		}
		if !st.bounded {
			st.lo, st.hi = nil, nil
		}
	}
	return stats
}

// widen adds a chunk's bounds to the column's. It reports false for bounds it cannot read.
func (st *colStats) widen(lo, hi []byte) bool {
	if !validBound(st.typ, lo) || !validBound(st.typ, hi) {
		return false
	}
	if st.lo == nil || compare(st.typ, lo, st.lo) < 0 {
		st.lo = bytes.Clone(lo)
	}
	if st.hi == nil || compare(st.typ, hi, st.hi) > 0 {
		st.hi = bytes.Clone(hi)
	}
	return true
}

func validBound(t ice.PrimitiveType, b []byte) bool {
	switch t {
	case ice.PrimitiveTypes.Int32:
		return len(b) == 4
	case ice.PrimitiveTypes.Int64, ice.PrimitiveTypes.TimestampTz:
		return len(b) == 8
	case ice.PrimitiveTypes.Float64:
		return len(b) == 8 && !math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case ice.PrimitiveTypes.Bool:
		return len(b) == 1 && b[0] <= 1
	case ice.PrimitiveTypes.String:
		return true
	}
	return false
}

// compare orders two valid bounds of a type.
func compare(t ice.PrimitiveType, a, b []byte) int {
	switch t {
	case ice.PrimitiveTypes.Int32:
		return cmpOrdered(int32(binary.LittleEndian.Uint32(a)), int32(binary.LittleEndian.Uint32(b)))
	case ice.PrimitiveTypes.Int64, ice.PrimitiveTypes.TimestampTz:
		return cmpOrdered(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
	case ice.PrimitiveTypes.Float64:
		return cmpOrdered(math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	return bytes.Compare(a, b) // booleans (0 < 1), UTF-8 strings in unsigned byte order
}

func cmpOrdered[T int32 | int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// logicalTypes names the Avro logical types of the partition values (the day is a date).
func logicalTypes(spec ice.PartitionSpec, sc *ice.Schema) map[int]string {
	out := map[int]string{}
	for _, f := range spec.Fields() {
		src, ok := sc.FindFieldByID(f.SourceID())
		if !ok {
			continue
		}
		if _, isDate := f.Transform.ResultType(src.Type).(ice.DateType); isDate {
			out[f.FieldID] = "date"
		}
	}
	return out
}

// splitOffsets returns where each row group starts.
func splitOffsets(md *format.FileMetaData) []int64 {
	var offs []int64
	for _, rg := range md.RowGroups {
		if len(rg.Columns) == 0 {
			continue
		}
		cm := rg.Columns[0].MetaData
		off := cm.DataPageOffset
		if cm.DictionaryPageOffset > 0 && cm.DictionaryPageOffset < off {
			off = cm.DictionaryPageOffset
		}
		offs = append(offs, off)
	}
	return offs
}
