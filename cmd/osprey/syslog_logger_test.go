package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestServeSyslogLogger sends syslog messages with util-linux's logger, a real client, over
// UDP and TCP (newline and octet-counted framing), in RFC 5424 and RFC 3164, to a syslog
// source of osprey serve, and finds each message in its table.
func TestServeSyslogLogger(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("util-linux logger is not installed")
	}
	d, lakeDir, addrs := startSyslogServe(t, "udp://127.0.0.1:0, tcp://127.0.0.1:0", "Syslog.RFC5424, Syslog.RFC3164")
	defer d.cmd.Process.Kill()
	udp, tcp := port(t, addrs[0]), port(t, addrs[1])
	sends := []struct {
		args []string
		msg  string
	}{
		{[]string{"--udp", "--port", udp, "--rfc5424"}, "udp-5424 failed password for root"},
		{[]string{"--udp", "--port", udp, "--rfc3164"}, "udp-3164 session opened"},
		{[]string{"--tcp", "--port", tcp, "--rfc5424"}, "tcp-5424 accepted publickey"},
		{[]string{"--tcp", "--port", tcp, "--rfc3164"}, "tcp-3164 session closed"},
		{[]string{"--tcp", "--port", tcp, "--rfc5424", "--octet-count"}, "tcp-octet-5424 sudo invoked"},
	}
	for _, s := range sends {
		args := append([]string{"--server", "127.0.0.1", "--tag", "sshd"}, s.args...)
		if out, err := exec.Command(logger, append(args, s.msg)...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	// UDP is not acknowledged: wait until every message is in the lake (flushed each second)
	// before stopping.
	waitFor(t, "the five messages in /metrics", func() bool {
		_, text, err := get(d.url + "/metrics")
		return err == nil && sumMetric(text, `osprey_events_total{source="sys"`) >= 5
	})
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	got5424 := strings.Join(lakeQuery(t, lakeDir, `SELECT appname || ': ' || message FROM panther_logs.syslog_rfc5424 ORDER BY message`), "; ")
	got3164 := strings.Join(lakeQuery(t, lakeDir, `SELECT appname || ': ' || message FROM panther_logs.syslog_rfc3164 ORDER BY message`), "; ")
	if got5424 != "sshd: tcp-5424 accepted publickey; sshd: tcp-octet-5424 sudo invoked; sshd: udp-5424 failed password for root" {
		t.Errorf("Syslog.RFC5424 rows: %s", got5424)
	}
	if got3164 != "sshd: tcp-3164 session closed; sshd: udp-3164 session opened" {
		t.Errorf("Syslog.RFC3164 rows: %s", got3164)
	}
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// sumMetric adds the values of the Prometheus text lines that start with prefix.
func sumMetric(text, prefix string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// startSyslogServe runs osprey serve with one syslog source, sys, listening on listen (a YAML
// list's items, ports 0) for logTypes, its lake flushed every second; it returns the daemon,
// its lake and the addresses the source listens on, in listen's order.
func startSyslogServe(t *testing.T, listen, logTypes string) (*daemon, string, []string) {
	t.Helper()
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	cfg := fmt.Sprintf("lake: %s\nflush:\n  age: 1s\nsources:\n  - id: sys\n    type: syslog\n    listen: [%s]\n    logTypes: [%s]\n", lakeDir, listen, logTypes)
	cfgPath := filepath.Join(dir, "osprey.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startServeConfig(t, cfgPath)
	d.waitOutput(t, 1, "syslog source sys on")
	m := regexp.MustCompile(`syslog source sys on (.*)`).FindStringSubmatch(d.output())
	if m == nil {
		d.cmd.Process.Kill()
		t.Fatalf("no syslog address in:\n%s", d.output())
	}
	return d, lakeDir, strings.Fields(m[1])
}

// port returns the port of a syslog address such as tcp://127.0.0.1:514.
func port(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}
