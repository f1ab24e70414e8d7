// Package infer writes a log schema for sample JSON records, as a starting point for a custom
// log type (osprey schema infer).
//
// Every record is read and each field's type is widened until it fits every value seen: int
// and float make float, a number or boolean with a string makes string, an object or array with
// a scalar makes json. Strings that are all timestamps of one known format become timestamps, the
// first top-level one the event time; numbers named like times (time, ts, *_at...) with values
// of plausible Unix seconds or milliseconds become timestamps too. String values that are all IP
// addresses, URLs, email addresses, ARNs, hashes or MAC addresses get the matching indicator.
// Top-level fields with a value (not null, not "") in every record (of two or more) are required.
package infer

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/ospreyhq/osprey/ingest/parse/timefmt"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Inferrer accumulates the shape of records.
type Inferrer struct {
	root    *node
	records int
	p       fastjson.Parser
	skipped map[string]bool // keys that cannot be field names
}

// New returns an empty inferrer.
func New() *Inferrer { return &Inferrer{root: newNode(), skipped: map[string]bool{}} }

// kind is a JSON value's type, widened.
type kind int

const (
	kNone kind = iota // only nulls seen
	kBool
	kInt
	kFloat
	kString
	kObject
	kArray
	kJSON
)

type node struct {
	kind    kind
	seen    int // records (or elements) with a value (not null, not an empty string)
	fields  map[string]*node
	order   []string
	elem    *node
	strs    stringStats
	numbers numberStats
}

// stringStats tracks which formats every non-empty string value of a field had.
type stringStats struct {
	n                        int
	times                    []bool // per candidate time format, all values parse
	ip, url, email, arn, mac bool
	md5, sha1, sha256        bool
	started                  bool
}

type numberStats struct {
	min, max float64
	started  bool
	fraction bool
}

func newNode() *node { return &node{fields: map[string]*node{}} }

// timeFormats are the string time formats tried, in order of preference.
var timeFormats = []string{
	"rfc3339",
	"%Y-%m-%d %H:%M:%S.%f",
	"%Y-%m-%d %H:%M:%S",
	"%Y-%m-%dT%H:%M:%S.%f",
	"%Y-%m-%dT%H:%M:%S",
	"%d/%b/%Y:%H:%M:%S %z",
	"%a %b %d %H:%M:%S %Y",
	"%b %d %H:%M:%S",
}

var timeParsers = func() []timefmt.Parser {
	ps := make([]timefmt.Parser, len(timeFormats))
	for i, f := range timeFormats {
		p, err := timefmt.Compile(f)
		if err != nil {
			panic("BUG: time format " + f + ": " + err.Error())
		}
		ps[i] = p
	}
	return ps
}()

// Add reads one JSON record.
func (in *Inferrer) Add(rec []byte) error {
	v, err := in.p.ParseBytes(rec)
	if err != nil {
		return err
	}
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf("a JSON %s is not an object", v.Type())
	}
	in.records++
	in.merge(in.root, v, "")
	return nil
}

// Records returns the number of records read.
func (in *Inferrer) Records() int { return in.records }

// Skipped returns the keys left out because they cannot be field names.
func (in *Inferrer) Skipped() []string {
	var out []string
	for k := range in.skipped {
		out = append(out, k)
	}
	return out
}

var fieldName = regexp.MustCompile(`^[A-Za-z_@$][A-Za-z0-9_@$.:\-]*$`)

func (in *Inferrer) merge(n *node, v *fastjson.Value, path string) {
	switch v.Type() {
	case fastjson.TypeNull:
		return
	case fastjson.TypeTrue, fastjson.TypeFalse:
		n.widen(kBool)
	case fastjson.TypeNumber:
		f := v.GetFloat64()
		text := v.String()
		isInt := !strings.ContainsAny(text, ".eE")
		if isInt {
			n.widen(kInt)
		} else {
			n.widen(kFloat)
		}
		n.numbers.add(f, !isInt)
	case fastjson.TypeString:
		n.widen(kString)
		n.strs.add(v.GetStringBytes())
	case fastjson.TypeObject:
		n.widen(kObject)
		if n.kind == kObject {
			obj, _ := v.Object()
			obj.Visit(func(key []byte, val *fastjson.Value) {
				k := string(key)
				if !fieldName.MatchString(k) || path == "" && strings.HasPrefix(strings.ToLower(k), "p_") {
					in.skipped[path+k] = true
					return
				}
				child, ok := n.fields[k]
				if !ok {
					// Names are case-insensitive in the lake: the first spelling wins.
					for _, other := range n.order {
						if strings.EqualFold(other, k) {
							in.skipped[path+k] = true
							return
						}
					}
					child = newNode()
					n.fields[k] = child
					n.order = append(n.order, k)
				}
				if present(val) {
					child.seen++
				}
				in.merge(child, val, path+k+".")
			})
		}
	case fastjson.TypeArray:
		n.widen(kArray)
		if n.kind == kArray {
			if n.elem == nil {
				n.elem = newNode()
			}
			arr, _ := v.Array()
			for _, e := range arr {
				if present(e) {
					n.elem.seen++
				}
				in.merge(n.elem, e, path)
			}
		}
	}
}

