package query

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/valyala/fastjson"
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
// and all but the last on a field of a JSON column: col->>'key', col->>'$.a.b' or
// json_extract_string(col, ...), read as DuckDB does (a missing field or JSON null is NULL).
// A field whose value is not a string (a number, an object), or text that is not JSON, rules
// nothing out: DuckDB decides.
//
// A LIKE pattern with % only is matched exactly; one with _ by its literal prefix. DuckDB
// compares strings byte by byte (no collation is set), as the prefilter does; NULL never
// satisfies these conjuncts. A conjunct whose column is not a string (or list of strings) in
// a batch is left out for that batch: the rest still must hold.
type Prefilter struct {
	paths []pfPath // what the conjuncts test
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

// pfPath is the value a conjunct tests: a column as written (lower case, maybe qualified),
// or a field of a JSON column (json: the keys from the outermost object in).
type pfPath struct {
	cols []string
	json []string
}

func (p pfPath) key() string {
	return strings.Join(p.cols, "\x00") + "\x01" + strings.Join(p.json, "\x00")
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
	var jsonConds []pfCond
	for _, c := range conjunctsOf(cond) {
		path, pc, ok := understand(c)
		if !ok {
			continue
		}
		pc.col = p.pathIndex(path)
		if path.json != nil {
			// Tested last, and never the indexed equality: each test parses the row's JSON.
			jsonConds = append(jsonConds, pc)
			continue
		}
		if pc.kind == condEqual && r.lead < 0 {
			r.lead = len(r.conds)
		}
		r.conds = append(r.conds, pc)
	}
	r.conds = append(r.conds, jsonConds...)
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

func (p *Prefilter) pathIndex(path pfPath) int {
	key := path.key()
	for i, q := range p.paths {
		if q.key() == key {
			return i
		}
	}
	p.paths = append(p.paths, path)
	return len(p.paths) - 1
}

// valuePath reads the value a conjunct tests: a column reference, or a field of one read as
// JSON text (col->>'key', col->>'$.a.b', json_extract_string(col, 'key')).
func valuePath(v any) (pfPath, bool) {
	if cols, ok := colPath(v); ok {
		return pfPath{cols: cols}, true
	}
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "FUNCTION" || m["filter"] != nil {
		return pfPath{}, false
	}
	switch name, _ := m["function_name"].(string); strings.ToLower(name) {
	case "->>", "json_extract_string":
	default:
		return pfPath{}, false
	}
	children, _ := m["children"].([]any)
	if len(children) != 2 {
		return pfPath{}, false
	}
	cols, ok := colPath(children[0])
	key, okk := stringConst(children[1])
	if !ok || !okk {
		return pfPath{}, false
	}
	keys, ok := jsonKeys(key)
	return pfPath{cols: cols, json: keys}, ok
}

// jsonKeys reads a JSON path argument as DuckDB does, in the forms understood: a key ('email',
// taken whole, dots and all) or '$.' and keys of letters, digits and underscores ('$.a.b').
func jsonKeys(path string) ([]string, bool) {
	if path == "" || path[0] == '/' {
		return nil, false
	}
	if path[0] != '$' {
		return []string{path}, true
	}
	rest, ok := strings.CutPrefix(path, "$.")
	if !ok {
		return nil, false
	}
	keys := strings.Split(rest, ".")
	for _, k := range keys {
		if k == "" || strings.IndexFunc(k, func(c rune) bool {
			return !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
		}) >= 0 {
			return nil, false
		}
	}
	return keys, true
}

// understand reads one conjunct.
func understand(c any) (pfPath, pfCond, bool) {
	m, _ := c.(map[string]any)
	if m == nil {
		return pfPath{}, pfCond{}, false
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
		if _, ok := valuePath(l); !ok {
			l, r = r, l
		}
		p, okc := valuePath(l)
		v, okv := stringConst(r)
		if okc && okv {
			return p, pfCond{kind: condEqual, set: set(v)}, true
		}
	case m["class"] == "COMPARISON" && m["type"] == "COMPARE_NOTEQUAL":
		l, r := m["left"], m["right"]
		if _, ok := valuePath(l); !ok {
			l, r = r, l
		}
		p, okc := valuePath(l)
		v, okv := stringConst(r)
		if okc && okv {
			return p, pfCond{kind: condNotEqual, set: set(v)}, true
		}
	case m["class"] == "OPERATOR" && m["type"] == "COMPARE_IN":
		children, _ := m["children"].([]any)
		if len(children) < 2 {
			break
		}
		p, okc := valuePath(children[0])
		if !okc {
			break
		}
		var vals []string
		for _, ch := range children[1:] {
			v, ok := stringConst(ch)
			if !ok {
				return pfPath{}, pfCond{}, false
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
		p, okc := valuePath(children[0])
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
			if p.json == nil {
				return p, pfCond{kind: condListHas, set: set(v)}, true
			}
		}
	}
	return pfPath{}, pfCond{}, false
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
			a, ok := resolve(rec, db, table, path.cols)
			if ok {
				switch col := a.(type) {
				case strings_:
					if path.json != nil {
						a = &jsonField{src: col, keys: path.json, row: -1}
					}
				case *array.List:
					if _, isStr := col.ListValues().(*array.String); !isStr || path.json != nil {
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
	case strings_, *jsonField:
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
	case *jsonField:
		v, state := a.lookup(r)
		switch {
		case state == jsonOther:
			return true
		case state == jsonNull:
			return false
		case c.kind == condEqual:
			_, ok := c.set[v]
			return ok
		case c.kind == condNotEqual:
			_, ok := c.set[v]
			return !ok
		case c.kind == condLike:
			return c.like.match(v)
		}
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

// jsonField is a field of a JSON text column, read row by row as DuckDB's ->> reads it.
type jsonField struct {
	src   strings_
	keys  []string
	p     fastjson.Parser
	row   int // the row val and state are of; -1 for none
	val   string
	state int
}

// What a JSON field of a row holds.
const (
	jsonNull   = iota // SQL NULL: no such field, JSON null, a NULL column
	jsonString        // a string: val
	jsonOther         // a number, boolean, object or array, or text that is not JSON
)

func (j *jsonField) lookup(r int) (string, int) {
	if r == j.row {
		return j.val, j.state
	}
	j.row, j.val, j.state = r, "", jsonNull
	if j.src.IsNull(r) {
		return "", jsonNull
	}
	text := j.src.Value(r)
	v, err := j.p.Parse(text)
	if err != nil || hasSurrogateEscape(text) {
		// DuckDB raises an error (for the rule's errors table), or may: it refuses a lone
		// surrogate that fastjson reads.
		j.state = jsonOther
		return "", jsonOther
	}
	for _, k := range j.keys {
		obj, err := v.Object()
		if err != nil {
			return "", jsonNull // a key of something that is not an object is NULL
		}
		if v = obj.Get(k); v == nil { // the first of repeated keys, as DuckDB
			return "", jsonNull
		}
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return "", jsonNull
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		j.val, j.state = string(b), jsonString
		return j.val, jsonString
	}
	j.state = jsonOther
	return "", jsonOther
}

// hasSurrogateEscape reports whether JSON text may hold a \uD800-\uDFFF escape.
func hasSurrogateEscape(text string) bool {
	for {
		i := strings.Index(text, `\u`)
		if i < 0 || i+3 >= len(text) {
			return false
		}
		if c, d := text[i+2], text[i+3]; (c == 'd' || c == 'D') && strings.IndexByte("89abcdefABCDEF", d) >= 0 {
			return true
		}
		text = text[i+2:]
	}
}
