// Package engine runs streaming detection rules on every batch ingest writes: it is an
// ingest.Sink in front of the lake writer.
//
// For each batch of a table that rules watch, the engine binds the batch as
// panther_logs.<table> in a DuckDB of its own (query.BatchDB; one per ingest worker) and runs
// each rule's query over it: the query sees the new rows only. Only the columns the rules of
// the table refer to are bound (query.BatchDB.Columns); a rule that fails to bind on them is
// run on every column from then on. Each row a rule returns is a match, found in the batch by
// its p_row_id. Matches are counted into alerts by the alert store, and written with the
// p_alert_* and p_rule_* columns to panther_rule_matches.<table> through the same writer as the
// events, so that they are committed in the same flush. A rule whose query fails writes the
// batch's rows, with p_rule_error, to panther_rule_errors.<table>, and the other rules go on.
//
// The rows of panther_rule_matches and panther_rule_errors are built by package matches, and
// the flush that commits the matches carries the alert store's epoch (Prepare, Commit;
// matches.PrepareAlerts): see package alert for why every match is counted once, even after a
// crash.
package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// Databases the engine writes.
const (
	DBLogs        = "panther_logs"
	DBRuleMatches = "panther_rule_matches"
	DBRuleErrors  = "panther_rule_errors"
)

// Sink is where the engine writes events, matches and rule errors: the lake writer.
type Sink interface {
	Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error
}

// Options configure an Engine.
type Options struct {
	// Workers is the number of batches evaluated at once (one DuckDB each); default
	// GOMAXPROCS. Ingest workers beyond it wait.
	Workers int
	// Notify hands a raised alert to its destinations (the outbox); it must be durable when it
	// returns. Nil: alerts are only stored.
	Notify func(*alert.Alert) error
	// Now is the time rules see as now (for macros); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// BatchDir is where batches are written for DuckDB to read; see query.BatchOptions.
	BatchDir string
	// MaxDelay is how long Run lets a small batch wait for others before the rules run on
	// it; default 250ms.
	MaxDelay time.Duration
}

// Engine runs streaming rules. It is safe for concurrent use by ingest workers.
type Engine struct {
	next   Sink
	store  *alert.Store
	opts   Options
	tables map[string]*tableRules
	dbs    chan *query.BatchDB
	all    []*query.BatchDB

	matches     atomic.Int64
	errs        atomic.Int64
	raised      atomic.Int64
	batches     atomic.Int64
	evalNano    atomic.Int64
	prefiltered atomic.Int64 // rows the prefilter spared the rules
}

// tableRules are the rules of one table.
type tableRules struct {
	table string
	rules []*rule

	mu    sync.Mutex
	refs  [][]string  // the column references of the rules
	all   bool        // some rule needs every column
	rowID bool        // bind p_row_id (rules that run alone find their matches by it)
	proj  *projection // nil until the first batch after a reset
	plan  *plan       // nil until the first batch after a reset
	// prefiltered is set once a plan had a prefilter, and stays set (see Keeps).
	prefiltered atomic.Bool

	pmu  sync.Mutex
	wait waiting // rows waiting for the rules; under pmu
}

// rule is a rule as one table runs it.
type rule struct {
	spec     *detections.Rule
	info     *alert.Rule
	index    int          // in the table's rules
	refs     [][]string   // its column references (query.BatchDB.Columns)
	all      atomic.Bool  // it needs every column
	failures atomic.Int64 // batches it failed on
}

// New returns an engine running the enabled rules of set, writing to next and counting alerts
// in store. Each rule's columns are found here; a rule whose query cannot be parsed is an
// error (detections validate finds it first).
func New(ctx context.Context, set *detections.Set, store *alert.Store, next Sink, opts Options) (*Engine, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 250 * time.Millisecond
	}
	e := &Engine{next: next, store: store, opts: opts, tables: map[string]*tableRules{}, dbs: make(chan *query.BatchDB, opts.Workers)}
	for range opts.Workers {
		db, err := query.OpenBatchDB(ctx, query.BatchOptions{Dir: opts.BatchDir})
		if err != nil {
			e.Close()
			return nil, err
		}
		e.all = append(e.all, db)
		e.dbs <- db
	}
	ids := make([]string, 0, len(set.Rules))
	for id := range set.Rules {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	db := e.all[0]
	for _, id := range ids {
		spec := set.Rules[id]
		if !spec.Enabled {
			continue
		}
		refs, all, err := db.Columns(ctx, spec.Query, opts.Now())
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("%s:%d: rule %s: %w", spec.File, spec.Line, spec.RuleID, err)
		}
		// A rule DuckDB accepts but that cannot mean what it says runs (osprey detect validate
		// refuses it), with a warning.
		if pits, err := db.Pitfalls(ctx, spec.Query, opts.Now()); err == nil {
			for _, p := range pits {
				opts.Logger.Warn("rule "+spec.RuleID+": "+p.Msg, "file", spec.File, "line", spec.QueryLine)
			}
		}
		info := matches.AlertRule(&spec.Detection, alert.TypeRule, spec.LogTypes)
		for _, t := range detections.LogTypeTables(spec) {
			tr := e.tables[t]
			if tr == nil {
				tr = &tableRules{table: t}
				e.tables[t] = tr
			}
			r := &rule{spec: spec, info: info, index: len(tr.rules), refs: refs}
			r.all.Store(all)
			tr.rules = append(tr.rules, r)
		}
	}
	for _, tr := range e.tables {
		tr.reset()
	}
	return e, nil
}

