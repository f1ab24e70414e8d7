// Package pipeline is the durable ingest path of osprey serve: sources append the records they
// accept to a write-ahead log and acknowledge them once Append returns; a consumer reads the
// log in order into the ingest workers; flushes publish the lake's files together with the log
// position they hold.
//
// Exactly once: a flush pauses the consumer between two log entries, has the workers hand every
// buffered row to the lake writer, and publishes the writer's files with the position of the
// next entry as commit metadata (lake.Writer.FlushWith: the files and the metadata become
// visible as one unit, even across a crash). Then the log drops the entries before it. At start
// the consumer reads from the recorded position: entries whose rows are in the lake are never
// read again, and every entry after them is.
//
// Faults degrade, they do not stop the pipeline. A flush or a worker's write that fails (a
// full disk) loses the rows held in memory, not the log's entries: the pipeline stops reading,
// drops what the workers and the lake writer hold (lake.Writer.Recover, which first finishes a
// flush whose files were already being published), reads the log again from the position the
// lake records, and retries the flush with backoff until one succeeds. Meanwhile appends are
// refused with ErrUnavailable, so nothing is acknowledged that the log has not made durable,
// and Stats says why. An append the log fails to write (the same full disk) is refused, and the
// next one tries again. Only a log that cannot be read, or a Committer whose state a failure
// left behind, still stops the pipeline (Run returns the error); a restart then reads the log
// again.
//
// Pulling sources (S3 objects named by SQS, the Rapid7 API) append with AppendWith: the S3
// object of the records (their p_source_file) and the source's cursor, where it stands once the
// records are in, travel in the same log entry, so a cursor is durable exactly when its records
// are. Flushes record every source's cursor in the commit metadata (as cursor.<source>); Open
// takes the cursors from there and from the log entries after it, and Cursor hands them back:
// a restarted source goes on from where its last durable append left it, neither re-reading nor
// skipping.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/pipeline/wal"
	"github.com/ospreyhq/osprey/lake"
)

// WriterName names the pipeline's lake writer, whose commit metadata holds the log position.
const WriterName = "serve"

// metaNext is the commit metadata key of the next log entry not in the lake.
const metaNext = "wal.next"

// metaCursor prefixes the commit metadata keys of the sources' cursors.
const metaCursor = "cursor."

