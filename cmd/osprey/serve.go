package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/batch"
	"github.com/ospreyhq/osprey/ingest/health"
	"github.com/ospreyhq/osprey/ingest/httpsrc"
	"github.com/ospreyhq/osprey/ingest/logtypes"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/records"
	"github.com/ospreyhq/osprey/ingest/syslogsrc"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/metrics"
)

type serveOptions struct {
	config     string
	listen     string
	detections []string
}

func newServe(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ingest daemon: HTTP, syslog, S3 (SQS) and Rapid7 sources, durable, into the lake",
		Long: `Serve runs until SIGINT or SIGTERM, then flushes and exits. It accepts records from its
sources (see the configuration file, and osprey source add), writes each accepted request to a
write-ahead log before answering it, and flushes the lake on age (60 s by default) and size:
an answered request is never lost, even if the process is killed, and its records are in the
lake exactly once.

Pull sources read on their own: an s3 source reads the objects its SQS queue's notifications
name and deletes a message once its objects are in the write-ahead log; a rapid7 source polls
Rapid7's API, its cursor kept with its records. Objects that fail every retry are kept in
panther_monitor.source_errors.

Without --config it serves the lake given by --lake on 127.0.0.1:8080 with the sources added
by osprey source add.

Detections (the config's detections.dirs, and --detections): streaming rules run on the events
of their log types as they arrive, within detections.maxDelay (250ms by default); alerts go to
the config's destinations through a durable outbox (retried with backoff, dead-lettered after
their attempts), and the matches are written to panther_rule_matches with the events' flush.

Endpoints: POST /http/<source-id> (HTTP sources), POST /v1/query (SQL over the lake, with an API
token from osprey token create), GET /healthz, GET /metrics (Prometheus; with an API token
when the config says metrics: {auth: token}). The config's http section bounds what clients
may hold: timeouts, connections, requests in flight per source, memory of request bodies.`,
		Example: `  osprey serve --config osprey.yml
  osprey source add fluentbit --log-type Linux.Auditd --stream json --auth header --header x-sender-header --secret-env FB_SECRET
  osprey serve --lake /var/lib/osprey --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := config.Default()
			if o.config != "" {
				var err error
				if cfg, err = config.Load(o.config); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("lake") || o.config == "" {
				cfg.Lake = g.lakeDir
			}
			if o.listen != "" {
				cfg.Listen = o.listen
			}
			cfg.Detections.Dirs = append(cfg.Detections.Dirs, o.detections...)
			return runServe(cmd.Context(), g, cfg)
		},
	}
	cmd.Flags().StringVar(&o.config, "config", "", "configuration file (see the config package documentation)")
	cmd.Flags().StringVar(&o.listen, "listen", "", "HTTP address (default the config's, else 127.0.0.1:8080)")
	cmd.Flags().StringArrayVar(&o.detections, "detections", nil, "a directory of detection specs, added to the config's (repeatable)")
	return cmd
}

// server is a running osprey serve.
type server struct {
	cfg  *config.Config
	lake *lake.Lake
	reg  *logtypes.Registry
	pipe *pipeline.Pipeline
	http *httpsrc.Handler
	log  *slog.Logger

	metrics  metrics.Registry
	events   metrics.Vec // rows written, by source and log type
	failures metrics.Vec // records no log type accepted, by source
	requests metrics.Vec // HTTP requests, by source and code
	bytesIn  metrics.Vec // bytes received, by source
	ackTime  metrics.Vec // seconds spent answering successful HTTP requests, by source
	alarms   metrics.Vec // drop-off alarms raised, by source and state
	pull     pullMetrics // the pull sources' health

	errs      *ingest.SourceErrors // panther_monitor.source_errors
	errWriter *lake.Writer
	detect    *serveDetections // nil without detections or destinations

	mu       sync.Mutex
	active   map[string]config.Source     // sources in effect, by id
	syslog   map[string]*syslogsrc.Server // the listeners of syslog sources, by id
	pullers  map[string]*puller           // the running pull sources, by id
	healths  map[string]*health.Source    // the pull sources' health, by id
	lastSeen map[string]time.Time         // when each source last had an event written
}

func runServe(ctx context.Context, g *globals, cfg *config.Config) error {
	log := g.logger()
	l, err := lake.Open(cfg.Lake)
	if err != nil {
		return err
	}
	unlock, err := lockServe(l)
	if err != nil {
		return err
	}
	defer unlock()
	reg, err := logtypes.Builtin()
	if err != nil {
		return err
	}
	s := &server{cfg: cfg, lake: l, reg: reg, log: log, active: map[string]config.Source{},
		syslog: map[string]*syslogsrc.Server{}, pullers: map[string]*puller{}, healths: map[string]*health.Source{}, lastSeen: map[string]time.Time{}}
	s.registerMetrics()
	s.registerPullMetrics()
	if s.errWriter, err = l.NewWriter(lake.WriterOptions{Logger: log}); err != nil {
		return err
	}
	defer s.errWriter.Close()
	if s.errs, err = ingest.NewSourceErrors(s.errWriter); err != nil {
		return err
	}
	// The parts are built in the order data flows out of the pipeline, each with the part it
	// hands on to: the lake writer (opening it finishes a flush a crash interrupted, so it
	// comes before the alert store reads the lake's commit metadata), the per-source counts,
	// streaming detections, then the pipeline that feeds them.
	writer, err := pipeline.NewWriter(l, log)
	if err != nil {
		return err
	}
	var sink ingest.Sink = &countingSink{next: writer, s: s}
	if s.detect, err = openServeDetections(ctx, l, cfg, log, sink); err != nil {
		writer.Abort()
		return err
	}
	defer s.detect.Close()
	var maxDelay time.Duration
	var committer pipeline.Committer
	if s.detect != nil && s.detect.engine != nil {
		sink, committer = s.detect.engine, s.detect.engine
		maxDelay = time.Duration(cfg.Detections.MaxDelay)
	}
	s.pipe, err = pipeline.Open(ctx, l, pipeline.Options{
		FlushAge: time.Duration(cfg.Flush.Age), FlushBytes: int64(cfg.Flush.Bytes), MaxBacklog: int64(cfg.Flush.MaxBacklog),
		Workers: cfg.Workers, Logger: log, Writer: writer, Sink: sink, Committer: committer, MaxDelay: maxDelay,
	})
	if err != nil {
		return err
	}
	s.http = httpsrc.New(s.pipe, httpsrc.Options{Classify: classifyAppend, Observer: s, Logger: log,
		BodyMemory: int64(cfg.HTTP.BodyMemory), MaxInFlight: cfg.HTTP.MaxSourceRequests})
	alarmType, err := reg.Lookup("Osprey.SourceAlarm")
	if err != nil {
		return err
	}
	s.pipe.SetSource(&ingest.Source{Source: batch.Source{ID: monitorSource, Label: "osprey serve"}, LogTypes: []*logtypes.LogType{alarmType}})
	if err := s.applySources(ctx); err != nil {
		s.closeSyslog()
		s.stopPullers()
		s.pipe.Close(context.WithoutCancel(ctx))
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.closeSyslog()
		s.stopPullers()
		s.pipe.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	conns := httpsrc.NewListener(ln, cfg.HTTP.MaxConns)
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil && uint64(cfg.HTTP.MaxConns)+fdReserve > nofile.Cur {
		log.Warn("http.maxConns leaves too few file descriptors for the lake, the log and the other sources: lower it or raise the limit (ulimit -n)",
			"max_conns", cfg.HTTP.MaxConns, "nofile", nofile.Cur, "reserve", fdReserve)
	}
	s.registerHTTPMetrics(conns)
	mux := http.NewServeMux()
	mux.Handle("/http/", s.http)
	mux.HandleFunc("GET /healthz", s.healthz)
	api := newQueryAPI(l, log)
	defer api.Close()
	// A query may run for apiMaxTimeout: its answer gets that and a minute more to be written.
	mux.Handle("/v1/query", withWriteTimeout(api, max(time.Duration(cfg.HTTP.WriteTimeout), apiMaxTimeout+time.Minute)))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Metrics.Auth == config.MetricsAuthToken {
			if _, err := api.authorize(r); err != nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.updatePullMetrics()
		s.metrics.WriteText(w)
	})
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.HTTP.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.HTTP.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         conns.ConnState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "listen", ln.Addr().String(), "lake", l.Dir(), "sources", len(s.active))
	fmt.Fprintf(os.Stderr, "osprey serve: listening on http://%s, lake %s, %d sources\n", ln.Addr(), l.Dir(), len(s.active))
	for id, srv := range s.syslog {
		fmt.Fprintf(os.Stderr, "osprey serve: syslog source %s on %s\n", id, strings.Join(srv.Addrs(), " "))
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var wg sync.WaitGroup
	pipeErr := make(chan error, 1)
	wg.Go(func() { pipeErr <- s.pipe.Run(runCtx) })
	httpErr := make(chan error, 1)
	wg.Go(func() {
		if err := hs.Serve(conns); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
		}
	})
	wg.Go(func() { s.watchSources(runCtx) })
	wg.Go(func() { s.watchDropOff(runCtx, time.Now()) })
	wg.Go(func() { s.compactLoop(runCtx) })
	wg.Go(func() { s.watchHealth(runCtx) })
	detectErr := make(chan error, 1)
	s.detect.run(runCtx, &wg, func(err error) {
		select {
		case detectErr <- err:
		default:
		}
	})

	var failure error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err := <-pipeErr:
		failure = fmt.Errorf("ingest stopped: %w", err)
		pipeErr <- err
	case err := <-httpErr:
		failure = fmt.Errorf("http server: %w", err)
		httpErr <- err
	case failure = <-detectErr:
	}
	// Stop taking requests (and finish those in flight), then stop reading the log, then the
	// last flush.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	s.closeSyslog()
	s.stopPullers()
	if failure == nil {
		// Nothing more comes in: read what the log holds into the lake before stopping, so
		// that everything acknowledged is queryable now rather than after the next start.
		drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if err := s.pipe.Sync(drainCtx); err != nil {
			log.Warn("stopping before the write-ahead log was read into the lake; the rest is read at the next start",
				"backlog_bytes", s.pipe.Backlog(), "err", err)
		}
		cancelDrain()
	}
	stopRun()
	wg.Wait()
	if err := s.writeHealth(); err != nil {
		log.Warn("write health file", "err", err)
	}
	if err := <-pipeErr; err != nil && failure == nil {
		failure = fmt.Errorf("ingest stopped: %w", err)
	}
	if err := s.pipe.Close(shutdownCtx); err != nil && failure == nil {
		failure = err
	}
	if failure != nil {
		return failure
	}
	st := s.pipe.Stats()
	fmt.Fprintf(os.Stderr, "osprey serve: stopped; %d files, %d rows committed\n", st.Writer.Files, st.Writer.Rows)
	return nil
}

// fdReserve is the file descriptors serve keeps for itself beyond http.maxConns: the lake's
// files being written, the write-ahead log, DuckDB, syslog connections.
const fdReserve = 256

// maxHeaderBytes caps a request's headers: log shippers send a few hundred bytes, and
// net/http's default of 1 MiB, times maxConns, would be a lot of memory.
const maxHeaderBytes = 64 << 10

// withWriteTimeout gives a handler's answers their own write deadline, d from now.
func withWriteTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

// registerHTTPMetrics adds the figures of the HTTP server's connections and request bodies.
func (s *server) registerHTTPMetrics(conns *httpsrc.Listener) {
	m := &s.metrics
	m.GaugeFunc("osprey_http_connections", "HTTP connections open.", func() float64 { return float64(conns.Stats().Open) })
	m.GaugeFunc("osprey_http_connections_refused_total", "HTTP connections answered 503 because maxConns were open (none of them idle).",
		func() float64 { return float64(conns.Stats().Refused) })
	m.GaugeFunc("osprey_http_connections_evicted_total", "Idle HTTP connections closed to make room for new ones at maxConns.",
		func() float64 { return float64(conns.Stats().Evicted) })
	m.GaugeFunc("osprey_http_body_bytes", "Bytes of HTTP request bodies (as sent and decoded) held in memory, of the http.bodyMemory allowed.",
		func() float64 { return float64(s.http.BodyMemoryUsed()) })
}

// lockServe takes the lake's serve lock: one osprey serve per lake (the write-ahead log and the
// commit metadata are its own).
func lockServe(l *lake.Lake) (func(), error) {
	path := lake.ServeLock(l.Dir())
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another osprey serve runs on the lake %s", l.Dir())
	}
	return func() { f.Close() }, nil
}

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

// health is the body of GET /healthz.
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
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
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

func (s *server) registerMetrics() {
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
func (s *server) Request(source string, code int, n int, size int64, took time.Duration) {
	s.requests.Add(1, source, fmt.Sprint(code))
	s.bytesIn.Add(float64(size), source)
	if code == http.StatusOK {
		s.ackTime.Add(took.Seconds(), source)
	}
}

// countingSink counts the rows handed to the lake writer, by source and log type.
type countingSink struct {
	next ingest.Sink
	s    *server
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

// closeSyslog stops the syslog listeners, appending what they hold.
func (s *server) closeSyslog() {
	s.mu.Lock()
	servers := s.syslog
	s.syslog = map[string]*syslogsrc.Server{}
	s.mu.Unlock()
	for id, srv := range servers {
		if err := srv.Close(); err != nil {
			s.log.Warn("syslog source stop", "source", id, "err", err)
		}
	}
}

// applySources puts in effect the sources of the configuration file and of the lake.
func (s *server) applySources(ctx context.Context) error {
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
		s.mu.Lock()
		srv := s.syslog[id]
		delete(s.syslog, id)
		delete(s.active, id)
		s.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
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
func (s *server) setSource(ctx context.Context, src config.Source) error {
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
		s.mu.Lock()
		old := s.syslog[src.ID]
		delete(s.syslog, src.ID)
		s.mu.Unlock()
		if old != nil {
			old.Close()
		}
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
func (s *server) watchSources(ctx context.Context) {
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

// watchDropOff raises drop-off alarms (see dropOff) as events of the monitor source.
func (s *server) watchDropOff(ctx context.Context, start time.Time) {
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

// compactInterval is how often serve merges the files of past hours.
const compactInterval = 10 * time.Minute

// compactLoop merges, every compactInterval, the files of the partitions whose hour ended at
// least a flush age (plus a minute) ago: each flush makes a file per partition, and an hour
// over is better read as one file.
func (s *server) compactLoop(ctx context.Context) {
	tick := time.NewTicker(compactInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cutoff := now.Add(-time.Duration(s.cfg.Flush.Age) - time.Minute)
			st, err := s.pipe.Compact(ctx, cutoff)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("compaction", "err", err)
			}
			if st.Partitions > 0 {
				s.log.Info("compacted", "partitions", st.Partitions, "files_in", st.FilesIn, "rows", st.Rows)
			}
		}
	}
}
