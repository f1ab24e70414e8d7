package builtin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/detections/builtin"
	"github.com/ospreyhq/osprey/detections/ruletest"
	"github.com/ospreyhq/osprey/detections/validate"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// The pack loads, validates against the built-in log types, and passes its own tests; each
// rule has a test that matches and one that does not.
func TestPack(t *testing.T) {
	ctx := context.Background()
	set, err := builtin.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules) < 11 {
		t.Errorf("%d rules, want at least 11", len(set.Rules))
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	errs, err := validate.Set(ctx, set, validate.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	results, err := ruletest.Run(ctx, set, reg, ruletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][2]bool{}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s: %s: %s", r.RuleID, r.Test, r.Reason())
		}
		k := kinds[r.RuleID]
		if r.Expected {
			k[0] = true
		} else {
			k[1] = true
		}
		kinds[r.RuleID] = k
	}
	for id, r := range set.Rules {
		if kinds[id] != [2]bool{true, true} {
			t.Errorf("%s: want a test that matches and one that does not", id)
		}
		if r.Description == "" || r.Runbook == "" || r.Reference == "" || len(r.Tags) == 0 || len(r.Reports) == 0 {
			t.Errorf("%s: want Description, Runbook, Reference, Tags and Reports", id)
		}
	}
}

// LoadWith adds the pack to the specs of directories, and refuses a rule with a built-in id.
func TestLoadWith(t *testing.T) {
	pack, err := builtin.Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(id string) {
		spec := "AnalysisType: rule\nRuleID: " + id + "\nLogTypes: [Panther.Audit]\nSeverity: Low\nQuery: SELECT * FROM panther_logs.panther_audit\n"
		if err := os.WriteFile(filepath.Join(dir, "r.yml"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Mine.Rule")
	set, err := builtin.LoadWith([]string{dir}, true)
	if err != nil {
		t.Fatal(err)
	}
	if set.Rules["Mine.Rule"] == nil || len(set.Rules) != len(pack.Rules)+1 || len(set.ScheduledQueries) != len(pack.ScheduledQueries) {
		t.Errorf("%d rules, %d scheduled queries; want the pack's (%d, %d) and Mine.Rule", len(set.Rules), len(set.ScheduledQueries), len(pack.Rules), len(pack.ScheduledQueries))
	}
	if set, err := builtin.LoadWith([]string{dir}, false); err != nil || len(set.Rules) != 1 {
		t.Errorf("without the pack: %v, %v", set, err)
	}
	write("Osprey.PantherAudit.DetectionDeleted")
	if _, err := builtin.LoadWith([]string{dir}, true); err == nil || !strings.Contains(err.Error(), "rule Osprey.PantherAudit.DetectionDeleted is also a built-in rule") {
		t.Errorf("a rule with a built-in id: %v", err)
	}
}
