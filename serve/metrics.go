package serve

// The figures of /metrics: per source, per log type, the pipeline and the HTTP server.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/source/httpsrc"
	"github.com/ospreyhq/osprey/metrics"
)

// registerHTTPMetrics adds the figures of the HTTP server's connections and request bodies.
func (s *Server) registerHTTPMetrics(conns *httpsrc.Listener) {
	m := &s.metrics
	m.GaugeFunc("osprey_http_connections", "HTTP connections open.", func() float64 { return float64(conns.Stats().Open) })
	m.GaugeFunc("osprey_http_connections_refused_total", "HTTP connections answered 503 because maxConns were open (none of them idle).",
		func() float64 { return float64(conns.Stats().Refused) })
	m.GaugeFunc("osprey_http_connections_evicted_total", "Idle HTTP connections closed to make room for new ones at maxConns.",
		func() float64 { return float64(conns.Stats().Evicted) })
	m.GaugeFunc("osprey_http_body_bytes", "Bytes of HTTP request bodies (as sent and decoded) held in memory, of the http.bodyMemory allowed.",
		func() float64 { return float64(s.http.BodyMemoryUsed()) })
}

func (s *Server) registerMetrics() {
	m := &s.metrics
	s.events = m.Counter("osprey_events_total", "Events parsed and written to the lake, by source and log type.", "source", "log_type")
	s.failures = m.Counter("osprey_classification_failures_total", "Records no log type of their source accepted, by source.", "source")
	s.requests = m.Counter("osprey_http_requests_total", "HTTP source requests, by source and status code.", "source", "code")
	s.bytesIn = m.Counter("osprey_bytes_received_total", "Bytes received by sources (as sent, before decoding).", "source")
	s.ackTime = m.Counter("osprey_http_ack_seconds_total", "Time spent answering successful HTTP source requests (divide by their count for the mean).", "source")
	s.alarms = m.Counter("osprey_source_alarms_total", "Drop-off alarms (Osprey.SourceAlarm events), by source and state.", "source", "state")
	m.GaugeFunc("osprey_ingest_degraded", "1 while ingest cannot write its log or the lake (a full disk): sources refuse records until it can again (see /healthz).", func() float64 {
		if err, _ := s.pipe.Fault(); err != nil {
			return 1
		}
		return 0
	})
	m.GaugeFunc("osprey_wal_bytes", "Bytes in the write-ahead log.", func() float64 { return float64(s.pipe.Stats().WALBytes) })
	m.GaugeFunc("osprey_buffered_bytes", "Bytes of records accepted and not yet parsed.", func() float64 { return float64(s.pipe.Stats().Backlog) })
	m.GaugeFunc("osprey_flushes_total", "Lake flushes since start.", func() float64 { return float64(s.pipe.Stats().Flushes) })
	m.GaugeFunc("osprey_flush_seconds", "Duration of the last lake flush.", func() float64 { return s.pipe.Stats().FlushDuration.Seconds() })
	m.GaugeFunc("osprey_files_committed_total", "Parquet files committed to the lake since start.", func() float64 { return float64(s.pipe.Stats().Writer.Files) })
}

// Request implements httpsrc.Observer.
func (s *Server) Request(source string, code int, n int, size int64, took time.Duration) {
	s.requests.Add(1, source, fmt.Sprint(code))
	s.bytesIn.Add(float64(size), source)
	if code == http.StatusOK {
		s.ackTime.Add(took.Seconds(), source)
	}
}

// countingSink counts the rows handed to the lake writer, by source and log type.
type countingSink struct {
	next ingest.Sink
	s    *Server
}

func (c *countingSink) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	if err := c.next.Write(ctx, db, table, rec); err != nil {
		return err
	}
	if rec.NumRows() == 0 {
		return nil
	}
	source := constantColumn(rec, batch.FieldSourceID)
	if db == ingest.DBMonitor && table == ingest.TableFailures {
		c.s.failures.Add(float64(rec.NumRows()), source)
		return nil
	}
	if db != ingest.DBLogs {
		return nil // rule matches and errors, alert history: not events of a source
	}
	c.s.events.Add(float64(rec.NumRows()), source, constantColumn(rec, batch.FieldLogType))
	c.s.mu.Lock()
	c.s.lastSeen[source] = time.Now()
	c.s.mu.Unlock()
	return nil
}

// constantColumn returns the first value of a string column that is the same in every row of a
// batch (p_source_id, p_log_type).
func constantColumn(rec arrow.RecordBatch, name string) string {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return ""
	}
	if col, ok := rec.Column(idx[0]).(*array.String); ok && col.Len() > 0 {
		return col.Value(0)
	}
	return ""
}

// syslogMetrics are the families of the syslog sources' figures: what hostile or broken
// senders cost (messages cut, connections refused or closed idle).
type syslogMetrics struct {
	received, cut, dropped, refused, idle, open metrics.Vec
}

func (s *Server) registerSyslogMetrics() {
	m := &s.metrics
	s.syslogM = syslogMetrics{
		received: m.Counter("osprey_syslog_messages_total", "Messages a syslog source received.", "source"),
		cut:      m.Counter("osprey_syslog_messages_cut_total", "Syslog messages longer than the source's maxMessage, kept cut to it.", "source"),
		dropped:  m.Counter("osprey_syslog_dropped_bytes_total", "Bytes of syslog messages past maxMessage, dropped as they were read.", "source"),
		refused:  m.Counter("osprey_syslog_connections_refused_total", "Syslog TCP connections closed at once because maxConnections were open.", "source"),
		idle:     m.Counter("osprey_syslog_connections_idle_total", "Syslog TCP connections closed after idleTimeout without a byte.", "source"),
		open:     m.Gauge("osprey_syslog_connections", "Syslog TCP connections open.", "source"),
	}
}

// updateSyslogMetrics sets the syslog sources' samples (at scrape time).
func (s *Server) updateSyslogMetrics() {
	s.mu.Lock()
	all := maps.Clone(s.syslogPast)
	for id, srv := range s.syslog {
		all[id] = all[id].Add(srv.Stats())
	}
	s.mu.Unlock()
	for id, st := range all {
		s.syslogM.received.Set(float64(st.Received), id)
		s.syslogM.cut.Set(float64(st.Cut), id)
		s.syslogM.dropped.Set(float64(st.Dropped), id)
		s.syslogM.refused.Set(float64(st.Refused), id)
		s.syslogM.idle.Set(float64(st.Idle), id)
		s.syslogM.open.Set(float64(st.Open), id)
	}
}
