package ingest

import (
	"fmt"
	"sort"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
)

// A worker keeps a builder per (source, table). A builder is handed on when it is full, and at
// the end of a chunk when it got no row for idleChunks chunks, or when it holds at least
// coldRows rows but got less than 1/coldShare of the chunk's records (a table that a stream
// mostly stopped feeding): rows that wait longer only cost memory.
const (
	idleChunks = 2
	coldRows   = 1024
	coldShare  = 20
)

// entry is a builder of a (source, table) with what the flush policy needs to know of it.
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
}

// entry returns the builder entry of the candidate's table, creating it.
func (w *worker) entry(c *candidate) *entry {
	key := bkey{w.cur.src, c.lt.Table.Table}
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

// added hands on the builder of e if the row of size bytes just added to it filled it, or the
// largest builder if the worker's builders hold more than Options.MaxBuffered.
func (w *worker) added(e *entry, size int) {
	w.buffered += size // an estimate; corrected when the batch is built
	b := e.b
	if n := b.Rows(); n >= w.in.opts.BatchRows || n%256 == 0 && b.Size() >= w.in.opts.BatchBytes {
		w.flush(e)
	} else if w.buffered > w.in.opts.MaxBuffered {
		w.flushLargest()
	}
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
	// serves the table's next batch.
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
		return a.src.ID < b.src.ID
	})
	for _, e := range entries {
		w.flush(e)
	}
	for _, st := range w.srcs {
		w.flushFailures(st)
	}
}
