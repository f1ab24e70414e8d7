package engine

import (
	"context"
	"time"

	"github.com/ospreyhq/osprey/detections/matches"
)

// Prepare takes part in a flush of the writer named writer: called when every batch of the
// flush has been written, it runs the rules on the batches that wait, then prepares the alert
// counts of the engine's lane (matches.PrepareAlerts) and returns the metadata the flush must
// commit. Commit or Abort follows.
func (e *Engine) Prepare(ctx context.Context, writer string) (map[string]string, error) {
	if err := e.Drain(ctx, time.Time{}); err != nil {
		return nil, err
	}
	return matches.PrepareAlerts(ctx, e.store, e.next, writer)
}

// Commit settles the epoch of a flush that committed meta.
func (e *Engine) Commit(meta map[string]string) error { return matches.CommitAlerts(e.store, meta) }

// Abort settles the epoch of a flush that failed.
func (e *Engine) Abort(meta map[string]string) error { return matches.AbortAlerts(e.store, meta) }

// Forget drops what the engine holds of the rows written to it since its last Prepare: the
// batches waiting for the rules and the matches counted in the alert store. A pipeline whose
// write failed calls it before it reads those rows again from its log (pipeline.Forgetter).
// It waits for the evaluations in flight; no Write may run meanwhile.
func (e *Engine) Forget() error {
	e.admit.Lock()
	defer e.admit.Unlock()
	for _, tr := range e.tables {
		tr.pmu.Lock()
		release(tr.wait.take())
		tr.pmu.Unlock()
	}
	e.store.ForgetPending("")
	return nil
}