// Tables returns the tables rules watch.
func (e *Engine) Tables() []string {
	out := make([]string, 0, len(e.tables))
	for t := range e.tables {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Close releases the engine's databases. It does not close the sink or the store.
func (e *Engine) Close() error {
	var errs []error
	for _, db := range e.all {
		errs = append(errs, db.Close())
	}
	e.all = nil
	return errors.Join(errs...)
}

// Stats count what the engine did.
type Stats struct {
	Batches    int64 // batches evaluated
	Matches    int64
	RuleErrors int64 // rule runs that failed
	Raised     int64 // alerts raised
	Evaluating time.Duration
	// Prefiltered counts the rows no rule needed to see: every rule of their table tests a
	// string column against constants first, and they had none of them.
	Prefiltered int64
}

// Stats returns the engine's counts so far.
func (e *Engine) Stats() Stats {
	return Stats{Batches: e.batches.Load(), Matches: e.matches.Load(), RuleErrors: e.errs.Load(),
		Raised: e.raised.Load(), Evaluating: time.Duration(e.evalNano.Load()), Prefiltered: e.prefiltered.Load()}
}

// Rules run over batches of at least evalRows rows: each run of a table's rules costs a few
// milliseconds however few its rows, and ingest hands on small batches (one per event hour and
// worker, and whatever arrived since the last hand-off in osprey serve). A smaller batch waits,
// kept (Keeps), until the table's waiting batches reach evalRows, MaxDelay passes (Run), or the
// flush begins (Prepare).
const evalRows = 32768

// The prefilter's candidates, a few rows of each batch, wait until they reach evalRows or the
// rows they were picked from reach evalSeen: the rules then run every few hundred thousand
// events, while ingest goes on, instead of all at the flush, when nothing else runs.
const evalSeen = 8 * evalRows

// Keeps tells ingest whether Write keeps the record after it returns (see ingest.Keeper): the
// engine keeps the small batches of tables that rules watch until it runs the rules on them.
func (e *Engine) Keeps(db, table string, rows int64) bool {
	tr := e.tables[table]
	// Once a table's rules have a prefilter, Write copies the rows it keeps instead.
	return db == DBLogs && tr != nil && rows < evalRows && !tr.prefiltered.Load()
}

// Write writes rec and runs the rules of its table on it, now or (a small batch) later; see
// Keeps.
func (e *Engine) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	if err := e.next.Write(ctx, db, table, rec); err != nil {
		return err
	}
	tr := e.tables[table]
	if tr == nil || db != DBLogs || rec.NumRows() == 0 {
		return nil
	}
	tr.mu.Lock()
	var pf *query.Prefilter
	if tr.plan != nil {
		pf = tr.plan.prefilter
	}
	tr.mu.Unlock()
	if pf != nil {
		// Only the rows that may match wait for the rules, copied: the batch itself is done
		// with, and the rules run on many batches' candidates at once.
		sel, n := pf.Select(DBLogs, table, []arrow.RecordBatch{rec})
		e.prefiltered.Add(rec.NumRows() - int64(n))
		if n == 0 {
			return e.seen(ctx, tr, rec.NumRows())
		}
		// Copied: the batch itself is done with when Write returns (Keeps said no).
		return e.waitRows(ctx, tr, rec, sel[0])
	}
	if rec.NumRows() >= evalRows {
		return e.evaluate(ctx, tr, []arrow.RecordBatch{rec})
	}
	if tr.prefiltered.Load() {
		// Keeps may have said no (the plan changed since): keep a copy.
		all := make([]int32, rec.NumRows())
		for i := range all {
			all[i] = int32(i)
		}
		return e.waitRows(ctx, tr, rec, all)
	}
	rec.Retain()
	return e.wait(ctx, tr, rec)
}

// takeSelected returns a new batch of some rows of rec, a copy the engine owns.
func takeSelected(rec arrow.RecordBatch, rows []int32) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		out, err := takeColumn(c, rows)
		if err != nil {
			return nil, err
		}
		cols[i] = out
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(rows))), nil
}

