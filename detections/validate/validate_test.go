package validate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/validate"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// specs are files of a detections directory, each with the mistakes validate must find in it
// as "line: part of the message" (none for a good file).
var specs = []struct {
	name, text string
	want       []string
}{
	{"good.yml", `AnalysisType: rule
RuleID: Good
LogTypes: [Panther.Audit]
Severity: Low
Query: |
  WITH d AS (SELECT * FROM panther_logs.panther_audit WHERE p_occurs_since('1 day'))
  SELECT *, actor.name AS alert_title FROM d WHERE actionName = 'DELETE_DETECTION'
`, nil},
	{"unknown_type.yml", `AnalysisType: rule
RuleID: UnknownType
LogTypes:
  - Panther.Audit
  - Custom.Nope
Severity: Low
Query: SELECT * FROM panther_logs.custom_nope
`, []string{`5: LogTypes: unknown log type "Custom.Nope"`}},
	{"no_column.yml", `AnalysisType: rule
RuleID: NoColumn
LogTypes: [Panther.Audit]
Severity: Low
Description: |
  Two lines
  of description.
Query: SELECT * FROM panther_logs.panther_audit WHERE actionNam = 'X'
`, []string{`8: Query: Binder Error: Referenced column "actionNam" not found`}},
	{"other_table.yml", `AnalysisType: rule
RuleID: OtherTable
LogTypes: [Panther.Audit]
Severity: Low
Query: |
  SELECT a.* FROM panther_logs.panther_audit a JOIN panther_logs.okta_systemlog o ON a.actor.id = o.uuid
`, []string{"5: Query reads panther_logs.okta_systemlog, which is not the table of its LogTypes (panther_logs.panther_audit)"}},
	{"no_row_id.yml", `AnalysisType: rule
RuleID: NoRowID
LogTypes: [Panther.Audit]
Severity: Low
Query: SELECT actionName FROM panther_logs.panther_audit
`, []string{"5: Query: the result has no p_row_id column"}},
	{"json_arrow.yml", `AnalysisType: rule
RuleID: JSONArrow
LogTypes: [Panther.Audit]
Severity: Low
Query: |
  SELECT * FROM panther_logs.panther_audit
  WHERE actionName = 'CREATE_USER' AND actor.attributes->>'email' LIKE '%@evil.example'
`, []string{"5: Query: ->> binds more loosely than AND, OR and comparisons: here it applies to a condition " +
		"(`a AND col->>'key' = 'v'` reads as `(a AND col)->>'key' = 'v'`); put the extraction in parentheses: (col->>'key'), " +
		"in: WHERE actionName = 'CREATE_USER' AND actor.attributes->>'email' LIKE '%@evil.example'"}},
	{"json_arrow_is_null.yml", `AnalysisType: rule
RuleID: JSONArrowIsNull
LogTypes: [Panther.Audit]
Severity: Low
Query: SELECT * FROM panther_logs.panther_audit WHERE actionDetails->'k' IS NOT NULL
`, []string{"5: Query: -> binds more loosely than AND, OR and comparisons"}},
	{"json_arrow_ok.yml", `AnalysisType: rule
RuleID: JSONArrowOK
LogTypes: [Panther.Audit]
Severity: Low
Query: |
  SELECT * FROM panther_logs.panther_audit
  WHERE actionName = 'CREATE_USER' AND (actor.attributes->>'email') LIKE '%@evil.example' AND (actionDetails->'k') IS NOT NULL
    AND len(list_filter(p_any_ip_addresses, ip -> ip LIKE '10.%')) = 0
`, nil},
	{"bad_cron.yml", `AnalysisType: scheduled_query
QueryName: Bad cron
Schedule:
  CronExpression: "61 * * * *"
Query: SELECT 1
`, []string{`4: Schedule: CronExpression: `}},
	{"missing_table.yml", `AnalysisType: scheduled_query
QueryName: Missing table
Schedule: {RateMinutes: 60}
Query: SELECT count(*) FROM panther_logs.nope
`, []string{"4: Query: Catalog Error"}},
}

func TestSet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, s := range specs {
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(s.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := detections.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(ctx, l, query.Options{Threads: 1, MemoryLimit: "256MB"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errs, err := validate.Set(ctx, set, validate.Options{Registry: reg, Lake: db})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, e := range errs {
		got[filepath.Base(e.File)] = append(got[filepath.Base(e.File)], e.Error())
	}
	for _, s := range specs {
		g := got[s.name]
		if len(g) != len(s.want) {
			t.Errorf("%s: errors %q, want %d like %q", s.name, g, len(s.want), s.want)
			continue
		}
		for i, w := range s.want {
			if want := filepath.Join(dir, s.name) + ":" + w; !strings.HasPrefix(g[i], want) {
				t.Errorf("%s: error %q, want it to start with %q", s.name, g[i], want)
			}
		}
	}
}

// Without a lake, scheduled queries' SQL is not checked, but their schedules are.
func TestSetWithoutLake(t *testing.T) {
	dir := t.TempDir()
	for _, s := range specs {
		if strings.HasPrefix(s.name, "bad_cron") || strings.HasPrefix(s.name, "missing_table") {
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(s.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	set, err := detections.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	errs, err := validate.Set(context.Background(), set, validate.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad_cron.yml:4:") {
		t.Fatalf("errors %v, want only the bad cron expression", errs)
	}
}
