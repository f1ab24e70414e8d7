// Package ingest turns streams of log records into Arrow record batches of lake tables.
//
// An Ingester runs a pool of workers. Each stream is decompressed and cut into chunks of records
// (package stream): lines, or JSON values for a stream of JSON documents (a pretty-printed
// file, a JSON array, CloudTrail's {"Records": [...]}); the framing is sniffed from the stream's
// first bytes unless set. A worker splits a record that is an envelope of a candidate log type
// into its records, and classifies each against the candidate log types: a cheap check first
// (LogType.Check), then a parse, the last type that matched tried first. It parses the record
// into a batch builder of the row's table and event hour, and hands full batches to a Sink (the
// lake writer, and detections as they are added). A record that no candidate accepts becomes a
// row of panther_monitor.classification_failures with its source, line number, the reason from
// each candidate and the raw text; the rest of the stream goes on.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest/batch"
	"github.com/ospreyhq/osprey/ingest/logtypes"
	"github.com/ospreyhq/osprey/ingest/stream"
)

// Sink receives record batches of tables. Write may be called from several goroutines. Write
// must be done with the record when it returns: the memory of its buffers is reused.
type Sink interface {
	Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error
}

// A Keeper is a Sink that may keep a record after Write returns (having retained it): a worker
// asks before it builds the record, and does not reuse the memory of a record kept.
type Keeper interface {
	Keeps(db, table string, rows int64) bool
}

// Databases written by ingest.
const (
	DBLogs    = "panther_logs"
	DBMonitor = "panther_monitor"
)

// Options configure an Ingester.
type Options struct {
	// LogTypes are the candidate log types of every record, tried in this order at first.
	LogTypes []*logtypes.LogType
	// Source sets p_source_id and p_source_label.
	Source batch.Source
	// Workers is the number of parsing goroutines; default GOMAXPROCS.
	Workers int
	// BatchRows and BatchBytes bound a record batch; defaults 122,880 rows and 64 MiB.
	BatchRows  int
	BatchBytes int
	// MaxBuffered bounds the bytes a worker holds in unfinished batches (of all tables and
	// hours); above it the largest batch is handed on early. Default 128 MiB.
	MaxBuffered int
	// Stream configures chunking and the record size limit.
	Stream stream.Options
	// Framing is how streams are cut into records; default stream.Auto (sniffed).
	Framing stream.Framing
	// Now returns the parse time; default time.Now.
	Now func() time.Time
	// MaxDelay, when set, bounds how long a parsed row waits in a worker before it is handed
	// to the sink: streaming detections get rows within it instead of when a batch is full or
	// at Flush. Smaller batches result (a row group each in the lake).
	MaxDelay time.Duration
}

// errNoLogTypes refuses a stream of an ingester made without log types (one fed by
// IngestRecords only).
var errNoLogTypes = errors.New("no log types to parse: Options.LogTypes is empty")

// Source is where records come from: its id and label fill p_source_id and p_source_label,
// and its log types are the candidates its records are classified against (the last one that
// matched is tried first). Options.Source and Options.LogTypes are the source of streams given
// to Ingest and IngestFile; IngestRecords takes one per call.
type Source struct {
	batch.Source
	LogTypes []*logtypes.LogType
}

// Ingester parses streams into batches. Streams are ingested one at a time (each may be
// parsed by several workers); Close hands on what is still buffered.
type Ingester struct {
	opts      Options
	sink      Sink
	envelopes []string // the envelope keys of the candidate log types
	headers   bool     // a candidate log type takes its columns from a stream's first line
	ids       *batch.RowIDs
	failures  *batch.Schema
	pool      *stream.Pool

	chunks  chan job
	wg      sync.WaitGroup
	workers []*worker
	src     *Source // the source of Ingest and IngestFile

	mu      sync.Mutex
	summary Summary
	err     error // the first sink error; ingest stops at it
	cancel  context.CancelFunc
	ctx     context.Context
}

type job struct {
	src     *Source
	chunk   stream.Chunk
	records [][]byte         // records given whole (IngestRecords), instead of a chunk's lines
	file    batch.SourceFile // p_source_file of the job's rows (IngestObjectRecords)
	source  string           // the stream's name, for failures and errors
	header  []byte           // the stream's first line, for log types whose columns it names
	done    *sync.WaitGroup
}

