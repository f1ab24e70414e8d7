// Package batch turns parsed records into Arrow record batches of a log type's table.
//
// Schema compiles a log schema into a tree of Nodes (one per field) and the table's Arrow schema:
// the log's fields in schema order, then the standard fields p_log_type, p_row_id, p_event_time,
// p_parse_time, p_source_id, p_source_label, p_source_file and the p_any_* indicator columns the
// schema's indicators can produce. A Builder accumulates rows column by column; parsers write a row with
// the typed column writers, then End it (computing every p_ field in the same pass) or Rollback
// it when the record turns out not to match. Build hands the columns to Arrow without copying.
package batch

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest/parse/indicator"
	"github.com/ospreyhq/osprey/ingest/parse/timefmt"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Names of the standard fields.
const (
	FieldLogType     = "p_log_type"
	FieldRowID       = "p_row_id"
	FieldEventTime   = "p_event_time"
	FieldParseTime   = "p_parse_time"
	FieldSourceID    = "p_source_id"
	FieldSourceLabel = "p_source_label"
	FieldSourceFile  = "p_source_file"
)

// Arrow types of the table columns.
var (
	TimestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	stringList    = arrow.ListOf(arrow.BinaryTypes.String)
	// SourceFileType is p_source_file's type: the S3 object a row was read from, as Panther
	// gives it for rows of S3 sources (null for other sources).
	SourceFileType = arrow.StructOf(
		arrow.Field{Name: "aws_s3_bucket", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "aws_s3_key", Type: arrow.BinaryTypes.String, Nullable: true},
	)
)

// JSONMetadata marks a string column that holds JSON text (Arrow's canonical arrow.json
// extension); the lake writes such columns with Parquet's JSON logical type.
var JSONMetadata = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})

// plainEncoding asks the lake to write a column without a dictionary (see lake.EncodingKey).
var plainEncoding = arrow.NewMetadata([]string{"osprey.encoding"}, []string{"plain"})

// IsJSON reports whether an Arrow field holds JSON text.
func IsJSON(f arrow.Field) bool {
	v, ok := f.Metadata.GetValue("ARROW:extension:name")
	return ok && v == "arrow.json"
}

// Schema is a log type's table schema, compiled for building rows.
type Schema struct {
	LogType string
	Table   string
	Fields  []*Node          // the log's top-level fields
	Root    *Node            // an object node whose fields are Fields
	Kinds   []indicator.Kind // the p_any_* columns of the table, in column order
	Arrow   *arrow.Schema

	eventTimes int // number of isEventTime fields
}

// FieldIndex returns the index of a top-level field, or -1.
func (s *Schema) FieldIndex(name string) int { return s.Root.FieldIndex(name) }

// Node is a field of a log schema, or the element of an array.
type Node struct {
	Name     string
	Path     string // dotted path from the record root, for messages
	Type     logschema.Type
	Required bool
	Fields   []*Node // object fields
	Elem     *Node   // array element
	Arrow    arrow.DataType

	// Scalars.
	Time      timefmt.Parser // timestamps
	YearLess  bool           // a format of Time reads no year: the parse time completes it
	Scanners  []indicator.Scanner
	EventTime int // 1 + rank among isEventTime fields in schema order; 0 if not one
	Embedded  bool
	Allow     []string // validate.allow
	Deny      []string // validate.deny
	IPKind    string   // validate.ip
	CIDRKind  string   // validate.cidr
	Source    *logschema.Value

	// byName maps an object's field names to their index, for parsers that look keys up.
	byName map[string]int
}

// FieldIndex returns the index of an object's field, or -1.
func (n *Node) FieldIndex(name string) int {
	if len(n.Fields) <= 8 {
		for i, f := range n.Fields { // faster than hashing for a few names
			if f.Name == name {
				return i
			}
		}
		return -1
	}
	if i, ok := n.byName[name]; ok {
		return i
	}
	return -1
}

