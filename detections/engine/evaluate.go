package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// match is a row a rule returned: row of the rec'th batch evaluated.
type match struct {
	rec                    int
	row                    int32
	title, dedup, severity string
	context                json.RawMessage
}

// errNoRowID is the error of a rule whose result has no p_row_id.
var errNoRowID = errors.New("the rule's result has no p_row_id column: a streaming rule returns events (SELECT * or SELECT p_row_id, ...)")

// evaluate runs every rule of the table on the batches, together.
func (e *Engine) evaluate(ctx context.Context, tr *tableRules, recs []arrow.RecordBatch) error {
	start := time.Now()
	var db *query.BatchDB
	select {
	case db = <-e.dbs:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { e.dbs <- db }()
	now := e.opts.Now()
	var rows int64
	for _, rec := range recs {
		rows += rec.NumRows()
	}
	// The plan is worked out on the batch's columns bound empty, so that the first batch is
	// prefiltered too.
	var p *plan
	for {
		tr.mu.Lock()
		p = tr.plan
		tr.mu.Unlock()
		if p != nil {
			break
		}
		proj := tr.project(recs[0])
		empty := proj.NewSlice(0, 0)
		proj.Release()
		err := db.Bind(ctx, DBLogs, tr.table, empty)
		empty.Release()
		if err != nil {
			return fmt.Errorf("detections: %w", err)
		}
		var retry bool
		if p, retry, err = e.plan(ctx, db, tr, now); err != nil {
			return err
		}
		if !retry {
			break
		}
	}
	var sel [][]int32 // the rows bound, by batch; nil: all
	if p.prefilter != nil {
		var n int
		sel, n = p.prefilter.Select(DBLogs, tr.table, recs)
		e.prefiltered.Add(rows - int64(n))
		if n == 0 {
			// No row can match: nothing to bind or run.
			e.batches.Add(1)
			e.evalNano.Add(int64(time.Since(start)))
			return nil
		}
	}
	projs := make([]arrow.RecordBatch, len(recs))
	for i, rec := range recs {
		projs[i] = tr.project(rec)
	}
	err := db.BindRows(ctx, DBLogs, tr.table, projs, sel)
	for _, p := range projs {
		p.Release()
	}
	if err != nil {
		return fmt.Errorf("detections: %w", err)
	}
	ids := rowIndex{recs: recs, sel: sel}
	found := map[*rule][]match{}
	failed := map[*rule]error{}
	if p.combined != "" {
		if err := e.collectCombined(ctx, db, p, &ids, now, found); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Find the rules that fail, each in a scan of its own (the rules' own statements
			// may need p_row_id, which the combined scan does without), and keep the others'
			// matches.
			for i, r := range p.combinedRules {
				delete(found, r)
				one, err := e.scanOf(ctx, db, tr, p, i)
				if err == nil {
					err = e.collectCombined(ctx, db, one, &ids, now, found)
				}
				if err != nil {
					failed[r] = err
				}
			}
		}
	}
	if p.union != "" {
		if err := e.collect(ctx, db, p.union, p.members, &ids, now, found); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Find the rules that fail, and keep the others' matches.
			for _, r := range p.members {
				delete(found, r)
			}
			for _, r := range p.members {
				if err := e.collect(ctx, db, p.wrapped[r.index], []*rule{r}, &ids, now, found); err != nil {
					failed[r] = err
				}
			}
		}
	}
	for _, r := range p.alone {
		if p.wrapped[r.index] == "" {
			failed[r] = errNoRowID
			continue
		}
		if err := e.collect(ctx, db, p.wrapped[r.index], []*rule{r}, &ids, now, found); err != nil {
			failed[r] = err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out := &matchWriter{table: tr.table, recs: recs}
	var raised []*alert.Alert
	for _, r := range tr.rules {
		if err, ok := failed[r]; ok {
			e.errs.Add(1)
			e.opts.Logger.Warn("rule failed: the batch's rows are kept in panther_rule_errors", "rule", r.spec.RuleID, "table", tr.table, "rows", rows, "err", err)
			if r.failures.Add(1) == isolateAfter {
				tr.reset()
			}
			for _, rec := range recs {
				if err := e.writeErrors(ctx, tr.table, rec, r, err); err != nil {
					return err
				}
			}
			continue
		}
		if ms := found[r]; len(ms) > 0 {
			up, err := e.alert(r, ms, recs, out)
			if err != nil {
				return err
			}
			raised = append(raised, up...)
		}
	}
	if err := e.notify(raised); err != nil {
		return err
	}
	e.batches.Add(1)
	e.evalNano.Add(int64(time.Since(start)))
	if out.n > 0 {
		m := out.build()
		defer m.Release()
		if err := e.next.Write(ctx, DBRuleMatches, tr.table, m); err != nil {
			return fmt.Errorf("write %s.%s: %w", DBRuleMatches, tr.table, err)
		}
	}
	return nil
}

// collectCombined runs the combined statement and adds its matches to found.
func (e *Engine) collectCombined(ctx context.Context, db *query.BatchDB, p *plan, ids *rowIndex, now time.Time, found map[*rule][]match) error {
	rows, err := db.QueryPrepared(ctx, p.combined, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]any, 1+len(p.combinedRules))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		n, _ := vals[0].(int64)
		rec, row, ok := ids.at(n)
		if !ok {
			return fmt.Errorf("row %d is not a row of the batch", n)
		}
		for i, r := range p.combinedRules {
			text, ok := vals[1+i].(string)
			if !ok {
				continue
			}
			var cols struct{ Title, Dedup, Severity, Context json.RawMessage }
			if err := json.Unmarshal([]byte(text), &cols); err != nil {
				return fmt.Errorf("rule %s: alert columns %q: %w", r.spec.RuleID, text, err)
			}
			mt := match{rec: rec, row: row, title: jsonText(cols.Title), dedup: jsonText(cols.Dedup)}
			if len(mt.dedup) > 1000 {
				mt.dedup = mt.dedup[:1000]
			}
			if sev, ok := detections.ParseSeverity(jsonText(cols.Severity)); ok {
				mt.severity = string(sev)
			}
			if len(cols.Context) > 0 && string(cols.Context) != "null" {
				mt.context = cols.Context
			}
			found[r] = append(found[r], mt)
		}
	}
	return rows.Err()
}

