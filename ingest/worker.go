package ingest

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

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
	earliest, latest         int64 // event times, microseconds
	haveEvent                bool
	reasons                  []Refusal
	header                   []byte // the stream header the parsers were last given
	parseTime                time.Time
	file                     batch.SourceFile // p_source_file of the job being parsed
}

// srcState is what a worker keeps of a source: its candidates and its failures.
type srcState struct {
	src      *Source
	types    []*candidate         // in the order of the source's log types
	cls      *logtypes.Classifier // orders types for each record
	fails    *batch.Builder
	failCols failureColumns
	header   []byte // the header line its parsers were given
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
	st.cls = logtypes.NewClassifier(src.LogTypes)
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
