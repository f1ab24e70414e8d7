package query

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Most streaming rules test string columns against constants before anything else, and most
// rows of a batch concern no rule. A Prefilter holds, for each combined rule, the top-level
// conjuncts of its WHERE it understands (all of them must hold for the rule to match), and
// evaluates the rules' union on the Arrow batch, before anything is written for DuckDB: rows it
// rejects match no rule, so only the rows it keeps need to be bound and scanned. It keeps a
// superset of the matching rows; DuckDB still tests each rule's whole condition.
//
// The conjuncts it understands, on a string column or struct field (or a list of strings for
// the last one), with string constants:
//
//	col = 'c'   col <> 'c'   col IN ('a', 'b')   col LIKE 'pattern'   starts_with(col, 'p') / prefix(col, 'p')
//	list_contains(col, 'c') (and list_has, array_contains, array_has)
//
// A LIKE pattern with % only is matched exactly; one with _ by its literal prefix. DuckDB
// compares strings byte by byte (no collation is set), as the prefilter does; NULL never
// satisfies these conjuncts. A conjunct whose column is not a string (or list of strings) in
// a batch is left out for that batch: the rest still must hold.
type Prefilter struct {
	paths [][]string // the columns the conjuncts test, as written (lower case), maybe qualified
	rules []pfRule
	// leads indexes the rules that have an equality conjunct by its column and constants, so
	// that a row costs one hash lookup per column instead of a test per rule.
	leadCols []int              // the columns of leads, in a fixed order
	leadMaps []map[string][]int // leads of each of leadCols
	leads    map[int]map[string][]int
	noLead   []int // the other rules
}

type pfRule struct {
	conds []pfCond
	lead  int // the index in conds of the equality indexed in leads; -1 if none
}

// pfCond is one conjunct.
type pfCond struct {
	col  int // index in paths
	kind int
	set  map[string]struct{} // condEqual, condListHas
	like likePattern         // condLike
}

// Conjunct kinds.
const (
	condEqual = iota
	condNotEqual
	condLike
	condListHas
)

// likePattern is a LIKE pattern as literal segments between % wildcards: prefix%mid...%suffix.
// exact is set when the pattern has no wildcard.
type likePattern struct {
	prefix, suffix string
	mids           []string
	wild           bool // at least one %
}

func parseLike(p string) (likePattern, bool) {
	if i := strings.IndexByte(p, '_'); i >= 0 {
		// Only the literal text before the first wildcard is used.
		pre := p[:i]
		if j := strings.IndexByte(pre, '%'); j >= 0 {
			pre = pre[:j]
		}
		return likePattern{prefix: pre, wild: true}, pre != ""
	}
	parts := strings.Split(p, "%")
	if len(parts) == 1 {
		return likePattern{prefix: p}, true
	}
	lp := likePattern{prefix: parts[0], suffix: parts[len(parts)-1], wild: true}
	for _, m := range parts[1 : len(parts)-1] {
		if m != "" {
			lp.mids = append(lp.mids, m)
		}
	}
	return lp, lp.prefix != "" || lp.suffix != "" || len(lp.mids) > 0
}

func (lp *likePattern) match(v string) bool {
	if !lp.wild {
		return v == lp.prefix
	}
	if !strings.HasPrefix(v, lp.prefix) {
		return false
	}
	v = v[len(lp.prefix):]
	for _, m := range lp.mids {
		i := strings.Index(v, m)
		if i < 0 {
			return false
		}
		v = v[i+len(m):]
	}
	return strings.HasSuffix(v, lp.suffix)
}

// addRule records a rule's condition; ok is false when cond has no conjunct the prefilter
// understands.
func (p *Prefilter) addRule(cond any) bool {
	r := pfRule{lead: -1}
	for _, c := range conjunctsOf(cond) {
		path, pc, ok := understand(c)
		if !ok {
			continue
		}
		pc.col = p.pathIndex(path)
		if pc.kind == condEqual && r.lead < 0 {
			r.lead = len(r.conds)
		}
		r.conds = append(r.conds, pc)
	}
	if len(r.conds) == 0 {
		return false
	}
	if p.leads == nil {
		p.leads = map[int]map[string][]int{}
	}
	idx := len(p.rules)
	p.rules = append(p.rules, r)
	if r.lead < 0 {
		p.noLead = append(p.noLead, idx)
		return true
	}
	lc := r.conds[r.lead]
	m := p.leads[lc.col]
	if m == nil {
		m = map[string][]int{}
		p.leads[lc.col] = m
		p.leadCols = append(p.leadCols, lc.col)
		p.leadMaps = append(p.leadMaps, m)
	}
	for v := range lc.set {
		m[v] = append(m[v], idx)
	}
	return true
}

func (p *Prefilter) pathIndex(path []string) int {
	key := strings.Join(path, "\x00")
	for i, q := range p.paths {
		if strings.Join(q, "\x00") == key {
			return i
		}
	}
	p.paths = append(p.paths, path)
	return len(p.paths) - 1
}

