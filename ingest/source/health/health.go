// Package health keeps what osprey serve shows of each pull source (S3 via SQS, Rapid7): when it
// last succeeded and failed and why, how far behind it is, and how much it has read. Sources
// update a Source as they go; osprey serve reads Snapshots for /metrics and for osprey source
// list (through a file in the lake, since that command runs in another process).
package health

import (
	"sync"
	"time"
)

// Source is the health of one pull source. It is safe for concurrent use.
type Source struct {
	mu          sync.Mutex
	lastSuccess time.Time
	lastError   time.Time
	errText     string
	unhealthy   bool
	objects     int64
	records     int64
	errors      int64
	pending     map[string]time.Time // work received and not yet done, with the time it was sent
}

// Snapshot is a Source's state at a time.
type Snapshot struct {
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   time.Time `json:"lastError,omitzero"`
	Error       string    `json:"error,omitempty"` // the last error
	Healthy     bool      `json:"healthy"`         // false after an error that no success followed
	Lag         float64   `json:"lagSeconds"`      // age of the oldest work not yet done, seconds
	Objects     int64     `json:"objects"`         // objects (or pages) read
	Records     int64     `json:"records"`         // records handed to the pipeline
	Errors      int64     `json:"errors"`          // errors seen
	At          time.Time `json:"at"`              // when the snapshot was taken
}

// Success records work done: n objects (or pages) of records records.
func (s *Source) Success(now time.Time, objects, records int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSuccess = now
	s.unhealthy = false
	s.objects += objects
	s.records += records
}

// Error records a failure; the source is unhealthy until its next success.
func (s *Source) Error(now time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastError = now
	s.errText = err.Error()
	s.unhealthy = true
	s.errors++
}

// Pending records work received (an SQS message, a query window) sent at since.
func (s *Source) Pending(id string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]time.Time{}
	}
	if _, ok := s.pending[id]; !ok {
		s.pending[id] = since
	}
}

// Done records that pending work is over (done, or left to be received again).
func (s *Source) Done(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, id)
}

// Snapshot returns the state at now.
func (s *Source) Snapshot(now time.Time) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{LastSuccess: s.lastSuccess, LastError: s.lastError, Error: s.errText, Healthy: !s.unhealthy,
		Objects: s.objects, Records: s.records, Errors: s.errors, At: now}
	for _, t := range s.pending {
		if lag := now.Sub(t).Seconds(); lag > snap.Lag {
			snap.Lag = lag
		}
	}
	return snap
}