// Summary counts what was ingested.
type Summary struct {
	Files    int
	Bytes    int64            // bytes read, after decompression
	Events   map[string]int64 // rows per table
	Failures int64            // lines no log type accepted
	Blank    int64            // empty lines, skipped
	Skipped  int64            // records without data (CSV headers), skipped
	Errors   []string         // stream errors (a truncated gzip, a read error)
	Latest   time.Time        // the latest p_event_time written
	Earliest time.Time        // the earliest p_event_time written
	Duration time.Duration
}

// Total returns the number of rows written to log tables.
func (s Summary) Total() int64 {
	var n int64
	for _, v := range s.Events {
		n += v
	}
	return n
}

// New returns an ingester writing to sink. Call Close when done; ctx carries values only.
func New(ctx context.Context, sink Sink, opts Options) (*Ingester, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = 122880
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 64 << 20
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 128 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Framing == "" {
		opts.Framing = stream.Auto
	}
	opts.Stream = opts.Stream.WithDefaults()
	failures, err := FailureSchema()
	if err != nil {
		return nil, err
	}
	// Workers stop only when a write fails: a caller that stops feeding streams (a cancelled
	// Ingest) still gets what was already read written by Close.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in := &Ingester{
		opts: opts, sink: sink, ids: batch.NewRowIDs(), failures: failures,
		// Enough buffers for every chunk in flight (queued, being parsed, being read): a
		// buffer the pool cannot keep is reallocated, and fresh memory costs page faults.
		pool:   stream.NewPool(3*opts.Workers + 4),
		chunks: make(chan job, opts.Workers),
		ctx:    ctx, cancel: cancel,
		summary: Summary{Events: map[string]int64{}},
		src:     &Source{Source: opts.Source, LogTypes: opts.LogTypes},
	}
	for _, lt := range opts.LogTypes {
		if lt.Envelope != "" && !slices.Contains(in.envelopes, lt.Envelope) {
			in.envelopes = append(in.envelopes, lt.Envelope)
		}
		in.headers = in.headers || lt.NeedsHeader()
	}
	for range opts.Workers {
		w, err := in.newWorker()
		if err != nil {
			cancel()
			return nil, err
		}
		in.workers = append(in.workers, w)
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			w.run()
		}()
	}
	return in, nil
}

// Ingest reads one stream (decompressing gzip or zstd) named source (a file path or "stdin").
// It returns when every line has been parsed; rows may still be buffered until Close.
func (in *Ingester) Ingest(ctx context.Context, source string, r io.Reader) error {
	if len(in.opts.LogTypes) == 0 {
		return errNoLogTypes
	}
	start := time.Now()
	dr, comp, err := stream.Decompress(r)
	if err != nil {
		in.streamError(source, err)
		return nil
	}
	defer dr.Close()
	framing := in.opts.Framing
	var r2 io.Reader = dr
	var header []byte
	if framing == stream.Auto || in.headers {
		br := bufio.NewReaderSize(dr, stream.SniffSize)
		head, err := br.Peek(stream.SniffSize)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			in.streamError(source, err)
			return nil
		}
		if framing == stream.Auto {
			framing = stream.Sniff(head, in.envelopes)
		}
		if in.headers {
			header = firstLine(head)
		}
		r2 = br
	}
	return in.run(ctx, source, start, comp, header, func(out chan<- stream.Chunk) (int64, error) {
		if framing == stream.JSON {
			return stream.JSONChunks(ctx, r2, in.opts.Stream, in.envelopes, in.pool, out)
		}
		return stream.Chunks(ctx, r2, in.opts.Stream, in.pool, out)
	})
}

