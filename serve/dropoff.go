package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/ospreyhq/osprey/config"
)

// monitorSource is the source of osprey serve's own events (Osprey.SourceAlarm).
const monitorSource = "osprey"

// dropOff raises an alarm when a source goes without events for its drop-off period, and
// another when events come back. A source that has had no event since serve started counts
// from the start.
type dropOff struct {
	start  time.Time
	silent map[string]bool
}

// sourceAlarm is an Osprey.SourceAlarm event.
type sourceAlarm struct {
	Time             string `json:"time"`
	State            string `json:"state"`
	SourceID         string `json:"sourceId"`
	SourceLabel      string `json:"sourceLabel"`
	LastEventTime    string `json:"lastEventTime,omitempty"`
	SilenceSeconds   int64  `json:"silenceSeconds"`
	ThresholdSeconds int64  `json:"thresholdSeconds"`
	Message          string `json:"message"`
}

// check returns the alarms due at now, in source order.
func (d *dropOff) check(now time.Time, sources map[string]config.Source, lastSeen map[string]time.Time) []sourceAlarm {
	ids := make([]string, 0, len(sources))
	for id := range sources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []sourceAlarm
	for _, id := range ids {
		src := sources[id]
		threshold := src.AlarmAfter()
		if threshold <= 0 {
			delete(d.silent, id)
			continue
		}
		last, seen := lastSeen[id]
		from := last
		if !seen || last.Before(d.start) {
			from = d.start
		}
		silence := now.Sub(from)
		a := sourceAlarm{Time: now.UTC().Format(time.RFC3339Nano), SourceID: id, SourceLabel: src.Label,
			SilenceSeconds: int64(silence / time.Second), ThresholdSeconds: int64(threshold / time.Second)}
		if seen {
			a.LastEventTime = last.UTC().Format(time.RFC3339Nano)
		}
		switch {
		case silence >= threshold && !d.silent[id]:
			d.silent[id] = true
			a.State = "silent"
			a.Message = fmt.Sprintf("no events from source %s for %s (its drop-off period is %s)", id, silence.Round(time.Second), threshold)
			out = append(out, a)
		case silence < threshold && d.silent[id]:
			delete(d.silent, id)
			a.State = "recovered"
			a.Message = fmt.Sprintf("source %s has events again", id)
			out = append(out, a)
		}
	}
	return out
}

// records returns alarms as the records of the monitor source.
func alarmRecords(alarms []sourceAlarm) [][]byte {
	var recs [][]byte
	for _, a := range alarms {
		b, err := json.Marshal(a)
		if err != nil {
			panic("BUG: " + err.Error())
		}
		recs = append(recs, b)
	}
	return recs
}

// watchDropOff raises drop-off alarms (see dropOff) as events of the monitor source.
func (s *Server) watchDropOff(ctx context.Context, start time.Time) {
	d := &dropOff{start: start, silent: map[string]bool{}}
	// Check often enough for the shortest drop-off period, and at least once a minute.
	period := time.Minute
	s.mu.Lock()
	for _, src := range s.active {
		if a := src.AlarmAfter(); a > 0 {
			period = min(period, max(a/4, 100*time.Millisecond))
		}
	}
	s.mu.Unlock()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.mu.Lock()
			sources := maps.Clone(s.active)
			seen := maps.Clone(s.lastSeen)
			s.mu.Unlock()
			alarms := d.check(now, sources, seen)
			if len(alarms) == 0 {
				continue
			}
			for _, a := range alarms {
				s.log.Warn(a.Message, "source", a.SourceID, "state", a.State)
				s.alarms.Add(1, a.SourceID, a.State)
			}
			if err := s.pipe.Append(ctx, monitorSource, alarmRecords(alarms)); err != nil {
				s.log.Error("could not record drop-off alarms", "err", err)
			}
		}
	}
}