// Options configure a Pipeline.
type Options struct {
	// WALDir is the write-ahead log's directory; default <lake>/_osprey/wal.
	WALDir string
	// FlushAge is how long records wait at most before a flush makes them queryable; default
	// 60 s.
	FlushAge time.Duration
	// FlushBytes of records appended since the last flush start a flush; default 256 MiB.
	FlushBytes int64
	// MaxBacklog is the most bytes of records appended and not yet read by the workers; past
	// it, Append refuses with ErrBusy. Default 1 GiB.
	MaxBacklog int64
	// Workers parse records; default GOMAXPROCS.
	Workers int
	// Logger gets the pipeline's events; default none.
	Logger *slog.Logger
	// Writer is the lake writer the pipeline flushes, opened with NewWriter; default one that
	// Open opens. Open takes it over: Close closes it, and so does Open when it fails.
	Writer *lake.Writer
	// Sink, when set, receives every batch instead of Writer directly; it must pass each on to
	// Writer (streaming detections and metrics stand in front of the writer). Set it only with
	// Writer.
	Sink ingest.Sink
	// Committer, when set, takes part in every flush: its Prepare runs once the workers have
	// handed over their rows (it may write more to the writer) and returns commit metadata
	// published with the files; Commit follows a flush that succeeded, Abort one that failed.
	// Streaming detections commit their alert counts this way.
	Committer Committer
	// MaxDelay bounds how long a parsed row waits in a worker (ingest.Options.MaxDelay).
	MaxDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RetryMax is the longest wait between two attempts to recover from a failed write (the
	// first waits 100 ms, each next one twice as long); default 10 s.
	RetryMax time.Duration
}

// A Committer has its own state committed with the lake's flushes (see Options.Committer).
type Committer interface {
	Prepare(ctx context.Context, writer string) (map[string]string, error)
	Commit(meta map[string]string) error
	Abort(meta map[string]string) error
}

// A Forgetter is a Committer that can drop what it holds of the rows written to it since its
// last Prepare (streaming detections: the matches counted and the batches waiting). With one,
// the pipeline recovers from any failed write by reading its log again, as it does without a
// Committer; without one, a write that fails before the flush's Prepare stops the pipeline.
type Forgetter interface {
	Committer
	Forget() error
}

// Errors.
var (
	// ErrBusy means the pipeline is behind: the source should ask its client to retry later.
	ErrBusy = errors.New("ingest is behind; retry later")
	// ErrUnknownSource means records were appended for a source that is not registered.
	ErrUnknownSource = errors.New("unknown source")
	// ErrStopped means the pipeline has stopped (closed or failed).
	ErrStopped = errors.New("ingest pipeline stopped")
	// ErrUnavailable means the pipeline cannot write its log or the lake for now (a full
	// disk): nothing was accepted, and the source should ask its client to retry later.
	ErrUnavailable = errors.New("ingest is unavailable; retry later")
)

// retryMin is the first wait before recovering from a failed write.
const retryMin = 100 * time.Millisecond

// Pipeline is the durable ingest path. Its methods are safe for concurrent use.
type Pipeline struct {
	opts   Options
	lake   *lake.Lake
	log    *wal.Log
	writer *lake.Writer
	sink   ingest.Sink // what the workers write to: the writer, or Options.Sink's wrapper of it
	in     *ingest.Ingester
	gate   *gate // in front of sink for in; guarded by dispatch

	mu      sync.RWMutex
	sources map[string]*ingest.Source
	missing map[string]*ingest.Source // stand-ins for sources removed while their records wait
	cursors map[string]string         // each source's cursor of its last durable append

	flushed map[string]string // the cursors of the entries handed on; guarded by dispatch

	// dispatch is held by the consumer while it hands an entry to the workers and by a flush
	// for its whole length, which pauses the consumer between two entries.
	dispatch   sync.Mutex
	inflight   sync.WaitGroup // entries handed to workers and not yet parsed
	next       uint64         // the next entry to hand on; guarded by dispatch
	oldest     time.Time      // when the oldest entry not yet flushed was handed on; guarded by dispatch
	pending    int64          // bytes handed on since the last flush; guarded by dispatch
	dispatched atomic.Uint64  // next, readable without the lock
	progress   chan struct{}  // closed and replaced when dispatched advances; guarded by progMu
	progMu     sync.Mutex
	appended   atomic.Int64      // bytes appended since start, and those in the log at start
	consumed   atomic.Int64      // bytes handed on since start
	committed  uint64            // the log position the lake records; guarded by dispatch
	unsettled  map[string]string // metadata of a failed flush the Committer awaits; guarded by dispatch

	faultMu    sync.Mutex
	fault      error         // why the pipeline cannot write, nil when it can
	faultLake  bool          // the fault is the lake's (appends are refused), not the log's
	faultSince time.Time     // when fault was first seen
	retry      time.Duration // the next wait before recovering; owned by Run

	flushes    atomic.Int64
	lastFlush  atomic.Int64 // unix nanoseconds of the last flush's end
	flushNanos atomic.Int64 // duration of the last flush

	stopOnce sync.Once
	stopped  chan struct{}
	err      error // why it stopped; set before stopped is closed
}

// NewWriter opens the lake writer of a pipeline (Options.Writer). Opening it finishes a flush
// that a crash interrupted, so open it before anything reads the lake's commit metadata (the
// alert store's epochs, say).
func NewWriter(l *lake.Lake, log *slog.Logger) (*lake.Writer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return l.NewWriter(lake.WriterOptions{Name: WriterName, Logger: log})
}

// Open recovers the lake and the log and starts the workers. Run starts reading.
func Open(ctx context.Context, l *lake.Lake, opts Options) (*Pipeline, error) {
	if opts.WALDir == "" {
		opts.WALDir = lake.WALDir(l.Dir())
	}
	if opts.FlushAge <= 0 {
		opts.FlushAge = 60 * time.Second
	}
	if opts.FlushBytes <= 0 {
		opts.FlushBytes = 256 << 20
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Second
	}
	writer := opts.Writer
	if writer == nil {
		if opts.Sink != nil {
			return nil, errors.New("pipeline: a Sink needs the Writer it ends at")
		}
		var err error
		if writer, err = NewWriter(l, opts.Logger); err != nil {
			return nil, err
		}
	}
	meta, err := l.CommitMeta(WriterName)
	if err != nil {
		writer.Abort()
		return nil, err
	}
	var next uint64
	if v, ok := meta[metaNext]; ok {
		if next, err = strconv.ParseUint(v, 10, 64); err != nil {
			writer.Abort()
			return nil, fmt.Errorf("commit metadata %s=%q: %w", metaNext, v, err)
		}
	}
	flushed := map[string]string{}
	for k, v := range meta {
		if id, ok := strings.CutPrefix(k, metaCursor); ok {
			flushed[id] = v
		}
	}
	log, err := wal.Open(opts.WALDir, wal.Options{})
	if err != nil {
		writer.Abort()
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	if log.Next() < next {
		log.Close()
		writer.Abort()
		return nil, fmt.Errorf("the lake holds write-ahead log entries up to %d but the log in %s ends at %d: it is not this lake's log", next, opts.WALDir, log.Next())
	}
	if err := log.Checkpoint(next); err != nil {
		opts.Logger.Warn("could not remove write-ahead log segments", "err", err)
	}
	cursors, backlog, err := logCursors(ctx, log, next, maps.Clone(flushed))
	if err != nil {
		log.Close()
		writer.Abort()
		return nil, err
	}
	var sink ingest.Sink = writer
	if opts.Sink != nil {
		sink = opts.Sink
	}
	p := &Pipeline{opts: opts, lake: l, log: log, writer: writer, sink: sink,
		sources: map[string]*ingest.Source{}, missing: map[string]*ingest.Source{}, next: next,
		committed: next, cursors: cursors, flushed: flushed,
		stopped: make(chan struct{}), progress: make(chan struct{}), retry: retryMin}
	if err := p.newIngester(ctx); err != nil {
		log.Close()
		writer.Abort()
		return nil, err
	}
	p.dispatched.Store(next)
	// The entries in the log and not in the lake are the backlog the consumer reads first: they
	// count as appended, or Backlog would go negative as they are read.
	p.appended.Store(backlog)
	if entries := log.Next() - next; entries > 0 {
		opts.Logger.Info("reading write-ahead log entries not yet in the lake", "entries", entries, "bytes", backlog, "from", next)
	}
	return p, nil
}

// newIngester starts the workers, writing to the sink through a gate of their own.
func (p *Pipeline) newIngester(ctx context.Context) error {
	g := &gate{next: p.sink}
	// Every record comes with its source: the ingester has none of its own.
	in, err := ingest.New(ctx, g, ingest.Options{Workers: p.opts.Workers, Now: p.opts.Now, MaxDelay: p.opts.MaxDelay})
	if err != nil {
		return err
	}
	p.in, p.gate = in, g
	return nil
}

// errScanned ends the scan of logCursors.
var errScanned = errors.New("scanned")

// logCursors adds to cursors those of the log's entries from next on (not yet in the lake), and
// returns the bytes of their records.
func logCursors(ctx context.Context, log *wal.Log, next uint64, cursors map[string]string) (map[string]string, int64, error) {
	end := log.Next()
	if end <= next {
		return cursors, 0, nil
	}
	var size int64
	err := log.Read(ctx, next, func(seq uint64, e wal.Entry) error {
		if e.Cursor != "" {
			cursors[e.Source] = e.Cursor
		}
		for _, r := range e.Records {
			size += int64(len(r))
		}
		if seq+1 >= end {
			return errScanned
		}
		return nil
	})
	if !errors.Is(err, errScanned) {
		return nil, 0, fmt.Errorf("read cursors from the write-ahead log: %w", err)
	}
	return cursors, size, nil
}

// SetSource registers or replaces a source; records appended for it are parsed with it.
func (p *Pipeline) SetSource(src *ingest.Source) { p.SetSourceAs(src.ID, src) }

// SetSourceAs registers a source under another name than its id: records appended under the
// name are parsed with it (an S3 source appends the keys of each prefix under a name of its own,
// with the prefix's log types, and the source's id).
func (p *Pipeline) SetSourceAs(name string, src *ingest.Source) {
	p.mu.Lock()
	p.sources[name] = src
	p.mu.Unlock()
}

// RemoveSource unregisters a source. Its records already in the log are still read, as
// failures naming the missing source.
func (p *Pipeline) RemoveSource(id string) {
	p.mu.Lock()
	delete(p.sources, id)
	p.mu.Unlock()
}

// Source returns a registered source.
func (p *Pipeline) Source(id string) (*ingest.Source, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.sources[id]
	return s, ok
}

// Append adds records of a source and returns once they are durable: the caller may then
// acknowledge them. It refuses with ErrBusy when the workers are too far behind.
func (p *Pipeline) Append(ctx context.Context, source string, records [][]byte) error {
	return p.AppendWith(ctx, source, records, Extra{})
}

// Extra is what an append may carry besides records.
type Extra struct {
	// File is the S3 object the records were read from: their rows' p_source_file.
	File batch.SourceFile
	// Cursor, when not empty, is where the source stands once these records are in; Cursor
	// returns it from then on, across restarts.
	Cursor string
}

// AppendObject appends records read from an S3 object: their rows have it as p_source_file.
func (p *Pipeline) AppendObject(ctx context.Context, source string, file batch.SourceFile, records [][]byte) error {
	return p.AppendWith(ctx, source, records, Extra{File: file})
}

// AppendCursor appends records with the source's cursor once they are in (see Cursor).
func (p *Pipeline) AppendCursor(ctx context.Context, source string, records [][]byte, cursor string) error {
	return p.AppendWith(ctx, source, records, Extra{Cursor: cursor})
}

// Cursor returns the cursor of the source's last durable append with one ("" if none).
func (p *Pipeline) Cursor(source string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cursors[source]
}

// AppendWith is Append with the records' S3 object and the source's cursor (see Extra), made
// durable together with the records. Records may be empty to move a cursor alone.
func (p *Pipeline) AppendWith(ctx context.Context, source string, records [][]byte, x Extra) error {
	if _, ok := p.Source(source); !ok {
		return fmt.Errorf("%w %q", ErrUnknownSource, source)
	}
	select {
	case <-p.stopped:
		return ErrStopped
	default:
	}
	if err, lakeFault := p.Fault(); err != nil && lakeFault {
		// The log might take the records, but the disk it shares with the lake, most often,
		// would not be freed by it; and a backlog the lake cannot take is better left with
		// the clients.
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.Backlog() > p.opts.MaxBacklog {
		return ErrBusy
	}
	var size int64
	for _, r := range records {
		size += int64(len(r))
	}
	e := wal.Entry{Source: source, Records: records, Bucket: x.File.Bucket, Key: x.File.Key, Cursor: x.Cursor}
	if _, err := p.log.Append(ctx, e); err != nil {
		switch {
		case errors.Is(err, wal.ErrClosed):
			return ErrStopped
		case ctx.Err() != nil:
			return err
		}
		// The log failed to write this append (and refused it); the next one tries again.
		p.setFault(err, false)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	p.clearFault(false)
	p.appended.Add(size)
	if x.Cursor != "" {
		p.mu.Lock()
		p.cursors[source] = x.Cursor
		p.mu.Unlock()
	}
	return nil
}

// Backlog returns the bytes of records appended and not yet handed to the workers.
func (p *Pipeline) Backlog() int64 { return p.appended.Load() - p.consumed.Load() }

// Run reads the log into the workers and flushes on age and size until ctx is done or the
// pipeline fails for good. A failed write does not end it: it recovers (see the package
// comment) and goes on. It returns nil after a clean stop (see Close) and the error otherwise.
func (p *Pipeline) Run(ctx context.Context) error {
	for {
		err := p.runOnce(ctx)
		if err == nil || ctx.Err() != nil {
			break
		}
		if !p.recoverable(err) {
			p.stop(err)
			break
		}
		p.setFault(err, true)
		if err := p.recover(ctx); err != nil {
			if ctx.Err() == nil {
				p.stop(err)
			}
			break
		}
	}
	select {
	case <-p.stopped:
		return p.err
	default:
		return nil
	}
}

// runOnce reads the log from the consumer's position into the workers and flushes until ctx
// is done, the pipeline stops (it then returns nil) or a write fails (it returns the error).
func (p *Pipeline) runOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		err := p.log.Read(ctx, p.dispatched.Load(), p.consume)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, wal.ErrClosed) {
			var we *writeError
			if !errors.As(err, &we) {
				err = &fatalError{fmt.Errorf("read write-ahead log: %w", err)}
			}
			failed <- err
		}
		cancel()
	})
	wg.Go(func() {
		tick := time.NewTicker(min(time.Second, p.opts.FlushAge/4))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.stopped:
				cancel()
				return
			case <-tick.C:
				if err := p.tick(ctx); err != nil {
					failed <- err
					cancel()
					return
				}
			}
		}
	})
	select {
	case <-ctx.Done():
	case <-p.stopped:
	}
	cancel()
	wg.Wait()
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

