package scheduled

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/scheduler"
)

// rowNumberColumn is the column query.BatchDB adds to a bound table.
const rowNumberColumn = "file_row_number"

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// run is the job of j: one run due at scheduled (see the package comment).
func (r *Runner) run(ctx context.Context, j *job, scheduled time.Time) (err error) {
	scheduled = scheduled.UTC()
	log := r.log.With("query", j.q.QueryName, "scheduled", scheduled)
	if t, n, err := r.committed(j); err != nil {
		return err
	} else if t.Equal(scheduled) {
		log.Info("run already committed: not run again")
		scheduler.SetRows(ctx, n)
		return nil
	}
	db, err := r.queryDB(ctx)
	if err != nil {
		return err
	}
	rows, err := db.Run(ctx, query.Request{SQL: j.q.Query, Now: scheduled})
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	_, recs, n, err := query.Records(rows.Rows)
	rows.Close()
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	scheduler.SetRows(ctx, n)
	results := stamp(recs, scheduled, true)
	release(recs)
	defer release(results)

	w, err := r.lake.NewWriter(lake.WriterOptions{Name: j.writer, Logger: r.log})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			w.Abort()
		}
	}()
	if j.q.ResultTable != "" {
		for _, rec := range results {
			if err := w.Write(ctx, lake.DBViews, j.q.ResultTable, rec); err != nil {
				return err
			}
		}
	}
	var (
		found  map[*rule][]arrow.RecordBatch
		failed map[*rule]error
	)
	if len(j.rules) > 0 && n > 0 {
		if found, failed, err = r.evaluate(ctx, j, results, scheduled); err != nil {
			return err
		}
		defer func() {
			for _, recs := range found {
				release(recs)
			}
		}()
	}
	var ruleErrs []error
	for _, ru := range j.rules {
		ferr, ok := failed[ru]
		if !ok {
			continue
		}
		log.Warn("scheduled rule failed: the results are kept in panther_rule_errors", "rule", ru.spec.RuleID, "err", ferr)
		ruleErrs = append(ruleErrs, fmt.Errorf("rule %s: %w", ru.spec.RuleID, ferr))
		for _, rec := range results {
			out := matches.ErrorRows(rec, ru.info, ferr, r.opts.Now())
			err := w.Write(ctx, lake.DBRuleErrors, j.table, out)
			out.Release()
			if err != nil {
				return err
			}
		}
	}
	raised, err := r.commit(ctx, j, w, found, scheduled, n)
	if err != nil {
		return err
	}
	closed = true
	if err := w.Close(); err != nil {
		return err
	}
	for _, a := range raised {
		if r.opts.Notify == nil {
			continue
		}
		if err := r.opts.Notify(a); err != nil {
			return fmt.Errorf("alert %s of rule %s: %w", a.AlertID, a.RuleID, err)
		}
		if err := r.alerts.Notified(a.AlertID); err != nil {
			return err
		}
	}
	return errors.Join(ruleErrs...)
}

// evaluate binds the results and runs each rule of j over them, returning each rule's rows
// (matches) or error.
func (r *Runner) evaluate(ctx context.Context, j *job, results []arrow.RecordBatch, scheduled time.Time) (map[*rule][]arrow.RecordBatch, map[*rule]error, error) {
	b, err := query.OpenBatchDB(ctx, query.BatchOptions{})
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	for _, name := range j.bound {
		if err := b.Bind(ctx, lake.DBViews, name, results...); err != nil {
			return nil, nil, err
		}
	}
	found := map[*rule][]arrow.RecordBatch{}
	failed := map[*rule]error{}
	for _, ru := range j.rules {
		rows, err := b.Query(ctx, ru.spec.Query, scheduled)
		if err == nil {
			var recs []arrow.RecordBatch
			_, recs, _, err = query.Records(rows)
			rows.Close()
			if err == nil {
				found[ru] = dropColumn(recs, rowNumberColumn)
				continue
			}
		}
		if ctx.Err() != nil {
			for _, recs := range found {
				release(recs)
			}
			return nil, nil, ctx.Err()
		}
		failed[ru] = err
	}
	return found, failed, nil
}

// commit counts the rules' matches into alerts, writes them, and flushes w with the run's
// metadata and the alert store's epoch of the query's lane (alert.Store.AddTo: a store shared
// with the streaming engine keeps the two apart). It returns the alerts raised, durable.
func (r *Runner) commit(ctx context.Context, j *job, w *lake.Writer, found map[*rule][]arrow.RecordBatch, scheduled time.Time, n int64) (raised []*alert.Alert, err error) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.mu.Lock()
	store := r.alerts
	r.mu.Unlock()
	meta := map[string]string{MetaScheduled: scheduled.Format(time.RFC3339Nano), MetaRows: strconv.FormatInt(n, 10)}
	epoch := store != nil && len(j.rules) > 0
	added := false
	defer func() {
		if err != nil && epoch && added {
			// Drop the matches counted: they are not in the lake.
			if m, perr := matches.PrepareAlertsLane(ctx, store, w, j.writer, j.writer); perr == nil {
				matches.AbortAlerts(store, m)
			}
		}
	}()
	for _, ru := range j.rules {
		for _, rec := range found[ru] {
			if rec.NumRows() == 0 {
				continue
			}
			if store == nil {
				return nil, errors.New("scheduled rules need an alert store")
			}
			ms, ctxs := alertMatches(rec, scheduled)
			as, up, err := store.AddTo(j.writer, ru.info, ms, false)
			added = true
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", ru.spec.RuleID, err)
			}
			raised = append(raised, up...)
			withTime := stamp([]arrow.RecordBatch{rec}, scheduled, false)
			rows := make([]matches.Match, len(as))
			for i, a := range as {
				rows[i] = matches.Match{Rule: ru.info, Alert: a, Context: ctxs[i]}
			}
			out := matches.Rows(withTime[0], rows)
			release(withTime)
			err = w.Write(ctx, lake.DBRuleMatches, j.table, out)
			out.Release()
			if err != nil {
				return nil, err
			}
		}
	}
	if epoch {
		m, err := matches.PrepareAlertsLane(ctx, store, w, j.writer, j.writer)
		if err != nil {
			return nil, err
		}
		added = false // prepared: settled below
		for k, v := range m {
			meta[k] = v
		}
		if err := w.FlushWith(ctx, meta); err != nil {
			return nil, errors.Join(err, matches.AbortAlerts(store, m))
		}
		if err := matches.CommitAlerts(store, m); err != nil {
			return nil, err
		}
	} else if err := w.FlushWith(ctx, meta); err != nil {
		return nil, err
	}
	if len(raised) > 0 {
		if err := store.Sync(); err != nil {
			return nil, err
		}
	}
	return raised, nil
}

