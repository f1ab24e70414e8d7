package detections

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// The spec reader walks the YAML syntax tree itself instead of decoding into structs, so that it
// can report every unknown key and every value of the wrong type, each with its line, rather
// than stopping at the first (as yaml.DisallowUnknownField does).

// reader reads the nodes of one file and collects its errors.
type reader struct {
	file    string
	errs    []*Error
	anchors map[string]ast.Node
}

func (r *reader) errorf(line int, format string, args ...any) {
	r.errs = append(r.errs, &Error{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlError turns an error of the YAML library into an *Error.
func yamlError(file string, err error) *Error {
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

// collectAnchors records the anchors of a document so that aliases can be resolved.
func (r *reader) collectAnchors(n ast.Node) {
	r.anchors = map[string]ast.Node{}
	ast.Walk(visitor(func(n ast.Node) {
		if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil {
			r.anchors[a.Name.GetToken().Value] = a.Value
		}
	}), n)
}

type visitor func(ast.Node)

func (v visitor) Visit(n ast.Node) ast.Visitor {
	v(n)
	return v
}

// resolve follows anchors, aliases and tags to the node that holds the value. strTag says that
// a !!str tag was seen: the scalar is then a string whatever it looks like.
func (r *reader) resolve(n ast.Node) (_ ast.Node, strTag bool) {
	for i := 0; i < 100 && n != nil; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			target, ok := r.anchors[v.Value.GetToken().Value]
			if !ok {
				return n, strTag
			}
			n = target
		case *ast.TagNode:
			if v.Start != nil && v.Start.Value == "!!str" {
				strTag = true
			}
			n = v.Value
		default:
			return n, strTag
		}
	}
	return n, strTag
}

func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// kind names the type of a node's value for error messages.
func kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.AliasNode:
		return "an alias to an unknown anchor"
	}
	return n.Type().String()
}

func isScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.NullNode, *ast.StringNode, *ast.LiteralNode, *ast.IntegerNode, *ast.FloatNode,
		*ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return true
	}
	return false
}

