package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
)

// Narrowing: a statement that restricts a lake table's p_event_time to constants in its WHERE
// clause reads only the files whose p_event_time bounds (from the table's Iceberg manifests)
// overlap that range. DuckDB's parser (json_serialize_sql) finds the table references and the
// predicates; each narrowed reference is replaced in the statement's text by a read of its
// schema file and of those files, taken from the snapshot of the lake the statement began with
// (files.go). Other references read the tables' views, which Refresh pointed at the same
// snapshot just before (a statement run concurrently may move a view to a later snapshot).
//
// Only top-level AND conjuncts of a SELECT's WHERE count, so a predicate always holds for every
// row the SELECT returns: narrowing never changes a result. A column qualified by an alias binds
// to the table of that alias; an unqualified p_event_time binds to the SELECT's table when its
// FROM has exactly one table and nothing else.

// tableRef is a reference to a lake table in a statement.
type tableRef struct {
	db, table, alias string
	union            *unionView // a view over every table of a database (all_logs), not a table
	alerts           bool       // panther_monitor.alerts, a view over alert_history
	loc              int        // byte offset of the reference in the statement
	lo, hi           time.Time
	bounded          bool
	eq               []eqCond // column = constant, column IN (constants)
}

// eqCond is a top-level conjunct that holds only for rows whose column is one of vals (strings
// or int64s).
type eqCond struct {
	col  string // lowercase
	vals []any
}

// equality reads `column = constant` (either side) and `column IN (constants)` with string or
// integer constants. A column other than p_event_time only: its range is bound's.
func equality(e map[string]any) (col []string, vals []any, ok bool) {
	var operands []any
	switch e["type"] {
	case "COMPARE_EQUAL":
		left, right := e["left"], e["right"]
		if m, _ := left.(map[string]any); m != nil && m["class"] == "CONSTANT" {
			left, right = right, left
		}
		operands = []any{left, right}
	case "COMPARE_IN":
		operands, _ = e["children"].([]any)
	default:
		return nil, nil, false
	}
	if len(operands) < 2 {
		return nil, nil, false
	}
	col = columnNames(operands[0])
	if col == nil || strings.EqualFold(col[len(col)-1], lake.FieldEventTime) {
		return nil, nil, false
	}
	for _, o := range operands[1:] {
		v, ok := constValue(o)
		if !ok {
			return nil, nil, false
		}
		vals = append(vals, v)
	}
	return col, vals, true
}

// constValue reads a string or integer constant, as a string or an int64.
func constValue(v any) (any, bool) {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "CONSTANT" {
		return nil, false
	}
	val, _ := m["value"].(map[string]any)
	if val == nil || val["is_null"] != false {
		return nil, false
	}
	typ, _ := val["type"].(map[string]any)
	switch typ["id"] {
	case "VARCHAR":
		s, ok := val["value"].(string)
		return s, ok
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT":
		f, ok := val["value"].(float64)
		if !ok || f != float64(int64(f)) {
			return nil, false
		}
		return int64(f), true
	}
	return nil, false
}

// mayHold reports whether a file's bounds allow a row that satisfies every condition: false
// only when some condition's values all lie outside the file's bounds of its column. A file
// without bounds for a column (or of another type than the values) may hold anything.
func mayHold(f iceberg.DataFile, conds []eqCond) bool {
	for _, c := range conds {
		b, ok := f.Bounds[c.col]
		if !ok {
			continue
		}
		match := false
		for _, v := range c.vals {
			in, comparable := within(v, b)
			if !comparable || in {
				match = true
				break
			}
		}
		if !match {
			return false
		}
	}
	return true
}

