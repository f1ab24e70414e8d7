package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/query"
)

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
	e.admit.RLock()
	defer e.admit.RUnlock()
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
	e.admit.RLock()
	defer e.admit.RUnlock()
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