// tick flushes when a flush is due, or, while the lake cannot be written, to find out whether
// it can again.
func (p *Pipeline) tick(ctx context.Context) error {
	if err, lakeFault := p.Fault(); err == nil || !lakeFault {
		return p.maybeFlush(ctx)
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	p.retry = retryMin
	p.clearFault(true)
	return nil
}

// recover waits (with backoff), then undoes what a failed write left, until that succeeds or
// ctx is done.
func (p *Pipeline) recover(ctx context.Context) error {
	for {
		timer := time.NewTimer(p.retry)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-p.stopped:
			timer.Stop()
			return p.err
		case <-timer.C:
		}
		p.retry = min(2*p.retry, p.opts.RetryMax)
		err := p.undo(ctx)
		if err == nil {
			return nil
		}
		if !p.recoverable(err) {
			return err
		}
		p.setFault(err, true)
	}
}

// undo drops the rows the workers and the lake writer hold, settles a flush that failed, and
// sets the consumer back to the position the lake records: the entries after it are read
// again. The consumer must not run (runOnce has returned).
//
// Why nothing is lost or written twice: the rows dropped are those of entries after the last
// flush the lake recorded, which the consumer reads again. A flush that had begun publishing
// is finished by Recover, and its metadata then records how far it went: the consumer goes on
// from there, and the entries it held are not read again. Until Recover succeeds nothing
// changes here, and the pipeline refuses appends.
func (p *Pipeline) undo(ctx context.Context) error {
	p.dispatch.Lock()
	defer p.dispatch.Unlock()
	if p.in != nil {
		// The workers' batches go nowhere from now on: the log has their records.
		p.gate.close()
		p.in.Close()
		p.in = nil
		// Nor do the matches a Committer counted of them: they are counted again as the
		// records are read again.
		if f, ok := p.opts.Committer.(Forgetter); ok {
			if err := f.Forget(); err != nil {
				return &fatalError{fmt.Errorf("forget the rows of a failed write: %w", err)}
			}
		}
	}
	if err := p.writer.Recover(); err != nil {
		return &writeError{err: err, settled: true}
	}
	meta, err := p.lake.CommitMeta(WriterName)
	if err != nil {
		return &writeError{err: err, settled: true}
	}
	var next uint64
	if v, ok := meta[metaNext]; ok {
		if next, err = strconv.ParseUint(v, 10, 64); err != nil {
			return &fatalError{fmt.Errorf("commit metadata %s=%q: %w", metaNext, v, err)}
		}
	}
	if m := p.unsettled; m != nil {
		p.unsettled = nil
		c := p.opts.Committer
		if maps.Equal(meta, m) {
			err = c.Commit(m) // Recover finished the flush
		} else {
			err = c.Abort(m)
		}
		if err != nil {
			return &fatalError{fmt.Errorf("settle a failed flush: %w", err)}
		}
	}
	switch next {
	case p.next:
		// The failed flush was finished: what was handed on is in the lake.
	case p.committed:
		p.consumed.Add(-p.pending)
	default:
		return &fatalError{fmt.Errorf("BUG: the lake records log position %d, neither the last flush's (%d) nor the failed one's (%d)", next, p.committed, p.next)}
	}
	flushed := map[string]string{}
	for k, v := range meta {
		if id, ok := strings.CutPrefix(k, metaCursor); ok {
			flushed[id] = v
		}
	}
	p.flushed = flushed
	p.committed, p.next, p.pending = next, next, 0
	p.dispatched.Store(next)
	p.signalProgress()
	if err := p.newIngester(context.WithoutCancel(ctx)); err != nil {
		return &writeError{err: err, settled: true}
	}
	p.opts.Logger.Warn("reading the write-ahead log again after a failed write", "from", next)
	return nil
}