// IngestFile ingests a file named source. An uncompressed regular file is read in place,
// mapped into memory, instead of copied through read calls; anything else is read as Ingest
// reads a stream. progress, when not nil, is told the bytes of the file read as reading goes.
func (in *Ingester) IngestFile(ctx context.Context, source string, f *os.File, progress func(n int64)) error {
	if len(in.opts.LogTypes) == 0 {
		return errNoLogTypes
	}
	m, err := stream.Map(f)
	if err != nil {
		in.streamError(source, err)
		return nil
	}
	if m != nil {
		comp, err := m.Compression()
		framing := in.opts.Framing
		if err == nil && framing == stream.Auto {
			framing, err = m.Sniff(in.envelopes)
		}
		var header []byte
		if err == nil && in.headers {
			var head []byte
			if head, err = m.Head(stream.SniffSize); err == nil {
				header = firstLine(head)
			}
		}
		if err == nil && comp == stream.None && framing != stream.JSON {
			defer m.Close() // after run: every chunk is released by then
			return in.run(ctx, source, time.Now(), comp, header, func(out chan<- stream.Chunk) (int64, error) {
				if progress == nil {
					return m.Chunks(ctx, in.opts.Stream, out)
				}
				tap := make(chan stream.Chunk)
				forwarded := make(chan struct{})
				go func() {
					defer close(forwarded)
					for c := range tap {
						out <- c
						progress(int64(len(c.Data)))
					}
				}()
				n, err := m.Chunks(ctx, in.opts.Stream, tap)
				close(tap)
				<-forwarded
				return n, err
			})
		}
		m.Close()
		if err != nil {
			in.streamError(source, err)
			return nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			in.streamError(source, err)
			return nil
		}
	}
	var r io.Reader = f
	if progress != nil {
		r = io.TeeReader(f, progressWriter(progress))
	}
	return in.Ingest(ctx, source, r)
}

// progressWriter reports the bytes written to it.
type progressWriter func(n int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}

// firstLine returns a copy of the first line of a stream's head.
func firstLine(head []byte) []byte {
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	return append([]byte(nil), bytes.TrimSuffix(head, []byte("\r"))...)
}