// Compile builds the table schema of a log schema.
func Compile(s *logschema.Schema) (*Schema, error) {
	c := &Schema{LogType: s.Schema, Table: logschema.TableName(s.Schema)}
	kinds := map[indicator.Kind]bool{}
	var err error
	c.Fields, err = c.compileFields(s.Fields, "", kinds)
	if err != nil {
		return nil, err
	}
	for k := range indicator.NumKinds {
		if kinds[k] {
			c.Kinds = append(c.Kinds, k)
		}
	}
	fields := make([]arrow.Field, 0, len(c.Fields)+7+len(c.Kinds))
	root := &Node{Type: logschema.TypeObject, Fields: c.Fields, byName: make(map[string]int, len(c.Fields))}
	for i, n := range c.Fields {
		root.byName[n.Name] = i
		fields = append(fields, arrowField(n))
	}
	root.Arrow = arrow.StructOf(fields...)
	c.Root = root
	// The standard fields every row has are not nullable (REQUIRED in Parquet).
	fields = append(fields,
		arrow.Field{Name: FieldLogType, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: FieldRowID, Type: arrow.BinaryTypes.String, Metadata: plainEncoding},
		arrow.Field{Name: FieldEventTime, Type: TimestampType},
		arrow.Field{Name: FieldParseTime, Type: TimestampType},
		arrow.Field{Name: FieldSourceID, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: FieldSourceLabel, Type: arrow.BinaryTypes.String},
		// Only rows of S3 objects have a source file.
		arrow.Field{Name: FieldSourceFile, Type: SourceFileType, Nullable: true},
	)
	for _, k := range c.Kinds {
		fields = append(fields, arrow.Field{Name: k.Column(), Type: stringList, Nullable: true})
	}
	c.Arrow = arrow.NewSchema(fields, nil)
	return c, nil
}

func arrowField(n *Node) arrow.Field {
	f := arrow.Field{Name: n.Name, Type: n.Arrow, Nullable: true}
	if n.Type == logschema.TypeJSON {
		f.Metadata = JSONMetadata
	}
	return f
}

