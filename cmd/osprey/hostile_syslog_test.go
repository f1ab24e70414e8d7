package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxSyslogAttackRSS bounds serve's peak RSS (VmHWM) while one connection sends a line of
// 1 GiB. With the line bounded while it is read, the attack adds one read buffer and one
// message (80 KiB) to what serve holds anyway: the peak measured 71 MiB, 135 MiB under the race
// detector (whose shadow memory counts too). The old reader grew a buffer to the whole line, 1 GiB
// and more: the bound leaves room for the process, none for that.
const maxSyslogAttackRSS = 512 << 20

// syslogAttackBytes is the length of the line without a newline that the attack sends.
const syslogAttackBytes = 1 << 30

// TestServeHostileSyslogLine sends serve's syslog TCP source an unending line (1 GiB, no
// newline, the connection left open) while another connection sends ordinary messages: serve
// stays healthy, its peak RSS stays under maxSyslogAttackRSS, the other messages are flushed to
// the lake, and once the attacker hangs up the line's head is kept (cut to the message limit),
// logged and counted in /metrics.
func TestServeHostileSyslogLine(t *testing.T) {
	d, lakeDir, addrs := startSyslogServe(t, "tcp://127.0.0.1:0", "Syslog.RFC3164")
	defer d.cmd.Process.Kill()
	addr := strings.TrimPrefix(addrs[0], "tcp://")

	attack, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer attack.Close()
	// A bound on a failing test (serve stopped reading), not a timing.
	attack.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	attacked := make(chan error, 1)
	const head = "<13>Nov 22 10:00:00 attacker app: "
	sent := int64(len(head) + (syslogAttackBytes-len(head))/(1<<20)<<20)
	go func() {
		if _, err := attack.Write([]byte(head)); err != nil {
			attacked <- err
			return
		}
		chunk := bytes.Repeat([]byte("A"), 1<<20)
		for range (syslogAttackBytes - len(head)) / len(chunk) {
			if _, err := attack.Write(chunk); err != nil {
				attacked <- fmt.Errorf("after the head: %w", err)
				return
			}
		}
		attacked <- nil
	}()

	// Meanwhile another sender's messages go in.
	const n = 100
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		fmt.Fprintf(c, "<13>Nov 22 10:00:01 host app: during %d\n", i)
	}
	c.Close()
	if err := <-attacked; err != nil {
		t.Fatalf("sending the line: %v", err)
	}
	if code, body, err := get(d.url + "/healthz"); err != nil || code != 200 {
		t.Fatalf("healthz after the attack: %d %s %v", code, body, err)
	}
	// And after it: the attack connection is still open, its line unended.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		fmt.Fprintf(c, "<13>Nov 22 10:00:02 host app: after %d\n", i)
	}
	c.Close()
	// Syslog has no acknowledgement: the messages count once flushed to the lake.
	waitFor(t, "the messages flushed", func() bool {
		_, text, err := get(d.url + "/metrics")
		return err == nil && sumMetric(text, `osprey_events_total{source="sys"`) >= 2*n
	})
	// /metrics shows the attack's connection open, and the messages received.
	_, text, err := get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := sumMetric(text, `osprey_syslog_connections{source="sys"`); got != 1 {
		t.Errorf("osprey_syslog_connections = %v, want 1 (the attack's)", got)
	}
	if got := sumMetric(text, `osprey_syslog_messages_total{source="sys"`); got < 2*n {
		t.Errorf("osprey_syslog_messages_total = %v, want at least %d", got, 2*n)
	}
	hwm := vmHWM(t, d.cmd.Process.Pid)
	t.Logf("serve's peak RSS: %d MiB (bound %d MiB)", hwm>>20, maxSyslogAttackRSS>>20)
	if hwm > maxSyslogAttackRSS {
		t.Errorf("serve's peak RSS is %d MiB, over %d MiB", hwm>>20, maxSyslogAttackRSS>>20)
	}
	if code, body, err := get(d.url + "/healthz"); err != nil || code != 200 {
		t.Fatalf("healthz: %d %s %v", code, body, err)
	}
	// The attacker hangs up: its line ends, kept cut, and /metrics counts the cut and the
	// bytes dropped past the limit.
	attack.Close()
	waitFor(t, "the cut counted", func() bool {
		_, text, err := get(d.url + "/metrics")
		return err == nil && sumMetric(text, `osprey_syslog_messages_cut_total{source="sys"`) == 1
	})
	_, text, err = get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sumMetric(text, `osprey_syslog_dropped_bytes_total{source="sys"`), float64(sent-64<<10); got != want {
		t.Errorf("osprey_syslog_dropped_bytes_total = %v, want %v (all the line's bytes but the 64 KiB kept)", got, want)
	}
	if got := sumMetric(text, `osprey_syslog_connections{source="sys"`); got != 0 {
		t.Errorf("osprey_syslog_connections = %v after the attacker hung up, want 0", got)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}

	if got := lakeQuery(t, lakeDir, `SELECT count(*) FROM panther_logs.syslog_rfc3164 WHERE hostname = 'host'`); len(got) != 1 || got[0] != strconv.Itoa(2*n) {
		t.Errorf("messages of the other connections in the lake: %v, want %d", got, 2*n)
	}
	// The attack line's head is kept, cut to the limit, and the cut logged.
	got := lakeQuery(t, lakeDir, `SELECT count(*), max(length(message)) FROM panther_logs.syslog_rfc3164 WHERE hostname = 'attacker'`)
	if want := fmt.Sprintf("1 %d", 64<<10-len(head)); len(got) != 1 || got[0] != want {
		t.Errorf("the attack line in the lake (count, length of its message): %v, want %s", got, want)
	}
	if out := d.output(); !strings.Contains(out, "syslog message over the size limit") {
		t.Errorf("the cut is not logged:\n%s", out)
	}
}

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}