// A writeError is a failed write of the lake: recover from it. settled says the Committer, if
// any, holds nothing of the rows lost (the failure came after its Prepare, or it has none).
type writeError struct {
	err     error
	settled bool
}

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// A fatalError stops the pipeline.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// recoverable reports whether the pipeline can recover from err by reading the log again. With
// a Committer that is not a Forgetter, only when the failure left it nothing to forget: it
// counts what it was handed since its last Prepare and cannot drop it, so a failed write
// before the flush's Prepare stops the pipeline, and a restart (which starts the Committer
// afresh) reads the log again.
func (p *Pipeline) recoverable(err error) bool {
	var we *writeError
	if !errors.As(err, &we) {
		return false
	}
	_, forgets := p.opts.Committer.(Forgetter)
	return we.settled || p.opts.Committer == nil || forgets
}

// gate passes the batches of one ingester to the sink until it is closed.
type gate struct {
	next   ingest.Sink
	closed atomic.Bool
}

var (
	_ ingest.Sink   = (*gate)(nil)
	_ ingest.Keeper = (*gate)(nil)
)

var errDropped = errors.New("batch dropped: the log is read again")

func (g *gate) close() { g.closed.Store(true) }

func (g *gate) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	if g.closed.Load() {
		return errDropped
	}
	return g.next.Write(ctx, db, table, rec)
}

