package lake

import (
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

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
