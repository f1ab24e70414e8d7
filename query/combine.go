package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Streaming rules are mostly filters: SELECT *, <alert columns> FROM <table> WHERE <condition>.
// Run one by one, each is a scan of the batch; DuckDB's cost per statement and per scan, not
// per row, dominates. Combine merges such rules into one statement that scans the batch once:
//
//	SELECT p_row_id,
//	       CASE WHEN <condition 0> THEN to_json(struct_pack(title := <alert_title 0>, ...))::VARCHAR END AS m0,
//	       ...
//	FROM <table> WHERE <condition 0> OR <condition 1> OR ...
//
// wrapped in a SELECT that keeps the rows where some m<i> is not NULL.
//
// Most rules test one column against constants before anything else (actionName = '...',
// eventName IN (...)): the conditions of rules that share such a column are replaced in the
// WHERE by one IN over all their constants, so that a row that concerns no rule costs one hash
// lookup instead of a test per rule; the CASE of each rule still tests its whole condition.
//
// The result identifies rows by file_row_number (see Bind), not p_row_id.
//
// The merge is done on DuckDB's own syntax tree (json_serialize_sql), and the statement is
// rendered back by DuckDB (json_deserialize_sql), so no SQL text is parsed here.

// Combined is a statement that runs several rules at once.
type Combined struct {
	SQL string
	// Rules lists the indexes (in the slice given to Combine) of the rules it runs; its result
	// has the row's number in the bound batches (BIGINT, from 0) and then a column per rule,
	// in this order: NULL where the rule does not match, else a JSON object (VARCHAR) of the
	// rule's alert columns it has, by the names title, dedup, severity and context ({} for a
	// rule without any). One text is cheaper for DuckDB to build, and to read back, than a
	// struct of four.
	Rules []int
	// Prefilter, when every combined rule has a condition it understands, selects the rows of
	// a batch that may match any of them (see Prefilter); nil otherwise.
	Prefilter *Prefilter
}

// Combine merges the rules over db.table that are simple filters into one statement. A rule is
// simple when it is one SELECT from the table, not aliased, with no aggregate, window,
// grouping, ordering, limit, DISTINCT or CTE, which returns * or p_row_id, and whose text has
// no macro. Rules that are not simple are left out (they run one by one). Combined.SQL is empty
// when fewer than two rules are simple.
func (b *BatchDB) Combine(ctx context.Context, db, table string, stmts []string) (Combined, error) {
	return b.combine(ctx, db, table, stmts, 2)
}

// Scan is Combine for one rule: the rule's scan alone, with its result in Combined's form (SQL
// is empty when the rule is not simple). A combined scan that fails is run rule by rule with
// it, to find the rules that fail.
func (b *BatchDB) Scan(ctx context.Context, db, table, stmt string) (Combined, error) {
	return b.combine(ctx, db, table, []string{stmt}, 1)
}