// Keeps passes the question on to the sink (see ingest.Keeper).
func (g *gate) Keeps(db, table string, rows int64) bool {
	k, ok := g.next.(ingest.Keeper)
	return ok && k.Keeps(db, table, rows)
}

// Fault returns why the pipeline cannot write (nil when it can), and whether the lake (rather
// than only the log) is the one failing.
func (p *Pipeline) Fault() (err error, lake bool) {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	return p.fault, p.faultLake
}

func (p *Pipeline) setFault(err error, lakeFault bool) {
	p.faultMu.Lock()
	first := p.fault == nil
	if first {
		p.faultSince = time.Now()
	}
	// A fault of the lake outranks one of the log: it is cleared only by a flush.
	if first || lakeFault || !p.faultLake {
		p.fault, p.faultLake = err, lakeFault
	}
	p.faultMu.Unlock()
	if first {
		p.opts.Logger.Error("ingest cannot write; retrying, and refusing records meanwhile", "err", err)
		p.signalProgress()
	}
}

// clearFault clears a fault of the lake (lakeFault) or of the log.
func (p *Pipeline) clearFault(lakeFault bool) {
	p.faultMu.Lock()
	if p.fault == nil || p.faultLake != lakeFault {
		p.faultMu.Unlock()
		return
	}
	since := p.faultSince
	p.fault, p.faultLake = nil, false
	p.faultMu.Unlock()
	p.opts.Logger.Warn("ingest writes again", "after", time.Since(since).Round(time.Millisecond))
	p.signalProgress()
}

