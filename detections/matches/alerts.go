package matches

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/lake"
)

// MetaEpoch is the commit metadata key of the alert store's epoch.
const MetaEpoch = "alerts.epoch"

// TableAlertHistory is the table of panther_monitor that receives a row for each change of an
// alert (the view panther_monitor.alerts shows the latest of each).
const TableAlertHistory = "alert_history"

// Writer is where the rows of a flush are written: the lake writer whose flush commits them.
type Writer interface {
	Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error
}

// PrepareAlerts is PrepareAlertsLane of the store's default lane, where the streaming engine
// counts (and osprey alerts resolve writes).
func PrepareAlerts(ctx context.Context, store *alert.Store, w Writer, writer string) (map[string]string, error) {
	return PrepareAlertsLane(ctx, store, w, "", writer)
}

// PrepareAlertsLane takes part in a flush of the lake writer named writer, when every other row
// of the flush has been written to w: it journals the epoch of the matches counted in a lane of
// the store (alert.Store.AddTo), writes a row of panther_monitor.alert_history to w for each
// alert that changed, and returns the metadata the flush must commit. CommitAlerts or
// AbortAlerts follows. Scheduled rules count in a lane per query, so that their epochs and the
// streaming engine's are committed with each one's own flushes.
func PrepareAlertsLane(ctx context.Context, store *alert.Store, w Writer, lane, writer string) (map[string]string, error) {
	epoch, changed, err := store.PrepareLane(lane, writer)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{MetaEpoch: strconv.FormatUint(epoch, 10)}
	if len(changed) > 0 {
		rec := historyRecord(changed)
		defer rec.Release()
		if err := w.Write(ctx, lake.DBMonitor, TableAlertHistory, rec); err != nil {
			store.Abort(epoch)
			return nil, fmt.Errorf("write %s.%s: %w", lake.DBMonitor, TableAlertHistory, err)
		}
	}
	return meta, nil
}

// CommitAlerts settles the epoch of a flush that committed meta.
func CommitAlerts(store *alert.Store, meta map[string]string) error {
	epoch, err := strconv.ParseUint(meta[MetaEpoch], 10, 64)
	if err != nil {
		return fmt.Errorf("commit metadata without %s", MetaEpoch)
	}
	return store.Commit(epoch)
}

// AbortAlerts settles the epoch of a flush that failed.
func AbortAlerts(store *alert.Store, meta map[string]string) error {
	epoch, err := strconv.ParseUint(meta[MetaEpoch], 10, 64)
	if err != nil {
		return nil
	}
	return store.Abort(epoch)
}

// CommittedEpoch reads the epoch a writer's last flush committed from the lake, for
// alert.Open.
func CommittedEpoch(l *lake.Lake) alert.CommittedEpoch {
	return func(writer string) (uint64, error) {
		if writer == "" {
			return 0, nil
		}
		meta, err := l.CommitMeta(writer)
		if err != nil || meta == nil {
			return 0, err
		}
		v, ok := meta[MetaEpoch]
		if !ok {
			return 0, nil
		}
		return strconv.ParseUint(v, 10, 64)
	}
}

// The columns of panther_monitor.alert_history: one row per change of an alert, partitioned by
// the time of the change (p_event_time).
var historySchema = arrow.NewSchema([]arrow.Field{
	{Name: "p_event_time", Type: tsType},
	{Name: "alert_id", Type: arrow.BinaryTypes.String},
	{Name: "type", Type: arrow.BinaryTypes.String},
	{Name: "rule_id", Type: arrow.BinaryTypes.String},
	{Name: "rule_name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "title", Type: arrow.BinaryTypes.String},
	{Name: "severity", Type: arrow.BinaryTypes.String},
	{Name: "dedup", Type: arrow.BinaryTypes.String},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "creation_time", Type: tsType},
	{Name: "update_time", Type: tsType},
	{Name: "event_count", Type: arrow.PrimitiveTypes.Int64},
	{Name: "first_event_time", Type: tsType, Nullable: true},
	{Name: "last_event_time", Type: tsType, Nullable: true},
	{Name: "resolved_time", Type: tsType, Nullable: true},
	{Name: "resolved_by", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "log_types", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "context", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: jsonMeta},
}, nil)

func historyRecord(alerts []alert.Alert) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, historySchema)
	defer b.Release()
	str := func(i int, s string) {
		sb := b.Field(i).(*array.StringBuilder)
		if s == "" && historySchema.Field(i).Nullable {
			sb.AppendNull()
		} else {
			sb.Append(s)
		}
	}
	for _, a := range alerts {
		b.Field(0).(*array.TimestampBuilder).AppendTime(a.UpdatedAt)
		str(1, a.AlertID)
		str(2, a.Type)
		str(3, a.RuleID)
		str(4, a.RuleName)
		str(5, a.Title)
		str(6, a.Severity)
		str(7, a.Dedup)
		str(8, a.Status)
		b.Field(9).(*array.TimestampBuilder).AppendTime(a.CreatedAt)
		b.Field(10).(*array.TimestampBuilder).AppendTime(a.UpdatedAt)
		b.Field(11).(*array.Int64Builder).Append(a.Events)
		appendTime(b.Field(12).(*array.TimestampBuilder), a.FirstEvent)
		appendTime(b.Field(13).(*array.TimestampBuilder), a.LastEvent)
		appendTime(b.Field(14).(*array.TimestampBuilder), a.ResolvedAt)
		str(15, a.ResolvedBy)
		appendStrings(b.Field(16).(*array.ListBuilder), a.LogTypes)
		appendStrings(b.Field(17).(*array.ListBuilder), a.Tags)
		str(18, string(a.Context))
	}
	return b.NewRecordBatch()
}

func appendTime(b *array.TimestampBuilder, t time.Time) {
	if t.IsZero() {
		b.AppendNull()
		return
	}
	b.AppendTime(t)
}
