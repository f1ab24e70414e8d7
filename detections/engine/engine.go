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
// A batch is admitted (admit.go: Write, and the small batches and prefilter candidates that
// wait for more until Drain or Run), the table's rules are planned over the columns bound
// (plan.go: the prefilter, one combined scan of the simple filters, a union of the others,
// rules that run alone), then evaluated (evaluate.go: matches found, counted into alerts,
// raised alerts handed on).
//
// The rows of panther_rule_matches and panther_rule_errors are built by package matches, and
// the flush that commits the matches carries the alert store's epoch (Prepare, Commit;
// matches.PrepareAlerts): see package alert for why every match is counted once, even after a
// crash.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
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
	// admit is held shared by Write and Drain, from taking rows through counting their
	// matches, and exclusively by Forget.
	admit sync.RWMutex

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
