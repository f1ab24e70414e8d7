package matches

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/lake"
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

// Match is what panther_rule_matches adds to a matched row: the rule, the alert the match was
// counted into, and the row's alert_context.
type Match struct {
	Rule    *alert.Rule
	Alert   alert.Assignment
	Context json.RawMessage // nil: none
}

// Rows returns rec's rows with the columns of panther_rule_matches added: row i matched as
// ms[i] says.
func Rows(rec arrow.RecordBatch, ms []Match) arrow.RecordBatch {
	if int64(len(ms)) != rec.NumRows() {
		panic("BUG: matches.Rows: one match per row needed")
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
	for _, m := range ms {
		alertID.Append(m.Alert.AlertID)
		created.AppendTime(m.Alert.Created)
		updated.AppendTime(m.Alert.Updated)
		if m.Context != nil {
			alertCtx.Append(string(m.Context))
		} else {
			alertCtx.AppendNull()
		}
		alertSev.Append(m.Alert.Severity)
		ruleID.Append(m.Rule.ID)
		ruleSev.Append(m.Rule.Severity)
		appendStrings(tags, m.Rule.Tags)
		appendReports(reports, m.Rule.Reports)
	}
	return withColumns(rec, matchFields, alertID, created, updated, alertCtx, alertSev, ruleID, ruleSev, tags, reports)
}

// ErrorRows returns rec's rows with the columns of panther_rule_errors added: rule failed on
// them with ruleErr at the time at.
func ErrorRows(rec arrow.RecordBatch, rule *alert.Rule, ruleErr error, at time.Time) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	ruleID := array.NewStringBuilder(mem)
	ruleSev := array.NewStringBuilder(mem)
	tags := array.NewListBuilder(mem, arrow.BinaryTypes.String)
	reports := array.NewStringBuilder(mem)
	msg := array.NewStringBuilder(mem)
	ts := array.NewTimestampBuilder(mem, tsType)
	for range rec.NumRows() {
		ruleID.Append(rule.ID)
		ruleSev.Append(rule.Severity)
		appendStrings(tags, rule.Tags)
		appendReports(reports, rule.Reports)
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
	schema := arrow.NewSchema(append(slices.Clone(rec.Schema().Fields()), fields...), nil)
	out := array.NewRecordBatch(schema, cols, rec.NumRows())
	for _, a := range added {
		a.Release()
	}
	return out
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

// RowJSON renders one row of a batch as a JSON object: JSON columns as their JSON, the rest as
// Arrow marshals them. Alerts carry it as their sample row.
func RowJSON(rec arrow.RecordBatch, row int) json.RawMessage {
	obj := make(map[string]any, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		c := rec.Column(i)
		if c.IsNull(row) {
			continue
		}
		if s, ok := c.(*array.String); ok && lake.IsJSON(f) && json.Valid([]byte(s.Value(row))) {
			obj[f.Name] = json.RawMessage(s.Value(row))
			continue
		}
		obj[f.Name] = c.GetOneForMarshal(row)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	return b
}

// AlertRule returns what the alert store keeps of a detection, and panther_rule_matches of
// its rule.
func AlertRule(d *detections.Detection, typ string, logTypes []string) *alert.Rule {
	return &alert.Rule{
		ID: d.RuleID, Type: typ, Name: d.DisplayName, Severity: string(d.Severity),
		DedupPeriod: time.Duration(d.DedupPeriodMinutes) * time.Minute, Threshold: int64(d.Threshold),
		LogTypes: logTypes, Description: d.Description, Runbook: d.Runbook, Reference: d.Reference,
		Tags: d.Tags, Reports: d.Reports, OutputIDs: d.OutputIds,
	}
}
