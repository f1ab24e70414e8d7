package query

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Most streaming rules test a string column against constants before anything else, and most
// rows of a batch concern no rule. A Prefilter holds one such necessary condition of each
// combined rule (a top-level conjunct of its WHERE) and evaluates their union on the Arrow
// batch, before anything is written for DuckDB: rows it rejects match no rule, so only the
// rows it keeps need to be bound and scanned. It keeps a superset of the matching rows; DuckDB
// still tests each rule's whole condition.
//
// The conjuncts it understands, on a string column or struct field (or a list of strings for
// the last one), with string constants:
//
//	col = 'c'   col IN ('a', 'b')   col LIKE 'prefix%...'   starts_with(col, 'p') / prefix(col, 'p')
//	list_contains(col, 'c') (and list_has, array_contains, array_has)
//
// DuckDB compares strings byte by byte (no collation is set), as the prefilter does; NULL
// never satisfies these conjuncts.
type Prefilter struct {
	cols []*filterCol
}

// filterCol is the conditions on one column: the row is kept when any holds.
type filterCol struct {
	path     []string // the column reference as written (lower case), maybe qualified
	equal    map[string]struct{}
	prefixes []string
	listHas  map[string]struct{}
}

// necessary kinds.
const (
	condEqual = iota
	condPrefix
	condListHas
)

// addCondition records a rule's necessary condition; ok is false when cond has no conjunct of
// a kind the prefilter understands.
func (p *Prefilter) addCondition(cond any) bool {
	path, kind, values, ok := necessaryOf(cond)
	if !ok {
		return false
	}
	key := strings.Join(path, "\x00")
	var fc *filterCol
	for _, c := range p.cols {
		if strings.Join(c.path, "\x00") == key {
			fc = c
		}
	}
	if fc == nil {
		fc = &filterCol{path: path, equal: map[string]struct{}{}, listHas: map[string]struct{}{}}
		p.cols = append(p.cols, fc)
	}
	for _, v := range values {
		switch kind {
		case condEqual:
			fc.equal[v] = struct{}{}
		case condPrefix:
			fc.prefixes = append(fc.prefixes, v)
		case condListHas:
			fc.listHas[v] = struct{}{}
		}
	}
	return true
}

// necessaryOf returns the first top-level conjunct of cond the prefilter understands: the
// column it tests and its constants.
func necessaryOf(cond any) (path []string, kind int, values []string, ok bool) {
	var conjuncts []any
	var flatten func(v any)
	flatten = func(v any) {
		m, _ := v.(map[string]any)
		if m != nil && m["class"] == "CONJUNCTION" && m["type"] == "CONJUNCTION_AND" {
			for _, c := range m["children"].([]any) {
				flatten(c)
			}
			return
		}
		conjuncts = append(conjuncts, v)
	}
	flatten(cond)
	// Equality first: a hash lookup, and the most selective in practice.
	for _, want := range []int{condEqual, condListHas, condPrefix} {
		for _, c := range conjuncts {
			if p, k, v, ok := understand(c); ok && k == want {
				return p, k, v, true
			}
		}
	}
	return nil, 0, nil, false
}

// understand reads one conjunct.
func understand(c any) (path []string, kind int, values []string, ok bool) {
	m, _ := c.(map[string]any)
	if m == nil {
		return nil, 0, nil, false
	}
	switch {
	case m["class"] == "COMPARISON" && m["type"] == "COMPARE_EQUAL":
		l, r := m["left"], m["right"]
		if _, ok := colPath(l); !ok {
			l, r = r, l
		}
		p, okc := colPath(l)
		v, okv := stringConst(r)
		if okc && okv {
			return p, condEqual, []string{v}, true
		}
	case m["class"] == "OPERATOR" && m["type"] == "COMPARE_IN":
		children, _ := m["children"].([]any)
		if len(children) < 2 {
			break
		}
		p, okc := colPath(children[0])
		if !okc {
			break
		}
		for _, ch := range children[1:] {
			v, ok := stringConst(ch)
			if !ok {
				return nil, 0, nil, false
			}
			values = append(values, v)
		}
		return p, condEqual, values, true
	case m["class"] == "FUNCTION":
		name, _ := m["function_name"].(string)
		children, _ := m["children"].([]any)
		if len(children) != 2 || m["filter"] != nil || m["distinct"] == true {
			break
		}
		p, okc := colPath(children[0])
		v, okv := stringConst(children[1])
		if !okc || !okv {
			break
		}
		switch strings.ToLower(name) {
		case "~~": // LIKE
			i := strings.IndexAny(v, "%_")
			if i < 0 {
				return p, condEqual, []string{v}, true
			}
			if i > 0 {
				return p, condPrefix, []string{v[:i]}, true
			}
		case "starts_with", "prefix", "^@":
			return p, condPrefix, []string{v}, true
		case "list_contains", "list_has", "array_contains", "array_has":
			return p, condListHas, []string{v}, true
		}
	}
	return nil, 0, nil, false
}

