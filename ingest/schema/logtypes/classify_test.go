package logtypes_test

import (
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

// classifierOf builds a classifier over schemas written for the test, then the built-in
// syslog type.
func classifierOf(t *testing.T, schemas ...string) (*logtypes.Classifier, []*logtypes.LogType) {
	t.Helper()
	reg := logtypes.New()
	for i, text := range schemas {
		s, err := logschema.Parse([]byte(text), "s.yml")
		if err != nil {
			t.Fatalf("schema %d: %v", i, err)
		}
		if err := reg.Add(s, false); err != nil {
			t.Fatal(err)
		}
	}
	builtin, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var types []*logtypes.LogType
	for _, n := range reg.Names() {
		lt, _ := reg.Lookup(n)
		types = append(types, lt)
	}
	for _, n := range []string{"Syslog.RFC3164", "Apache.AccessCombined"} {
		lt, err := builtin.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, lt)
	}
	return logtypes.NewClassifier(types), types
}

func names(types []*logtypes.LogType, order []int) string {
	var out []string
	for _, i := range order {
		out = append(out, types[i].Name)
	}
	return strings.Join(out, " ")
}

// TestClassifierCandidates checks the candidates of JSON records: required fields, keys known
// without regard to case or as Panther's at_sign_ names, p_ fields left out, the share of keys a
// type must know, and the ranking.
func TestClassifierCandidates(t *testing.T) {
	cls, types := classifierOf(t,
		"schema: T.Audit\nfields:\n  - name: actor\n    required: true\n    type: string\n  - name: action\n    required: true\n    type: string\n  - name: '@timestamp'\n    type: timestamp\n    timeFormat: rfc3339\n  - name: ip\n    type: string\n",
		"schema: T.Loose\nfields:\n  - name: action\n    type: string\n  - name: ip\n    type: string\n  - name: user\n    type: string\n  - name: host\n    type: string\n",
		"schema: T.Wide\nfields:\n  - name: actor\n    required: true\n    type: string\n  - name: action\n    type: string\n  - name: ip\n    type: string\n  - name: extra\n    type: string\n",
	)
	for _, c := range []struct{ rec, want string }{
		// T.Audit knows every key and requires the most; T.Wide knows them all too.
		{`{"actor":"a","action":"x","ip":"192.0.2.1"}`, "T.Audit T.Wide"},
		// Keys count without regard to case; p_ fields do not count.
		{`{"ACTOR":"a","Action":"x","p_log_type":"T.Audit","p_row_id":"1","p_any_ip_addresses":[]}`, "T.Audit T.Wide"},
		// Panther's at_sign_timestamp is T.Audit's @timestamp: without it, T.Wide would know more.
		{`{"actor":"a","action":"x","at_sign_timestamp":"2026-11-20T06:00:01Z","extra":"y"}`, "T.Audit T.Wide"},
		// T.Wide knows one key more than T.Audit.
		{`{"actor":"a","action":"x","extra":"y"}`, "T.Wide T.Audit"},
		// Without T.Audit's required action.
		{`{"actor":"a","ip":"192.0.2.1"}`, "T.Wide"},
		// T.Loose requires nothing: three quarters of the keys and at least three.
		{`{"action":"x","ip":"192.0.2.1","user":"u","host":"h"}`, "T.Loose"},
		{`{"action":"x","ip":"192.0.2.1"}`, ""},
		{`{"action":"x","ip":"192.0.2.1","user":"u","other":1,"more":2}`, ""},
		// A type must know more than half of the keys.
		{`{"actor":"a","action":"x","k1":1,"k2":2}`, ""},
		{`{}`, ""},
	} {
		order := cls.Candidates([]byte(c.rec))
		got := names(types, order)
		// The text types follow the JSON candidates, syslog's last.
		want := strings.TrimSpace(c.want + " Apache.AccessCombined Syslog.RFC3164")
		if got != want {
			t.Errorf("%s: candidates %q, want %q", c.rec, got, want)
		}
	}
	// The nearest type of a record no type takes, and what it lacks.
	cls.Candidates([]byte(`{"actor":"a","ip":"192.0.2.1","at_sign_timestamp":"x"}`))
	if got := cls.NoneTakes(); !strings.Contains(got, "T.Audit: required field action is missing") {
		t.Errorf("NoneTakes: %q", got)
	}
}

// TestClassifierTextOrder checks that a text record is tried against the text types, the last
// winner first, syslog's after the others whichever won last.
func TestClassifierTextOrder(t *testing.T) {
	cls, types := classifierOf(t,
		"schema: T.Lines\nparser:\n  fastmatch:\n    match: ['x %{a}']\nfields:\n  - name: a\n    type: string\n",
		"schema: T.JSON\nfields:\n  - name: a\n    required: true\n    type: string\n",
	)
	rec := []byte("Nov 21 10:00:00 host x: y")
	if got := names(types, cls.Candidates(rec)); got != "T.Lines Apache.AccessCombined Syslog.RFC3164" {
		t.Errorf("candidates %q", got)
	}
	cls.Won(3) // Apache.AccessCombined
	if got := names(types, cls.Candidates(rec)); got != "Apache.AccessCombined T.Lines Syslog.RFC3164" {
		t.Errorf("after Apache won: candidates %q", got)
	}
	cls.Won(2) // Syslog.RFC3164: still last
	if got := names(types, cls.Candidates(rec)); got != "Apache.AccessCombined T.Lines Syslog.RFC3164" {
		t.Errorf("after syslog won: candidates %q", got)
	}
}
