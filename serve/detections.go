package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/builtin"
	"github.com/ospreyhq/osprey/detections/dest"
	"github.com/ospreyhq/osprey/detections/engine"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/detections/scheduled"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/lake"
)

// The engine forgets the rows of a failed write, so that serve recovers from a full disk with
// streaming rules on as it does without them.
var _ pipeline.Forgetter = (*engine.Engine)(nil)

// detectionSet is what osprey serve runs of detections: the streaming rules' engine in
// front of the lake writer, the alert store, and the outbox that delivers alerts.
type detectionSet struct {
	set    *detections.Set
	rules  int // enabled streaming rules
	store  *alert.Store
	engine *engine.Engine    // nil without streaming rules
	sched  *scheduled.Runner // nil without scheduled queries
	outbox *dest.Outbox      // nil without destinations
	log    *slog.Logger
}

// openDetections loads the configured detections and opens what they need; the engine of
// streaming rules hands every batch on to next. It returns nil when nothing is configured.
func openDetections(ctx context.Context, l *lake.Lake, cfg *config.Config, log *slog.Logger, next ingest.Sink) (*detectionSet, error) {
	set, err := builtin.LoadWith(cfg.Detections.Dirs, cfg.Detections.Builtin)
	if err != nil {
		return nil, err
	}
	rules := 0
	for _, r := range set.Rules {
		if r.Enabled {
			rules++
		}
	}
	scheduled := 0
	for _, q := range set.ScheduledQueries {
		if q.Enabled {
			scheduled++
		}
	}
	if rules == 0 && scheduled == 0 && len(cfg.Destinations) == 0 {
		return nil, nil
	}
	d := &detectionSet{set: set, rules: rules, log: log}
	if d.store, err = alert.Open(lake.AlertsDir(l.Dir()), matches.CommittedEpoch(l)); err != nil {
		if errors.Is(err, alert.ErrLocked) {
			return nil, fmt.Errorf("detections: %w: stop the osprey ingest --detections or osprey schedule run that holds it", err)
		}
		return nil, fmt.Errorf("detections: %w", err)
	}
	if len(cfg.Destinations) > 0 {
		dests := make([]dest.Destination, 0, len(cfg.Destinations))
		for _, c := range cfg.Destinations {
			dd, err := dest.New(c, dest.Options{})
			if err != nil {
				d.Close()
				return nil, err
			}
			dests = append(dests, dd)
		}
		opts := dest.DefaultOutboxOptions()
		opts.Logger = log
		if d.outbox, err = dest.OpenOutbox(lake.OutboxDir(l.Dir()), dests, opts); err != nil {
			d.Close()
			return nil, err
		}
	}
	// A rule naming a destination that does not exist would lose its alerts.
	var bad []error
	check := func(det *detections.Detection) {
		if len(det.OutputIds) == 0 {
			return
		}
		if d.outbox == nil {
			bad = append(bad, fmt.Errorf("%s:%d: rule %s: OutputIds %v, but no destination is configured", det.File, det.Line, det.RuleID, det.OutputIds))
		} else if err := d.outbox.CheckOutputIDs(det.OutputIds); err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: rule %s: %w", det.File, det.Line, det.RuleID, err))
		}
	}
	for _, r := range set.Rules {
		check(&r.Detection)
	}
	for _, r := range set.ScheduledRules {
		check(&r.Detection)
	}
	if err := errors.Join(bad...); err != nil {
		d.Close()
		return nil, err
	}
	// Alerts raised and not handed on (a crash between the two, or raised by a command that
	// had no destinations) go out now.
	if err := d.notifyPending(); err != nil {
		d.Close()
		return nil, err
	}
	var notify func(*alert.Alert) error // nil without destinations: alerts are only stored
	if d.outbox != nil {
		notify = d.outbox.Enqueue
	}
	if rules > 0 {
		d.engine, err = engine.New(ctx, set, d.store, next, engine.Options{Workers: cfg.Workers, Notify: notify, Logger: log,
			MaxDelay: time.Duration(cfg.Detections.MaxDelay)})
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	if scheduled > 0 {
		if d.sched, err = newScheduleRunner(l, set, d.store, notify, log); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// pendingAge is how old an unnotified alert may be and still be sent at start: older ones
// (from a bulk ingest of old logs with --detections, say) are stored and listed, not sent.
const pendingAge = 24 * time.Hour

// notifyPending hands the store's unnotified alerts to the outbox. Without destinations,
// alerts stay in the store, unnotified, for a later osprey serve that has some. An alert whose
// destinations no longer exist is logged and left unnotified.
func (d *detectionSet) notifyPending() error {
	if d.outbox == nil {
		return nil
	}
	sent, old, failed := 0, 0, 0
	cutoff := time.Now().Add(-pendingAge)
	for _, a := range d.store.Unnotified() {
		if a.CreatedAt.Before(cutoff) {
			old++
			if err := d.store.Notified(a.AlertID); err != nil {
				return err
			}
			continue
		}
		if err := d.outbox.Enqueue(a); err != nil {
			failed++
			d.log.Warn("alert raised earlier not sent", "alert", a.AlertID, "rule", a.RuleID, "err", err)
			continue
		}
		if err := d.store.Notified(a.AlertID); err != nil {
			return err
		}
		sent++
	}
	if sent+old+failed > 0 {
		d.log.Info("alerts raised while no destination was running", "sent", sent, "older than a day, not sent", old, "failed", failed)
	}
	return nil
}

// run runs the engine's timer and the outbox's senders until ctx is done.
func (d *detectionSet) run(ctx context.Context, wg *sync.WaitGroup, fail func(error)) {
	if d == nil {
		return
	}
	if d.engine != nil {
		wg.Go(func() {
			if err := d.engine.Run(ctx); err != nil {
				fail(fmt.Errorf("detections: %w", err))
			}
		})
	}
	if d.sched != nil {
		wg.Go(func() {
			if err := d.sched.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				fail(fmt.Errorf("scheduled searches: %w", err))
			}
		})
	}
	if d.outbox != nil {
		wg.Go(func() {
			if err := d.outbox.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				fail(fmt.Errorf("alert destinations: %w", err))
			}
		})
	}
}

func (d *detectionSet) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.sched != nil {
		errs = append(errs, d.sched.Close())
	}
	if d.engine != nil {
		errs = append(errs, d.engine.Close())
	}
	if d.outbox != nil {
		errs = append(errs, d.outbox.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	return errors.Join(errs...)
}

// newScheduleRunner returns the runner of the set's scheduled queries and rules, counting
// alerts in store (nil: the runner opens the lake's store when a rule needs it).
func newScheduleRunner(l *lake.Lake, set *detections.Set, store *alert.Store, notify func(*alert.Alert) error, log *slog.Logger) (*scheduled.Runner, error) {
	return scheduled.New(l, set, scheduled.Options{Alerts: store, Notify: notify, Logger: log})
}