// jsonText renders a JSON value (an alert column's) as alert text: a string as itself, null
// (or none) as "", anything else as its JSON.
func jsonText(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(v, &str) == nil {
		return str
	}
	return string(v)
}

// collect runs a statement of wrapped rules and adds their matches to found.
func (e *Engine) collect(ctx context.Context, db *query.BatchDB, stmt string, rules []*rule, ids *rowIndex, now time.Time, found map[*rule][]match) error {
	rows, err := db.QueryPrepared(ctx, stmt, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	byIndex := make(map[int]*rule, len(rules))
	for _, r := range rules {
		byIndex[r.index] = r
	}
	var (
		idx                         int
		rowID                       string
		title, dedup, sev, alertCtx sql.NullString
	)
	for rows.Next() {
		if err := rows.Scan(&idx, &rowID, &title, &dedup, &sev, &alertCtx); err != nil {
			return err
		}
		r := byIndex[idx]
		rec, row, ok := ids.find(rowID)
		if r == nil || !ok {
			return fmt.Errorf("the rule returned p_row_id %q, which is not a row of the batch", rowID)
		}
		m := match{rec: rec, row: row, title: title.String, dedup: dedup.String}
		if len(m.dedup) > 1000 {
			m.dedup = m.dedup[:1000]
		}
		if s, ok := detections.ParseSeverity(sev.String); ok {
			m.severity = string(s)
		}
		if alertCtx.Valid && alertCtx.String != "null" {
			m.context = json.RawMessage(alertCtx.String)
		}
		found[r] = append(found[r], m)
	}
	return rows.Err()
}

// rowIndex finds rows of batches by p_row_id; it is built on first use.
type rowIndex struct {
	recs []arrow.RecordBatch
	sel  [][]int32 // the rows bound, by batch (nil: every row)
	m    map[string]rowRef
}

type rowRef struct {
	rec int
	row int32
}

// at finds a row by its number in the batches.
func (ix *rowIndex) at(n int64) (int, int32, bool) {
	if ix.sel != nil {
		for i, rows := range ix.sel {
			if n < int64(len(rows)) {
				return i, rows[n], n >= 0
			}
			n -= int64(len(rows))
		}
		return 0, 0, false
	}
	for i, rec := range ix.recs {
		if n < rec.NumRows() {
			return i, int32(n), n >= 0
		}
		n -= rec.NumRows()
	}
	return 0, 0, false
}

func (ix *rowIndex) find(id string) (int, int32, bool) {
	if ix.m == nil {
		ix.m = map[string]rowRef{}
		for i, rec := range ix.recs {
			if c := rec.Schema().FieldIndices("p_row_id"); len(c) == 1 {
				if ids, ok := rec.Column(c[0]).(*array.String); ok {
					for j := range ids.Len() {
						ix.m[ids.Value(j)] = rowRef{i, int32(j)}
					}
				}
			}
		}
	}
	ref, ok := ix.m[id]
	return ref.rec, ref.row, ok
}

// alert counts a rule's matches into alerts, hands raised alerts on, and adds the matches to
// the batch's rule_matches rows.
func (e *Engine) alert(r *rule, found []match, recs []arrow.RecordBatch, out *matchWriter) ([]*alert.Alert, error) {
	times := make([]*array.Timestamp, len(recs))
	for i, rec := range recs {
		times[i] = eventTimes(rec)
	}
	ms := make([]alert.Match, len(found))
	for i, f := range found {
		ms[i] = alert.Match{Dedup: f.dedup, Title: f.title, Severity: f.severity, Context: f.context}
		if t := times[f.rec]; t != nil {
			ms[i].EventTime = t.Value(int(f.row)).ToTime(arrow.Microsecond).UTC()
		}
		rec, row := recs[f.rec], int(f.row)
		ms[i].Sample = func() json.RawMessage { return matches.RowJSON(rec, row) }
	}
	assigned, raised, err := e.store.Add(r.info, ms, false)
	if err != nil {
		return nil, fmt.Errorf("detections: %w", err)
	}
	e.matches.Add(int64(len(found)))
	for i, f := range found {
		out.add(f, r, assigned[i])
	}
	return raised, nil
}

// notify hands raised alerts to destinations once their raise is durable.
func (e *Engine) notify(raised []*alert.Alert) error {
	if len(raised) == 0 {
		return nil
	}
	if e.opts.Notify == nil {
		// Nothing leaves the process: the raises are synced with the epoch at Prepare, before
		// the flush that commits their matches.
		e.raised.Add(int64(len(raised)))
		return nil
	}
	if err := e.store.Sync(); err != nil {
		return fmt.Errorf("detections: %w", err)
	}
	for _, a := range raised {
		e.raised.Add(1)
		if e.opts.Notify != nil {
			if err := e.opts.Notify(a); err != nil {
				return fmt.Errorf("detections: alert %s of rule %s: %w", a.AlertID, a.RuleID, err)
			}
			if err := e.store.Notified(a.AlertID); err != nil {
				return fmt.Errorf("detections: %w", err)
			}
		}
	}
	return nil
}

func eventTimes(rec arrow.RecordBatch) *array.Timestamp {
	c := rec.Schema().FieldIndices(lake.FieldEventTime)
	if len(c) != 1 {
		return nil
	}
	t, _ := rec.Column(c[0]).(*array.Timestamp)
	return t
}
