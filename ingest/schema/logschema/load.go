package logschema

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/ospreyhq/osprey/ingest/parse/timefmt"
)

// LoadFile reads and checks the schema in a file.
func LoadFile(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads and checks a schema; file names the source in error messages.
// Every problem found is returned, joined, each as an *Error with its line.
func Parse(data []byte, file string) (*Schema, error) {
	var s Schema
	if err := yaml.UnmarshalWithOptions(data, &s, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(file, err)
	}
	s.File = file
	if s.Line == 0 {
		s.Line = 1
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// UnmarshalYAML records the line of the field so that errors can point at it.
func (f *Field) UnmarshalYAML(node ast.Node) error {
	type plain Field // plain has no methods, so decoding it does not recurse here
	var p plain
	if err := yaml.NodeToValue(node, &p, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*f = Field(p)
	f.Line = node.GetToken().Position.Line
	return nil
}

// UnmarshalYAML records the line of the parser so that errors can point at it.
func (p *Parser) UnmarshalYAML(node ast.Node) error {
	type plain Parser
	var q plain
	if err := yaml.NodeToValue(node, &q, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*p = Parser(q)
	p.Line = node.GetToken().Position.Line
	return nil
}

func yamlError(file string, err error) error {
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		line := 0
		if tk := yerr.GetToken(); tk != nil {
			line = tk.Position.Line
		}
		return &Error{File: file, Line: line, Msg: yerr.GetMessage()}
	}
	return &Error{File: file, Msg: err.Error()}
}

var (
	schemaNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$`)
	fieldNameRE  = regexp.MustCompile(`^[A-Za-z_@$][A-Za-z0-9_@$.:\-]*$`)
)

// IndicatorNames are the indicator names a field may carry.
var IndicatorNames = []string{
	"ip", "domain", "hostname", "url", "net_addr", "email", "username", "trace_id", "actor_id",
	"md5", "sha1", "sha256", "aws_arn", "aws_account_id", "aws_instance_id", "aws_tag", "mac",
	"serial_number",
}

// Validate checks the schema and returns every mistake found, joined.
func (s *Schema) Validate() error {
	c := checker{file: s.File}
	switch {
	case s.Schema == "":
		c.errorf(s.Line, "missing schema name (schema: Vendor.Type)")
	case !schemaNameRE.MatchString(s.Schema):
		c.errorf(s.Line, "invalid schema name %q: want dot-separated words such as Custom.MyApp", s.Schema)
	}
	if s.Parser != nil {
		line := s.Parser.Line
		if line == 0 {
			line = s.Line
		}
		c.parser(line, s.Parser)
	}
	if len(s.Fields) == 0 {
		c.errorf(s.Line, "schema %s has no fields", s.Schema)
	}
	c.fields(s.Fields, "", true)
	return errors.Join(c.errs...)
}

type checker struct {
	file string
	errs []error
}

func (c *checker) errorf(line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) parser(line int, p *Parser) {
	n := 0
	if p.Native != nil {
		n++
		if p.Native.Name == "" {
			c.errorf(line, "parser.native needs a name")
		}
	}
	if p.FastMatch != nil {
		n++
		if len(p.FastMatch.Match) == 0 {
			c.errorf(line, "parser.fastmatch needs at least one pattern in match")
		}
	}
	if p.Regex != nil {
		n++
		if len(p.Regex.Match) == 0 {
			c.errorf(line, "parser.regex needs at least one pattern in match")
		}
	}
	if p.CSV != nil {
		n++
		if !p.CSV.HasHeader && len(p.CSV.Columns) == 0 {
			c.errorf(line, "parser.csv needs columns or hasHeader: true")
		}
		if len([]rune(p.CSV.Delimiter)) > 1 {
			c.errorf(line, "parser.csv delimiter %q must be a single character", p.CSV.Delimiter)
		}
	}
	if n > 1 {
		c.errorf(line, "parser must name exactly one of native, fastmatch, regex, csv")
	}
}

func (c *checker) fields(fields []Field, path string, top bool) {
	seen := make(map[string]int, len(fields))
	for i := range fields {
		f := &fields[i]
		name := path + f.Name
		switch {
		case f.Name == "":
			c.errorf(f.Line, "field without a name")
			continue
		case !fieldNameRE.MatchString(f.Name):
			c.errorf(f.Line, "invalid field name %q", name)
		case top && strings.HasPrefix(strings.ToLower(f.Name), "p_"):
			c.errorf(f.Line, "field %q: names starting with p_ are reserved for standard fields", name)
		}
		// DuckDB, Athena and Spark resolve column names without regard to case.
		key := strings.ToLower(f.Name)
		if first, dup := seen[key]; dup {
			c.errorf(f.Line, "field %q repeats the field on line %d (names are case-insensitive)", name, first)
		}
		seen[key] = f.Line
		c.value(f.Line, name, &f.Value)
	}
}

func (c *checker) value(line int, name string, v *Value) {
	switch v.Type {
	case TypeString, TypeInt, TypeSmallInt, TypeBigInt, TypeFloat, TypeBoolean, TypeTimestamp:
	case TypeJSON:
		// An Osprey extension: a json field may list keys of its objects to scan for
		// indicators; the column still holds the whole JSON text.
		c.fields(v.Fields, name+".", false)
	case TypeObject:
		if len(v.Fields) == 0 {
			c.errorf(line, "field %q: an object needs fields", name)
		}
		c.fields(v.Fields, name+".", false)
	case TypeArray:
		if v.Element == nil {
			c.errorf(line, "field %q: an array needs an element type", name)
		} else {
			c.value(line, name+"[]", v.Element)
		}
	case "":
		c.errorf(line, "field %q has no type", name)
		return
	default:
		c.errorf(line, "field %q: unknown type %q (want string, int, smallint, bigint, float, boolean, timestamp, object, array or json)", name, v.Type)
		return
	}
	if v.Type != TypeObject && v.Type != TypeJSON && len(v.Fields) > 0 {
		c.errorf(line, "field %q: only objects (and json, for indicators) have fields", name)
	}
	if v.Type != TypeArray && v.Element != nil {
		c.errorf(line, "field %q: only arrays have an element", name)
	}
	if v.Type == TypeTimestamp {
		if len(v.Formats()) == 0 {
			c.errorf(line, "field %q: a timestamp needs timeFormat or timeFormats", name)
		}
		for _, f := range v.Formats() {
			if err := CheckTimeFormat(f); err != nil {
				c.errorf(line, "field %q: %v", name, err)
			}
		}
	} else {
		if len(v.Formats()) > 0 {
			c.errorf(line, "field %q: only timestamps have a time format", name)
		}
		if v.IsEventTime {
			c.errorf(line, "field %q: isEventTime is only valid on timestamps", name)
		}
	}
	for _, ind := range v.Indicators {
		if !isIndicator(ind) {
			c.errorf(line, "field %q: unknown indicator %q (want one of %s)", name, ind, strings.Join(IndicatorNames, ", "))
		}
	}
	if len(v.Indicators) > 0 {
		elem := v
		if v.Type == TypeArray && v.Element != nil {
			elem = v.Element
		}
		switch elem.Type {
		case TypeString, TypeInt, TypeBigInt, TypeJSON:
		default:
			c.errorf(line, "field %q: indicators apply to strings (or arrays of strings, or json values: every string inside), not %s", name, elem.Type)
		}
	}
	if v.IsEmbeddedJSON && v.Type != TypeObject && v.Type != TypeArray && v.Type != TypeJSON {
		c.errorf(line, "field %q: isEmbeddedJSON is only valid on objects, arrays and json", name)
	}
	if val := v.Validate; val != nil {
		if !v.Type.Scalar() {
			c.errorf(line, "field %q: validate applies to scalar values", name)
		}
		for _, kind := range []string{val.IP, val.CIDR} {
			switch kind {
			case "", "ipv4", "ipv6", "any":
			default:
				c.errorf(line, "field %q: validate ip/cidr must be ipv4, ipv6 or any, not %q", name, kind)
			}
		}
	}
	if m := v.Mask; m != nil {
		switch m.Type {
		case "", "redact", "md5", "sha1", "sha256":
		default:
			c.errorf(line, "field %q: mask type must be redact, md5, sha1 or sha256, not %q", name, m.Type)
		}
	}
	if s := v.Split; s != nil && s.Separator == "" {
		c.errorf(line, "field %q: split needs a separator", name)
	}
	if s := v.Split; s != nil && s.From == "" {
		c.errorf(line, "field %q: split needs from", name)
	}
	if cc := v.Concat; cc != nil && len(cc.Paths) == 0 {
		c.errorf(line, "field %q: concat needs paths", name)
	}
	if r := v.Rename; r != nil && r.From == "" {
		c.errorf(line, "field %q: rename needs from", name)
	}
	if cp := v.Copy; cp != nil && cp.From == "" {
		c.errorf(line, "field %q: copy needs from", name)
	}
	sources := 0
	for _, set := range []bool{v.Rename != nil, v.Copy != nil, v.Concat != nil, v.Split != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		c.errorf(line, "field %q: rename, copy, concat and split each say where the value comes from: use one", name)
	}
	// rename and copy move a value as it is; the others make text.
	if (v.Concat != nil || v.Split != nil || v.Mask != nil) && v.Type != TypeString {
		c.errorf(line, "field %q: concat, split and mask make strings: the field must be a string, not %s", name, v.Type)
	}
}

func isIndicator(name string) bool {
	for _, n := range IndicatorNames {
		if n == name {
			return true
		}
	}
	return false
}

// CheckTimeFormat reports whether a time format is one the schema language knows.
func CheckTimeFormat(f string) error {
	switch {
	case f == "rfc3339", f == "unix", f == "unix_ms", f == "unix_us", f == "unix_ns", f == "cloudflare":
		return nil
	case strings.HasPrefix(f, "layout="):
		if strings.TrimPrefix(f, "layout=") == "" {
			return fmt.Errorf("empty Go layout in time format %q", f)
		}
		return nil
	case strings.Contains(f, "%"):
		return checkStrftime(f)
	}
	return fmt.Errorf("unknown time format %q (want rfc3339, unix, unix_ms, unix_us, unix_ns, cloudflare, a strftime pattern or layout=<Go layout>)", f)
}

func checkStrftime(f string) error {
	_, err := timefmt.Compile(f)
	return err
}
