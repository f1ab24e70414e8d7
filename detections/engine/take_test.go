package engine

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestTakeColumnAgreesWithCompute copies rows of columns of every type ingest builds (with
// nulls at each level, and sliced, as a batch's columns may be) and compares each copy with
// compute's take of the same rows.
func TestTakeColumnAgreesWithCompute(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "t", Type: ts, Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "errs", Type: arrow.ListOf(arrow.StructOf(
				arrow.Field{Name: "msg", Type: arrow.BinaryTypes.String, Nullable: true})), Nullable: true},
		), Nullable: true},
		{Name: "other", Type: arrow.BinaryTypes.LargeString, Nullable: true}, // compute's take
	}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer rb.Release()
	const n = 200
	for i := range n {
		null := i%7 == 3
		appendOrNull := func(b array.Builder, f func()) {
			if null {
				b.AppendNull()
			} else {
				f()
			}
		}
		appendOrNull(rb.Field(0), func() { rb.Field(0).(*array.StringBuilder).Append(strings.Repeat("x", i%5)) })
		appendOrNull(rb.Field(1), func() { rb.Field(1).(*array.Int16Builder).Append(int16(i)) })
		appendOrNull(rb.Field(2), func() { rb.Field(2).(*array.Int64Builder).Append(int64(i) << 40) })
		appendOrNull(rb.Field(3), func() { rb.Field(3).(*array.Float64Builder).Append(float64(i) / 3) })
		appendOrNull(rb.Field(4), func() { rb.Field(4).(*array.BooleanBuilder).Append(i%2 == 0) })
		appendOrNull(rb.Field(5), func() { rb.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(i * 1000)) })
		lb := rb.Field(6).(*array.ListBuilder)
		appendOrNull(lb, func() {
			lb.Append(true)
			for k := range i % 4 {
				if k == 2 {
					lb.ValueBuilder().AppendNull()
				} else {
					lb.ValueBuilder().(*array.StringBuilder).Append(strings.Repeat("y", k+1))
				}
			}
		})
		sb := rb.Field(7).(*array.StructBuilder)
		appendOrNull(sb, func() {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append("actor")
			if i%3 == 0 {
				sb.FieldBuilder(1).AppendNull()
			} else {
				sb.FieldBuilder(1).(*array.Int32Builder).Append(int32(i))
			}
			el := sb.FieldBuilder(2).(*array.ListBuilder)
			el.Append(true)
			es := el.ValueBuilder().(*array.StructBuilder)
			for range i % 3 {
				es.Append(true)
				es.FieldBuilder(0).(*array.StringBuilder).Append("denied")
			}
		})
		appendOrNull(rb.Field(8), func() { rb.Field(8).(*array.LargeStringBuilder).Append("large") })
	}
	whole := rb.NewRecordBatch()
	defer whole.Release()
	rec := whole.NewSlice(13, n) // columns with an offset, as a batch's slice has
	defer rec.Release()

	rows := []int32{0, 1, 2, 3, 10, 10, 11, 50, 90, 91, 92, 93, 94, 95, 96, 186}
	for c, col := range rec.Columns() {
		got, err := takeColumn(col, rows)
		if err != nil {
			t.Fatalf("%s: %v", schema.Field(c).Name, err)
		}
		want, err := takeCompute(col, rows)
		if err != nil {
			t.Fatalf("%s: compute: %v", schema.Field(c).Name, err)
		}
		if !array.Equal(got, want) {
			t.Errorf("%s: got\n%v\nwant\n%v", schema.Field(c).Name, got, want)
		}
		if got.NullN() == 0 && c < 8 {
			t.Errorf("%s: no null taken: the test does not cover nulls", schema.Field(c).Name)
		}
		got.Release()
		want.Release()
	}
	if !appendable(schema.Field(7).Type) || appendable(schema.Field(8).Type) {
		t.Error("appendable: want the struct copied value by value and the large string by compute")
	}
}
