package serve

// The pull sources of osprey serve (S3 via SQS, Rapid7): starting and stopping them, their
// health in /metrics and in the lake's health file that osprey source list reads.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/ingest/source/rapid7"
	"github.com/ospreyhq/osprey/ingest/source/s3src"
	"github.com/ospreyhq/osprey/metrics"
)

// puller is a running pull source.
type puller struct {
	cancel context.CancelFunc
	done   chan struct{}
	health *health.Source
	names  []string // the names it appends under, registered with the pipeline
}

// S3Router returns the router of an s3 source and the pipeline sources of its routes, by name
// (the prefixes of its configuration each route to their log types).
func S3Router(src config.Source, reg *logtypes.Registry) (*s3src.Router, map[string]*ingest.Source, error) {
	lookup := func(names []string) ([]*logtypes.LogType, error) {
		var lts []*logtypes.LogType
		for _, n := range names {
			lt, err := reg.Lookup(n)
			if err != nil {
				return nil, err
			}
			lts = append(lts, lt)
		}
		return lts, nil
	}
	bs := batch.Source{ID: src.ID, Label: src.Label}
	lts, err := lookup(src.LogTypes)
	if err != nil {
		return nil, nil, err
	}
	sources := map[string]*ingest.Source{src.ID: {Source: bs, LogTypes: lts}}
	def := s3src.Route{Name: src.ID, Source: sources[src.ID]}
	var routes []s3src.Route
	for _, p := range src.S3.Prefixes {
		if p.Exclude {
			routes = append(routes, s3src.Route{Prefix: p.Prefix, Exclude: true})
			continue
		}
		lts, err := lookup(p.LogTypes)
		if err != nil {
			return nil, nil, fmt.Errorf("prefix %s: %w", p.Prefix, err)
		}
		name := src.ID + ":" + p.Prefix
		sources[name] = &ingest.Source{Source: bs, LogTypes: lts}
		routes = append(routes, s3src.Route{Prefix: p.Prefix, Name: name, Source: sources[name]})
	}
	return s3src.NewRouter(src.S3.Bucket, src.S3.Prefix, def, routes), sources, nil
}

// S3AWS returns how an s3 source reaches AWS (or an emulator).
func S3AWS(c *config.S3) s3src.AWS {
	return s3src.AWS{Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle, RoleARN: c.RoleARN, ExternalID: c.ExternalID}
}

func busy(err error) bool { return errors.Is(err, pipeline.ErrBusy) }

// startPuller starts a pull source (after stopping the one of the same id, if any).
func (s *Server) startPuller(ctx context.Context, src config.Source) error {
	s.stopPuller(src.ID)
	h := &health.Source{}
	s.mu.Lock()
	s.healths[src.ID] = h // kept after the puller stops, until the source is removed
	s.mu.Unlock()
	var run func(context.Context) error
	var names []string
	switch src.Type {
	case config.SourceS3:
		router, sources, err := S3Router(src, s.reg)
		if err != nil {
			return err
		}
		for name, is := range sources {
			s.pipe.SetSourceAs(name, is)
			names = append(names, name)
		}
		if src.S3.Queue == "" {
			s.log.Warn("s3 source without a queue: nothing is read until osprey ingest s3:// backfills it", "source", src.ID)
			break
		}
		s3c, sqsc, err := S3AWS(src.S3).Clients(ctx)
		if err != nil {
			return err
		}
		q := s3src.NewQueue(sqsc, s3c, router, s.pipe, s.errs, h, s3src.QueueOptions{
			URL: src.S3.Queue, MaxAttempts: src.S3.MaxAttempts, Visibility: time.Duration(src.S3.Visibility),
			KMSKey: src.S3.KMSKey, Retryable: busy, Logger: s.log.With("source", src.ID),
		})
		run = q.Run
	case config.SourceRapid7:
		key, err := src.Rapid7.APIKey()
		if err != nil {
			return err
		}
		var lts []*logtypes.LogType
		for _, n := range src.LogTypes {
			lt, err := s.reg.Lookup(n)
			if err != nil {
				return err
			}
			lts = append(lts, lt)
		}
		s.pipe.SetSource(&ingest.Source{Source: batch.Source{ID: src.ID, Label: src.Label}, LogTypes: lts})
		names = []string{src.ID}
		r := src.Rapid7
		p := rapid7.New(s.pipe, h, rapid7.Options{
			Source: src.ID, Region: r.Region, BaseURL: r.BaseURL, APIKey: key, LogIDs: r.LogIDs,
			Interval: time.Duration(r.Interval), Delay: time.Duration(r.Delay), Since: time.Duration(r.Since),
			Logger: s.log.With("source", src.ID), Retryable: busy,
		})
		run = p.Run
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &puller{cancel: cancel, done: make(chan struct{}), health: h, names: names}
	s.mu.Lock()
	s.pullers[src.ID] = p
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		if run != nil {
			run(pctx)
		}
	}()
	return nil
}

// stopPuller stops a pull source and waits for it; its pipeline sources stay registered until
// the source is removed (its records may still wait in the log).
func (s *Server) stopPuller(id string) *puller {
	s.mu.Lock()
	p := s.pullers[id]
	delete(s.pullers, id)
	s.mu.Unlock()
	if p != nil {
		p.cancel()
		<-p.done
	}
	return p
}

// stopPullers stops every pull source.
func (s *Server) stopPullers() {
	s.mu.Lock()
	var ids []string
	for id := range s.pullers {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.stopPuller(id)
	}
}

// pullHealth returns the snapshots of the pull sources.
func (s *Server) pullHealth(now time.Time) map[string]health.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]health.Snapshot{}
	for id, h := range s.healths {
		out[id] = h.Snapshot(now)
	}
	return out
}

// pullMetrics are the families of the pull sources' health.
type pullMetrics struct {
	healthy, lastSuccess, lastError, lag, objects, records, errors metrics.Vec
}

func (s *Server) registerPullMetrics() {
	m := &s.metrics
	s.pull = pullMetrics{
		healthy:     m.Gauge("osprey_source_healthy", "1 when a pull source's last attempt succeeded, 0 after an error.", "source"),
		lastSuccess: m.Gauge("osprey_source_last_success_timestamp_seconds", "When a pull source last read something (Unix time; 0: never).", "source"),
		lastError:   m.Gauge("osprey_source_last_error_timestamp_seconds", "When a pull source last failed (Unix time; 0: never).", "source"),
		lag:         m.Gauge("osprey_source_lag_seconds", "Age of the oldest message (or query window) a pull source has received and not finished.", "source"),
		objects:     m.Counter("osprey_source_objects_total", "S3 objects (Rapid7: pages) a pull source read.", "source"),
		records:     m.Counter("osprey_source_records_total", "Records a pull source appended.", "source"),
		errors:      m.Counter("osprey_source_errors_total", "Errors of a pull source (each failed attempt).", "source"),
	}
}

// updatePullMetrics sets the pull sources' samples (at scrape time).
func (s *Server) updatePullMetrics() {
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	for id, h := range s.pullHealth(time.Now()) {
		ok := 0.0
		if h.Healthy {
			ok = 1
		}
		s.pull.healthy.Set(ok, id)
		s.pull.lastSuccess.Set(unix(h.LastSuccess), id)
		s.pull.lastError.Set(unix(h.LastError), id)
		s.pull.lag.Set(h.Lag, id)
		s.pull.objects.Set(float64(h.Objects), id)
		s.pull.records.Set(float64(h.Records), id)
		s.pull.errors.Set(float64(h.Errors), id)
	}
}