// wait adds a batch (which the engine owns) to the rows waiting for the table's rules, and
// runs them when enough rows wait (see evalRows).
func (e *Engine) wait(ctx context.Context, tr *tableRules, rec arrow.RecordBatch) error {
	tr.pmu.Lock()
	other := tr.wait.admit(rec.Schema())
	tr.wait.add(rec, rec.NumRows())
	ready := tr.readyLocked()
	tr.pmu.Unlock()
	return e.evaluateAll(ctx, tr, other, ready)
}

// waitRows copies rows of rec to the rows waiting for the table's rules, and runs them when
// enough rows wait or were seen (see evalSeen).
func (e *Engine) waitRows(ctx context.Context, tr *tableRules, rec arrow.RecordBatch, rows []int32) error {
	tr.pmu.Lock()
	other := tr.wait.admit(rec.Schema())
	if !tr.wait.addRows(rec, rows) {
		cp, err := takeSelected(rec, rows)
		if err != nil {
			tr.pmu.Unlock()
			release(other)
			return fmt.Errorf("detections: %w", err)
		}
		tr.wait.add(cp, rec.NumRows())
	}
	ready := tr.readyLocked()
	tr.pmu.Unlock()
	return e.evaluateAll(ctx, tr, other, ready)
}

// seen counts rows the prefilter ruled out while candidates wait, and runs the rules when
// enough were seen.
func (e *Engine) seen(ctx context.Context, tr *tableRules, seen int64) error {
	tr.pmu.Lock()
	var ready []arrow.RecordBatch
	if !tr.wait.empty() {
		tr.wait.seen += seen
		ready = tr.readyLocked()
	}
	tr.pmu.Unlock()
	return e.evaluateAll(ctx, tr, ready)
}

// readyLocked returns the waiting rows when enough wait or were seen.
func (tr *tableRules) readyLocked() []arrow.RecordBatch {
	if tr.wait.rows >= evalRows || tr.wait.seen >= evalSeen {
		return tr.wait.take()
	}
	return nil
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// evaluateAll runs the rules on each list of batches in turn, and releases them.
func (e *Engine) evaluateAll(ctx context.Context, tr *tableRules, lists ...[]arrow.RecordBatch) error {
	for i, recs := range lists {
		if len(recs) == 0 {
			continue
		}
		if err := e.evaluateAndRelease(ctx, tr, recs); err != nil {
			for _, rest := range lists[i+1:] {
				release(rest)
			}
			return err
		}
	}
	return nil
}

func (e *Engine) evaluateAndRelease(ctx context.Context, tr *tableRules, recs []arrow.RecordBatch) error {
	defer release(recs)
	return e.evaluate(ctx, tr, recs)
}

// Drain runs the rules on the batches that wait, those waiting since before olderThan only
// (all of them when olderThan is zero).
func (e *Engine) Drain(ctx context.Context, olderThan time.Time) error {
	for _, tr := range e.tables {
		tr.pmu.Lock()
		var recs []arrow.RecordBatch
		if !tr.wait.empty() && (olderThan.IsZero() || tr.wait.since.Before(olderThan)) {
			recs = tr.wait.take()
		}
		tr.pmu.Unlock()
		if len(recs) > 0 {
			if err := e.evaluateAndRelease(ctx, tr, recs); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run runs the rules on batches that have waited MaxDelay, until ctx is done: osprey serve
// runs it, so that an event raises its alert within about MaxDelay of reaching the engine.
func (e *Engine) Run(ctx context.Context) error {
	tick := time.NewTicker(max(e.opts.MaxDelay/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := e.Drain(ctx, time.Now().Add(-e.opts.MaxDelay)); err != nil {
				return err
			}
		}
	}
}

// match is a row a rule returned: row of the rec'th batch evaluated.
type match struct {
	rec                    int
	row                    int32
	title, dedup, severity string
	context                json.RawMessage
}

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

func isBinder(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Binder Error") || strings.Contains(s, "Catalog Error")
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
