package query

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/lake"
)

// Results are written as Parquet from Go, through the lake's encoder (lake.FileWriter), not
// with DuckDB's COPY TO: the session's DuckDB is locked to reading the lake, and a second,
// unlocked DuckDB would have to run user text to write. Rows are scanned through database/sql
// and built into Arrow arrays here. DuckDB types map to the lake's:
//
//	BOOLEAN                                 boolean
//	TINYINT, SMALLINT, UTINYINT             int16
//	INTEGER, USMALLINT                      int32
//	BIGINT, UINTEGER                        int64
//	UBIGINT, HUGEINT, UHUGEINT              int64 (an error if a value does not fit)
//	FLOAT, DOUBLE, DECIMAL                  float64
//	TIMESTAMP, TIMESTAMPTZ, TIMESTAMP_S|MS|NS timestamp (microseconds, UTC)
//	VARCHAR; JSON                           string; string with the JSON logical type
//	LIST, ARRAY; STRUCT                     list; struct (of the mapped types)
//	DATE, TIME, INTERVAL, UUID, BLOB, ENUM,  string: DATE as 2006-01-02, TIME as 15:04:05.999999,
//	MAP, UNION, anything else               BLOB as \x<hex> unless UTF-8, MAP and UNION as JSON
//
// duckdb-go hands JSON values over decoded, so a JSON column is written re-encoded by Go: its
// object keys sorted and its numbers read as float64 (integers past 2^53 lose precision).

// colType is a DuckDB type as duckdb-go names it, parsed.
type colType struct {
	name   string     // upper case: VARCHAR, STRUCT, LIST, ...
	elem   *colType   // LIST and ARRAY
	fields []colField // STRUCT
}

type colField struct {
	name string
	typ  *colType
}

// parseType parses duckdb-go's type names: NAME, T[], T[n], STRUCT("a" T, ...), MAP(K, V),
// DECIMAL(w,s), UNION("a" T, ...).
func parseType(s string) (*colType, error) {
	p := &typeParser{s: s}
	t, err := p.typ()
	if err != nil {
		return nil, err
	}
	if p.skip(); p.i != len(p.s) {
		return nil, fmt.Errorf("type %q: unexpected %q", s, p.s[p.i:])
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) skip() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) typ() (*colType, error) {
	p.skip()
	start := p.i
	for p.i < len(p.s) && isIdentPart(p.s[p.i]) {
		p.i++
	}
	t := &colType{name: strings.ToUpper(strings.TrimSpace(p.s[start:p.i]))}
	if t.name == "" {
		return nil, fmt.Errorf("type %q: no type name at %d", p.s, start)
	}
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		switch t.name {
		case "STRUCT", "UNION":
			for {
				name, err := p.fieldName()
				if err != nil {
					return nil, err
				}
				ft, err := p.typ()
				if err != nil {
					return nil, err
				}
				t.fields = append(t.fields, colField{name, ft})
				p.skip()
				if p.i < len(p.s) && p.s[p.i] == ',' {
					p.i++
					continue
				}
				break
			}
		case "MAP":
			for {
				if _, err := p.typ(); err != nil {
					return nil, err
				}
				p.skip()
				if p.i < len(p.s) && p.s[p.i] == ',' {
					p.i++
					continue
				}
				break
			}
		default: // DECIMAL(18,3), ENUM(...): skip to the closing parenthesis
			depth := 1
			for p.i < len(p.s) && depth > 0 {
				switch p.s[p.i] {
				case '(':
					depth++
				case ')':
					depth--
				}
				p.i++
			}
			p.i--
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("type %q: missing ) at %d", p.s, p.i)
		}
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] == '[' {
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			return nil, fmt.Errorf("type %q: missing ]", p.s)
		}
		p.i += end + 1
		t = &colType{name: "LIST", elem: t}
	}
	return t, nil
}

func (p *typeParser) fieldName() (string, error) {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b strings.Builder
		p.i++
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			if c == '"' {
				if p.i < len(p.s) && p.s[p.i] == '"' {
					b.WriteByte('"')
					p.i++
					continue
				}
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		return "", fmt.Errorf("type %q: unterminated field name", p.s)
	}
	start := p.i
	for p.i < len(p.s) && isIdentPart(p.s[p.i]) {
		p.i++
	}
	if start == p.i {
		return "", fmt.Errorf("type %q: no field name at %d", p.s, start)
	}
	return p.s[start:p.i], nil
}

var jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})

// arrowField returns the Arrow field a column of type t is written as.
func arrowField(name string, t *colType) arrow.Field {
	f := arrow.Field{Name: name, Nullable: true}
	switch t.name {
	case "BOOLEAN":
		f.Type = arrow.FixedWidthTypes.Boolean
	case "TINYINT", "SMALLINT", "UTINYINT":
		f.Type = arrow.PrimitiveTypes.Int16
	case "INTEGER", "USMALLINT":
		f.Type = arrow.PrimitiveTypes.Int32
	case "BIGINT", "UINTEGER", "UBIGINT", "HUGEINT", "UHUGEINT":
		f.Type = arrow.PrimitiveTypes.Int64
	case "FLOAT", "DOUBLE", "DECIMAL":
		f.Type = arrow.PrimitiveTypes.Float64
	case "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		f.Type = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "JSON":
		f.Type = arrow.BinaryTypes.String
		f.Metadata = jsonMeta
	case "LIST":
		f.Type = arrow.ListOfField(arrowField("element", t.elem))
	case "STRUCT":
		fields := make([]arrow.Field, len(t.fields))
		for i, c := range t.fields {
			fields[i] = arrowField(c.name, c.typ)
		}
		f.Type = arrow.StructOf(fields...)
	default:
		f.Type = arrow.BinaryTypes.String
	}
	return f
}

// appendValue appends a scanned value to a builder of the field's type.
func appendValue(b array.Builder, t *colType, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%T for %s", v, t.name)
		}
		b.Append(x)
	case *array.Int16Builder:
		n, err := toInt(v)
		if err != nil {
			return err
		}
		b.Append(int16(n))
	case *array.Int32Builder:
		n, err := toInt(v)
		if err != nil {
			return err
		}
		b.Append(int32(n))
	case *array.Int64Builder:
		n, err := toInt(v)
		if err != nil {
			return err
		}
		b.Append(n)
	case *array.Float64Builder:
		switch x := v.(type) {
		case float64:
			b.Append(x)
		case float32:
			b.Append(float64(x))
		case duckdb.Decimal:
			b.Append(x.Float64())
		default:
			return fmt.Errorf("%T for %s", v, t.name)
		}
	case *array.TimestampBuilder:
		x, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("%T for %s", v, t.name)
		}
		b.Append(arrow.Timestamp(x.UnixMicro()))
	case *array.StringBuilder:
		b.Append(stringValue(t, v))
	case *array.ListBuilder:
		xs, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%T for a list", v)
		}
		b.Append(true)
		for _, x := range xs {
			if err := appendValue(b.ValueBuilder(), t.elem, x); err != nil {
				return err
			}
		}
	case *array.StructBuilder:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%T for a struct", v)
		}
		b.Append(true)
		for i, f := range t.fields {
			if err := appendValue(b.FieldBuilder(i), f.typ, m[f.name]); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	default:
		panic(fmt.Sprintf("BUG: builder %T", b))
	}
	return nil
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("value %d does not fit a 64-bit integer", x)
		}
		return int64(x), nil
	case *big.Int:
		if !x.IsInt64() {
			return 0, fmt.Errorf("value %s does not fit a 64-bit integer", x)
		}
		return x.Int64(), nil
	}
	return 0, fmt.Errorf("%T for an integer", v)
}

// stringValue renders a value of a type written as a string.
func stringValue(t *colType, v any) string {
	switch t.name {
	case "DATE":
		if x, ok := v.(time.Time); ok {
			return x.Format("2006-01-02")
		}
	case "TIME":
		if x, ok := v.(time.Time); ok {
			return x.Format("15:04:05.999999")
		}
	case "JSON":
		if s, ok := v.(string); ok {
			return s
		}
		b, err := json.Marshal(v)
		if err == nil {
			return string(b)
		}
	}
	return text(Plain(v))
}

// recordWriter builds record batches from scanned rows.
type recordWriter struct {
	types  []*colType
	schema *arrow.Schema
	b      *array.RecordBuilder
	n      int
}

