package logtypes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// Classifier orders the candidate log types of a record, most likely first, so that a record
// is parsed by the log type it belongs to among many (osprey ingest without --log-type has
// every built-in type as a candidate, and many JSON types require few fields, or none).
//
// A JSON object record is matched by its top-level keys, read once (without regard to case, and
// Panther's at_sign_x as @x, as the JSON parser reads them): a JSON log type is a candidate when
// the record has every required top-level field of the type and when more than half of the
// record's keys (p_ fields left out) are fields of the type (for a type that requires nothing,
// three quarters and at least three). Candidates are ranked by the number of the record's keys
// they do not know, then by the number they know, then by the number of fields they require
// (the more specific first), then the last winner first. The types whose records are not JSON
// follow (a native parser may read JSON too), as they are tried for any other record: the last
// winner first, the types of generic formats that others refine (syslog) last.
//
// A Classifier is not safe for concurrent use.
type Classifier struct {
	types   []*LogType
	text    []int // the types whose records are not JSON objects, last winner first
	generic []int // the text types of formats others refine, tried after text
	json    []int // the JSON types
	// fields and required map a lower-cased top-level field name (or the name a rename takes
	// a value from) to the JSON types that have it, and that require it.
	fields   map[string][]int32
	required map[string][]int32
	nreq     []int32 // number of required top-level fields of each type
	lastJSON int     // the last JSON type that won, -1 if none

	// per record
	stamp, known, reqs []int32
	round              int32
	touched            []int32
	order              []int
	keys               [][]byte
	lower              []byte
}

// NewClassifier returns a classifier of records among log types; the indices it returns are
// into types.
func NewClassifier(types []*LogType) *Classifier {
	c := &Classifier{types: types, fields: map[string][]int32{}, required: map[string][]int32{},
		nreq: make([]int32, len(types)), stamp: make([]int32, len(types)), known: make([]int32, len(types)),
		reqs: make([]int32, len(types)), lastJSON: -1}
	for i, t := range types {
		if t.Generic() {
			c.generic = append(c.generic, i)
			continue
		}
		if !t.ReadsJSON() {
			c.text = append(c.text, i)
			continue
		}
		c.json = append(c.json, i)
		seen := map[string]bool{}
		// add indexes a key of the type; a required one counts once, under either of its keys.
		add := func(name string, req bool) {
			k := strings.ToLower(name)
			if !seen[k] {
				seen[k] = true
				c.fields[k] = append(c.fields[k], int32(i))
			}
			if req {
				c.required[k] = append(c.required[k], int32(i))
			}
		}
		for j := range t.Schema.Fields {
			f := &t.Schema.Fields[j]
			req := f.Required && !t.filled(f)
			if req {
				c.nreq[i]++
			}
			add(f.Name, req)
			if key, ok := logschema.PantherKey(f.Name); ok {
				add(key, req) // the field's name in Panther's rows
			}
			if f.Rename != nil {
				add(f.Rename.From, false)
			}
		}
	}
	return c
}