// within reports whether v lies in bounds b, and whether they are of one type.
func within(v any, b [2]any) (in, comparable bool) {
	switch v := v.(type) {
	case string:
		lo, ok1 := b[0].(string)
		hi, ok2 := b[1].(string)
		return ok1 && ok2 && lo <= v && v <= hi, ok1 && ok2
	case int64:
		lo, ok1 := b[0].(int64)
		hi, ok2 := b[1].(int64)
		return ok1 && ok2 && lo <= v && v <= hi, ok1 && ok2
	}
	return false, false
}

// narrow rewrites a statement so that each table reference restricted by p_event_time reads the
// files of its range only; js is the statement's parse tree (parseQuery's JSON). It returns the
// statement unchanged when nothing can be narrowed.
func (d *DB) narrow(ctx context.Context, snap snapshot, stmt, js string, plans *[]Plan) (string, error) {
	// Timestamp literals without an offset are read in the session's time zone, which
	// statements cannot change.
	loc, err := time.LoadLocation(d.opts.TimeZone)
	if err != nil {
		return stmt, nil
	}
	var tree map[string]any
	if err := json.Unmarshal([]byte(js), &tree); err != nil || tree["error"] == true {
		return stmt, nil
	}
	var refs []*tableRef
	walk(tree, func(node map[string]any) {
		if node["type"] == "SELECT_NODE" {
			refs = append(refs, d.selectRefs(node, loc)...)
		}
	})
	var narrowed []*tableRef
	for _, r := range refs {
		// In an object store every reference reads its files: fetched into the cache, they
		// are the files DuckDB may read.
		if (r.bounded || len(r.eq) > 0 || d.cache != nil) && r.loc >= 0 && r.loc < len(stmt) {
			narrowed = append(narrowed, r)
		} else if plans != nil {
			if err := d.planRef(ctx, snap, r, plans); err != nil {
				return "", err
			}
		}
	}
	if len(narrowed) == 0 {
		return stmt, nil
	}
	sort.Slice(narrowed, func(i, j int) bool { return narrowed[i].loc > narrowed[j].loc })
	out := stmt
	for _, r := range narrowed {
		end, ok := refEnd(out, r.loc)
		if !ok {
			continue
		}
		repl, err := d.narrowed(ctx, snap, r, plans)
		if err != nil {
			return "", err
		}
		if r.alias == "" {
			repl += " AS " + ident(r.table)
		}
		out = out[:r.loc] + repl + out[end:]
	}
	return out, nil
}

// Plan is what a statement reads of a table: the files planned among the table's files, and
// what chose them: the p_event_time range (zero: unbounded) and the columns of equality and
// IN conditions.
type Plan struct {
	Table        string
	Files, Total int
	From, To     time.Time
	// Columns are the other columns whose bounds pruned files (equality and IN).
	Columns []string
}

// tablesOf returns the tables a reference reads: its table, or every table of a union view's
// database.
func (d *DB) tablesOf(r *tableRef) ([]lake.Table, error) {
	if r.union == nil {
		return []lake.Table{{DB: r.db, Name: r.table}}, nil
	}
	return d.lake.Tables(r.union.db)
}

// planRef records the plan of a reference that is not narrowed: every file of its tables.
func (d *DB) planRef(ctx context.Context, snap snapshot, r *tableRef, plans *[]Plan) error {
	tables, err := d.tablesOf(r)
	if err != nil {
		return err
	}
	for _, t := range tables {
		files, err := d.tableFiles(ctx, snap, t.DB, t.Name)
		if err != nil {
			return err
		}
		*plans = append(*plans, Plan{Table: t.DB + "." + t.Name, Files: len(files), Total: len(files)})
	}
	return nil
}

