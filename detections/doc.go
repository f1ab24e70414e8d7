// Package detections reads detection specs: Panther's analysis YAML, with SQL where Panther
// uses Python. This package loads and checks the specs; running them, alerting and sending
// alerts are done elsewhere.
//
// # Files
//
// A detections directory holds *.yml and *.yaml files, found recursively (names starting with a
// dot are skipped). Each file holds one spec, a YAML mapping whose AnalysisType says what it is:
// rule, scheduled_query or scheduled_rule. Keys are spelled as in Panther and are
// case-sensitive; an unknown key is an error. [Load] reads a directory and reports every
// mistake it finds, each as an [*Error] "file:line: message".
//
// # Rules
//
// A rule (AnalysisType: rule) runs its Query over the events of its LogTypes. The query is an
// ordinary SELECT over panther_logs.<table>, where the table of a log type is its name in
// lowercase with dots as underscores (Panther.Audit is panther_logs.panther_audit; see
// [LogTypeTables]). The same text runs over the whole lake for hunting and backfill; when
// streaming, the table name is bound to the new batch of events only. Each row the query
// returns is a match. The optional output columns alert_title, alert_dedup, alert_severity and
// alert_context shape the alert.
//
//	AnalysisType: rule
//	RuleID: Panther.Detection.Deleted
//	DisplayName: Panther detection deleted
//	Enabled: true                  # default true
//	LogTypes: [Panther.Audit]      # required, at least one
//	Severity: Medium               # required: Info, Low, Medium, High or Critical (any case)
//	DedupPeriodMinutes: 60         # default 60, 1 to 1440
//	Threshold: 1                   # default 1, at least 1
//	Description: A detection was deleted from Panther.
//	Runbook: Ask the actor why the detection was deleted and restore it if needed.
//	Reference: https://docs.panther.com/panther-audit-logs
//	Tags: [Panther, Defense Evasion]
//	Reports:
//	  MITRE ATT&CK: ["TA0005:T1562"]
//	OutputIds: [security-slack]
//	Query: |
//	  SELECT *, 'Detection deleted by ' || actor.name AS alert_title, actor.id AS alert_dedup
//	  FROM panther_logs.panther_audit
//	  WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'SUCCEEDED'
//	Tests:
//	  - Name: A detection is deleted
//	    ExpectedResult: true
//	    Log:
//	      actionName: DELETE_DETECTION
//	      actionResult: SUCCEEDED
//	      actor: {id: "SSO_alice@example.com", name: alice@example.com, type: USER}
//	      actionParams: {input: {detections: [{id: AWS.Root.Activity}]}}
//	      timestamp: "2024-05-02 10:11:12.000"
//	  - Name: Listing databases is not a deletion
//	    ExpectedResult: false
//	    Log: {"actionName": "LIST_DATA_LAKE_DATABASES", "actionResult": "SUCCEEDED",
//	          "actor": {"id": "SSO_bob@example.com", "name": "bob@example.com", "type": "USER"}}
//
// RuleID, LogTypes, Severity and Query are required; RuleIDs are unique among rules and
// scheduled rules. A test gives an event (Log, a mapping; JSON objects are YAML too) and
// whether the rule must match it (ExpectedResult). Name, ExpectedResult and Log are
// required, and test names are unique within a rule.
//
// # Scheduled queries
//
// A scheduled query (AnalysisType: scheduled_query) runs on a cron expression or every
// RateMinutes (exactly one of the two), and may run for TimeoutMinutes (default 30, 1 to 1440).
// ResultTable, an Osprey key, keeps its results in panther_views.<ResultTable> (a lowercase
// name; two queries may not share one). QueryName is required and unique.
//
//	AnalysisType: scheduled_query
//	QueryName: Detections deleted per actor
//	Enabled: true
//	Description: Counts deleted detections by actor over the last day.
//	Schedule:
//	  CronExpression: "0 * * * *"    # or RateMinutes: 60
//	  TimeoutMinutes: 10
//	ResultTable: deleted_detections_by_actor
//	Tags: [Panther]
//	Query: |
//	  SELECT actor.name AS actor, count(*) AS deletions
//	  FROM panther_logs.panther_audit
//	  WHERE actionName = 'DELETE_DETECTION' AND p_occurs_since('1 day')
//	  GROUP BY actor.name
//
// # Scheduled rules
//
// A scheduled rule (AnalysisType: scheduled_rule) has the keys of a rule, but ScheduledQueries
// (the QueryName of each scheduled query it reads, which must exist) instead of LogTypes. Its
// Query reads the results of those queries; each row it returns is a match.
//
//	AnalysisType: scheduled_rule
//	RuleID: Panther.Detection.MassDeletion
//	ScheduledQueries: [Detections deleted per actor]
//	Severity: High
//	DedupPeriodMinutes: 1440
//	Query: |
//	  SELECT actor, deletions, actor || ' deleted ' || deletions || ' detections' AS alert_title,
//	         actor AS alert_dedup
//	  FROM panther_views.deleted_detections_by_actor
//	  WHERE deletions >= 5
//	Tests:
//	  - Name: Many deletions
//	    ExpectedResult: true
//	    Log: {"actor": "alice@example.com", "deletions": 12}
//
// Cron expressions are kept as text here; the scheduler checks them. What depends on more than
// the specs (known log types, queries that bind, cron expressions that parse) is checked by
// package detections/validate; rules' Tests are run by package detections/ruletest. [LoadFS]
// loads specs from a file system, such as the built-in pack of detections/builtin.
package detections
