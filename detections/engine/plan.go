package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/query"
)

// The rules of a table run as one statement: the union of each rule's query, wrapped to return
// the rule's index, p_row_id and the alert columns. The statement is prepared once per
// DuckDB and runs over every batch. A rule that fails at run time fails the union; the batch
// is then run rule by rule, to keep the failing rule's rows in panther_rule_errors and the
// others' matches, and a rule that keeps failing runs alone from then on.

// isolateAfter is the number of batches a rule fails before it runs alone.
const isolateAfter = 3

// wrap returns the rule's query wrapped to return the union's columns, given the names of its
// result columns; ok is false when the result has no p_row_id.
func wrap(i int, query string, cols []string) (string, bool) {
	find := func(name string) string {
		for _, c := range cols {
			if strings.EqualFold(c, name) {
				return `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
			}
		}
		return ""
	}
	rowID := find("p_row_id")
	if rowID == "" {
		return "", false
	}
	col := func(name string, json bool) string {
		c := find(name)
		switch {
		case c == "":
			return "NULL::VARCHAR"
		case json:
			return "CAST(to_json(" + c + ") AS VARCHAR)"
		}
		return "CAST(" + c + " AS VARCHAR)"
	}
	query = strings.TrimRight(strings.TrimSpace(query), ";")
	return fmt.Sprintf("SELECT %d AS __rule, CAST(%s AS VARCHAR) AS p_row_id, %s AS alert_title, %s AS alert_dedup, %s AS alert_severity, %s AS alert_context FROM (\n%s\n) AS __rule%d",
		i, rowID, col("alert_title", false), col("alert_dedup", false), col("alert_severity", false), col("alert_context", true), query, i), true
}

// plan is how a table's rules run over the bound columns.
type plan struct {
	combined      string   // the simple filters, in one scan (query.Combine)
	combinedRules []*rule  // by column of the combined statement
	union         string   // the other rules that run together
	members       []*rule  // by index in the union
	alone         []*rule  // rules that run one by one
	wrapped       []string // each rule's wrapped query, by rule index in the table; "" if it cannot run
	// prefilter, when every rule is in the combined scan and each has a condition it
	// understands, picks the rows that may match before anything is bound.
	prefilter *query.Prefilter
	// scans holds the combined rules' scans one by one (by column of the combined statement),
	// worked out when the combined scan first fails; under tableRules.mu.
	scans []*plan
}

// plan returns how the table's rules run over the columns bound in db, working it out on the
// first batch after the columns change. retry is set when a rule turned out to need every
// column: bind again and plan again.
func (e *Engine) plan(ctx context.Context, db *query.BatchDB, tr *tableRules, now time.Time) (*plan, bool, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.plan != nil {
		return tr.plan, false, nil
	}
	p := &plan{wrapped: make([]string, len(tr.rules))}
	var parts []string
	for _, r := range tr.rules {
		cols, err := db.Check(ctx, r.spec.Query, now)
		if err != nil && isBinder(err) && !tr.all && !r.all.Load() {
			// The rule refers to a column in a way Columns does not see: from now on it
			// gets every column.
			e.opts.Logger.Info("rule needs every column of its table", "rule", r.spec.RuleID, "table", tr.table, "err", err)
			r.all.Store(true)
			tr.resetLocked()
			return nil, true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			// It runs alone, and fails: its rows go to panther_rule_errors.
			p.wrapped[r.index] = fmt.Sprintf("SELECT * FROM (%s\n)", strings.TrimRight(strings.TrimSpace(r.spec.Query), ";"))
			p.alone = append(p.alone, r)
			continue
		}
		w, ok := wrap(r.index, r.spec.Query, cols)
		p.wrapped[r.index] = w
		if !ok || r.failures.Load() >= isolateAfter {
			p.alone = append(p.alone, r)
			continue
		}
		p.members = append(p.members, r)
		parts = append(parts, w)
	}
	// The simple filters among the members scan the batch once, together.
	stmts := make([]string, len(p.members))
	for i, r := range p.members {
		stmts[i] = r.spec.Query
	}
	c, err := db.Combine(ctx, DBLogs, tr.table, stmts)
	if err == nil && c.SQL != "" {
		// The combined statement must bind; if it does not, the rules run in the union.
		if _, err = db.Check(ctx, c.SQL, now); err != nil {
			e.opts.Logger.Warn("rules could not be combined into one scan", "table", tr.table, "err", err)
			c = query.Combined{}
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	in := map[int]bool{}
	for _, i := range c.Rules {
		in[i] = true
		p.combinedRules = append(p.combinedRules, p.members[i])
	}
	p.combined = c.SQL
	var rest []*rule
	parts = parts[:0]
	for i, r := range p.members {
		if !in[i] {
			rest = append(rest, r)
			parts = append(parts, p.wrapped[r.index])
		}
	}
	p.members = rest
	p.union = strings.Join(parts, "\nUNION ALL\n")
	if len(p.members) == 0 && len(p.alone) == 0 {
		p.prefilter = c.Prefilter
	}
	if p.prefilter != nil {
		tr.prefiltered.Store(true)
	}
	tr.plan = p
	if len(p.members) == 0 && len(p.alone) == 0 && tr.rowID && !tr.refersTo(fieldRowID) {
		// Every rule runs in the combined scan, which finds rows by number: p_row_id, a
		// long string of every row, need not be bound.
		tr.rowID = false
		tr.proj = nil
	}
	e.opts.Logger.Debug("rules planned", "table", tr.table, "combined", len(p.combinedRules), "union", len(p.members), "alone", len(p.alone))
	return p, false, nil
}

// scanOf returns the plan of combined rule i alone: its own scan, in the combined form.
func (e *Engine) scanOf(ctx context.Context, db *query.BatchDB, tr *tableRules, p *plan, i int) (*plan, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if p.scans == nil {
		p.scans = make([]*plan, len(p.combinedRules))
	}
	if one := p.scans[i]; one != nil {
		return one, nil
	}
	r := p.combinedRules[i]
	c, err := db.Scan(ctx, DBLogs, tr.table, r.spec.Query)
	if err != nil {
		return nil, err
	}
	if c.SQL == "" {
		return nil, fmt.Errorf("BUG: rule %s was combined but is not simple alone", r.spec.RuleID)
	}
	p.scans[i] = &plan{combined: c.SQL, combinedRules: []*rule{r}}
	return p.scans[i], nil
}

func isBinder(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Binder Error") || strings.Contains(s, "Catalog Error")
}