// narrowed returns the read that replaces a reference: its table's files in range, or for a
// union view the union of every table's.
func (d *DB) narrowed(ctx context.Context, snap snapshot, r *tableRef, plans *[]Plan) (string, error) {
	read := func(db, table string) (string, error) {
		files, err := d.tableFiles(ctx, snap, db, table)
		if err != nil {
			return "", err
		}
		evolved, err := d.lake.TableEvolved(db, table)
		if err != nil {
			return "", err
		}
		var kept []iceberg.DataFile
		for _, f := range files {
			if mayHold(f, r.eq) {
				kept = append(kept, f)
			}
		}
		paths := inRange(kept, r.lo, r.hi)
		if plans != nil {
			p := Plan{Table: db + "." + table, Files: len(paths), Total: len(files), From: r.lo, To: r.hi}
			if !r.bounded && len(r.eq) == 0 {
				p = Plan{Table: db + "." + table, Files: len(files), Total: len(files)}
			}
			for _, c := range r.eq {
				p.Columns = append(p.Columns, c.col)
			}
			*plans = append(*plans, p)
		}
		return "(" + tableQuery(d.fileList(ctx, db, table, paths), evolved) + ")", nil
	}
	if r.alerts {
		from, err := read(lake.DBMonitor, alertHistoryTable)
		if err != nil {
			return "", err
		}
		return "(" + strings.Replace(alertsSelect, "panther_monitor.alert_history", from+" AS alert_history", 1) + ")", nil
	}
	if r.union == nil {
		return read(r.db, r.table)
	}
	tables, err := d.tablesOf(r)
	if err != nil {
		return "", err
	}
	names := make([]string, len(tables))
	reads := map[string]string{}
	for i, t := range tables {
		names[i] = t.Name
		if reads[t.Name], err = read(t.DB, t.Name); err != nil {
			return "", err
		}
	}
	return "(" + r.union.union(names, func(table string) string { return reads[table] }) + ")", nil
}

// walk calls fn for every object in a JSON tree.
func walk(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(v)
		for _, c := range v {
			walk(c, fn)
		}
	case []any:
		for _, c := range v {
			walk(c, fn)
		}
	}
}

// selectRefs returns the lake tables in a SELECT's FROM with the p_event_time bounds its WHERE
// sets on them.
func (d *DB) selectRefs(node map[string]any, loc *time.Location) []*tableRef {
	var refs []*tableRef
	only := true // FROM is a single base table
	var from func(v any)
	from = func(v any) {
		m, _ := v.(map[string]any)
		if m == nil {
			return
		}
		switch m["type"] {
		case "BASE_TABLE":
			db, _ := m["schema_name"].(string)
			table, _ := m["table_name"].(string)
			alias, _ := m["alias"].(string)
			loc, ok := m["query_location"].(float64)
			if !ok || loc > 1<<40 || !isLakeDB(db) || lake.CheckName(table) != nil {
				only = false
				return
			}
			if u := findUnionView(db, table); u != nil {
				refs = append(refs, &tableRef{db: db, table: table, alias: alias, loc: int(loc), union: u})
				return
			}
			if d.cache != nil && db == lake.DBMonitor && table == "alerts" {
				only = false // its columns are not a table's
				if _, err := d.lake.TableSignature(db, alertHistoryTable); err == nil {
					refs = append(refs, &tableRef{db: db, table: table, alias: alias, loc: int(loc), alerts: true})
				}
				return
			}
			if _, err := d.lake.TableSignature(db, table); err != nil {
				only = false
				return
			}
			refs = append(refs, &tableRef{db: db, table: table, alias: alias, loc: int(loc)})
		case "JOIN":
			only = false
			from(m["left"])
			from(m["right"])
		default:
			only = false
		}
	}
	from(node["from_table"])
	if len(refs) == 0 {
		return nil
	}
	targetOf := func(col []string) *tableRef {
		var target *tableRef
		switch len(col) {
		case 1:
			if only && len(refs) == 1 {
				target = refs[0]
			}
		case 2:
			for _, r := range refs {
				if name := r.alias; strings.EqualFold(col[0], name) || name == "" && strings.EqualFold(col[0], r.table) {
					target = r
				}
			}
		}
		return target
	}
	for _, c := range conjuncts(node["where_clause"]) {
		if col, vals, ok := equality(c); ok {
			if target := targetOf(col); target != nil {
				target.eq = append(target.eq, eqCond{col: strings.ToLower(col[len(col)-1]), vals: vals})
			}
			continue
		}
		col, lo, hi, ok := bound(c, loc)
		if !ok {
			continue
		}
		target := targetOf(col)
		if target == nil {
			continue
		}
		if !lo.IsZero() && (target.lo.IsZero() || lo.After(target.lo)) {
			target.lo = lo
		}
		if !hi.IsZero() && (target.hi.IsZero() || hi.Before(target.hi)) {
			target.hi = hi
		}
		target.bounded = true
	}
	return refs
}