func (c *Schema) compileFields(fields []logschema.Field, path string, kinds map[indicator.Kind]bool) ([]*Node, error) {
	nodes := make([]*Node, 0, len(fields))
	for i := range fields {
		f := &fields[i]
		n, err := c.compileValue(f.Name, path+f.Name, &f.Value, kinds)
		if err != nil {
			return nil, err
		}
		n.Required = f.Required
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func (c *Schema) compileValue(name, path string, v *logschema.Value, kinds map[indicator.Kind]bool) (*Node, error) {
	n := &Node{Name: name, Path: path, Type: v.Type, Embedded: v.IsEmbeddedJSON, Source: v}
	switch v.Type {
	case logschema.TypeString:
		n.Arrow = arrow.BinaryTypes.String
	case logschema.TypeJSON:
		n.Arrow = arrow.BinaryTypes.String
		// Keys of the JSON whose values carry indicators.
		var err error
		if n.Fields, err = c.compileFields(v.Fields, path+".", kinds); err != nil {
			return nil, err
		}
		n.byName = make(map[string]int, len(n.Fields))
		for i, f := range n.Fields {
			n.byName[f.Name] = i
		}
	case logschema.TypeInt:
		n.Arrow = arrow.PrimitiveTypes.Int32
	case logschema.TypeSmallInt:
		n.Arrow = arrow.PrimitiveTypes.Int16
	case logschema.TypeBigInt:
		n.Arrow = arrow.PrimitiveTypes.Int64
	case logschema.TypeFloat:
		n.Arrow = arrow.PrimitiveTypes.Float64
	case logschema.TypeBoolean:
		n.Arrow = arrow.FixedWidthTypes.Boolean
	case logschema.TypeTimestamp:
		n.Arrow = TimestampType
		var parsers timefmt.Multi
		for _, f := range v.Formats() {
			p, err := timefmt.Compile(f)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", path, err)
			}
			parsers = append(parsers, p)
		}
		if len(parsers) == 1 {
			n.Time = timefmt.OrRow(parsers[0])
		} else {
			n.Time = timefmt.OrRow(parsers)
		}
		n.YearLess = timefmt.YearLess(n.Time)
		if v.IsEventTime {
			c.eventTimes++
			n.EventTime = c.eventTimes
		}
	case logschema.TypeObject:
		var err error
		n.Fields, err = c.compileFields(v.Fields, path+".", kinds)
		if err != nil {
			return nil, err
		}
		n.byName = make(map[string]int, len(n.Fields))
		st := make([]arrow.Field, len(n.Fields))
		for i, f := range n.Fields {
			n.byName[f.Name] = i
			st[i] = arrowField(f)
		}
		n.Arrow = arrow.StructOf(st...)
	case logschema.TypeArray:
		if v.Element == nil {
			return nil, fmt.Errorf("field %s: array without element", path)
		}
		// Indicators written on an array apply to its elements.
		elem := *v.Element
		elem.Indicators = append(slices.Clone(v.Indicators), elem.Indicators...)
		e, err := c.compileValue("element", path+"[]", &elem, kinds)
		if err != nil {
			return nil, err
		}
		n.Elem = e
		n.Arrow = arrow.ListOfField(arrow.Field{Name: "element", Type: e.Arrow, Nullable: true, Metadata: arrowField(e).Metadata})
		return n, nil
	default:
		return nil, fmt.Errorf("field %s: unknown type %q", path, v.Type)
	}
	if v.Type != logschema.TypeArray {
		for _, name := range v.Indicators {
			sc, ok := indicator.Lookup(name)
			if !ok {
				return nil, fmt.Errorf("field %s: unknown indicator %q", path, name)
			}
			n.Scanners = append(n.Scanners, sc)
			for _, k := range sc.Kinds() {
				kinds[k] = true
			}
		}
	}
	if val := v.Validate; val != nil {
		n.Allow = val.Allow
		n.Deny = val.Deny
		n.IPKind, n.CIDRKind = val.IP, val.CIDR
	}
	return n, nil
}

// contains reports whether v is one of vals (lists are short: a loop beats hashing).
func contains(vals []string, v []byte) bool {
	for _, x := range vals {
		if x == string(v) {
			return true
		}
	}
	return false
}

// CheckValue applies the node's validate rules to a scalar value's text.
func (n *Node) CheckValue(v []byte) error {
	if n.Allow != nil && !contains(n.Allow, v) {
		return fmt.Errorf("field %s: value %q is not allowed", n.Path, v)
	}
	if n.Deny != nil && contains(n.Deny, v) {
		return fmt.Errorf("field %s: value %q is denied", n.Path, v)
	}
	if n.IPKind != "" {
		a, err := netip.ParseAddr(string(v))
		if err != nil || !ipKind(a, n.IPKind) {
			return fmt.Errorf("field %s: %q is not an %s address", n.Path, v, n.IPKind)
		}
	}
	if n.CIDRKind != "" {
		p, err := netip.ParsePrefix(string(v))
		if err != nil || !ipKind(p.Addr(), n.CIDRKind) {
			return fmt.Errorf("field %s: %q is not an %s CIDR", n.Path, v, n.CIDRKind)
		}
	}
	return nil
}

// HasChecks reports whether CheckValue can reject values.
func (n *Node) HasChecks() bool {
	return n.Allow != nil || n.Deny != nil || n.IPKind != "" || n.CIDRKind != ""
}

func ipKind(a netip.Addr, kind string) bool {
	switch kind {
	case "ipv4":
		return a.Is4()
	case "ipv6":
		return a.Is6() && !a.Is4In6()
	}
	return true
}
