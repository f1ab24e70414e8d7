package serve

// The sources in effect: those of the configuration file and of the lake's sources file
// (osprey source add), applied at start and whenever the file changes.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/httpsrc"
	"github.com/ospreyhq/osprey/ingest/source/records"
	"github.com/ospreyhq/osprey/ingest/source/syslogsrc"
)

func classifyAppend(err error) error {
	switch {
	case errors.Is(err, pipeline.ErrBusy):
		return httpsrc.ErrBusy
	case errors.Is(err, pipeline.ErrUnavailable):
		return httpsrc.ErrUnavailable
	case errors.Is(err, pipeline.ErrStopped):
		return httpsrc.ErrStopped
	}
	return err
}

// retryAppend tells a syslog source which append errors to wait out rather than drop.
func retryAppend(err error) bool {
	return errors.Is(err, pipeline.ErrBusy) || errors.Is(err, pipeline.ErrUnavailable)
}

// stopSyslog stops a source's syslog listener, if it has one, appending what it holds; its
// figures are kept for /metrics, where the source's next listener adds to them.
func (s *Server) stopSyslog(id string) {
	s.mu.Lock()
	srv := s.syslog[id]
	delete(s.syslog, id)
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Close(); err != nil {
		s.log.Warn("syslog source stop", "source", id, "err", err)
	}
	st := srv.Stats()
	st.Open = 0
	s.mu.Lock()
	s.syslogPast[id] = s.syslogPast[id].Add(st)
	s.mu.Unlock()
}

// closeSyslog stops the syslog listeners, appending what they hold.
func (s *Server) closeSyslog() {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.syslog))
	s.mu.Unlock()
	for _, id := range ids {
		s.stopSyslog(id)
	}
}

// applySources puts in effect the sources of the configuration file and of the lake.
func (s *Server) applySources(ctx context.Context) error {
	kept, err := config.LoadLakeSources(s.lake.Dir())
	if err != nil {
		return err
	}
	want := map[string]config.Source{}
	for _, src := range kept {
		want[src.ID] = src
	}
	for _, src := range s.cfg.Sources { // the configuration file wins
		want[src.ID] = src
	}
	for id, src := range want {
		if err := s.setSource(ctx, src); err != nil {
			return fmt.Errorf("source %s: %w", id, err)
		}
	}
	s.mu.Lock()
	var gone []string
	for id := range s.active {
		if _, ok := want[id]; !ok {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.http.RemoveSource(id)
		s.stopSyslog(id)
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
		if p := s.stopPuller(id); p != nil {
			for _, name := range p.names {
				s.pipe.RemoveSource(name)
			}
		}
		s.mu.Lock()
		delete(s.healths, id)
		s.mu.Unlock()
		s.pipe.RemoveSource(id)
		s.log.Info("source removed", "source", id)
	}
	return nil
}

// setSource puts a source in effect (or updates it).
func (s *Server) setSource(ctx context.Context, src config.Source) error {
	s.mu.Lock()
	old, ok := s.active[src.ID]
	s.mu.Unlock()
	if ok && reflect.DeepEqual(old, src) {
		return nil
	}
	var lts []*logtypes.LogType
	for _, name := range src.LogTypes {
		lt, err := s.reg.Lookup(name)
		if err != nil {
			return err
		}
		lts = append(lts, lt)
	}
	switch src.Type {
	case config.SourceHTTP:
		secret, err := src.Auth.SecretValue()
		if err != nil {
			return err
		}
		hs := &httpsrc.Source{
			ID: src.ID,
			Auth: httpsrc.Auth{Type: src.Auth.Type, Header: src.Auth.Header, Secret: secret, SecretHash: src.Auth.SecretHash(), Username: src.Auth.Username, Encoding: src.Auth.Encoding,
				TimestampHeader: src.Auth.TimestampHeader, Window: time.Duration(src.Auth.Window)},
			Split:   records.Splitter{Kind: records.Kind(src.Stream), Envelope: src.Envelope, MaxRecords: src.MaxRecords},
			MaxBody: int64(src.MaxBody),
		}
		s.pipe.SetSource(&ingest.Source{Source: batch.Source{ID: src.ID, Label: src.Label}, LogTypes: lts})
		if err := s.http.SetSource(hs); err != nil {
			return err
		}
	case config.SourceSyslog:
		s.pipe.SetSource(&ingest.Source{Source: batch.Source{ID: src.ID, Label: src.Label}, LogTypes: lts})
		s.stopSyslog(src.ID)
		lim := src.Syslog.Limits()
		srv, err := syslogsrc.Start(ctx, src.ID, src.Listen, s.pipe, syslogsrc.Options{
			MaxMessage:     int(lim.MaxMessage),
			MaxConnections: lim.MaxConnections,
			IdleTimeout:    time.Duration(lim.IdleTimeout),
			Retryable:      retryAppend,
			Logger:         s.log,
		})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.syslog[src.ID] = srv
		s.mu.Unlock()
	case config.SourceS3, config.SourceRapid7:
		if err := s.startPuller(ctx, src); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.active[src.ID] = src
	s.mu.Unlock()
	s.log.Info("source in effect", "source", src.ID, "type", src.Type, "log_types", src.LogTypes)
	return nil
}

// watchSources applies changes to the lake's sources file (osprey source add|remove) while
// serving.
func (s *Server) watchSources(ctx context.Context) {
	path := config.LakeSourcesFile(s.lake.Dir())
	mtime := func() time.Time {
		if info, err := os.Stat(path); err == nil {
			return info.ModTime()
		}
		return time.Time{}
	}
	last := mtime()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if m := mtime(); !m.Equal(last) {
				last = m
				if err := s.applySources(ctx); err != nil {
					s.log.Error("could not apply the lake's sources", "err", err)
				}
			}
		}
	}
}