func isLakeDB(db string) bool {
	for _, d := range lake.Databases {
		if d == db {
			return true
		}
	}
	return false
}

// conjuncts flattens the top-level ANDs of a WHERE clause.
func conjuncts(v any) []map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return nil
	}
	if m["type"] == "CONJUNCTION_AND" {
		var out []map[string]any
		children, _ := m["children"].([]any)
		for _, c := range children {
			out = append(out, conjuncts(c)...)
		}
		return out
	}
	return []map[string]any{m}
}

// bound reads a comparison of p_event_time (possibly qualified) with constant timestamps; a zero
// bound is open.
func bound(e map[string]any, loc *time.Location) (col []string, lo, hi time.Time, ok bool) {
	switch e["type"] {
	case "COMPARE_BETWEEN":
		col = eventTimeColumn(e["input"])
		lo, ok1 := constTime(e["lower"], loc)
		hi, ok2 := constTime(e["upper"], loc)
		return col, lo, hi, col != nil && ok1 && ok2
	case "COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO", "COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO", "COMPARE_EQUAL":
	default:
		return nil, lo, hi, false
	}
	op, _ := e["type"].(string)
	left, right := e["left"], e["right"]
	col = eventTimeColumn(left)
	if col == nil {
		// constant <op> column: swap the sides.
		col = eventTimeColumn(right)
		left, right = right, left
		switch op {
		case "COMPARE_GREATERTHAN":
			op = "COMPARE_LESSTHAN"
		case "COMPARE_GREATERTHANOREQUALTO":
			op = "COMPARE_LESSTHANOREQUALTO"
		case "COMPARE_LESSTHAN":
			op = "COMPARE_GREATERTHAN"
		case "COMPARE_LESSTHANOREQUALTO":
			op = "COMPARE_GREATERTHANOREQUALTO"
		}
	}
	t, tok := constTime(right, loc)
	if col == nil || !tok {
		return nil, lo, hi, false
	}
	switch op {
	case "COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO":
		lo = t
	case "COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO":
		hi = t
	case "COMPARE_EQUAL":
		lo, hi = t, t
	}
	return col, lo, hi, true
}

func eventTimeColumn(v any) []string {
	if col := columnNames(v); col != nil && strings.EqualFold(col[len(col)-1], lake.FieldEventTime) {
		return col
	}
	return nil
}

// columnNames reads a reference to a column, qualified or not ([table.]column), as its names.
func columnNames(v any) []string {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "COLUMN_REF" {
		return nil
	}
	names, _ := m["column_names"].([]any)
	if len(names) == 0 || len(names) > 2 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i], _ = n.(string)
	}
	return out
}

// Literal forms DuckDB reads as timestamps that narrowing understands, with and without an
// offset.
var (
	zonedLayouts = []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z07"}
	localLayouts = []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"}
)