func isNull(n ast.Node) bool {
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

// keyString returns the text of a mapping key.
func keyString(k ast.Node) string {
	switch v := k.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.MappingKeyNode:
		return keyString(v.Value)
	case *ast.LiteralNode:
		return v.Value.Value
	case nil:
		return ""
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return k.String()
}

// entry is one key of a mapping.
type entry struct {
	keyLine int
	value   ast.Node
}

// mapNode is a mapping of a spec: a spec file's top level, a Schedule or a test.
type mapNode struct {
	r       *reader
	line    int    // the line where the mapping starts
	prefix  string // what the mapping is in messages: "" at the top, "Schedule: ", "Tests[0]: "
	entries map[string]entry
	order   []string // keys as written (merged keys last)
}

// mapping reads a mapping node, following merge keys (<<). It returns nil if n is not a mapping.
func (r *reader) mapping(n ast.Node, prefix string) *mapNode {
	n, _ = r.resolve(n)
	mn, ok := n.(*ast.MappingNode)
	if !ok {
		return nil
	}
	m := &mapNode{r: r, line: line(mn), prefix: prefix, entries: map[string]entry{}}
	if len(mn.Values) > 0 {
		m.line = line(mn.Values[0].Key)
	}
	var merges []ast.Node
	for _, mv := range mn.Values {
		if mv.Key.IsMergeKey() {
			merges = append(merges, mv.Value)
			continue
		}
		k := keyString(mv.Key)
		m.entries[k] = entry{keyLine: line(mv.Key), value: mv.Value}
		m.order = append(m.order, k)
	}
	// Merged keys never override the mapping's own keys, nor earlier merged keys.
	for _, mg := range merges {
		mg, _ = r.resolve(mg)
		var srcs []ast.Node
		if seq, ok := mg.(*ast.SequenceNode); ok {
			srcs = seq.Values
		} else {
			srcs = []ast.Node{mg}
		}
		for _, src := range srcs {
			sub := r.mapping(src, prefix)
			if sub == nil {
				r.errorf(line(src), "%smerge key (<<) needs a mapping, not %s", prefix, kind(src))
				continue
			}
			for _, k := range sub.order {
				if _, dup := m.entries[k]; !dup {
					m.entries[k] = sub.entries[k]
					m.order = append(m.order, k)
				}
			}
		}
	}
	return m
}

// keyHints explain keys that Panther knows and Osprey does not.
var keyHints = map[string]string{
	"Filename":  "Osprey detections are SQL: put the query in Query",
	"Detection": "Osprey detections are SQL: put the query in Query",
}

// checkKeys reports every key that is not one of known, with a hint from hints or keyHints
// where there is one.
func (m *mapNode) checkKeys(known []string, hints map[string]string) {
	for _, k := range m.order {
		if contains(known, k) {
			continue
		}
		hint := ""
		if h, ok := hints[k]; ok {
			hint = " (" + h + ")"
		} else if h, ok := keyHints[k]; ok {
			hint = " (" + h + ")"
		} else {
			for _, kk := range known {
				if strings.EqualFold(k, kk) {
					hint = fmt.Sprintf(" (did you mean %s?)", kk)
					break
				}
			}
		}
		m.r.errorf(m.entries[k].keyLine, "%sunknown key %q%s", m.prefix, k, hint)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// get returns the value of key; a null value counts as absent.
func (m *mapNode) get(key string) (entry, bool) {
	e, ok := m.entries[key]
	if !ok {
		return e, false
	}
	if v, _ := m.r.resolve(e.value); isNull(v) {
		return e, false
	}
	return e, true
}

func (m *mapNode) missing(key string) {
	m.r.errorf(m.line, "%smissing required key %s", m.prefix, key)
}

func (m *mapNode) wrongType(key string, e entry, want string) {
	v, _ := m.r.resolve(e.value)
	l := line(v)
	if l == 0 {
		l = e.keyLine
	}
	m.r.errorf(l, "%s%s: want %s, got %s", m.prefix, key, want, kind(v))
}

// scalarString returns the text of a string node.
func (r *reader) scalarString(n ast.Node) (string, bool) {
	n, strTag := r.resolve(n)
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	if strTag && isScalar(n) && n.GetToken() != nil {
		return n.GetToken().Value, true
	}
	return "", false
}

// str returns the string value of key. present is false when the key is absent or null, or
// when its value has the wrong type (which is reported).
func (m *mapNode) str(key string) (s string, e entry, present bool) {
	e, ok := m.get(key)
	if !ok {
		return "", e, false
	}
	s, ok = m.r.scalarString(e.value)
	if !ok {
		m.wrongType(key, e, "a string")
		return "", e, false
	}
	return s, e, true
}

// reqStr is str for a required key: an absent key is reported.
func (m *mapNode) reqStr(key string) (string, entry, bool) {
	if _, ok := m.get(key); !ok {
		m.missing(key)
		return "", entry{}, false
	}
	return m.str(key)
}

// integer returns the integer value of key, or def when it is absent.
func (m *mapNode) integer(key string, def int) (int, entry, bool) {
	e, ok := m.get(key)
	if !ok {
		return def, e, false
	}
	v, _ := m.r.resolve(e.value)
	in, ok := v.(*ast.IntegerNode)
	if !ok {
		m.wrongType(key, e, "an integer")
		return def, e, false
	}
	switch x := in.Value.(type) {
	case int64:
		return int(x), e, true
	case uint64:
		if x > math.MaxInt {
			return math.MaxInt, e, true
		}
		return int(x), e, true
	}
	m.wrongType(key, e, "an integer")
	return def, e, false
}

// boolean returns the boolean value of key, or def when it is absent.
func (m *mapNode) boolean(key string, def bool) (bool, entry, bool) {
	e, ok := m.get(key)
	if !ok {
		return def, e, false
	}
	v, _ := m.r.resolve(e.value)
	b, ok := v.(*ast.BoolNode)
	if !ok {
		m.wrongType(key, e, "a boolean (true or false)")
		return def, e, false
	}
	return b.Value, e, true
}

// strList returns the list of strings of key and the line of each.
func (m *mapNode) strList(key string) ([]string, []int, bool) {
	e, ok := m.get(key)
	if !ok {
		return nil, nil, false
	}
	v, _ := m.r.resolve(e.value)
	seq, ok := v.(*ast.SequenceNode)
	if !ok {
		m.wrongType(key, e, "a list of strings")
		return nil, nil, false
	}
	list := make([]string, 0, len(seq.Values))
	lines := make([]int, 0, len(seq.Values))
	good := true
	for i, item := range seq.Values {
		s, ok := m.r.scalarString(item)
		if !ok {
			it, _ := m.r.resolve(item)
			m.r.errorf(line(item), "%s%s[%d]: want a string, got %s", m.prefix, key, i, kind(it))
			good = false
			continue
		}
		list = append(list, s)
		lines = append(lines, line(item))
	}
	return list, lines, good
}

// stringLists returns a mapping of lists of strings (Reports).
func (m *mapNode) stringLists(key string) map[string][]string {
	e, ok := m.get(key)
	if !ok {
		return nil
	}
	sub := m.r.mapping(e.value, m.prefix+key+": ")
	if sub == nil {
		m.wrongType(key, e, "a mapping of lists of strings")
		return nil
	}
	out := make(map[string][]string, len(sub.order))
	for _, k := range sub.order {
		if _, present := sub.get(k); !present {
			out[k] = []string{}
			continue
		}
		if list, _, ok := sub.strList(k); ok {
			out[k] = list
		}
	}
	return out
}

// value converts a node to plain Go values: map[string]any, []any, string, int64, uint64,
// float64, bool and nil, as encoding/json would produce them from the same JSON (but for the
// integer types).
func (r *reader) value(n ast.Node, depth int) (any, error) {
	if depth > 200 {
		return nil, errors.New("nested too deeply (is an alias inside its own anchor?)")
	}
	if s, ok := r.scalarString(n); ok {
		return s, nil
	}
	n, _ = r.resolve(n)
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil, nil
	case *ast.IntegerNode:
		return v.Value, nil
	case *ast.FloatNode:
		return v.Value, nil
	case *ast.BoolNode:
		return v.Value, nil
	case *ast.InfinityNode:
		return v.Value, nil
	case *ast.NanNode:
		return math.NaN(), nil
	case *ast.SequenceNode:
		list := make([]any, 0, len(v.Values))
		for _, item := range v.Values {
			x, err := r.value(item, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		return list, nil
	case *ast.MappingNode:
		m := r.mapping(v, "")
		obj := make(map[string]any, len(m.order))
		for _, k := range m.order {
			x, err := r.value(m.entries[k].value, depth+1)
			if err != nil {
				return nil, err
			}
			obj[k] = x
		}
		return obj, nil
	case *ast.AliasNode:
		return nil, fmt.Errorf("alias %q names no anchor", v.Value.GetToken().Value)
	}
	var x any
	if err := yaml.NodeToValue(n, &x); err != nil {
		return nil, err
	}
	return x, nil
}

// sortErrors orders errors by file and line, keeping the order of errors on the same line.
func sortErrors(errs []*Error) {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].File != errs[j].File {
			return errs[i].File < errs[j].File
		}
		return errs[i].Line < errs[j].Line
	})
}