func (b *BatchDB) combine(ctx context.Context, db, table string, stmts []string, least int) (Combined, error) {
	aggs, err := b.aggregates(ctx)
	if err != nil {
		return Combined{}, err
	}
	var (
		c        Combined
		template map[string]any
		conds    []any
		cols     []any
		always   bool // a rule without WHERE: every row is a candidate
	)
	cols = append(cols, columnRef(rowNumberColumn))
	pre := &Prefilter{}
	prefilterAll := true
	keyed := map[string]*keyGroup{}
	var keys []string
	for i, stmt := range stmts {
		if hasMacro(stmt) {
			continue
		}
		tree, err := b.syntaxTree(ctx, stmt)
		if err != nil {
			continue // it runs alone and reports its error there
		}
		node, ok := simpleSelect(tree, db, table, aggs)
		if !ok {
			continue
		}
		alertCols := map[string]map[string]any{}
		for _, item := range node["select_list"].([]any) {
			m, _ := item.(map[string]any)
			alias, _ := m["alias"].(string)
			switch name := strings.ToLower(alias); name {
			case "alert_title", "alert_dedup", "alert_severity", "alert_context":
				e := cloneNode(m)
				e["alias"] = strings.TrimPrefix(name, "alert_") // its name in the JSON object
				alertCols[name] = e
			}
		}
		var fields []any
		for _, name := range []string{"title", "dedup", "severity", "context"} {
			if e, ok := alertCols["alert_"+name]; ok {
				fields = append(fields, e)
			}
		}
		then := stringConstant("{}")
		if len(fields) > 0 {
			then = castVarchar(function("to_json", function("struct_pack", fields...)))
		}
		cond := node["where_clause"]
		if cond == nil {
			always = true
			cond = trueConstant()
		}
		if !pre.addRule(cond) {
			prefilterAll = false
		}
		cols = append(cols, map[string]any{
			"class": "CASE", "type": "CASE_EXPR", "alias": fmt.Sprintf("m%d", len(c.Rules)), "query_location": json.Number("0"),
			"case_checks": []any{map[string]any{"when_expr": cond, "then_expr": then}},
			"else_expr":   nullConstant(),
		})
		if col, key, consts, ok := keyOf(cond); ok {
			g := keyed[key]
			if g == nil {
				g = &keyGroup{col: col, seen: map[string]bool{}}
				keyed[key] = g
				keys = append(keys, key)
			}
			for _, c := range consts {
				text, _ := json.Marshal(c.(map[string]any)["value"])
				if !g.seen[string(text)] {
					g.seen[string(text)] = true
					g.consts = append(g.consts, c)
				}
			}
		} else {
			conds = append(conds, cond)
		}
		c.Rules = append(c.Rules, i)
		if template == nil {
			template = tree
		}
	}
	if len(c.Rules) < least {
		return Combined{}, nil
	}
	if prefilterAll {
		c.Prefilter = pre
	}
	for _, k := range keys {
		g := keyed[k]
		conds = append(conds, map[string]any{"class": "OPERATOR", "type": "COMPARE_IN", "alias": "", "query_location": json.Number("0"),
			"children": append([]any{g.col}, g.consts...)})
	}
	node := template["statements"].([]any)[0].(map[string]any)["node"].(map[string]any)
	node["select_list"] = cols
	if always {
		node["where_clause"] = nil
	} else {
		node["where_clause"] = map[string]any{"class": "CONJUNCTION", "type": "CONJUNCTION_OR", "alias": "", "query_location": json.Number("0"), "children": conds}
	}
	text, err := json.Marshal(template)
	if err != nil {
		return Combined{}, err
	}
	if err := b.conn.QueryRowContext(ctx, "SELECT json_deserialize_sql(?::JSON)", string(text)).Scan(&c.SQL); err != nil {
		return Combined{}, fmt.Errorf("combine rules: %w", oneLine(err))
	}
	// Only rows some rule matched are returned: the WHERE keeps every row that may match one
	// (the prefilter, in Go, most of them), and reading a row of NULLs back through
	// database/sql costs more than DuckDB's evaluating it.
	none := make([]string, len(c.Rules))
	for i := range c.Rules {
		none[i] = fmt.Sprintf("m%d IS NULL", i)
	}
	c.SQL = fmt.Sprintf("SELECT * FROM (%s) WHERE NOT (%s)", c.SQL, strings.Join(none, " AND "))
	return c, nil
}

type keyGroup struct {
	col    any   // the column's reference
	consts []any // constants of every rule of the group, without repeats
	seen   map[string]bool
}

// keyOf finds, among the top-level conjuncts of a condition, a column compared with constants
// (col = constant, or col IN (constants)). key names the column and the constants' type.
func keyOf(cond any) (col any, key string, consts []any, ok bool) {
	for _, c := range conjunctsOf(cond) {
		m, _ := c.(map[string]any)
		if m == nil {
			continue
		}
		switch {
		case m["class"] == "COMPARISON" && m["type"] == "COMPARE_EQUAL":
			l, r := m["left"], m["right"]
			if _, ok := colPath(l); !ok {
				l, r = r, l
			}
			path, okc := colPath(l)
			typ, okv := constType(r)
			if okc && okv {
				return l, strings.Join(path, ".") + "\x00" + typ, []any{r}, true
			}
		case m["class"] == "OPERATOR" && m["type"] == "COMPARE_IN":
			children, _ := m["children"].([]any)
			if len(children) < 2 {
				continue
			}
			path, okc := colPath(children[0])
			if !okc {
				continue
			}
			typ, okv := constType(children[1])
			for _, v := range children[2:] {
				t, ok := constType(v)
				okv = okv && ok && t == typ
			}
			if okv {
				return children[0], strings.Join(path, ".") + "\x00" + typ, children[1:], true
			}
		}
	}
	return nil, "", nil, false
}