// widen makes the node's kind fit a value of kind k.
func (n *node) widen(k kind) {
	switch {
	case n.kind == kNone || n.kind == k:
		n.kind = k
	case n.kind == kJSON:
	case (n.kind == kInt && k == kFloat) || (n.kind == kFloat && k == kInt):
		n.kind = kFloat
	case n.kind == kObject || n.kind == kArray || k == kObject || k == kArray:
		n.kind = kJSON
	default: // scalars of different kinds
		n.kind = kString
	}
}

func (s *stringStats) add(v []byte) {
	if len(v) == 0 {
		return
	}
	s.n++
	str := string(v)
	if !s.started {
		s.started = true
		s.times = make([]bool, len(timeParsers))
		for i := range s.times {
			s.times[i] = true
		}
		s.ip, s.url, s.email, s.arn, s.mac, s.md5, s.sha1, s.sha256 = true, true, true, true, true, true, true, true
	}
	for i, p := range timeParsers {
		if s.times[i] {
			if _, err := p.Parse(v); err != nil {
				s.times[i] = false
			}
		}
	}
	if s.ip {
		_, err := netip.ParseAddr(str)
		s.ip = err == nil
	}
	if s.url {
		u, err := url.Parse(str)
		s.url = err == nil && u.Scheme != "" && u.Host != ""
	}
	if s.email {
		at := strings.IndexByte(str, '@')
		s.email = at > 0 && at < len(str)-3 && strings.Contains(str[at:], ".") && !strings.ContainsAny(str, " /:")
	}
	if s.arn {
		s.arn = strings.HasPrefix(str, "arn:") && strings.Count(str, ":") >= 5
	}
	if s.mac {
		_, err := net.ParseMAC(str)
		s.mac = err == nil && strings.ContainsAny(str, ":-")
	}
	s.md5 = s.md5 && isHex(v, 32)
	s.sha1 = s.sha1 && isHex(v, 40)
	s.sha256 = s.sha256 && isHex(v, 64)
}

func isHex(v []byte, n int) bool {
	if len(v) != n {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *numberStats) add(f float64, fraction bool) {
	if !s.started || f < s.min {
		s.min = f
	}
	if !s.started || f > s.max {
		s.max = f
	}
	s.started = true
	s.fraction = s.fraction || fraction
}

// timeName reports whether a field's name says it holds a time.
func timeName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"time", "timestamp", "date", "ts", "@timestamp"} {
		if n == w {
			return true
		}
	}
	return strings.HasSuffix(n, "time") || strings.HasSuffix(n, "_at") || strings.HasSuffix(n, "timestamp") ||
		strings.HasSuffix(n, "date") || strings.HasSuffix(n, "_ts")
}

// Schema returns the inferred schema, named name (such as Custom.MyApp).
func (in *Inferrer) Schema(name string) *logschema.Schema {
	s := &logschema.Schema{Schema: name, Description: fmt.Sprintf("Inferred from %d sample records.", in.records)}
	eventTime := false
	s.Fields = in.fields(in.root, true, &eventTime)
	return s
}

func (in *Inferrer) fields(n *node, top bool, eventTime *bool) []logschema.Field {
	var out []logschema.Field
	for _, name := range n.order {
		child := n.fields[name]
		f := logschema.Field{Name: name, Value: in.value(child, name, top, eventTime)}
		if top && in.records >= 2 && child.seen == in.records {
			f.Required = true
		}
		out = append(out, f)
	}
	return out
}

