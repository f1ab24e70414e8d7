package logtypes

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

func TestBuiltin(t *testing.T) {
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Panther.Audit", "Rapid7.AuditLog", "Linux.Auditd"} {
		lt, err := r.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !lt.Builtin {
			t.Errorf("%s is not marked built-in", name)
		}
		if _, err := lt.NewParser(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := r.Lookup("panther.audit"); err == nil || !strings.Contains(err.Error(), "did you mean Panther.Audit") {
		t.Errorf("lookup is case-sensitive, like Panther's, and suggests the name: %v", err)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "myapp.yml", "schema: Custom.MyApp\nfields:\n  - name: msg\n    type: string\n    required: true\n")
	write(t, dir, "nested/access.yaml", "schema: Custom.Access\nparser:\n  fastmatch:\n    match: ['%{ip} %{path}']\nfields:\n  - name: ip\n    type: string\n  - name: path\n    type: string\n")
	write(t, dir, "tests/myapp_tests.yml", "name: not a schema\nlogType: Custom.MyApp\ninput: x\n")
	write(t, dir, "README.md", "not yaml")
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	added, err := r.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 {
		t.Fatalf("added %d log types, want 2", len(added))
	}
	lt, err := r.Lookup("Custom.MyApp")
	if err != nil || lt.Builtin || lt.Table.Table != "custom_myapp" {
		t.Fatalf("Custom.MyApp: %+v, %v", lt, err)
	}
	acc, _ := r.Lookup("Custom.Access")
	if acc.ParserName() != "fastmatch" || acc.Check([]byte("1.2.3.4 /")) != nil {
		t.Errorf("Custom.Access: parser %s", acc.ParserName())
	}
	if lt.Check([]byte(`{"other":1}`)) == nil || lt.Check([]byte(`{"msg":"x"}`)) != nil || lt.Check([]byte(`msg`)) == nil {
		t.Error("the pre-check of a JSON type tests the object and its required keys")
	}
}

func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ok.yml", "schema: Custom.Ok\nfields:\n  - name: a\n    type: string\n")
	write(t, dir, "typo.yml", "schema: Custom.Typo\nfields:\n  - name: a\n    type: strin\n")
	write(t, dir, "builtin.yml", "schema: Panther.Audit\nfields:\n  - name: a\n    type: string\n")
	write(t, dir, "regex.yml", "schema: Custom.Regex\nparser:\n  regex:\n    match: ['(unclosed']\nfields:\n  - name: a\n    type: string\n")
	write(t, dir, "native.yml", "schema: Custom.Native\nparser:\n  native:\n    name: Syslog.RFC5424\nfields:\n  - name: priority\n    type: string\n")
	write(t, dir, "table.yml", "schema: Custom.ok\nfields:\n  - name: a\n    type: string\n")
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	added, err := r.LoadDir(dir)
	if len(added) != 1 || added[0].Name != "Custom.Ok" {
		t.Errorf("added %d log types, want only Custom.Ok", len(added))
	}
	for _, want := range []string{
		"typo.yml:3: field \"a\": unknown type \"strin\"",
		"builtin.yml:1: log type Panther.Audit is already a built-in log type",
		"regex.yml:3: parser: regex: error parsing regexp",
		"native.yml:1: schema Custom.Native: the syslog parser cannot fill column priority",
		"table.yml:1: log type Custom.ok has the same table as Custom.Ok (custom_ok)",
	} {
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, want)) {
			t.Errorf("error %v\ndoes not contain %q", err, want)
		}
	}
	var se *logschema.Error
	if !errors.As(err, &se) {
		t.Errorf("errors carry their file and line: %T", err)
	}
	if _, err := New().LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no schema files") {
		t.Errorf("empty dir: %v", err)
	}
}

// TestRenamed checks that a built-in type's old name selects the type of its new name.
func TestRenamed(t *testing.T) {
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for old, now := range Renamed {
		lt, err := reg.Lookup(old)
		if err != nil || lt.Name != now {
			t.Errorf("Lookup(%q): %v, %v; want %s", old, lt, err, now)
		}
		if slices.Contains(reg.Names(), old) {
			t.Errorf("%s is still a log type of its own", old)
		}
	}
}