// consume hands an entry to the workers.
func (p *Pipeline) consume(seq uint64, e wal.Entry) error {
	p.dispatch.Lock()
	defer p.dispatch.Unlock()
	src, ok := p.Source(e.Source)
	if !ok {
		// Records of a source removed since they were accepted: kept as failures.
		if src, ok = p.missing[e.Source]; !ok {
			src = &ingest.Source{Source: batch.Source{ID: e.Source, Label: e.Source}}
			p.missing[e.Source] = src
		}
	}
	// The entry's records are the reader's buffer: the workers get a copy.
	var size int
	for _, r := range e.Records {
		size += len(r)
	}
	buf := make([]byte, 0, size)
	records := make([][]byte, len(e.Records))
	for i, r := range e.Records {
		buf = append(buf, r...)
		records[i] = buf[len(buf)-len(r) : len(buf) : len(buf)]
	}
	if e.Cursor != "" {
		p.flushed[e.Source] = e.Cursor
	}
	name := e.Source
	file := batch.SourceFile{Bucket: e.Bucket, Key: e.Key}
	if file != (batch.SourceFile{}) {
		name = "s3://" + e.Bucket + "/" + e.Key
	}
	if len(records) == 0 {
		p.next = seq + 1
		p.dispatched.Store(p.next)
		p.signalProgress()
		return nil
	}
	if err := p.in.IngestObjectRecords(context.Background(), src, name, file, records, &p.inflight); err != nil {
		// The workers stopped at a failed write.
		return &writeError{err: err}
	}
	if p.pending == 0 {
		p.oldest = p.opts.Now()
	}
	p.pending += int64(size)
	p.consumed.Add(int64(size))
	p.next = seq + 1
	p.dispatched.Store(p.next)
	p.signalProgress()
	return nil
}

