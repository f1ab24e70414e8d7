package batch

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Check reports whether a record batch fits the table schema: the table's columns; every
// string valid UTF-8 and every json value valid JSON text; required fields present wherever
// their object is; allowed values only; the standard fields set; integers within their type.
// Parsers' tests and fuzz targets hold their output to it.
func (s *Schema) Check(rec arrow.RecordBatch) error {
	if !rec.Schema().Equal(s.Arrow) {
		return fmt.Errorf("columns %v, want %v", rec.Schema(), s.Arrow)
	}
	n := int(rec.NumRows())
	for i, f := range s.Fields {
		col := rec.Column(i)
		if col.Len() != n {
			return fmt.Errorf("column %s has %d values for %d rows", f.Path, col.Len(), n)
		}
		for row := range n {
			if err := checkValue(f, col, row); err != nil {
				return fmt.Errorf("row %d: %w", row, err)
			}
		}
	}
	for i := len(s.Fields); i < len(s.Arrow.Fields()); i++ {
		f := s.Arrow.Field(i)
		col := rec.Column(i)
		if !f.Nullable && col.NullN() > 0 {
			return fmt.Errorf("standard field %s has %d nulls", f.Name, col.NullN())
		}
		if l, ok := col.(*array.List); ok {
			vals := l.ListValues().(*array.String)
			for row := range n {
				if l.IsNull(row) {
					continue
				}
				start, end := l.ValueOffsets(row)
				if start == end || start > end || end > int64(vals.Len()) {
					return fmt.Errorf("row %d: %s has offsets %d..%d of %d values", row, f.Name, start, end, vals.Len())
				}
				for j := start; j < end; j++ {
					v := vals.Value(int(j))
					if v == "" || !utf8.ValidString(v) || j > start && vals.Value(int(j-1)) >= v {
						return fmt.Errorf("row %d: %s is not sorted, distinct, non-empty UTF-8: %q", row, f.Name, v)
					}
				}
			}
		}
	}
	return nil
}

func checkValue(n *Node, col arrow.Array, row int) error {
	if col.IsNull(row) {
		return nil
	}
	switch a := col.(type) {
	case *array.String:
		v := a.Value(row)
		if !utf8.ValidString(v) {
			return fmt.Errorf("field %s: invalid UTF-8 %q", n.Path, v)
		}
		if n.Type == logschema.TypeJSON {
			if !json.Valid([]byte(v)) {
				return fmt.Errorf("field %s: invalid JSON %q", n.Path, v)
			}
			return nil
		}
		if n.HasChecks() {
			if err := n.CheckValue([]byte(v)); err != nil {
				return err
			}
		}
		if n.Required && v == "" {
			return fmt.Errorf("required field %s is empty", n.Path)
		}
	case *array.Int16, *array.Int32, *array.Int64, *array.Float64, *array.Boolean, *array.Timestamp:
	case *array.Struct:
		for i, f := range n.Fields {
			child := a.Field(i)
			if f.Required && child.IsNull(row) {
				return fmt.Errorf("required field %s is null", f.Path)
			}
			if err := checkValue(f, child, row); err != nil {
				return err
			}
		}
	case *array.List:
		start, end := a.ValueOffsets(row)
		if start >= end || end > int64(a.ListValues().Len()) {
			return fmt.Errorf("field %s: offsets %d..%d of %d values (an empty array is stored as null)", n.Path, start, end, a.ListValues().Len())
		}
		for j := start; j < end; j++ {
			if err := checkValue(n.Elem, a.ListValues(), int(j)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("field %s: unexpected column %T", n.Path, col)
	}
	return nil
}
