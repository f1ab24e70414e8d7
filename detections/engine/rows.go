package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
)

// matchWriter collects the matches of a batch for panther_rule_matches.
type matchWriter struct {
	table string
	recs  []arrow.RecordBatch
	n     int
	ms    []matchRow
}

type matchRow struct {
	rec    int
	row    int32
	rule   *rule
	a      alert.Assignment
	ctx    json.RawMessage
	serial int // order of addition, to keep it among matches of one row
}

func (w *matchWriter) add(m match, r *rule, a alert.Assignment) {
	w.ms = append(w.ms, matchRow{rec: m.rec, row: m.row, rule: r, a: a, ctx: m.context, serial: w.n})
	w.n++
}

// build returns the matched rows with the match columns.
func (w *matchWriter) build() arrow.RecordBatch {
	slices.SortFunc(w.ms, func(a, b matchRow) int {
		if a.rec != b.rec {
			return a.rec - b.rec
		}
		if a.row != b.row {
			return int(a.row - b.row)
		}
		return a.serial - b.serial
	})
	// The matched rows of each batch, then the batches' columns one after the other.
	var parts [][]arrow.Array
	for i := 0; i < len(w.ms); {
		j, rows := i, []int32(nil)
		for ; j < len(w.ms) && w.ms[j].rec == w.ms[i].rec; j++ {
			rows = append(rows, w.ms[j].row)
		}
		parts = append(parts, takeRows(w.recs[w.ms[i].rec], rows))
		i = j
	}
	cols := concatColumns(parts)
	rows := array.NewRecordBatch(w.recs[0].Schema(), cols, int64(len(w.ms)))
	for _, c := range cols {
		c.Release()
	}
	defer rows.Release()
	ms := make([]matches.Match, len(w.ms))
	for i, m := range w.ms {
		ms[i] = matches.Match{Rule: m.rule.info, Alert: m.a, Context: m.ctx}
	}
	return matches.Rows(rows, ms)
}

// takeRows returns the columns of rec at the given rows (ascending, repeats allowed): a slice
// of rec's arrays when the rows are one run, else a copy of those rows.
func takeRows(rec arrow.RecordBatch, rows []int32) []arrow.Array {
	cols := make([]arrow.Array, 0, rec.NumCols())
	first, last := int64(rows[0]), int64(rows[len(rows)-1])
	if last-first+1 == int64(len(rows)) {
		for _, c := range rec.Columns() {
			cols = append(cols, array.NewSlice(c, first, last+1))
		}
		return cols
	}
	for _, c := range rec.Columns() {
		out, err := takeColumn(c, rows)
		if err != nil {
			panic("BUG: taking rows of a batch's column: " + err.Error())
		}
		cols = append(cols, out)
	}
	return cols
}

// concatColumns joins the columns of several batches (of one schema).
func concatColumns(parts [][]arrow.Array) []arrow.Array {
	if len(parts) == 1 {
		return parts[0]
	}
	cols := make([]arrow.Array, len(parts[0]))
	for c := range parts[0] {
		arrs := make([]arrow.Array, len(parts))
		for i, p := range parts {
			arrs[i] = p[c]
		}
		out, err := array.Concatenate(arrs, memory.DefaultAllocator)
		if err != nil {
			panic("BUG: concatenating columns of one schema: " + err.Error())
		}
		cols[c] = out
	}
	for _, p := range parts {
		for _, a := range p {
			a.Release()
		}
	}
	return cols
}

// writeErrors writes every row of rec, with the rule and its error, to panther_rule_errors.
func (e *Engine) writeErrors(ctx context.Context, table string, rec arrow.RecordBatch, r *rule, ruleErr error) error {
	out := matches.ErrorRows(rec, r.info, ruleErr, time.Now())
	defer out.Release()
	if err := e.next.Write(ctx, DBRuleErrors, table, out); err != nil {
		return fmt.Errorf("write %s.%s: %w", DBRuleErrors, table, err)
	}
	return nil
}
