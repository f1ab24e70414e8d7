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
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
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
	// BatchRows and BatchBytes bound a record batch; defaults 122,880 rows and 32 MiB.
	BatchRows  int
	BatchBytes int
	// MaxBuffered bounds the bytes a worker holds in unfinished batches (of all tables and
	// sources); above it the largest batch is handed on early. Default 128 MiB.
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
		opts.BatchBytes = 32 << 20
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
			latest, earliest := time.UnixMicro(w.latest).UTC(), time.UnixMicro(w.earliest).UTC()
			if s.Latest.IsZero() || latest.After(s.Latest) {
				s.Latest = latest
			}
			if s.Earliest.IsZero() || earliest.Before(s.Earliest) {
				s.Earliest = earliest
			}
		}
	}
	sort.Strings(s.Errors)
	return s, in.err
}