// constTime reads a constant cast to a timestamp type. A TIMESTAMPTZ literal without an offset,
// and any TIMESTAMP literal (DuckDB ignores its offset), is a wall clock time in the session's
// time zone loc.
func constTime(v any, loc *time.Location) (time.Time, bool) {
	m, _ := v.(map[string]any)
	if m == nil || m["class"] != "CAST" {
		return time.Time{}, false
	}
	ct, _ := m["cast_type"].(map[string]any)
	id, _ := ct["id"].(string)
	if id != "TIMESTAMP WITH TIME ZONE" && id != "TIMESTAMP" {
		return time.Time{}, false
	}
	child, _ := m["child"].(map[string]any)
	if child == nil || child["class"] != "CONSTANT" {
		return time.Time{}, false
	}
	val, _ := child["value"].(map[string]any)
	s, ok := val["value"].(string)
	if !ok {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	for _, layout := range zonedLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if id == "TIMESTAMP" {
				// The offset is dropped: the same wall clock time, in the session's zone.
				return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UTC(), true
			}
			return t.UTC(), true
		}
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// refEnd returns the end of the table name ([catalog.]schema.table) starting at loc.
func refEnd(s string, loc int) (int, bool) {
	toks := lex(s[loc:])
	end, parts := 0, 0
	want := true
	for _, t := range toks {
		switch {
		case want && (t.kind == tokIdent || t.kind == tokQuoted):
			end = t.end
			parts++
			want = false
		case !want && t.kind == tokPunct && s[loc+t.start] == '.':
			want = true
		default:
			if parts < 2 {
				return 0, false
			}
			return loc + end, true
		}
	}
	if parts < 2 || want {
		return 0, false
	}
	return loc + end, true
}

// Explain returns the statement as it will run (macros expanded, tables narrowed) and what it
// reads of each lake table it references.
func (d *DB) Explain(ctx context.Context, stmt string) (string, []Plan, error) {
	snap, err := d.refresh(ctx)
	if err != nil {
		return "", nil, err
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close()
	var plans []Plan
	run, _, err := d.prepare(ctx, conn, snap, stmt, d.opts.Now(), nil, &plans)
	return run, plans, err
}

// prepare turns a user's statement into the statement that runs, and reports whether it is an
// EXPLAIN. Nothing the user wrote reaches DuckDB, other than as a string to parse, before the
// whole statement with its macros expanded is one query to DuckDB's parser:
//
//  1. the macros are expanded with every timestamp argument left an expression of the query,
//     and the result must parse as one SELECT (parseQuery);
//  2. only then are constant timestamp arguments evaluated, each in a statement of its own
//     that the guard accepts (duckEval), into literals that let narrowing prune partitions; the
//     expansion with those literals must again parse as one SELECT;
//  3. tables are narrowed, and Run prepares the final text as one statement of type SELECT
//     before it runs (checkPrepared).
func (d *DB) prepare(ctx context.Context, conn *sql.Conn, snap snapshot, stmt string, now time.Time, params map[string]any, plans *[]Plan) (string, bool, error) {
	check := func(text string) (prefix, inner, tree string, err error) {
		prefix, inner = splitExplain(text)
		if inner == "" || !explainPrefix(prefix) {
			return "", "", "", ErrNotQuery
		}
		tree, err = parseQuery(ctx, conn, inner)
		if err != nil {
			if errors.Is(err, ErrNotQuery) || errors.Is(err, errNUL) || errors.Is(err, errUTF8) {
				return "", "", "", err
			}
			return "", "", "", d.explainError(err)
		}
		return prefix, inner, tree, nil
	}
	whole, err := expandMacros(stmt, now, deferEval, params)
	if err != nil {
		return "", false, err
	}
	prefix, inner, tree, err := check(whole)
	if err != nil {
		return "", false, err
	}
	if expanded, err := expandMacros(stmt, now, duckEval(ctx, conn), params); err != nil {
		return "", false, err
	} else if expanded != whole { // constant arguments became literals: check it again
		if prefix, inner, tree, err = check(expanded); err != nil {
			return "", false, err
		}
	}
	out, err := d.narrow(ctx, snap, inner, tree, plans)
	if err != nil {
		return "", false, fmt.Errorf("narrow: %w", err)
	}
	return prefix + out, prefix != "", nil
}