func colPath(v any) ([]string, bool) {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "COLUMN_REF" {
		return nil, false
	}
	names, _ := m["column_names"].([]any)
	path := make([]string, len(names))
	for i, n := range names {
		path[i] = strings.ToLower(fmt.Sprint(n))
	}
	return path, len(path) > 0
}

func stringConst(v any) (string, bool) {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "CONSTANT" {
		return "", false
	}
	val, _ := m["value"].(map[string]any)
	if val == nil || val["is_null"] == true {
		return "", false
	}
	typ, _ := val["type"].(map[string]any)
	if typ["id"] != "VARCHAR" {
		return "", false
	}
	s, ok := val["value"].(string)
	if !ok {
		// json.Number or other: not a string constant.
		if _, isNum := val["value"].(json.Number); isNum {
			return "", false
		}
	}
	return s, ok
}

// Select returns, for each batch, the rows that may match a rule, and their count. A batch
// whose columns do not resolve the prefilter's paths to strings (or lists of strings) keeps
// every row.
func (p *Prefilter) Select(db, table string, recs []arrow.RecordBatch) ([][]int32, int) {
	sel := make([][]int32, len(recs))
	total := 0
	for i, rec := range recs {
		cols := make([]any, len(p.cols))
		all := false
		for j, fc := range p.cols {
			a, ok := resolve(rec, db, table, fc.path)
			if !ok {
				all = true
				break
			}
			switch a := a.(type) {
			case strings_:
			case *array.List:
				if _, ok := a.ListValues().(*array.String); !ok {
					all = true
				}
			default:
				all = true
			}
			cols[j] = a
		}
		n := int(rec.NumRows())
		if all {
			rows := make([]int32, n)
			for r := range rows {
				rows[r] = int32(r)
			}
			sel[i] = rows
			total += n
			continue
		}
		var rows []int32
		for r := range n {
			if p.keep(cols, r) {
				rows = append(rows, int32(r))
			}
		}
		sel[i] = rows
		total += len(rows)
	}
	return sel, total
}

// keep reports whether row r satisfies a condition of some column.
func (p *Prefilter) keep(cols []any, r int) bool {
	for j, fc := range p.cols {
		switch a := cols[j].(type) {
		case strings_:
			if a.IsNull(r) {
				continue
			}
			v := a.Value(r)
			if _, ok := fc.equal[v]; ok {
				return true
			}
			for _, pre := range fc.prefixes {
				if strings.HasPrefix(v, pre) {
					return true
				}
			}
		case *array.List:
			if a.IsNull(r) || len(fc.listHas) == 0 {
				continue
			}
			vals := a.ListValues().(*array.String)
			start, end := a.ValueOffsets(r)
			for k := start; k < end; k++ {
				if vals.IsNull(int(k)) {
					continue
				}
				if _, ok := fc.listHas[vals.Value(int(k))]; ok {
					return true
				}
			}
		}
	}
	return false
}

// resolve finds the array of a column reference (maybe qualified by the table, or the
// database and the table) in a batch, following struct fields; names match without regard
// to case, as DuckDB's do. Rows where a parent struct is NULL read as NULL.
func resolve(rec arrow.RecordBatch, db, table string, path []string) (any, bool) {
	try := func(path []string) (any, bool) {
		var a arrow.Array
		var typ arrow.DataType
		for i, name := range path {
			var fields []arrow.Field
			if i == 0 {
				fields = rec.Schema().Fields()
			} else {
				st, ok := typ.(*arrow.StructType)
				if !ok {
					return nil, false
				}
				fields = st.Fields()
			}
			idx := -1
			for k, f := range fields {
				if strings.EqualFold(f.Name, name) {
					idx = k
					break
				}
			}
			if idx < 0 {
				return nil, false
			}
			if i == 0 {
				a = rec.Column(idx)
			} else {
				s := a.(*array.Struct)
				child := s.Field(idx)
				if s.NullN() > 0 {
					// A NULL struct's fields may hold anything: a string leaf is read
					// through the struct's nulls; deeper paths are not followed.
					str, ok := child.(*array.String)
					if !ok || i != len(path)-1 {
						return nil, false
					}
					return &nullMasked{s: str, parent: s}, true
				}
				a = child
			}
			typ = a.DataType()
		}
		return a, a != nil
	}
	if a, ok := try(path); ok {
		return a, true
	}
	if len(path) > 1 && strings.EqualFold(path[0], table) {
		return try(path[1:])
	}
	if len(path) > 2 && strings.EqualFold(path[0], db) && strings.EqualFold(path[1], table) {
		return try(path[2:])
	}
	return nil, false
}

// strings_ is a string column as the prefilter reads it.
type strings_ interface {
	IsNull(i int) bool
	Value(i int) string
}

// nullMasked is a string field read through its parent struct's nulls.
type nullMasked struct {
	s      *array.String
	parent *array.Struct
}

func (n *nullMasked) IsNull(i int) bool  { return n.parent.IsNull(i) || n.s.IsNull(i) }
func (n *nullMasked) Value(i int) string { return n.s.Value(i) }
