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
)

// The columns panther_rule_matches and panther_rule_errors add to the table's, as Panther
// names them. Reports are a JSON object (Panther's map<string, array<string>>; the lake has no
// map type).
var (
	tsType   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	jsonMeta = arrow.NewMetadata([]string{"ARROW:extension:name"}, []string{"arrow.json"})

	matchFields = []arrow.Field{
		{Name: "p_alert_id", Type: arrow.BinaryTypes.String},
		{Name: "p_alert_creation_time", Type: tsType, Nullable: true},
		{Name: "p_alert_update_time", Type: tsType, Nullable: true},
		{Name: "p_alert_context", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "p_alert_severity", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "p_rule_id", Type: arrow.BinaryTypes.String},
		{Name: "p_rule_severity", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "p_rule_tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "p_rule_reports", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
	}
	errorFields = []arrow.Field{
		{Name: "p_rule_id", Type: arrow.BinaryTypes.String},
		{Name: "p_rule_severity", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "p_rule_tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "p_rule_reports", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
		{Name: "p_rule_error", Type: arrow.BinaryTypes.String},
		{Name: "p_rule_error_time", Type: tsType},
	}
)

// withFields returns the schema of s followed by extra.
func withFields(s *arrow.Schema, extra []arrow.Field) *arrow.Schema {
	fields := append(slices.Clone(s.Fields()), extra...)
	return arrow.NewSchema(fields, nil)
}

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
	mem := memory.DefaultAllocator
	alertID := array.NewStringBuilder(mem)
	created := array.NewTimestampBuilder(mem, tsType)
	updated := array.NewTimestampBuilder(mem, tsType)
	context := array.NewStringBuilder(mem)
	alertSev := array.NewStringBuilder(mem)
	ruleID := array.NewStringBuilder(mem)
	ruleSev := array.NewStringBuilder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	reports := array.NewStringBuilder(mem)
	for _, m := range w.ms {
		alertID.Append(m.a.AlertID)
		created.AppendTime(m.a.Created)
		updated.AppendTime(m.a.Updated)
		if m.ctx != nil {
			context.Append(string(m.ctx))
		} else {
			context.AppendNull()
		}
		alertSev.Append(m.a.Severity)
		ruleID.Append(m.rule.info.ID)
		ruleSev.Append(m.rule.info.Severity)
		appendStrings(tags, m.rule.info.Tags)
		appendReports(reports, m.rule.info.Reports)
	}
	for _, b := range []array.Builder{alertID, created, updated, context, alertSev, ruleID, ruleSev, tags, reports} {
		cols = append(cols, b.NewArray())
		b.Release()
	}
	rec := array.NewRecordBatch(withFields(w.recs[0].Schema(), matchFields), cols, int64(len(w.ms)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func appendStrings(b *array.ListBuilder, list []string) {
	b.Append(true)
	vb := b.ValueBuilder().(*array.StringBuilder)
	for _, s := range list {
		vb.Append(s)
	}
}

func appendReports(b *array.StringBuilder, reports map[string][]string) {
	if len(reports) == 0 {
		b.AppendNull()
		return
	}
	data, err := json.Marshal(reports)
	if err != nil {
		b.AppendNull()
		return
	}
	b.Append(string(data))
}

// takeRows returns the columns of rec at the given rows (ascending, repeats allowed): a slice
// of rec's arrays when the rows are one run, else a copy of those rows.
func takeRows(rec arrow.RecordBatch, rows []int32) []arrow.Array {
	cols := make([]arrow.Array, 0, int(rec.NumCols())+len(matchFields))
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
	cols := make([]arrow.Array, len(parts[0]), len(parts[0])+len(matchFields))
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
	n := int(rec.NumRows())
	mem := memory.DefaultAllocator
	ruleID := array.NewStringBuilder(mem)
	ruleSev := array.NewStringBuilder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	reports := array.NewStringBuilder(mem)
	msg := array.NewStringBuilder(mem)
	at := array.NewTimestampBuilder(mem, tsType)
	now := time.Now()
	for range n {
		ruleID.Append(r.info.ID)
		ruleSev.Append(r.info.Severity)
		appendStrings(tags, r.info.Tags)
		appendReports(reports, r.info.Reports)
		msg.Append(ruleErr.Error())
		at.AppendTime(now)
	}
	cols := slices.Clone(rec.Columns())
	var added []arrow.Array
	for _, b := range []array.Builder{ruleID, ruleSev, tags, reports, msg, at} {
		a := b.NewArray()
		b.Release()
		added = append(added, a)
		cols = append(cols, a)
	}
	out := array.NewRecordBatch(withFields(rec.Schema(), errorFields), cols, rec.NumRows())
	defer out.Release()
	for _, a := range added {
		a.Release()
	}
	if err := e.next.Write(ctx, DBRuleErrors, table, out); err != nil {
		return fmt.Errorf("write %s.%s: %w", DBRuleErrors, table, err)
	}
	return nil
}

// MatchRecord returns rec's rows with the columns of panther_rule_matches added, for callers
// that count matches without an Engine (scheduled rules): row i matched rule info and was
// assigned as[i], with alert context contexts[i] (nil: none). contexts may be nil.
func MatchRecord(rec arrow.RecordBatch, info *alert.Rule, as []alert.Assignment, contexts []json.RawMessage) arrow.RecordBatch {
	if int64(len(as)) != rec.NumRows() {
		panic("BUG: MatchRecord: one assignment per row needed")
	}
	mem := memory.DefaultAllocator
	alertID := array.NewStringBuilder(mem)
	created := array.NewTimestampBuilder(mem, tsType)
	updated := array.NewTimestampBuilder(mem, tsType)
	alertCtx := array.NewStringBuilder(mem)
	alertSev := array.NewStringBuilder(mem)
	ruleID := array.NewStringBuilder(mem)
	ruleSev := array.NewStringBuilder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	reports := array.NewStringBuilder(mem)
	for i, a := range as {
		alertID.Append(a.AlertID)
		created.AppendTime(a.Created)
		updated.AppendTime(a.Updated)
		if i < len(contexts) && contexts[i] != nil {
			alertCtx.Append(string(contexts[i]))
		} else {
			alertCtx.AppendNull()
		}
		alertSev.Append(a.Severity)
		ruleID.Append(info.ID)
		ruleSev.Append(info.Severity)
		appendStrings(tags, info.Tags)
		appendReports(reports, info.Reports)
	}
	return withColumns(rec, matchFields, alertID, created, updated, alertCtx, alertSev, ruleID, ruleSev, tags, reports)
}

// ErrorRecord returns rec's rows with the columns of panther_rule_errors added: rule info
// failed on them with ruleErr at the time at.
func ErrorRecord(rec arrow.RecordBatch, info *alert.Rule, ruleErr error, at time.Time) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	ruleID := array.NewStringBuilder(mem)
	ruleSev := array.NewStringBuilder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	reports := array.NewStringBuilder(mem)
	msg := array.NewStringBuilder(mem)
	ts := array.NewTimestampBuilder(mem, tsType)
	for range rec.NumRows() {
		ruleID.Append(info.ID)
		ruleSev.Append(info.Severity)
		appendStrings(tags, info.Tags)
		appendReports(reports, info.Reports)
		msg.Append(ruleErr.Error())
		ts.AppendTime(at)
	}
	return withColumns(rec, errorFields, ruleID, ruleSev, tags, reports, msg, ts)
}

// withColumns returns rec with the columns of builders (releasing them) added as fields.
func withColumns(rec arrow.RecordBatch, fields []arrow.Field, builders ...array.Builder) arrow.RecordBatch {
	cols := slices.Clone(rec.Columns())
	var added []arrow.Array
	for _, b := range builders {
		a := b.NewArray()
		b.Release()
		added = append(added, a)
		cols = append(cols, a)
	}
	out := array.NewRecordBatch(withFields(rec.Schema(), fields), cols, rec.NumRows())
	for _, a := range added {
		a.Release()
	}
	return out
}
