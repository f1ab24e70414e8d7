package batch

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// AppendRowJSON appends row i of a record batch built by a Builder as one JSON object, the way
// Panther shows a normalized event: columns in table order, null values left out, timestamps
// in RFC 3339 (UTC, as many fraction digits as needed), json columns as the JSON they hold.
// It is meant for tools and tests (osprey schema parse, golden files), not for the ingest path.
func AppendRowJSON(dst []byte, rec arrow.RecordBatch, i int) []byte {
	dst = append(dst, '{')
	first := true
	for c, f := range rec.Schema().Fields() {
		col := rec.Column(c)
		if col.IsNull(i) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = appendValueJSON(dst, f, col, i)
	}
	return append(dst, '}')
}

func appendValueJSON(dst []byte, f arrow.Field, col arrow.Array, i int) []byte {
	if col.IsNull(i) {
		return append(dst, "null"...)
	}
	switch a := col.(type) {
	case *array.String:
		if IsJSON(f) {
			return append(dst, a.Value(i)...)
		}
		return appendJSONString(dst, a.Value(i))
	case *array.Int16:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(dst, a.Value(i), 10)
	case *array.Float64:
		return appendFloatJSON(dst, a.Value(i))
	case *array.Boolean:
		return strconv.AppendBool(dst, a.Value(i))
	case *array.Timestamp:
		t := time.UnixMicro(int64(a.Value(i))).UTC()
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		dst = append(dst, '{')
		first := true
		for k, sf := range st.Fields() {
			child := a.Field(k)
			if child.IsNull(i) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, sf.Name)
			dst = append(dst, ':')
			dst = appendValueJSON(dst, sf, child, i)
		}
		return append(dst, '}')
	case *array.List:
		start, end := a.ValueOffsets(i)
		ef := a.DataType().(*arrow.ListType).ElemField()
		dst = append(dst, '[')
		for j := start; j < end; j++ {
			if j > start {
				dst = append(dst, ',')
			}
			dst = appendValueJSON(dst, ef, a.ListValues(), int(j))
		}
		return append(dst, ']')
	}
	return appendJSONString(dst, col.ValueStr(i))
}

// appendFloatJSON writes a float as JavaScript would; values JSON cannot hold are strings.
func appendFloatJSON(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return appendJSONString(dst, strconv.FormatFloat(v, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, v, format, -1, 64)
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			switch c {
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}
