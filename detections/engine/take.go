package engine

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// takeColumn returns the values of arr at rows, in their order (repeats allowed), as a new
// array. The column types ingest builds (strings, numbers, booleans, timestamps, and lists
// and structs of them) are copied value by value: compute's take costs ~1 ms a call whatever
// the rows, and the engine copies a few hundred candidate rows of every batch a source
// writes. Other types go through compute's take.
func takeColumn(arr arrow.Array, rows []int32) (arrow.Array, error) {
	if !appendable(arr.DataType()) {
		return takeCompute(arr, rows)
	}
	b := array.NewBuilder(memory.DefaultAllocator, arr.DataType())
	defer b.Release()
	b.Reserve(len(rows))
	if sb, ok := b.(*array.StringBuilder); ok {
		s := arr.(*array.String)
		if s.Len() > 0 {
			sb.ReserveData(s.ValueLen(0) * len(rows)) // a guess; the builder grows as needed
		}
	}
	appendRows(b, arr, rows)
	return b.NewArray(), nil
}

// appendRows appends the values of arr at rows to b, a builder of arr's type (one appendable
// reports true for).
func appendRows(b array.Builder, arr arrow.Array, rows []int32) {
	for _, r := range rows {
		appendValue(b, arr, int(r))
	}
}

func takeCompute(arr arrow.Array, rows []int32) (arrow.Array, error) {
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues(rows, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	return compute.TakeArray(context.Background(), arr, idx)
}

// appendable reports whether appendValue copies values of type t.
func appendable(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.StringType, *arrow.BinaryType, *arrow.BooleanType,
		*arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
		*arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type, *arrow.Uint64Type,
		*arrow.Float32Type, *arrow.Float64Type, *arrow.TimestampType, *arrow.Date32Type:
		return true
	case *arrow.ListType:
		return appendable(t.Elem())
	case *arrow.StructType:
		for _, f := range t.Fields() {
			if !appendable(f.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// appendValue appends value i of arr to b, a builder of arr's type (one appendable reports
// true for).
func appendValue(b array.Builder, arr arrow.Array, i int) {
	if arr.IsNull(i) {
		b.AppendNull() // a struct builder appends a null to each field too
		return
	}
	switch a := arr.(type) {
	case *array.String:
		b.(*array.StringBuilder).Append(a.Value(i))
	case *array.Binary:
		b.(*array.BinaryBuilder).Append(a.Value(i))
	case *array.Boolean:
		b.(*array.BooleanBuilder).Append(a.Value(i))
	case *array.Int8:
		b.(*array.Int8Builder).Append(a.Value(i))
	case *array.Int16:
		b.(*array.Int16Builder).Append(a.Value(i))
	case *array.Int32:
		b.(*array.Int32Builder).Append(a.Value(i))
	case *array.Int64:
		b.(*array.Int64Builder).Append(a.Value(i))
	case *array.Uint8:
		b.(*array.Uint8Builder).Append(a.Value(i))
	case *array.Uint16:
		b.(*array.Uint16Builder).Append(a.Value(i))
	case *array.Uint32:
		b.(*array.Uint32Builder).Append(a.Value(i))
	case *array.Uint64:
		b.(*array.Uint64Builder).Append(a.Value(i))
	case *array.Float32:
		b.(*array.Float32Builder).Append(a.Value(i))
	case *array.Float64:
		b.(*array.Float64Builder).Append(a.Value(i))
	case *array.Timestamp:
		b.(*array.TimestampBuilder).Append(a.Value(i))
	case *array.Date32:
		b.(*array.Date32Builder).Append(a.Value(i))
	case *array.List:
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		start, end := a.ValueOffsets(i)
		vb, vals := lb.ValueBuilder(), a.ListValues()
		for j := start; j < end; j++ {
			appendValue(vb, vals, int(j))
		}
	case *array.Struct:
		sb := b.(*array.StructBuilder)
		sb.Append(true)
		for k := range a.NumField() {
			appendValue(sb.FieldBuilder(k), a.Field(k), i)
		}
	default:
		panic("BUG: appendValue of " + arr.DataType().String())
	}
}
