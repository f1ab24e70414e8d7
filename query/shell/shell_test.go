package shell

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

func TestSuggestions(t *testing.T) {
	catalog := []query.Column{
		{Schema: "panther_logs", Table: "panther_audit", Name: "actionName", Type: "VARCHAR"},
		{Schema: "panther_logs", Table: "panther_audit", Name: "actor", Type: "STRUCT(name VARCHAR)"},
		{Schema: "panther_logs", Table: "panther_audit", Name: "actor.name", Type: "VARCHAR"},
		{Schema: "panther_logs", Table: "linux_auditd", Name: "acct", Type: "VARCHAR"},
	}
	has := func(text, word, want string, yes bool) {
		t.Helper()
		found := false
		for _, s := range Suggestions(catalog, text, word) {
			if s.Text == want {
				found = true
			}
		}
		if found != yes {
			t.Errorf("Suggestions(%q, %q) has %s: %v, want %v", text, word, want, found, yes)
		}
	}
	has("SELECT actor.na", "actor.na", "actor.name", true)
	has("SELECT ac FROM panther_logs.panther_audit", "ac", "actionName", true)
	has("SELECT ac FROM panther_logs.panther_audit", "ac", "acct", false) // not a column of the table named
	has("SELECT * FROM panther_logs.pa", "panther_logs.pa", "panther_logs.panther_audit", true)
	has("SELECT * WHERE p_occurs_s", "p_occurs_s", "p_occurs_since", true)
	has("SELECT ip_in", "ip_in", "ip_in_cidr", true)
	has("sel", "sel", "SELECT", true)
	has(".sch", ".sch", ".schema", true)
}

// TestFeed runs a script of statements and dot commands without a terminal.
func TestFeed(t *testing.T) {
	dir := t.TempDir()
	l, err := lake.Open(filepath.Join(dir, "lake"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(context.Background(), l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out, errs bytes.Buffer
	sh := New(db, Options{Out: &out, Err: &errs})
	outFile := filepath.Join(dir, "out.csv")
	script := `.mode csv
SELECT 1 AS a,
  'x' AS b;
.timer off
.output ` + outFile + `
SELECT 2 AS a;
.output
.mode markdown
SELECT 3 AS c;
.mode line
SELECT 4 AS d, 5 AS e;
COPY (SELECT 1) TO 'x.csv';
.nope
`
	if err := sh.Feed(context.Background(), strings.NewReader(script)); err != nil {
		t.Fatal(err)
	}
	sh.Close()
	if want := "a,b\n1,x\n| c |\n|---|\n| 3 |\nd = 4\ne = 5\n"; out.String() != want {
		t.Errorf("output\n%q\nwant\n%q", out.String(), want)
	}
	if data, _ := os.ReadFile(outFile); string(data) != "a\n2\n" {
		t.Errorf(".output file: %q", data)
	}
	for _, want := range []string{"Error: only queries run here", "Error: unknown command .nope"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("errors %q do not contain %q", errs.String(), want)
		}
	}
}
