package detections

import (
	"fmt"
	"strings"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// Analysis types a spec file may declare in AnalysisType.
const (
	TypeRule           = "rule"
	TypeScheduledQuery = "scheduled_query"
	TypeScheduledRule  = "scheduled_rule"
)

// Defaults and limits of the numeric keys.
const (
	DefaultDedupPeriodMinutes = 60
	MaxDedupPeriodMinutes     = 1440
	DefaultThreshold          = 1
	DefaultTimeoutMinutes     = 30
	MaxTimeoutMinutes         = 1440
)

// Severity is the severity of a rule's alerts, spelled as Panther spells it.
type Severity string

// The severities, lowest first.
const (
	SeverityInfo     Severity = "Info"
	SeverityLow      Severity = "Low"
	SeverityMedium   Severity = "Medium"
	SeverityHigh     Severity = "High"
	SeverityCritical Severity = "Critical"
)

// Severities lists the severities, lowest first.
var Severities = []Severity{SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// ParseSeverity returns the severity named by s, ignoring case ("HIGH" is High).
func ParseSeverity(s string) (Severity, bool) {
	for _, sev := range Severities {
		if strings.EqualFold(s, string(sev)) {
			return sev, true
		}
	}
	return "", false
}

// Detection holds the keys that rules and scheduled rules share.
type Detection struct {
	File string // the spec file
	Line int    // the line of RuleID

	RuleID             string
	DisplayName        string
	Enabled            bool // true unless the spec says Enabled: false
	Severity           Severity
	DedupPeriodMinutes int // 1..1440, default 60
	Threshold          int // >= 1, default 1
	Description        string
	Runbook            string
	Reference          string
	Tags               []string
	Reports            map[string][]string
	OutputIds          []string
	// Query is the SQL text of the detection. A rule's query reads panther_logs.<table> for its
	// log types; a scheduled rule's query reads the results of its scheduled queries.
	Query     string
	QueryLine int // the line of the Query key
	Tests     []RuleTest
}

// Rule is a streaming rule (AnalysisType: rule): its query runs over each new batch of events
// of its log types.
type Rule struct {
	Detection
	LogTypes     []string // Panther log type names, e.g. AWS.CloudTrail
	LogTypeLines []int    // the line of each name in LogTypes
}

// ScheduledRule is a rule over the results of scheduled queries (AnalysisType: scheduled_rule).
type ScheduledRule struct {
	Detection
	ScheduledQueries []string // QueryName of each scheduled query the rule reads

	queryLines []int // the line of each name in ScheduledQueries
}

// RuleTest is a unit test of a rule: whether the rule matches one event.
type RuleTest struct {
	Line           int // the line where the test starts
	Name           string
	ExpectedResult bool
	Log            map[string]any // the event, as decoded from the spec
	LogJSON        string         // the event as JSON text (json.Marshal of Log)
}

// ScheduledQuery is a query run on a schedule (AnalysisType: scheduled_query).
type ScheduledQuery struct {
	File string // the spec file
	Line int    // the line of QueryName

	QueryName   string
	Enabled     bool // true unless the spec says Enabled: false
	Description string
	Query       string
	QueryLine   int // the line of the Query key
	Schedule    Schedule
	Tags        []string
	// ResultTable, an Osprey extension, names the table of panther_views that receives the
	// query's results (panther_views.<ResultTable>); empty when the results are not kept.
	ResultTable string
}

// Schedule says when a scheduled query runs: on a cron expression or every RateMinutes.
// Exactly one of CronExpression and RateMinutes is set.
type Schedule struct {
	Line           int    // the line of the Schedule key's value
	CronExpression string // not checked here: the scheduler parses it
	RateMinutes    int    // >= 1 when set
	TimeoutMinutes int    // 1..1440, default 30
}

// Set is the specs loaded from a directory, by RuleID (rules and scheduled rules share one
// namespace) and QueryName.
type Set struct {
	Rules            map[string]*Rule
	ScheduledQueries map[string]*ScheduledQuery
	ScheduledRules   map[string]*ScheduledRule
}

// LogTypeTables returns the lake tables (in panther_logs) of the rule's log types, in the
// order of LogTypes and without repeats.
func LogTypeTables(r *Rule) []string {
	tables := make([]string, 0, len(r.LogTypes))
	seen := make(map[string]bool, len(r.LogTypes))
	for _, lt := range r.LogTypes {
		t := TableName(lt)
		if !seen[t] {
			seen[t] = true
			tables = append(tables, t)
		}
	}
	return tables
}

// TableName returns the lake table of a log type, as ingest names it (logschema.TableName):
// Panther.Audit -> panther_audit.
func TableName(logType string) string { return logschema.TableName(logType) }

// Error is a mistake found in a spec, with where it was found.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}
