package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/builtin"
	"github.com/ospreyhq/osprey/detections/engine"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
)

// alertDir is where a lake keeps its alert store.
func alertDir(l *lake.Lake) string { return lake.AlertsDir(l.Dir()) }

// detector is the streaming detections of a command that ingests: the rules' engine in front
// of the lake writer, and the alert store it counts matches in.
type detector struct {
	engine *engine.Engine
	store  *alert.Store
	log    *slog.Logger
	rules  int // enabled rules
}

// openDetector loads the rules of specs and starts an engine writing to next. It returns nil
// when no rule is enabled.
func openDetector(ctx context.Context, l *lake.Lake, specs config.Detections, next engine.Sink, workers int, notify func(*alert.Alert) error, log *slog.Logger) (*detector, error) {
	set, err := builtin.LoadWith(specs.Dirs, specs.Builtin)
	if err != nil {
		return nil, err
	}
	enabled := 0
	for _, r := range set.Rules {
		if r.Enabled {
			enabled++
		}
	}
	if enabled == 0 {
		return nil, nil
	}
	store, err := alert.Open(alertDir(l), matches.CommittedEpoch(l))
	if errors.Is(err, alert.ErrLocked) {
		return nil, fmt.Errorf("detections: %w (osprey serve?): stop it, or ingest with --no-detections", err)
	}
	if err != nil {
		return nil, fmt.Errorf("detections: %w", err)
	}
	e, err := engine.New(ctx, set, store, next, engine.Options{Workers: workers, Notify: notify, Logger: log})
	if err != nil {
		store.Close()
		return nil, err
	}
	log.Debug("detections", "rules", enabled, "tables", e.Tables())
	return &detector{engine: e, store: store, log: log, rules: enabled}, nil
}

// flush commits what w holds with the alert store's epoch.
func (d *detector) flush(ctx context.Context, w *lake.Writer, writer string) error {
	meta, err := d.engine.Prepare(ctx, writer)
	if err != nil {
		return err
	}
	if err := w.FlushWith(ctx, meta); err != nil {
		d.engine.Abort(meta)
		return err
	}
	return d.engine.Commit(meta)
}

func (d *detector) Close() error {
	return errors.Join(d.engine.Close(), d.store.Close())
}