func (in *Inferrer) value(n *node, name string, top bool, eventTime *bool) logschema.Value {
	switch n.kind {
	case kBool:
		return logschema.Value{Type: logschema.TypeBoolean}
	case kInt, kFloat:
		if timeName(name) {
			if f := unixFormat(n.numbers); f != "" {
				v := logschema.Value{Type: logschema.TypeTimestamp, TimeFormat: f}
				if top && !*eventTime {
					v.IsEventTime, *eventTime = true, true
				}
				return v
			}
		}
		if n.kind == kFloat {
			return logschema.Value{Type: logschema.TypeFloat}
		}
		return logschema.Value{Type: logschema.TypeBigInt}
	case kString:
		st := n.strs
		// Numbers seen with the strings must be Unix times for the field to be a timestamp.
		numFormat := ""
		if n.numbers.started {
			numFormat = unixFormat(n.numbers)
		}
		if st.n > 0 && (!n.numbers.started || numFormat != "") {
			for i, ok := range st.times {
				if ok {
					v := logschema.Value{Type: logschema.TypeTimestamp, TimeFormat: timeFormats[i]}
					if numFormat != "" {
						v.TimeFormat, v.TimeFormats = "", []string{timeFormats[i], numFormat}
					}
					if top && !*eventTime {
						v.IsEventTime, *eventTime = true, true
					}
					return v
				}
			}
		}
		v := logschema.Value{Type: logschema.TypeString}
		if st.n > 0 {
			for _, ind := range []struct {
				ok   bool
				name string
			}{{st.ip, "ip"}, {st.url, "url"}, {st.email, "email"}, {st.arn, "aws_arn"}, {st.mac, "mac"},
				{st.md5, "md5"}, {st.sha1, "sha1"}, {st.sha256, "sha256"}} {
				if ind.ok {
					v.Indicators = append(v.Indicators, ind.name)
					break
				}
			}
		}
		return v
	case kObject:
		if len(n.order) == 0 {
			return logschema.Value{Type: logschema.TypeJSON}
		}
		return logschema.Value{Type: logschema.TypeObject, Fields: in.fields(n, false, eventTime)}
	case kArray:
		if n.elem == nil || n.elem.kind == kNone {
			return logschema.Value{Type: logschema.TypeJSON}
		}
		e := in.value(n.elem, name, false, new(bool))
		if e.Type == logschema.TypeTimestamp {
			e.IsEventTime = false
		}
		return logschema.Value{Type: logschema.TypeArray, Element: &e}
	case kJSON, kNone:
		return logschema.Value{Type: logschema.TypeJSON}
	}
	panic(fmt.Sprintf("BUG: kind %d", n.kind))
}

// unixFormat returns the Unix time format whose range holds every value (2001 to 2286), or "".
func unixFormat(s numberStats) string {
	switch {
	case !s.started:
		return ""
	case s.min >= 1e9 && s.max < 1e10:
		return "unix"
	case s.min >= 1e12 && s.max < 1e13 && !s.fraction:
		return "unix_ms"
	case s.min >= 1e15 && s.max < 1e16 && !s.fraction:
		return "unix_us"
	case s.min >= 1e18 && !s.fraction:
		return "unix_ns"
	}
	return ""
}

// YAML writes a schema in Panther's log schema format.
func YAML(s *logschema.Schema) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "schema: %s\n", s.Schema)
	if s.Description != "" {
		fmt.Fprintf(&b, "description: %s\n", quote(s.Description))
	}
	b.WriteString("fields:\n")
	writeFields(&b, s.Fields, "  ")
	return b.Bytes()
}

func writeFields(b *bytes.Buffer, fields []logschema.Field, indent string) {
	for _, f := range fields {
		fmt.Fprintf(b, "%s- name: %s\n", indent, quote(f.Name))
		if f.Required {
			fmt.Fprintf(b, "%s  required: true\n", indent)
		}
		writeValue(b, &f.Value, indent+"  ")
	}
}

func writeValue(b *bytes.Buffer, v *logschema.Value, indent string) {
	fmt.Fprintf(b, "%stype: %s\n", indent, v.Type)
	if v.TimeFormat != "" {
		fmt.Fprintf(b, "%stimeFormat: %s\n", indent, quote(v.TimeFormat))
	}
	if len(v.TimeFormats) > 0 {
		quoted := make([]string, len(v.TimeFormats))
		for i, f := range v.TimeFormats {
			quoted[i] = quote(f)
		}
		fmt.Fprintf(b, "%stimeFormats: [%s]\n", indent, strings.Join(quoted, ", "))
	}
	if v.IsEventTime {
		fmt.Fprintf(b, "%sisEventTime: true\n", indent)
	}
	if len(v.Indicators) > 0 {
		fmt.Fprintf(b, "%sindicators: [%s]\n", indent, strings.Join(v.Indicators, ", "))
	}
	if len(v.Fields) > 0 {
		fmt.Fprintf(b, "%sfields:\n", indent)
		writeFields(b, v.Fields, indent+"  ")
	}
	if v.Element != nil {
		fmt.Fprintf(b, "%selement:\n", indent)
		writeValue(b, v.Element, indent+"  ")
	}
}

// quote quotes a YAML scalar when it would not read back as the same string.
func quote(s string) string {
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		return fmt.Sprintf("%q", s) // words YAML 1.1 reads as booleans or null
	}
	if s == "" || strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`") || s != strings.TrimSpace(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// present reports whether v counts as a value for a required field: the parsers refuse null
// and the empty string there.
func present(v *fastjson.Value) bool {
	switch v.Type() {
	case fastjson.TypeNull:
		return false
	case fastjson.TypeString:
		return len(v.GetStringBytes()) > 0
	}
	return true
}