// IsJSONObject reports whether a record is a JSON object (its first byte that is not space is
// '{').
func IsJSONObject(rec []byte) bool {
	for _, b := range rec {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// Candidates returns the indices of the log types to try for a record, best first. The slice
// is reused by the next call.
func (c *Classifier) Candidates(rec []byte) []int {
	c.order = c.order[:0]
	if !IsJSONObject(rec) || len(c.json) == 0 {
		return append(append(c.order, c.text...), c.generic...)
	}
	keys, ok := stream.TopKeys(rec, c.keys[:0])
	c.keys = keys
	if !ok {
		// Not well-formed JSON: the best parser's error says where.
		if c.lastJSON >= 0 {
			return append(c.order, c.lastJSON)
		}
		return append(c.order, c.json[0])
	}
	c.round++
	if c.round == 0 { // wrapped: clear the stamps
		clear(c.stamp)
		c.round = 1
	}
	c.touched = c.touched[:0]
	n := int32(0)
	for _, k := range keys {
		if len(k) > 2 && k[0] == 'p' && k[1] == '_' {
			continue // Panther's standard fields, in rows exported from Panther
		}
		n++
		c.lower = appendLower(c.lower[:0], k)
		for _, i := range c.fields[string(c.lower)] {
			if c.stamp[i] != c.round {
				c.stamp[i], c.known[i], c.reqs[i] = c.round, 0, 0
				c.touched = append(c.touched, i)
			}
			c.known[i]++
		}
		for _, i := range c.required[string(c.lower)] {
			c.reqs[i]++
		}
	}
	for _, i := range c.touched {
		if c.reqs[i] < c.nreq[i] {
			continue
		}
		// A type that requires nothing has only the keys it knows to go by: most of them.
		if c.nreq[i] == 0 && (c.known[i] < 3 || 4*c.known[i] < 3*n) || 2*c.known[i] <= n {
			continue
		}
		c.order = append(c.order, int(i))
	}
	slices.SortFunc(c.order, func(a, b int) int {
		if ua, ub := n-c.known[a], n-c.known[b]; ua != ub {
			return int(ua - ub)
		}
		if c.known[a] != c.known[b] {
			return int(c.known[b] - c.known[a])
		}
		if c.nreq[a] != c.nreq[b] { // the more demanding type is the more specific
			return int(c.nreq[b] - c.nreq[a])
		}
		if a == c.lastJSON || b == c.lastJSON {
			if a == c.lastJSON {
				return -1
			}
			return 1
		}
		return a - b
	})
	// Some parsers of other formats read JSON too (auditd lines wrapped by Fluent Bit).
	return append(append(c.order, c.text...), c.generic...)
}

// Won tells the classifier which log type took the last record.
func (c *Classifier) Won(i int) {
	if toFront(c.text, i) || toFront(c.generic, i) {
		return
	}
	c.lastJSON = i
}

// toFront moves i to the front of list, if it is there.
func toFront(list []int, i int) bool {
	j := slices.Index(list, i)
	if j < 0 {
		return false
	}
	copy(list[1:j+1], list[:j])
	list[0] = i
	return true
}

// NoneTakes explains why no log type took a JSON record that no JSON type was a candidate
// for: the type that knows most of its keys, and the required field it lacks.
func (c *Classifier) NoneTakes() string {
	best := int32(-1)
	for _, i := range c.touched {
		if c.stamp[i] == c.round && (best < 0 || c.known[i] > c.known[best]) {
			best = i
		}
	}
	if best < 0 {
		return fmt.Sprintf("no log type has the record's fields (%d JSON log types)", len(c.json))
	}
	t := c.types[best]
	for j := range t.Schema.Fields {
		f := &t.Schema.Fields[j]
		if f.Required && !t.filled(f) && !c.hasKey(f.Name) {
			return fmt.Sprintf("no log type takes it; the nearest, %s: required field %s is missing", t.Name, f.Name)
		}
	}
	return fmt.Sprintf("no log type takes it; the nearest, %s, knows too few of its fields", t.Name)
}

// hasKey reports whether the last JSON record had a top-level key that fills a field, as the
// parser reads keys.
func (c *Classifier) hasKey(name string) bool {
	for _, k := range c.keys {
		if logschema.ReadsKey(name, string(k)) {
			return true
		}
	}
	return false
}

// NumJSON returns the number of JSON log types among the candidates.
func (c *Classifier) NumJSON() int { return len(c.json) }

func appendLower(dst, s []byte) []byte {
	for _, b := range s {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}

// NumText returns the number of log types among the candidates whose records are not JSON.
func (c *Classifier) NumText() int { return len(c.text) + len(c.generic) }

// filled reports whether a field's value comes from elsewhere than its own key: a
// transformation, or the whole record (Native.Payload).
func (t *LogType) filled(f *logschema.Field) bool {
	return f.Rename != nil || f.Copy != nil || f.Concat != nil || f.Split != nil ||
		t.native != nil && t.native.Payload == f.Name
}

// SameShape are groups of built-in log types whose records have one shape: no classifier can
// tell them apart, so a source of one of them should name its log type.
var SameShape = [][]string{
	{"Apache.AccessCombined", "Nginx.Access"},                                   // nginx's default format is Apache's combined
	{"Apache.AccessCommon", "Fastly.Access"},                                    // Fastly's access log line is the common format
	{"PushSecurity.Activity", "PushSecurity.Controls", "PushSecurity.Entities"}, // one webhook envelope
	{"Snyk.GroupAudit", "Snyk.OrgAudit"},                                        // one audit log entry shape
	{"Azure.Audit", "Azure.MonitorActivity"},                                    // Azure Monitor's diagnostic log envelope
}

// SameShapeAs reports whether two log types are of a group of SameShape.
func SameShapeAs(a, b string) bool {
	for _, g := range SameShape {
		if slices.Contains(g, a) && slices.Contains(g, b) {
			return true
		}
	}
	return false
}
