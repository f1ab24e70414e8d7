package builtin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/builtin"
	"github.com/ospreyhq/osprey/detections/ruletest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// corpusDir holds panther-analysis' own unit tests of its Panther.Audit rules, with their
// expected results (the project's shared corpora, outside the repository).
var corpusDir = filepath.Join("..", "..", "..", "shared", "corpora", "panther_audit")

// corpusRules maps the panther-analysis rules to the pack's rules that do the same.
var corpusRules = map[string]string{
	"Panther.Detection.Deleted": "Osprey.PantherAudit.DetectionDeleted",
	"Panther.SAML.Modified":     "Osprey.PantherAudit.SAMLModified",
	"Panther.Sensitive.Role":    "Osprey.PantherAudit.SensitiveRoleCreated",
	"Panther.User.Modified":     "Osprey.PantherAudit.UserModified",
}

// TestPantherAnalysisCorpus runs panther-analysis' tests of its Panther.Audit rules against the
// pack's rules and checks each expected result.
//
// panther-analysis tests its rules on already normalized events, and some of its test events
// lack fields the Panther.Audit schema requires (timestamp, pantherVersion): the parser
// rejects them, so the test fills those two in (with fixed values) before running the case.
// No rule of the pack reads them.
func TestPantherAnalysisCorpus(t *testing.T) {
	path := filepath.Join(corpusDir, "panther-analysis-rule-tests.jsonl")
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		t.Skipf("corpus %s not found (the shared corpora are outside the repository)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pack, err := builtin.Load()
	if err != nil {
		t.Fatal(err)
	}
	set := &detections.Set{Rules: map[string]*detections.Rule{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	line, cases := 0, 0
	for sc.Scan() {
		line++
		var c struct {
			RuleID   string         `json:"rule_id"`
			Test     string         `json:"test"`
			Expected bool           `json:"expected"`
			Log      map[string]any `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		id, ok := corpusRules[c.RuleID]
		if !ok {
			t.Logf("%s:%d: no rule of the pack does what %s does: skipped", path, line, c.RuleID)
			continue
		}
		r := set.Rules[id]
		if r == nil {
			orig := pack.Rules[id]
			if orig == nil {
				t.Fatalf("the pack has no rule %s", id)
			}
			cp := *orig
			cp.Tests = nil
			r = &cp
			set.Rules[id] = r
		}
		if _, ok := c.Log["timestamp"]; !ok {
			c.Log["timestamp"] = "2022-04-28 15:30:22.42"
		}
		if _, ok := c.Log["pantherVersion"]; !ok {
			c.Log["pantherVersion"] = "0.0.0"
		}
		js, err := json.Marshal(c.Log)
		if err != nil {
			t.Fatal(err)
		}
		r.Tests = append(r.Tests, detections.RuleTest{Line: line, Name: c.Test, ExpectedResult: c.Expected, Log: c.Log, LogJSON: string(js)})
		cases++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases == 0 {
		t.Fatalf("%s: no case of the mapped rules", path)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	results, err := ruletest.Run(context.Background(), set, reg, ruletest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != cases {
		t.Fatalf("%d results, want %d", len(results), cases)
	}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s:%d: %s (panther-analysis) / %q: %s", path, r.Line, r.RuleID, r.Test, r.Reason())
		}
	}
	t.Logf("%d cases of panther-analysis run against the pack", cases)
}