// conjunctsOf returns the top-level conjuncts of a condition (its AND, flattened).
func conjunctsOf(cond any) []any {
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
	return conjuncts
}

// colPath returns the names of a column reference, in lower case (maybe qualified by a table).
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

// constType returns the type id of a constant that is not NULL.
func constType(v any) (string, bool) {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "CONSTANT" {
		return "", false
	}
	val, _ := m["value"].(map[string]any)
	if val == nil || val["is_null"] == true {
		return "", false
	}
	typ, _ := val["type"].(map[string]any)
	id, _ := typ["id"].(string)
	return id, id != ""
}

// hasMacro reports whether a statement uses one of Panther's macros, whose expansion changes
// with time.
func hasMacro(stmt string) bool {
	for _, t := range lex(stmt) {
		if t.kind == tokIdent {
			if _, ok := macros[strings.ToLower(stmt[t.start:t.end])]; ok {
				return true
			}
		}
	}
	return false
}

// syntaxTree returns DuckDB's syntax tree of a statement (numbers kept exact), a tree of the
// caller's own. The tree's text is kept: a rule's statement is read for its columns, its
// pitfalls and to combine it, and parsing is a DuckDB statement of its own each time.
func (b *BatchDB) syntaxTree(ctx context.Context, stmt string) (map[string]any, error) {
	text, ok := b.trees[stmt]
	if !ok {
		if err := b.conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", stmt).Scan(&text); err != nil {
			return nil, oneLine(err)
		}
		if len(b.trees) >= maxStatements {
			clear(b.trees)
		}
		b.trees[stmt] = text
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if tree["error"] == true {
		msg, _ := tree["error_message"].(string)
		return nil, &Error{Msg: msg}
	}
	return tree, nil
}

// simpleSelect returns the SELECT node of a tree that is a simple filter of db.table.
func simpleSelect(tree map[string]any, db, table string, aggs map[string]bool) (map[string]any, bool) {
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return nil, false
	}
	st, _ := stmts[0].(map[string]any)
	node, _ := st["node"].(map[string]any)
	if node == nil || node["type"] != "SELECT_NODE" {
		return nil, false
	}
	if mods, _ := node["modifiers"].([]any); len(mods) > 0 {
		return nil, false
	}
	if cte, _ := node["cte_map"].(map[string]any); cte != nil {
		if m, _ := cte["map"].([]any); len(m) > 0 {
			return nil, false
		}
	}
	for _, k := range []string{"group_expressions", "group_sets"} {
		if l, _ := node[k].([]any); len(l) > 0 {
			return nil, false
		}
	}
	for _, k := range []string{"having", "sample", "qualify"} {
		if node[k] != nil {
			return nil, false
		}
	}
	if node["aggregate_handling"] != "STANDARD_HANDLING" {
		return nil, false
	}
	from, _ := node["from_table"].(map[string]any)
	if from == nil || from["type"] != "BASE_TABLE" || from["alias"] != "" || from["sample"] != nil || from["at_clause"] != nil ||
		!strings.EqualFold(fmt.Sprint(from["table_name"]), table) {
		return nil, false
	}
	if s := fmt.Sprint(from["schema_name"]); s != "" && !strings.EqualFold(s, db) {
		return nil, false
	}
	if c := fmt.Sprint(from["catalog_name"]); c != "" {
		return nil, false
	}
	if l, _ := from["column_name_alias"].([]any); len(l) > 0 {
		return nil, false
	}
	// It must return p_row_id: a plain * (no EXCLUDE, REPLACE or COLUMNS), or the column.
	rowID := false
	list, _ := node["select_list"].([]any)
	for _, item := range list {
		m, _ := item.(map[string]any)
		switch m["class"] {
		case "STAR":
			if m["columns"] == false && m["expr"] == nil && isEmptyList(m["exclude_list"]) && isEmptyList(m["replace_list"]) &&
				isEmptyList(m["qualified_exclude_list"]) && isEmptyList(m["rename_list"]) {
				rowID = true
			}
		case "COLUMN_REF":
			names, _ := m["column_names"].([]any)
			if len(names) == 1 && strings.EqualFold(fmt.Sprint(names[0]), "p_row_id") && (m["alias"] == "" || strings.EqualFold(fmt.Sprint(m["alias"]), "p_row_id")) {
				rowID = true
			}
		}
	}
	if !rowID {
		return nil, false
	}
	// No aggregate or window function anywhere, and no reference to an alias of the select
	// list in WHERE (DuckDB allows it; the combined statement has no such alias).
	simple := true
	aliases := map[string]bool{}
	for _, item := range list {
		if m, _ := item.(map[string]any); m != nil {
			if a, _ := m["alias"].(string); a != "" {
				aliases[strings.ToLower(a)] = true
			}
		}
	}
	walk(node, func(m map[string]any) {
		switch m["class"] {
		case "WINDOW":
			simple = false
		case "FUNCTION":
			if name, _ := m["function_name"].(string); aggs[strings.ToLower(name)] {
				simple = false
			}
		}
	})
	if w := node["where_clause"]; w != nil {
		walk(w, func(m map[string]any) {
			if m["class"] == "COLUMN_REF" {
				names, _ := m["column_names"].([]any)
				if len(names) == 1 && aliases[strings.ToLower(fmt.Sprint(names[0]))] {
					simple = false
				}
			}
		})
	}
	return node, simple
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return v == nil || (ok && len(l) == 0)
}

