package engine

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// waiting holds the rows that wait for a table's rules, all of one schema: whole batches
// (retained, see Keeps) and the prefilter's candidates, copied as they come into one batch
// being built. A few candidates of each of hundreds of batches make one batch, bound to DuckDB
// as one row group instead of hundreds.
type waiting struct {
	schema *arrow.Schema
	recs   []arrow.RecordBatch
	cand   *array.RecordBuilder // nil when no candidate waits
	rows   int64                // rows waiting
	seen   int64                // rows they were picked from
	since  time.Time            // when the first came
}

// admit prepares w for rows of schema s: when rows of another schema wait, they are returned
// (to run first) and w starts afresh.
func (w *waiting) admit(s *arrow.Schema) []arrow.RecordBatch {
	var old []arrow.RecordBatch
	if w.schema != nil && !w.schema.Equal(s) {
		old = w.take()
	}
	if w.schema == nil {
		w.schema, w.since = s, time.Now()
	}
	return old
}

// add adds a batch the caller owns, picked from seen rows.
func (w *waiting) add(rec arrow.RecordBatch, seen int64) {
	w.recs = append(w.recs, rec)
	w.rows += rec.NumRows()
	w.seen += seen
}

// addRows copies rows of rec, picked from all of rec's rows, into the candidates; ok is false
// (nothing copied) when a column's type is not one appendValue copies.
func (w *waiting) addRows(rec arrow.RecordBatch, rows []int32) bool {
	if w.cand == nil {
		for _, f := range rec.Schema().Fields() {
			if !appendable(f.Type) {
				return false
			}
		}
		w.cand = array.NewRecordBuilder(memory.DefaultAllocator, rec.Schema())
	}
	for c, col := range rec.Columns() {
		b := w.cand.Field(c)
		b.Reserve(len(rows))
		appendRows(b, col, rows)
	}
	w.rows += int64(len(rows))
	w.seen += rec.NumRows()
	return true
}

func (w *waiting) empty() bool { return w.schema == nil }

// take returns the waiting rows as batches the caller owns, and empties w.
func (w *waiting) take() []arrow.RecordBatch {
	recs := w.recs
	if w.cand != nil {
		recs = append(recs, w.cand.NewRecordBatch())
		w.cand.Release()
	}
	*w = waiting{}
	return recs
}