// understand reads one conjunct.
func understand(c any) ([]string, pfCond, bool) {
	m, _ := c.(map[string]any)
	if m == nil {
		return nil, pfCond{}, false
	}
	set := func(vals ...string) map[string]struct{} {
		s := make(map[string]struct{}, len(vals))
		for _, v := range vals {
			s[v] = struct{}{}
		}
		return s
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
			return p, pfCond{kind: condEqual, set: set(v)}, true
		}
	case m["class"] == "COMPARISON" && m["type"] == "COMPARE_NOTEQUAL":
		l, r := m["left"], m["right"]
		if _, ok := colPath(l); !ok {
			l, r = r, l
		}
		p, okc := colPath(l)
		v, okv := stringConst(r)
		if okc && okv {
			return p, pfCond{kind: condNotEqual, set: set(v)}, true
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
		var vals []string
		for _, ch := range children[1:] {
			v, ok := stringConst(ch)
			if !ok {
				return nil, pfCond{}, false
			}
			vals = append(vals, v)
		}
		return p, pfCond{kind: condEqual, set: set(vals...)}, true
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
			if lp, ok := parseLike(v); ok {
				if !lp.wild {
					return p, pfCond{kind: condEqual, set: set(v)}, true
				}
				return p, pfCond{kind: condLike, like: lp}, true
			}
		case "starts_with", "prefix", "^@":
			if v != "" {
				return p, pfCond{kind: condLike, like: likePattern{prefix: v, wild: true}}, true
			}
		case "list_contains", "list_has", "array_contains", "array_has":
			return p, pfCond{kind: condListHas, set: set(v)}, true
		}
	}
	return nil, pfCond{}, false
}

// stringConst returns the value of a VARCHAR constant.
func stringConst(v any) (string, bool) {
	if typ, ok := constType(v); !ok || typ != "VARCHAR" {
		return "", false
	}
	s, ok := v.(map[string]any)["value"].(map[string]any)["value"].(string)
	return s, ok
}

// Select returns, for each batch, the rows that may match a rule, and their count.
func (p *Prefilter) Select(db, table string, recs []arrow.RecordBatch) ([][]int32, int) {
	sel := make([][]int32, len(recs))
	total := 0
	for i, rec := range recs {
		cols := make([]any, len(p.paths))
		complete := true // every path resolved
		for j, path := range p.paths {
			a, ok := resolve(rec, db, table, path)
			if ok {
				switch a := a.(type) {
				case strings_:
				case *array.List:
					if _, isStr := a.ListValues().(*array.String); !isStr {
						ok = false
					}
				default:
					ok = false
				}
			}
			if ok {
				cols[j] = a
			} else {
				complete = false
			}
		}
		n := int(rec.NumRows())
		if !complete && !p.usable(cols) {
			rows := make([]int32, n)
			for r := range rows {
				rows[r] = int32(r)
			}
			sel[i] = rows
			total += n
			continue
		}
		// Rules whose indexed equality is on a column this batch cannot read are tested
		// one by one (their other conjuncts still count).
		leadOK := make([]bool, len(p.paths))
		for _, col := range p.leadCols {
			_, leadOK[col] = cols[col].(strings_)
		}
		unindexed := p.noLead
		for ri, r := range p.rules {
			if r.lead >= 0 && !leadOK[r.conds[r.lead].col] {
				if len(unindexed) == len(p.noLead) {
					unindexed = append([]int(nil), p.noLead...)
				}
				unindexed = append(unindexed, ri)
			}
		}
		var rows []int32
		for r := range n {
			if p.keep(cols, leadOK, unindexed, r) {
				rows = append(rows, int32(r))
			}
		}
		sel[i] = rows
		total += len(rows)
	}
	return sel, total
}

// usable reports whether every rule keeps a conjunct on a resolved column (else any row may
// match it).
func (p *Prefilter) usable(cols []any) bool {
	for _, r := range p.rules {
		ok := false
		for _, c := range r.conds {
			ok = ok || c.usable(cols[c.col])
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *pfCond) usable(col any) bool {
	switch col.(type) {
	case strings_:
		return c.kind != condListHas
	case *array.List:
		return c.kind == condListHas
	}
	return false
}

// holds reports whether row r satisfies the conjunct; a conjunct on a column it cannot read
// holds (it rules nothing out).
func (c *pfCond) holds(col any, r int) bool {
	switch a := col.(type) {
	case strings_:
		switch c.kind {
		case condEqual:
			if a.IsNull(r) {
				return false
			}
			_, ok := c.set[a.Value(r)]
			return ok
		case condNotEqual:
			if a.IsNull(r) {
				return false
			}
			_, ok := c.set[a.Value(r)]
			return !ok
		case condLike:
			return !a.IsNull(r) && c.like.match(a.Value(r))
		}
	case *array.List:
		if c.kind != condListHas {
			return true
		}
		if a.IsNull(r) {
			return false
		}
		vals := a.ListValues().(*array.String)
		start, end := a.ValueOffsets(r)
		for k := start; k < end; k++ {
			if !vals.IsNull(int(k)) {
				if _, ok := c.set[vals.Value(int(k))]; ok {
					return true
				}
			}
		}
		return false
	}
	return true
}

func (p *Prefilter) ruleHolds(r *pfRule, cols []any, row int, skip int) bool {
	for k := range r.conds {
		if k == skip {
			continue
		}
		c := &r.conds[k]
		if !c.holds(cols[c.col], row) {
			return false
		}
	}
	return true
}

// keep reports whether a row may match a rule: the rules with an equality are found by the
// row's value in the indexed columns (leadOK), the others (unindexed) are tested one by one.
// A conjunct on a column the batch cannot read holds.
func (p *Prefilter) keep(cols []any, leadOK []bool, unindexed []int, row int) bool {
	for i, col := range p.leadCols {
		if !leadOK[col] {
			continue
		}
		a := cols[col].(strings_)
		if a.IsNull(row) {
			continue
		}
		for _, ri := range p.leadMaps[i][a.Value(row)] {
			r := &p.rules[ri]
			if p.ruleHolds(r, cols, row, r.lead) {
				return true
			}
		}
	}
	for _, ri := range unindexed {
		if p.ruleHolds(&p.rules[ri], cols, row, -1) {
			return true
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