// run hands the chunks produce sends to the workers and waits until they are parsed. header is
// the stream's first line, for the parsers that take their columns from it.
func (in *Ingester) run(ctx context.Context, source string, start time.Time, comp stream.Compression, header []byte,
	produce func(out chan<- stream.Chunk) (int64, error)) error {
	out := make(chan stream.Chunk)
	var done sync.WaitGroup
	var n int64
	var readErr error
	go func() {
		defer close(out)
		n, readErr = produce(out)
	}()
	for c := range out {
		done.Add(1)
		select {
		case in.chunks <- job{src: in.src, chunk: c, source: source, header: header, done: &done}:
		case <-in.ctx.Done():
			c.Release(in.pool)
			done.Done()
		}
	}
	done.Wait()
	in.mu.Lock()
	in.summary.Files++
	in.summary.Bytes += n
	in.summary.Duration += time.Since(start)
	in.mu.Unlock()
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		if comp != stream.None && errors.Is(readErr, io.ErrUnexpectedEOF) {
			readErr = fmt.Errorf("%s stream is truncated: %w", comp, readErr)
		}
		in.streamError(source, readErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return in.Err()
}

// IngestRecords parses records of a source (whole records, as a write-ahead log or a request
// holds them) named name in failures, and returns once a worker has them. Rows may still be
// buffered until Flush or Close. Calls are handed to workers in order; several may be in
// flight at once.
func (in *Ingester) IngestRecords(ctx context.Context, src *Source, name string, records [][]byte, done *sync.WaitGroup) error {
	return in.IngestObjectRecords(ctx, src, name, batch.SourceFile{}, records, done)
}

// IngestObjectRecords is IngestRecords for records read from an S3 object: their rows have the
// object as p_source_file.
func (in *Ingester) IngestObjectRecords(ctx context.Context, src *Source, name string, file batch.SourceFile, records [][]byte, done *sync.WaitGroup) error {
	done.Add(1)
	select {
	case in.chunks <- job{src: src, records: records, file: file, source: name, done: done}:
		return nil
	case <-ctx.Done():
		done.Done()
		return ctx.Err()
	case <-in.ctx.Done():
		done.Done()
		return in.Err()
	}
}

// Flush hands every buffered row to the sink and returns when it has them: rows of records
// handed in before Flush (and done with) are in the sink. It must not be called after Close.
func (in *Ingester) Flush(ctx context.Context) error {
	var done sync.WaitGroup
	for _, w := range in.workers {
		done.Add(1)
		select {
		case w.ctl <- func() { w.flushAll(); done.Done() }:
		case <-ctx.Done():
			done.Done()
			done.Wait()
			return ctx.Err()
		}
	}
	done.Wait()
	return in.Err()
}

// ReportError records an error about a stream that could not be read at all.
func (in *Ingester) ReportError(source string, err error) { in.streamError(source, err) }

func (in *Ingester) streamError(source string, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.summary.Errors = append(in.summary.Errors, fmt.Sprintf("%s: %v", source, err))
}

// Err returns the error that stopped ingestion (a failed write), if any.
func (in *Ingester) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

func (in *Ingester) fail(err error) {
	in.mu.Lock()
	if in.err == nil {
		in.err = err
	}
	in.mu.Unlock()
	in.cancel()
}

// Close stops the workers and hands every buffered batch to the sink. It returns the summary.
func (in *Ingester) Close() (Summary, error) {
	close(in.chunks)
	in.wg.Wait()
	in.cancel()
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.summary
	s.Events = map[string]int64{}
	for _, w := range in.workers {
		for t, n := range w.events {
			s.Events[t] += n
		}
		s.Failures += w.failures
		s.Blank += w.blank
		s.Skipped += w.skipped
		if w.haveEvent {
			if s.Latest.IsZero() || w.latest.After(s.Latest) {
				s.Latest = w.latest
			}
			if s.Earliest.IsZero() || w.earliest.Before(s.Earliest) {
				s.Earliest = w.earliest
			}
		}
	}
	sort.Strings(s.Errors)
	return s, in.err
}

// worker parses chunks with its own parsers and builders.
type worker struct {
	in       *Ingester
	ctl      chan func() // run between jobs: Flush
	srcs     map[*Source]*srcState
	cur      *srcState // the source of the job being parsed
	builders map[bkey]*entry
	records  int                         // records in the current chunk
	free     map[string][]*batch.Builder // emptied builders of each table, for reuse
	arena    *batch.Arena                // large buffers shared by the worker's builders
	chunks   int64                       // chunks parsed so far
	buffered int
	open     *batch.Builder // the builder with a row in progress, if any

	events                   map[string]int64
	failures, blank, skipped int64
	earliest, latest         time.Time
	earliestHour             int64
	latestHour               int64
	haveEvent                bool
	reasons                  []Refusal
	header                   []byte // the stream header the parsers were last given
	parseTime                time.Time
	file                     batch.SourceFile // p_source_file of the job being parsed
}

// srcState is what a worker keeps of a source: its candidates and its failures.
type srcState struct {
	src      *Source
	types    []*candidate // in the order they are tried: the last winner first
	fails    *batch.Builder
	failCols failureColumns
	header   []byte // the header line its parsers were given
}

type candidate struct {
	lt     *logtypes.LogType
	parser logtypes.Parser
	last   *entry // where the candidate's previous row went; its hour is the next row's guess
	events int64
}

// entry is a builder of a (table, hour) with what the flush policy needs to know of it.
type entry struct {
	key    bkey
	b      *batch.Builder // nil once flushed
	used   int64          // the chunk it last got a row in
	recent int            // rows it got in the current chunk
	born   time.Time      // when it got its first row (with Options.MaxDelay only)
}

type bkey struct {
	src   *Source
	table string
	hour  int64
}

func (in *Ingester) newWorker() (*worker, error) {
	w := &worker{in: in, ctl: make(chan func()), srcs: map[*Source]*srcState{}, builders: map[bkey]*entry{},
		free: map[string][]*batch.Builder{}, events: map[string]int64{}}
	w.arena = batch.NewArena(in.opts.MaxBuffered / 2)
	if _, err := w.source(in.src); err != nil {
		return nil, err
	}
	return w, nil
}

// source returns the worker's state of a source, making it on first use.
func (w *worker) source(src *Source) (*srcState, error) {
	if st, ok := w.srcs[src]; ok {
		return st, nil
	}
	st := &srcState{src: src}
	for _, lt := range src.LogTypes {
		p, err := lt.NewParser()
		if err != nil {
			return nil, err
		}
		st.types = append(st.types, &candidate{lt: lt, parser: p})
	}
	st.fails = batch.NewBuilder(w.in.failures, w.in.ids)
	st.fails.SetSource(src.Source)
	st.fails.SetArena(w.arena)
	st.failCols = failureCols(st.fails)
	w.srcs[src] = st
	return st, nil
}

func (w *worker) run() {
	// Chunks of a mapped file point into the mapping: reading one of a file truncated meanwhile
	// faults, which chunk recovers from.
	debug.SetPanicOnFault(true)
	var due *time.Timer // fires when the oldest row waiting reaches Options.MaxDelay
	var dueC <-chan time.Time
	for {
		if w.in.opts.MaxDelay > 0 {
			if due != nil {
				due.Stop()
				due, dueC = nil, nil
			}
			if oldest, ok := w.oldestBorn(); ok {
				due = time.NewTimer(time.Until(oldest.Add(w.in.opts.MaxDelay)))
				dueC = due.C
			}
		}
		select {
		case <-dueC:
			due = nil
			w.flushDelayed()
			continue
		case f := <-w.ctl:
			f()
			continue
		case j, ok := <-w.in.chunks:
			if !ok {
				if w.in.ctx.Err() == nil {
					w.flushAll()
				}
				for _, st := range w.srcs {
					for _, c := range st.types {
						w.events[c.lt.Table.Table] += c.events
						c.events = 0
					}
				}
				return
			}
			if j.src == nil {
				j.src = w.in.src
			}
			if w.in.ctx.Err() == nil {
				if st, err := w.source(j.src); err != nil {
					w.in.fail(err)
				} else {
					w.cur = st
					w.chunk(j)
				}
			}
			j.chunk.Release(w.in.pool)
			j.done.Done()
		}
	}
}

// In time-ordered logs an hour's builder stops growing once the stream has moved past the hour;
// late events may still trickle in. A builder is handed on at the end of a chunk when it got no
// row for idleChunks chunks, or when it holds at least coldRows rows but got less than
// 1/coldShare of the chunk's records: rows that wait longer only cost memory.
const (
	idleChunks = 2
	coldRows   = 1024
	coldShare  = 20
)

// oversized keeps the head of a record over the size limit as a failure.
func (w *worker) oversized(source string, line int64, head []byte, size int64) {
	w.failure(source, line, head, size,
		fmt.Sprintf("record of %d bytes is over the limit of %d bytes (the first %d bytes are kept)",
			size, w.in.opts.Stream.MaxRecordSize, len(head)), true)
}

// chunk parses the lines of a chunk, or the records of a job that has them whole.
func (w *worker) chunk(j job) {
	w.chunks++
	w.records = 0
	defer w.flushIdle()
	defer func() {
		// A fault reading a mapped file that was truncated: the row being built is dropped
		// and the rest of the chunk is lost with the file's data.
		if r := recover(); r != nil {
			if !stream.IsFault(r) {
				panic(r)
			}
			if w.open != nil {
				w.open.Rollback()
				w.open = nil
			}
			w.in.streamError(j.source, fmt.Errorf("line %d and on: %w", j.chunk.Line, stream.ErrTruncated))
		}
	}()
	w.parseTime = w.in.opts.Now()
	w.file = j.file
	for _, e := range w.builders {
		e.b.SetParseTime(w.parseTime)
		e.b.SetSourceFile(w.file)
	}
	w.cur.fails.SetParseTime(w.parseTime)
	w.cur.fails.SetSourceFile(w.file)
	if j.header != nil && !bytes.Equal(j.header, w.cur.header) {
		w.cur.header = j.header
		for _, c := range w.cur.types {
			if hp, ok := c.parser.(interface{ SetHeader([]byte) }); ok && c.lt.NeedsHeader() {
				hp.SetHeader(j.header)
			}
		}
	}
	if j.records != nil {
		for i, rec := range j.records {
			switch head, tooLong := w.in.opts.Stream.TooLong(rec); {
			case tooLong:
				w.oversized(j.source, int64(i+1), head, int64(len(rec)))
			case isBlank(rec):
				w.blank++
			default:
				w.record(j.source, int64(i+1), rec)
			}
		}
		return
	}
	c := j.chunk
	if c.Oversized != nil {
		w.oversized(j.source, c.Line, c.Oversized.Head, c.Oversized.Size)
		return
	}
	data := c.Data
	line := c.Line
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var rec []byte
		if i < 0 {
			rec, data = data, nil
		} else {
			rec, data = data[:i], data[i+1:]
		}
		if n := len(rec); n > 0 && rec[n-1] == '\r' {
			rec = rec[:n-1]
		}
		switch head, tooLong := w.in.opts.Stream.TooLong(rec); {
		case tooLong:
			w.oversized(j.source, line, head, int64(len(rec)))
		case isBlank(rec):
			w.blank++
		default:
			w.record(j.source, line, rec)
		}
		line++
		if w.in.ctx.Err() != nil {
			return
		}
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// record classifies and parses one record, or each record of an envelope.
func (w *worker) record(source string, line int64, rec []byte) {
	if len(w.in.envelopes) > 0 {
		if elems, ok, err := stream.SplitEnvelope(rec, w.in.envelopes); ok {
			for _, e := range elems {
				w.classify(source, line, e)
			}
			if err != nil {
				w.failure(source, line, rec, int64(len(rec)), err.Error(), false)
			}
			return
		}
	}
	w.classify(source, line, rec)
}

// classify parses a record as the first candidate log type that accepts it.
func (w *worker) classify(source string, line int64, rec []byte) {
	w.reasons = w.reasons[:0]
	types := w.cur.types
	if len(types) == 0 {
		w.failure(source, line, rec, int64(len(rec)), fmt.Sprintf("source %q has no log types (it is not configured)", w.cur.src.ID), false)
		return
	}
	many := len(types) > 1
	for i, c := range types {
		// The cheap check saves a parse of each log type that cannot match; with a single
		// candidate the parse itself gives the most precise reason.
		var err error
		if many {
			err = c.lt.Check(rec)
		}
		if err == nil {
			err = w.parse(c, rec)
		}
		if err == nil || errors.Is(err, logtypes.ErrSkip) {
			if err != nil {
				w.skipped++
			}
			if i > 0 {
				// The last winner is tried first next time.
				copy(types[1:i+1], types[:i])
				types[0] = c
			}
			return
		}
		w.reasons = append(w.reasons, Refusal{c.lt.Name, err.Error()})
	}
	w.failure(source, line, rec, int64(len(rec)), Explain(w.reasons), false)
}

// Refusal is why a log type refused a record.
type Refusal struct{ LogType, Reason string }

// Explain joins the reasons of the log types that refused a record, naming the types that
// gave the same reason together: "Okta.SystemLog: required field uuid is missing; not a JSON
// object (Linux.Auditd, Syslog.RFC3164)".
func Explain(reasons []Refusal) string {
	if len(reasons) == 1 {
		return reasons[0].Reason
	}
	byText := map[string][]string{}
	var order []string
	for _, r := range reasons {
		if _, ok := byText[r.Reason]; !ok {
			order = append(order, r.Reason)
		}
		byText[r.Reason] = append(byText[r.Reason], r.LogType)
	}
	parts := make([]string, len(order))
	for i, text := range order {
		if types := byText[text]; len(types) == 1 {
			parts[i] = types[0] + ": " + text
		} else {
			parts[i] = text + " (" + strings.Join(types, ", ") + ")"
		}
	}
	return strings.Join(parts, "; ")
}

// parse parses rec as a candidate's row into the builder of its table and event hour.
func (w *worker) parse(c *candidate, rec []byte) error {
	// Guess the hour of the candidate's previous row; re-parse into the right builder if the
	// row's event time is in another hour.
	e := c.last
	if e == nil || e.b == nil {
		e = w.entry(c, hourOf(w.parseTime))
	}
	b := e.b
	w.open = b
	defer func() { w.open = nil }()
	b.Begin()
	if err := c.parser.Parse(rec, b); err != nil {
		b.Rollback()
		return err
	}
	if hour := b.EventHour(); hour != e.key.hour {
		b.Rollback()
		next := w.entry(c, hour)
		if hour > e.key.hour || e.b.Rows() == 0 {
			c.last = next // time moved on (a late row does not change the guess)
		}
		e, b = next, next.b
		w.open = b
		b.Begin()
		if err := c.parser.Parse(rec, b); err != nil {
			b.Rollback()
			return err
		}
	}
	b.End()
	e.used = w.chunks
	e.recent++
	w.records++
	c.events++
	if h := e.key.hour; !w.haveEvent || h < w.earliestHour || h > w.latestHour {
		t := b.EventTime()
		if !w.haveEvent || t.Before(w.earliest) {
			w.earliest, w.earliestHour = t, h
		}
		if !w.haveEvent || t.After(w.latest) {
			w.latest, w.latestHour = t, h
		}
		w.haveEvent = true
	} else if h == w.latestHour {
		if t := b.EventTime(); t.After(w.latest) {
			w.latest = t
		}
	} else if h == w.earliestHour {
		if t := b.EventTime(); t.Before(w.earliest) {
			w.earliest = t
		}
	}
	w.buffered += len(rec) // an estimate; corrected when the batch is built
	if n := b.Rows(); n >= w.in.opts.BatchRows || n%256 == 0 && b.Size() >= w.in.opts.BatchBytes {
		w.flush(e)
	} else if w.buffered > w.in.opts.MaxBuffered {
		w.flushLargest()
	}
	return nil
}

// entry returns the builder entry of the candidate's table and an hour, creating it.
func (w *worker) entry(c *candidate, hour int64) *entry {
	key := bkey{w.cur.src, c.lt.Table.Table, hour}
	if e, ok := w.builders[key]; ok {
		if c.last == nil || c.last.b == nil {
			c.last = e
		}
		return e
	}
	var b *batch.Builder
	if free := w.free[key.table]; len(free) > 0 {
		b, w.free[key.table] = free[len(free)-1], free[:len(free)-1]
	} else {
		b = batch.NewBuilder(c.lt.Table, w.in.ids)
		b.SetArena(w.arena)
	}
	b.SetSource(key.src.Source)
	b.SetParseTime(w.parseTime)
	b.SetSourceFile(w.file)
	e := &entry{key: key, b: b, used: w.chunks}
	if w.in.opts.MaxDelay > 0 {
		e.born = time.Now()
	}
	w.builders[key] = e
	if c.last == nil || c.last.b == nil {
		c.last = e
	}
	return e
}

// maxFree is how many emptied builders a worker keeps per table.
const maxFree = 8

func hourOf(t time.Time) int64 {
	return t.Truncate(time.Hour).Unix() / 3600
}

// flush hands a builder's rows to the sink.
func (w *worker) flush(e *entry) {
	b := e.b
	delete(w.builders, e.key)
	e.b = nil
	if b.Rows() == 0 {
		return
	}
	size := b.Size()
	keeper, _ := w.in.sink.(Keeper)
	kept := keeper != nil && keeper.Keeps(DBLogs, e.key.table, int64(b.Rows()))
	rec := b.Build()
	w.buffered -= size
	if w.buffered < 0 {
		w.buffered = 0
	}
	err := w.in.sink.Write(w.in.ctx, DBLogs, e.key.table, rec)
	rec.Release()
	if err != nil {
		w.in.fail(fmt.Errorf("write %s.%s: %w", DBLogs, e.key.table, err))
		return
	}
	if kept {
		return // the record's buffers are the sink's now: the builder goes with them
	}
	// The sink is done with the record: its buffers go back to the arena, and the builder
	// serves the table's next hour.
	b.Recycle()
	if len(w.free[e.key.table]) < maxFree {
		w.free[e.key.table] = append(w.free[e.key.table], b)
	}
}

// oldestBorn returns when the oldest builder with rows got its first one.
func (w *worker) oldestBorn() (time.Time, bool) {
	var oldest time.Time
	for _, e := range w.builders {
		if e.b.Rows() > 0 && (oldest.IsZero() || e.born.Before(oldest)) {
			oldest = e.born
		}
	}
	return oldest, !oldest.IsZero()
}

// flushDelayed hands on the builders whose first row has waited Options.MaxDelay.
func (w *worker) flushDelayed() {
	limit := time.Now().Add(-w.in.opts.MaxDelay)
	for _, e := range w.builders {
		if e.b.Rows() > 0 && !e.born.After(limit) {
			w.flush(e)
		}
	}
}

// flushIdle hands on the builders that are idle or cold (see idleChunks), and with
// Options.MaxDelay those whose rows have waited for it.
func (w *worker) flushIdle() {
	if w.in.opts.MaxDelay > 0 {
		w.flushDelayed()
	}
	for _, e := range w.builders {
		idle := w.chunks-e.used >= idleChunks
		cold := e.b.Rows() >= coldRows && e.recent*coldShare < w.records
		if idle || cold {
			w.flush(e)
		} else {
			e.recent = 0
		}
	}
}

func (w *worker) flushLargest() {
	var largest *entry
	for _, e := range w.builders {
		if largest == nil || e.b.Size() > largest.b.Size() {
			largest = e
		}
	}
	if largest != nil {
		w.flush(largest)
	}
	w.buffered = 0
	for _, e := range w.builders {
		w.buffered += e.b.Size()
	}
}

func (w *worker) flushAll() {
	entries := make([]*entry, 0, len(w.builders))
	for _, e := range w.builders {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].key, entries[j].key
		if a.table != b.table {
			return a.table < b.table
		}
		if a.hour != b.hour {
			return a.hour < b.hour
		}
		return a.src.ID < b.src.ID
	})
	for _, e := range entries {
		w.flush(e)
	}
	for _, st := range w.srcs {
		w.flushFailures(st)
	}
}