// alertMatches returns the alert matches of a rule's rows, and each row's alert_context.
func alertMatches(rec arrow.RecordBatch, scheduled time.Time) ([]alert.Match, []json.RawMessage) {
	n := int(rec.NumRows())
	ms := make([]alert.Match, n)
	ctxs := make([]json.RawMessage, n)
	col := func(name string) (arrow.Array, arrow.Field) {
		for i, f := range rec.Schema().Fields() {
			if f.Name == name {
				return rec.Column(i), f
			}
		}
		return nil, arrow.Field{}
	}
	title, _ := col("alert_title")
	dedup, _ := col("alert_dedup")
	sev, _ := col("alert_severity")
	actx, actxField := col("alert_context")
	times, _ := col(lake.FieldEventTime)
	ts, _ := times.(*array.Timestamp)
	for i := range n {
		m := alert.Match{Title: text(title, i), Dedup: text(dedup, i), EventTime: scheduled}
		if len(m.Dedup) > 1000 {
			m.Dedup = m.Dedup[:1000]
		}
		if s, ok := detections.ParseSeverity(text(sev, i)); ok {
			m.Severity = string(s)
		}
		if ts != nil && ts.IsValid(i) {
			m.EventTime = ts.Value(i).ToTime(arrow.Microsecond).UTC()
		}
		if actx != nil && actx.IsValid(i) {
			if s, ok := actx.(*array.String); ok && lake.IsJSON(actxField) {
				ctxs[i] = json.RawMessage(s.Value(i))
			} else if b, err := json.Marshal(actx.GetOneForMarshal(i)); err == nil {
				ctxs[i] = b
			}
			m.Context = ctxs[i]
		}
		row := i
		m.Sample = func() json.RawMessage { return matches.RowJSON(rec, row) }
		ms[i] = m
	}
	return ms, ctxs
}

// text is a value of an alert column as text: a string as itself, anything else as JSON.
func text(c arrow.Array, i int) string {
	if c == nil || c.IsNull(i) {
		return ""
	}
	if s, ok := c.(*array.String); ok {
		return s.Value(i)
	}
	b, err := json.Marshal(c.GetOneForMarshal(i))
	if err != nil {
		return ""
	}
	return string(b)
}

// stamp returns recs with p_event_time and p_scheduled_time set to scheduled. Without
// replace, a p_event_time timestamp column without nulls, and a p_scheduled_time column, are
// kept as they are.
func stamp(recs []arrow.RecordBatch, scheduled time.Time, replace bool) []arrow.RecordBatch {
	out := make([]arrow.RecordBatch, 0, len(recs))
	for _, rec := range recs {
		var (
			fields []arrow.Field
			cols   []arrow.Array
			keep   = map[string]bool{}
		)
		for i, f := range rec.Schema().Fields() {
			c := rec.Column(i)
			switch f.Name {
			case lake.FieldEventTime:
				if _, ok := c.(*array.Timestamp); !ok || replace || c.NullN() > 0 {
					continue
				}
			case FieldScheduledTime:
				if replace {
					continue
				}
			}
			keep[f.Name] = true
			fields = append(fields, f)
			cols = append(cols, c)
		}
		var added []arrow.Array
		for _, name := range []string{FieldScheduledTime, lake.FieldEventTime} {
			if keep[name] {
				continue
			}
			b := array.NewTimestampBuilder(memory.DefaultAllocator, tsType)
			for range rec.NumRows() {
				b.AppendTime(scheduled)
			}
			a := b.NewArray()
			b.Release()
			added = append(added, a)
			fields = append(fields, arrow.Field{Name: name, Type: tsType})
			cols = append(cols, a)
		}
		out = append(out, array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()))
		release(added)
	}
	return out
}

// dropColumn returns recs without the column name (releasing recs).
func dropColumn(recs []arrow.RecordBatch, name string) []arrow.RecordBatch {
	out := make([]arrow.RecordBatch, 0, len(recs))
	for _, rec := range recs {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			out = append(out, rec)
			continue
		}
		var fields []arrow.Field
		var cols []arrow.Array
		for i, f := range rec.Schema().Fields() {
			if i != idx[0] {
				fields = append(fields, f)
				cols = append(cols, rec.Column(i))
			}
		}
		out = append(out, array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()))
		rec.Release()
	}
	return out
}

func release[T interface{ Release() }](xs []T) {
	for _, x := range xs {
		x.Release()
	}
}
