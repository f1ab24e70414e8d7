package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/health"
	"github.com/ospreyhq/osprey/ingest/source/httpsrc"
	"github.com/ospreyhq/osprey/ingest/source/syslogsrc"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/metrics"
)

// Options are what a Server takes of the process that runs it.
type Options struct {
	// Logger gets the daemon's events; default none.
	Logger *slog.Logger
	// Stderr gets the lines a person starting serve reads (the addresses it listens on, the
	// figures at the end); default none.
	Stderr io.Writer
	// QueryWorker is the command line that runs one query of the API in a process of its own:
	// a program that calls RunQueryWorker when given QueryWorkerArg. Default: this executable
	// with the argument QueryWorkerArg (osprey query-worker).
	QueryWorker []string
}

// Server is osprey serve: the sources, the durable pipeline into the lake, streaming and
// scheduled detections, and the HTTP endpoints. Open starts it listening; Run serves until its
// context is done.
type Server struct {
	cfg    *config.Config
	opts   Options
	lake   *lake.Lake
	reg    *logtypes.Registry
	pipe   *pipeline.Pipeline
	http   *httpsrc.Handler
	api    *queryAPI
	hs     *http.Server
	conns  *httpsrc.Listener
	log    *slog.Logger
	unlock func() // releases the lake's serve lock

	metrics  metrics.Registry
	events   metrics.Vec // rows written, by source and log type
	failures metrics.Vec // records no log type accepted, by source
	requests metrics.Vec // HTTP requests, by source and code
	bytesIn  metrics.Vec // bytes received, by source
	ackTime  metrics.Vec // seconds spent answering successful HTTP requests, by source
	alarms   metrics.Vec // drop-off alarms raised, by source and state
	pull     pullMetrics // the pull sources' health
	syslogM  syslogMetrics

	errs      *ingest.SourceErrors // panther_monitor.source_errors
	errWriter *lake.Writer
	detect    *detectionSet // nil without detections or destinations

	mu     sync.Mutex
	active map[string]config.Source     // sources in effect, by id
	syslog map[string]*syslogsrc.Server // the listeners of syslog sources, by id
	// syslogPast adds up the figures of a syslog source's stopped listeners (a change of its
	// settings restarts it), so that its counters in /metrics only grow.
	syslogPast map[string]syslogsrc.Stats
	pullers    map[string]*puller        // the running pull sources, by id
	healths    map[string]*health.Source // the pull sources' health, by id
	lastSeen   map[string]time.Time      // when each source last had an event written
}

// Open opens the lake (one serve per lake: it holds the lake's serve lock), recovers what a
// previous run left (a flush a crash interrupted, the write-ahead log's entries not yet in the
// lake), puts the sources in effect and listens on cfg.Listen. Run must follow: it releases
// what Open took.
func Open(ctx context.Context, cfg *config.Config, opts Options) (_ *Server, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if len(opts.QueryWorker) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find osprey's executable for query workers: %w", err)
		}
		opts.QueryWorker = []string{exe, QueryWorkerArg}
	}
	log := opts.Logger
	lo, err := cfg.LakeOptions()
	if err != nil {
		return nil, err
	}
	l, err := lake.OpenWith(ctx, lo)
	if err != nil {
		return nil, err
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, opts: opts, lake: l, reg: reg, log: log, active: map[string]config.Source{},
		syslog: map[string]*syslogsrc.Server{}, syslogPast: map[string]syslogsrc.Stats{}, pullers: map[string]*puller{}, healths: map[string]*health.Source{}, lastSeen: map[string]time.Time{}}
	if s.unlock, err = lockServe(l); err != nil {
		return nil, err
	}
	// Each step that takes something registers its release; a failure releases, in reverse,
	// what the steps before it took.
	var undo []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(undo) {
				f()
			}
		}
	}()
	undo = append(undo, s.unlock)
	s.registerMetrics()
	s.registerPullMetrics()
	s.registerSyslogMetrics()
	if s.errWriter, err = l.NewWriter(lake.WriterOptions{Logger: log}); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.errWriter.Close() })
	if s.errs, err = ingest.NewSourceErrors(s.errWriter); err != nil {
		return nil, err
	}
	// The parts are built in the order data flows out of the pipeline, each with the part it
	// hands on to: the lake writer (opening it finishes a flush a crash interrupted, so it
	// comes before the alert store reads the lake's commit metadata), the per-source counts,
	// streaming detections, then the pipeline that feeds them.
	writer, err := pipeline.NewWriter(l, log)
	if err != nil {
		return nil, err
	}
	var sink ingest.Sink = &countingSink{next: writer, s: s}
	if s.detect, err = openDetections(ctx, l, cfg, log, sink); err != nil {
		writer.Abort()
		return nil, err
	}
	undo = append(undo, func() { s.detect.Close() })
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
		return nil, err
	}
	undo = append(undo, func() { s.pipe.Close(context.WithoutCancel(ctx)) })
	s.http = httpsrc.New(s.pipe, httpsrc.Options{Classify: classifyAppend, Observer: s, Logger: log,
		BodyMemory: int64(cfg.HTTP.BodyMemory), MaxInFlight: cfg.HTTP.MaxSourceRequests})
	alarmType, err := reg.Lookup("Osprey.SourceAlarm")
	if err != nil {
		return nil, err
	}
	s.pipe.SetSource(&ingest.Source{Source: batch.Source{ID: monitorSource, Label: "osprey serve"}, LogTypes: []*logtypes.LogType{alarmType}})
	undo = append(undo, s.closeSyslog, s.stopPullers)
	if err := s.applySources(ctx); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.conns = httpsrc.NewListener(ln, cfg.HTTP.MaxConns)
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil && uint64(cfg.HTTP.MaxConns)+fdReserve > nofile.Cur {
		log.Warn("http.maxConns leaves too few file descriptors for the lake, the log and the other sources: lower it or raise the limit (ulimit -n)",
			"max_conns", cfg.HTTP.MaxConns, "nofile", nofile.Cur, "reserve", fdReserve)
	}
	s.registerHTTPMetrics(s.conns)
	s.api = newQueryAPI(l, opts.QueryWorker, log)
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.HTTP.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.HTTP.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         s.conns.ConnState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "listen", ln.Addr().String(), "lake", l.Dir(), "sources", len(s.active))
	fmt.Fprintf(opts.Stderr, "osprey serve: listening on http://%s, lake %s, %d sources\n", ln.Addr(), l.Dir(), len(s.active))
	for id, srv := range s.syslog {
		fmt.Fprintf(opts.Stderr, "osprey serve: syslog source %s on %s\n", id, strings.Join(srv.Addrs(), " "))
	}
	return s, nil
}

