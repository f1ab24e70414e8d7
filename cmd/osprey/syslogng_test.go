package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSyslogNG runs a real shipper: syslog-ng tails an audit log file and posts it, with a
// shared secret header, to an HTTP source of osprey serve; the records end up as rows of
// panther_logs.linux_auditd. .ci/run installs syslog-ng (Debian's syslog-ng-core and
// syslog-ng-mod-http).
func TestSyslogNG(t *testing.T) {
	bin, err := exec.LookPath("syslog-ng")
	if err != nil {
		for _, p := range []string{"/usr/sbin/syslog-ng", "/sbin/syslog-ng"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("syslog-ng is not installed (apt-get install syslog-ng-core syslog-ng-mod-http; .ci/run does)")
	}
	work := t.TempDir()
	dir := filepath.Join(work, "lake")
	osprey(t, "--lake", dir, "source", "add", "auditd", "--log-type", "Linux.Auditd", "--stream", "lines",
		"--auth", "header", "--header", "x-sender-header", "--secret", "ng-s3cret")
	cfg := filepath.Join(work, "osprey.yml")
	os.WriteFile(cfg, []byte("flush:\n  age: 200ms\n"), 0o644)
	d := startServe(t, dir, "--config", cfg)
	defer d.cmd.Process.Kill()

	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "samples", "linux_auditd.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(sample), "\n")
	auditLog := filepath.Join(work, "audit.log")
	if err := os.WriteFile(auditLog, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "syslog-ng.conf")
	os.WriteFile(conf, fmt.Appendf(nil, `@version: 3.35
options { stats_freq(0); };
source s_audit { file("%s" flags(no-parse) follow-freq(0.1)); };
destination d_osprey {
  http(
    url("%s/http/auditd")
    method("POST")
    headers("x-sender-header: ng-s3cret")
    body("${MESSAGE}")
    batch-lines(10)
    batch-timeout(200)
  );
};
log { source(s_audit); destination(d_osprey); };
`, auditLog, d.url), 0o644)
	ng := exec.Command(bin, "-F", "-f", conf, "--no-caps",
		"-R", filepath.Join(work, "syslog-ng.persist"), "-p", filepath.Join(work, "syslog-ng.pid"),
		"-c", filepath.Join(work, "syslog-ng.ctl"))
	out := &strings.Builder{}
	ng.Stdout, ng.Stderr = out, out
	if err := ng.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ng.Process.Signal(syscall.SIGTERM)
		ng.Wait()
	}()

	// The events are counted when they reach the lake writer (flushes come later).
	want := fmt.Sprintf(`osprey_events_total{source="auditd",log_type="Linux.Auditd"} %d`, lines)
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !strings.Contains(metrics, want); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(d.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	if !strings.Contains(metrics, want) {
		t.Fatalf("syslog-ng did not deliver the %d lines; metrics:\n%s\nsyslog-ng:\n%s\nosprey:\n%s", lines, metrics, out, d.output())
	}
	if strings.Contains(metrics, `code="401"`) {
		t.Errorf("requests refused:\n%s", metrics)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
	// Records of one event (SYSCALL, EXECVE, PATH...) share its serial.
	events := map[string]bool{}
	for _, m := range regexp.MustCompile(`msg=audit\([0-9.]+:([0-9]+)\)`).FindAllStringSubmatch(string(sample), -1) {
		events[m[1]] = true
	}
	got := lakeQuery(t, dir, `SELECT count(*), count(DISTINCT eventId), min(p_source_id) FROM panther_logs.linux_auditd`)
	if len(got) != 1 || got[0] != fmt.Sprintf("%d %d auditd", lines, len(events)) {
		t.Errorf("rows %v, want %d records of %d events", got, lines, len(events))
	}
	got = lakeQuery(t, dir, `SELECT type, acct, addr, res FROM panther_logs.linux_auditd WHERE type = 'USER_LOGIN' ORDER BY eventId LIMIT 1`)
	if len(got) != 1 || got[0] != "USER_LOGIN root 203.0.113.45 failed" {
		t.Errorf("USER_LOGIN row %v", got)
	}
}