// signalProgress wakes those waiting for the consumer to move on (Sync) or for a fault to be
// seen or cleared.
func (p *Pipeline) signalProgress() {
	p.progMu.Lock()
	close(p.progress)
	p.progress = make(chan struct{})
	p.progMu.Unlock()
}

// Sync makes every record appended before it durable in the lake and visible: it waits until
// the consumer has handed them on (Run must be running), then flushes.
func (p *Pipeline) Sync(ctx context.Context) error {
	target := p.log.Next()
	for {
		p.progMu.Lock()
		ch := p.progress
		p.progMu.Unlock()
		if err, lakeFault := p.Fault(); err != nil && lakeFault {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if p.dispatched.Load() >= target {
			return p.Flush(ctx)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopped:
			return cmp.Or(p.err, ErrStopped)
		}
	}
}

// maybeFlush flushes when the oldest record handed on is FlushAge old or FlushBytes are
// pending.
func (p *Pipeline) maybeFlush(ctx context.Context) error {
	p.dispatch.Lock()
	due := p.pending > 0 && (p.opts.Now().Sub(p.oldest) >= p.opts.FlushAge || p.pending >= p.opts.FlushBytes)
	p.dispatch.Unlock()
	if !due {
		return nil
	}
	return p.Flush(ctx)
}

// Flush makes every record handed on so far durable in the lake and visible, and drops the
// log entries it no longer needs. A failed flush is recovered from by Run (see the package
// comment), whoever called it: appends are refused from then on until a flush succeeds.
func (p *Pipeline) Flush(ctx context.Context) (err error) {
	p.dispatch.Lock()
	defer p.dispatch.Unlock()
	defer func() {
		var we *writeError
		if errors.As(err, &we) {
			p.setFault(err, true)
		}
	}()
	if p.in == nil || p.unsettled != nil {
		// A failed write is being recovered from (undo has not finished).
		err, _ := p.Fault()
		return &writeError{err: fmt.Errorf("flush: %w", cmp.Or(err, ErrUnavailable)), settled: true}
	}
	start := time.Now()
	p.inflight.Wait()
	if err := p.in.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("flush: %w", err) // the workers keep their rows
		}
		return &writeError{err: fmt.Errorf("flush: %w", err)}
	}
	next := p.next
	meta := map[string]string{}
	if c := p.opts.Committer; c != nil {
		m, err := c.Prepare(ctx, WriterName)
		if err != nil {
			return &writeError{err: fmt.Errorf("flush: %w", err)}
		}
		maps.Copy(meta, m)
	}
	meta[metaNext] = strconv.FormatUint(next, 10)
	for id, c := range p.flushed {
		meta[metaCursor+id] = c
	}
	if err := p.writer.FlushWith(ctx, meta); err != nil {
		// The flush may yet happen: its files may be partly published, and Recover then
		// finishes it. The Committer learns which once undo knows (Commit or Abort).
		if p.opts.Committer != nil {
			p.unsettled = meta
		}
		return &writeError{err: fmt.Errorf("flush: %w", err), settled: true}
	}
	p.committed = next
	if c := p.opts.Committer; c != nil {
		if err := c.Commit(meta); err != nil {
			return &fatalError{fmt.Errorf("flush: %w", err)}
		}
	}
	if err := p.log.Checkpoint(next); err != nil {
		p.opts.Logger.Warn("could not remove write-ahead log segments", "err", err)
	}
	p.pending = 0
	p.flushes.Add(1)
	p.lastFlush.Store(time.Now().UnixNano())
	p.flushNanos.Store(int64(time.Since(start)))
	p.opts.Logger.Debug("flushed", "next", next, "took", time.Since(start))
	return nil
}