// aggregates returns the names of DuckDB's aggregate functions.
func (b *BatchDB) aggregates(ctx context.Context) (map[string]bool, error) {
	if b.aggs != nil {
		return b.aggs, nil
	}
	rows, err := b.conn.QueryContext(ctx, "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'aggregate'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	aggs := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		aggs[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	b.aggs = aggs
	return aggs, nil
}

// Nodes of DuckDB's syntax tree.

func columnRef(name string) map[string]any {
	return map[string]any{"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "query_location": json.Number("0"), "column_names": []any{name}}
}

func nullConstant() map[string]any {
	return map[string]any{"class": "CONSTANT", "type": "VALUE_CONSTANT", "alias": "", "query_location": json.Number("0"),
		"value": map[string]any{"type": map[string]any{"id": "NULL", "type_info": nil}, "is_null": true}}
}

func stringConstant(v string) map[string]any {
	return map[string]any{"class": "CONSTANT", "type": "VALUE_CONSTANT", "alias": "", "query_location": json.Number("0"),
		"value": map[string]any{"type": map[string]any{"id": "VARCHAR", "type_info": nil}, "is_null": false, "value": v}}
}

func castVarchar(child any) map[string]any {
	return map[string]any{"class": "CAST", "type": "OPERATOR_CAST", "alias": "", "query_location": json.Number("0"),
		"child": child, "cast_type": map[string]any{"id": "VARCHAR", "type_info": nil}, "try_cast": false}
}

func trueConstant() map[string]any {
	return map[string]any{"class": "CONSTANT", "type": "VALUE_CONSTANT", "alias": "", "query_location": json.Number("0"),
		"value": map[string]any{"type": map[string]any{"id": "BOOLEAN", "type_info": nil}, "is_null": false, "value": true}}
}

func function(name string, args ...any) map[string]any {
	return map[string]any{"class": "FUNCTION", "type": "FUNCTION", "alias": "", "query_location": json.Number("0"),
		"function_name": name, "schema": "", "children": args, "filter": nil,
		"order_bys": map[string]any{"type": "ORDER_MODIFIER", "orders": []any{}},
		"distinct":  false, "is_operator": false, "export_state": false, "catalog": ""}
}

// cloneNode copies a node deeply enough to change its alias.
func cloneNode(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