func newRecordWriter(names []string, typeNames []string) (*recordWriter, error) {
	rw := &recordWriter{}
	fields := make([]arrow.Field, len(names))
	seen := map[string]int{}
	for i, name := range names {
		t, err := parseType(typeNames[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		// Parquet needs distinct column names (SELECT 1, 1 has two columns named 1).
		if k := seen[name]; k > 0 {
			name = name + "_" + strconv.Itoa(k)
		}
		seen[names[i]]++
		rw.types = append(rw.types, t)
		fields[i] = arrowField(name, t)
	}
	rw.schema = arrow.NewSchema(fields, nil)
	rw.b = array.NewRecordBuilder(memory.DefaultAllocator, rw.schema)
	return rw, nil
}

func (rw *recordWriter) add(vals []any) error {
	for i, v := range vals {
		if err := appendValue(rw.b.Field(i), rw.types[i], v); err != nil {
			return fmt.Errorf("column %s: %w", rw.schema.Field(i).Name, err)
		}
	}
	rw.n++
	return nil
}

// batchRows is the number of rows in a row group of a Parquet result.
const batchRows = 64 << 10

// writeParquet writes rows as a Parquet file.
func writeParquet(w io.Writer, rows *Rows, cols []string) (int64, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return 0, err
	}
	typeNames := make([]string, len(cts))
	for i, ct := range cts {
		typeNames[i] = ct.DatabaseTypeName()
	}
	rw, err := newRecordWriter(cols, typeNames)
	if err != nil {
		return 0, err
	}
	defer rw.b.Release()
	fw, err := lake.NewFileWriter(w, rw.schema)
	if err != nil {
		return 0, err
	}
	flush := func() error {
		if rw.n == 0 {
			return nil
		}
		rec := rw.b.NewRecordBatch()
		defer rec.Release()
		rw.n = 0
		return fw.Write(rec)
	}
	var n, size int64
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		for i := range vals {
			vals[i] = nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if err := rw.add(vals); err != nil {
			return n, err
		}
		n++
		for _, v := range vals {
			size += valueSize(v)
		}
		// A row group is written when it has batchRows rows or about batchBytes of values,
		// so that wide rows do not pile up in memory before anything is written.
		if rw.n >= batchRows || size >= batchBytes {
			size = 0
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, fw.Close()
}

// batchBytes is about the most a row group of a Parquet result holds before it is written.
const batchBytes = 16 << 20

// valueSize is about the bytes a scanned value takes: its length for text and blobs, that of
// its elements for lists, maps and structs, 8 for other values.
func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case []byte:
		return int64(len(v))
	case []any:
		var n int64
		for _, x := range v {
			n += valueSize(x)
		}
		return n
	case map[string]any:
		var n int64
		for k, x := range v {
			n += int64(len(k)) + valueSize(x)
		}
		return n
	}
	return 8
}

// Records reads the rest of rows (a result of DB.Run or of a BatchDB) into record batches of
// up to 64Ki rows, typed as Parquet results are (see the top of this file), and returns them
// with their schema and the number of rows. A result without rows gives the schema and no
// batch. The caller releases the batches.
func Records(rows *sql.Rows) (*arrow.Schema, []arrow.RecordBatch, int64, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, 0, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, 0, err
	}
	typeNames := make([]string, len(cts))
	for i, ct := range cts {
		typeNames[i] = ct.DatabaseTypeName()
	}
	rw, err := newRecordWriter(cols, typeNames)
	if err != nil {
		return nil, nil, 0, err
	}
	defer rw.b.Release()
	var recs []arrow.RecordBatch
	fail := func(err error) (*arrow.Schema, []arrow.RecordBatch, int64, error) {
		for _, r := range recs {
			r.Release()
		}
		return nil, nil, 0, err
	}
	var n int64
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		clear(vals)
		if err := rows.Scan(ptrs...); err != nil {
			return fail(err)
		}
		if err := rw.add(vals); err != nil {
			return fail(err)
		}
		n++
		if rw.n >= batchRows {
			recs = append(recs, rw.b.NewRecordBatch())
			rw.n = 0
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if rw.n > 0 {
		recs = append(recs, rw.b.NewRecordBatch())
	}
	return rw.schema, recs, n, nil
}