// stop records why the pipeline stopped.
func (p *Pipeline) stop(err error) {
	p.stopOnce.Do(func() {
		p.err = err
		close(p.stopped)
		if err != ErrStopped { // Close: not an error
			p.opts.Logger.Error("ingest pipeline stopped", "err", err)
		}
	})
}

// Close stops the pipeline after Run has returned: a last flush when it had not failed, then
// the workers, the writer and the log. Appends after Close fail with ErrStopped.
func (p *Pipeline) Close(ctx context.Context) error {
	failed := false
	select {
	case <-p.stopped:
		failed = true
	default:
	}
	var errs []error
	if !failed {
		if err := p.Flush(ctx); err != nil {
			failed = true
			errs = append(errs, err)
		}
	}
	p.stop(ErrStopped)
	p.dispatch.Lock()
	if p.in != nil {
		if failed {
			p.gate.close()
		}
		_, err := p.in.Close()
		if !failed {
			errs = append(errs, err)
		}
		p.in = nil
	}
	p.dispatch.Unlock()
	switch {
	case !failed:
		errs = append(errs, p.writer.Close())
	case p.writer.Recover() == nil:
		// A flush the failure interrupted while publishing is finished; the rest is read
		// again from the log at the next start.
		errs = append(errs, p.writer.Abort())
	default:
		// The writer's temporary directory keeps the manifest of a flush it could not
		// finish: the next writer on the lake finishes it.
		p.opts.Logger.Warn("leaving an unfinished flush for the next start to finish")
	}
	errs = append(errs, p.log.Close())
	return errors.Join(errs...)
}

// Stats are the pipeline's figures for monitoring.
type Stats struct {
	Fault         string        // why the pipeline cannot write ("" when it can)
	FaultSince    time.Time     // since when
	WALBytes      int64         // bytes in the write-ahead log's segments
	Backlog       int64         // bytes appended and not yet handed to the workers
	Flushes       int64         // flushes since start
	LastFlush     time.Time     // when the last flush ended
	FlushDuration time.Duration // how long the last flush took
	Writer        lake.Stats    // what the lake writer committed since start
}

// Stats returns the pipeline's figures.
func (p *Pipeline) Stats() Stats {
	s := Stats{WALBytes: p.log.Size(), Backlog: p.Backlog(), Flushes: p.flushes.Load(),
		FlushDuration: time.Duration(p.flushNanos.Load()), Writer: p.writer.Stats()}
	if t := p.lastFlush.Load(); t > 0 {
		s.LastFlush = time.Unix(0, t)
	}
	p.faultMu.Lock()
	if p.fault != nil {
		s.Fault, s.FaultSince = p.fault.Error(), p.faultSince
	}
	p.faultMu.Unlock()
	return s
}

// Compact merges the files of every partition whose hour ended before cutoff (see
// lake.Writer.Compact) in every table of the lake.
func (p *Pipeline) Compact(ctx context.Context, cutoff time.Time) (lake.CompactStats, error) {
	return CompactLake(ctx, p.lake, p.writer, cutoff)
}

// CompactLake compacts every table of a lake with a writer.
func CompactLake(ctx context.Context, l *lake.Lake, w *lake.Writer, cutoff time.Time) (lake.CompactStats, error) {
	var total lake.CompactStats
	for _, db := range lake.Databases {
		tables, err := l.Tables(db)
		if err != nil {
			return total, err
		}
		for _, t := range tables {
			st, err := w.Compact(ctx, db, t.Name, cutoff, 2)
			total.Partitions += st.Partitions
			total.FilesIn += st.FilesIn
			total.FilesOut += st.FilesOut
			total.Rows += st.Rows
			total.Bytes += st.Bytes
			total.Lost += st.Lost
			if err != nil {
				return total, fmt.Errorf("compact %s.%s: %w", db, t.Name, err)
			}
		}
	}
	return total, nil
}
