package ruletest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/ruletest"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

const rule = `AnalysisType: rule
RuleID: Test.Detection.Deleted
LogTypes: [Panther.Audit]
Severity: Medium
Query: |
  SELECT * FROM panther_logs.panther_audit
  WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'SUCCEEDED'
Tests:
  - Name: deleted
    ExpectedResult: true
    Log: {"actionName": "DELETE_DETECTION", "actionResult": "SUCCEEDED", "pantherVersion": "1.2.3",
          "actor": {"id": "a", "type": "USER"}, "timestamp": "2024-05-02 10:11:12.000"}
  - Name: listed, wrongly expected to match
    ExpectedResult: true
    Log: {"actionName": "LIST_DATA_LAKE_DATABASES", "actionResult": "SUCCEEDED", "pantherVersion": "1.2.3",
          "actor": {"id": "a", "type": "USER"}, "timestamp": "2024-05-02 10:11:12.000"}
  - Name: no timestamp
    ExpectedResult: false
    Log: {"actionName": "DELETE_DETECTION", "actionResult": "SUCCEEDED", "pantherVersion": "1.2.3",
          "actor": {"id": "a", "type": "USER"}}
`

const auditdRule = `AnalysisType: rule
RuleID: Test.Auditd.UserAdded
LogTypes: [Linux.Auditd]
Severity: Low
Query: SELECT * FROM panther_logs.linux_auditd WHERE type = 'ADD_USER'
Tests:
  - Name: useradd
    ExpectedResult: true
    Log: {"log": "type=ADD_USER msg=audit(1715000000.123:42): pid=7 uid=0 auid=1000 ses=1 msg='op=add-user id=1001 exe=\"/usr/sbin/useradd\" hostname=h addr=? terminal=pts/0 res=success'"}
  - Name: a login is not an account
    ExpectedResult: false
    Log: {"log": "type=USER_LOGIN msg=audit(1715000000.123:43): pid=7 uid=0 auid=1000 ses=1 msg='op=login acct=\"bob\" exe=\"/usr/sbin/sshd\" hostname=h addr=10.0.0.1 terminal=ssh res=success'"}
`

func load(t *testing.T, specs ...string) *detections.Set {
	t.Helper()
	dir := t.TempDir()
	for i, s := range specs {
		if err := os.WriteFile(filepath.Join(dir, "rule"+string(rune('a'+i))+".yml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := detections.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestRun(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set := load(t, rule, auditdRule)
	got, err := ruletest.Run(context.Background(), set, reg, ruletest.Options{Now: time.Date(2024, 5, 3, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		passed  bool
		matched bool
		reason  string // a part of the reason of a failure
	}
	want := map[string]outcome{
		"Test.Auditd.UserAdded/useradd":                            {passed: true, matched: true},
		"Test.Auditd.UserAdded/a login is not an account":          {passed: true},
		"Test.Detection.Deleted/deleted":                           {passed: true, matched: true},
		"Test.Detection.Deleted/listed, wrongly expected to match": {reason: "did not match"},
		"Test.Detection.Deleted/no timestamp":                      {reason: "does not parse as Panther.Audit"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		key := r.RuleID + "/" + r.Test
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected result %s", key)
			continue
		}
		if r.Passed() != w.passed || r.Matched != w.matched {
			t.Errorf("%s: passed %v matched %v (%s), want passed %v matched %v", key, r.Passed(), r.Matched, r.Reason(), w.passed, w.matched)
		}
		if !strings.Contains(r.Reason(), w.reason) || (w.reason == "") != (r.Reason() == "") {
			t.Errorf("%s: reason %q, want one with %q", key, r.Reason(), w.reason)
		}
	}
	// Results come in order of RuleID, then of the tests.
	if got[0].RuleID != "Test.Auditd.UserAdded" || got[2].Test != "deleted" {
		t.Errorf("results out of order: %+v", got)
	}
}

func TestRunOneRule(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set := load(t, rule, auditdRule)
	got, err := ruletest.Run(context.Background(), set, reg, ruletest.Options{RuleID: "Test.Auditd.UserAdded"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].RuleID != "Test.Auditd.UserAdded" || got[1].RuleID != "Test.Auditd.UserAdded" {
		t.Fatalf("results %+v, want the 2 tests of Test.Auditd.UserAdded", got)
	}
	if _, err := ruletest.Run(context.Background(), set, reg, ruletest.Options{RuleID: "Nope"}); !errors.Is(err, ruletest.ErrNoRule) {
		t.Fatalf("err = %v, want ErrNoRule", err)
	}
}

// A rule's query that fails (a column that does not exist) fails its tests with DuckDB's reason.
func TestRunQueryError(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(rule, "actionResult = 'SUCCEEDED'", "no_such_column = 1", 1)
	got, err := ruletest.Run(context.Background(), load(t, bad), reg, ruletest.Options{RuleID: "Test.Detection.Deleted"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Passed() || !strings.Contains(got[0].Reason(), "no_such_column") {
		t.Fatalf("result %+v (%s), want a failure naming no_such_column", got[0], got[0].Reason())
	}
}
