package serve

// What serve tells of its health: GET /healthz, and the health file of the pull sources that
// osprey source list reads.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/lake"
)

// healthBody is the body of GET /healthz.
type healthBody struct {
	Status string `json:"status"` // ok, or degraded: sources refuse records (503) until it is ok
	// Degraded says why ingest cannot write ("disk full: ..."), and Since since when.
	Degraded string     `json:"degraded,omitempty"`
	Since    *time.Time `json:"degraded_since,omitempty"`
	WALBytes int64      `json:"wal_bytes"`
	Backlog  int64      `json:"backlog_bytes"`
	Flushes  int64      `json:"flushes"`
}

// healthz answers 200 with the pipeline's figures, or 503 while ingest cannot write (the
// pipeline retries by itself and the status goes back to ok).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	st := s.pipe.Stats()
	h := healthBody{Status: "ok", WALBytes: st.WALBytes, Backlog: st.Backlog, Flushes: st.Flushes}
	code := http.StatusOK
	if st.Fault != "" {
		h.Status, h.Degraded, h.Since = "degraded", st.Fault, &st.FaultSince
		if err, _ := s.pipe.Fault(); errors.Is(err, syscall.ENOSPC) {
			h.Degraded = "disk full: " + st.Fault
		}
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}

// writeHealth writes the health report (atomically).
func (s *Server) writeHealth() error {
	now := time.Now()
	return health.WriteReport(lake.HealthFile(s.lake.Dir()), health.Report{Written: now, Sources: s.pullHealth(now)})
}

// watchHealth rewrites the health file until ctx is done (Run writes it once more when the
// pull sources have stopped).
func (s *Server) watchHealth(ctx context.Context) {
	tick := time.NewTicker(health.ReportInterval)
	defer tick.Stop()
	for {
		if err := s.writeHealth(); err != nil {
			s.log.Warn("write health file", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