// Addr is the address the HTTP server listens on.
func (s *Server) Addr() net.Addr { return s.conns.Addr() }

// SyslogAddrs returns the addresses a syslog source listens on (none for another source).
func (s *Server) SyslogAddrs(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv := s.syslog[id]; srv != nil {
		return srv.Addrs()
	}
	return nil
}

// routes returns the HTTP endpoints.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/http/", s.http)
	mux.HandleFunc("GET /healthz", s.healthz)
	// A query may run for apiMaxTimeout: its answer gets that and a minute more to be written.
	mux.Handle("/v1/query", withWriteTimeout(s.api, max(time.Duration(s.cfg.HTTP.WriteTimeout), apiMaxTimeout+time.Minute)))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Metrics.Auth == config.MetricsAuthToken {
			if _, err := s.api.authorize(r); err != nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.updatePullMetrics()
		s.updateSyslogMetrics()
		s.metrics.WriteText(w)
	})
	return mux
}

// Run serves until ctx is done or a part fails, then stops taking records, reads what the
// write-ahead log holds into the lake, flushes and releases the lake. It returns nil after a
// clean stop.
func (s *Server) Run(ctx context.Context) error {
	defer s.unlock()
	defer s.errWriter.Close()
	defer s.detect.Close()
	log := s.log
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var wg sync.WaitGroup
	pipeErr := make(chan error, 1)
	wg.Go(func() { pipeErr <- s.pipe.Run(runCtx) })
	httpErr := make(chan error, 1)
	wg.Go(func() {
		if err := s.hs.Serve(s.conns); !errors.Is(err, http.ErrServerClosed) {
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
	if err := s.hs.Shutdown(shutdownCtx); err != nil {
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
	fmt.Fprintf(s.opts.Stderr, "osprey serve: stopped; %d files, %d rows committed\n", st.Writer.Files, st.Writer.Rows)
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

// compactInterval is how often serve merges the files of past hours and days; expireInterval
// how often it applies retention and removes the files no snapshot references.
const (
	compactInterval = 10 * time.Minute
	expireInterval  = time.Hour
)

// compactLoop merges, every compactInterval, the files of the hours and days that ended at
// least a flush age (plus a minute) ago: each flush makes a file per table and day, and a
// period over is better read as one file. Every expireInterval it also expires the lake (see
// lake.Lake.Expire) with the configuration's retention.
func (s *Server) compactLoop(ctx context.Context) {
	tick := time.NewTicker(compactInterval)
	defer tick.Stop()
	var lastExpiry time.Time
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
				s.log.Info("compacted", "periods", st.Partitions, "files_in", st.FilesIn, "files_out", st.FilesOut, "rows", st.Rows)
			}
			if now.Sub(lastExpiry) < expireInterval {
				continue
			}
			lastExpiry = now
			tables, stats, err := s.lake.Expire(ctx, s.cfg.RetentionOf, now)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("expiry", "err", err)
			}
			for i, t := range tables {
				if st := stats[i]; st.Files > 0 || st.Removed > 0 {
					s.log.Info("expired", "table", t.DB+"."+t.Table, "files_dropped", st.Files, "rows_dropped", st.Rows, "files_deleted", st.Removed, "bytes_deleted", st.Bytes)
				}
			}
		}
	}
}
