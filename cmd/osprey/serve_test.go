package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// daemon is an osprey serve process started by a test.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	mu     *sync.Mutex
	cond   *sync.Cond // broadcast at each line and at exit
	exited bool
	done   chan struct{}
}

// startServe runs osprey serve (the test binary acting as osprey, see TestMain) and waits for
// it to say where it listens.
func startServe(t *testing.T, lakeDir string, args ...string) *daemon {
	t.Helper()
	return startDaemon(t, append([]string{"--lake", lakeDir, "serve", "--listen", "127.0.0.1:0"}, args...))
}

// startServeConfig runs osprey serve with a configuration file.
func startServeConfig(t *testing.T, config string) *daemon {
	t.Helper()
	return startDaemon(t, []string{"serve", "--config", config, "--listen", "127.0.0.1:0"})
}

func startDaemon(t *testing.T, args []string) *daemon {
	t.Helper()
	cmd := exec.Command("osprey", args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	d.cond = sync.NewCond(d.mu)
	ready := make(chan string, 1)
	go func() {
		defer close(d.done)
		defer func() {
			d.mu.Lock()
			d.exited = true
			d.cond.Broadcast()
			d.mu.Unlock()
		}()
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.stderr.WriteString(line + "\n")
			d.cond.Broadcast()
			d.mu.Unlock()
			if rest, ok := strings.CutPrefix(line, "osprey serve: listening on "); ok {
				ready <- strings.Fields(rest)[0]
			}
		}
		close(ready)
	}()
	addr, ok := <-ready
	if !ok {
		cmd.Wait()
		t.Fatalf("osprey serve did not start:\n%s", d.output())
	}
	d.url = strings.TrimSuffix(addr, ",")
	return d
}

// waitOutput waits until the daemon has written n lines holding each of the substrings (in any
// order), and fails the test if it exits first or a minute passes.
func (d *daemon) waitOutput(t *testing.T, n int, subs ...string) {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(time.Minute, func() {
		d.mu.Lock()
		timedOut = true
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		count := 0
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				count++
			}
		}
		switch {
		case count >= n:
			return
		case d.exited || timedOut:
			t.Fatalf("osprey serve did not write %d lines with %q (exited: %v):\n%s", n, subs, d.exited, d.stderr.String())
		}
		d.cond.Wait()
	}
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// stop sends sig and waits for the process to end.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	d.cmd.Process.Signal(sig)
	<-d.done
	return d.cmd.Wait()
}

func osprey(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("osprey", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("osprey %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func post(url string, body []byte, hdr map[string]string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func auditEvent(id string, ts time.Time) string {
	return fmt.Sprintf(`{"actionName":%q,"actionResult":"SUCCEEDED","actor":{"id":"u1","type":"USER","name":"ana"},"timestamp":%q,"pantherVersion":"1.0","sourceIP":"198.51.100.7"}`,
		id, ts.UTC().Format(time.RFC3339Nano))
}

// lakeQuery runs one query over the lake and returns its rows as strings.
func lakeQuery(t *testing.T, dir, q string) []string {
	t.Helper()
	l, err := lake.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(context.Background(), l, query.Options{MemoryLimit: "1GB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(vals), "["), "]"))
	}
	return out
}

// TestServeHTTP runs osprey serve with two HTTP sources (one added while it runs), posts
// Panther.Audit events and Fluent Bit's json_lines of an audit log, checks the endpoints, stops
// it with SIGTERM and finds the rows in the lake.
func TestServeHTTP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	osprey(t, "--lake", dir, "source", "add", "audit", "--log-type", "Panther.Audit", "--auth", "header", "--header", "x-sender-header", "--secret", "s3cret")
	d := startServe(t, dir)
	defer d.cmd.Process.Kill()
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var body strings.Builder
	for i := range 500 {
		body.WriteString(auditEvent(fmt.Sprint("ID-", i), base.Add(time.Duration(i)*time.Minute)) + "\n")
	}
	code, text, err := post(d.url+"/http/audit", []byte(body.String()), map[string]string{"x-sender-header": "s3cret"})
	if err != nil || code != 200 || strings.TrimSpace(text) != `{"records":500}` {
		t.Fatalf("post: %d %q %v", code, text, err)
	}
	if code, _, _ := post(d.url+"/http/audit", []byte(body.String()), map[string]string{"x-sender-header": "wrong"}); code != 401 {
		t.Errorf("wrong secret: %d", code)
	}
	if code, _, _ := post(d.url+"/http/nosuch", []byte("{}"), nil); code != 404 {
		t.Errorf("unknown source: %d", code)
	}
	// A source added while serving is taken up within seconds.
	osprey(t, "--lake", dir, "source", "add", "fluentbit", "--log-type", "Linux.Auditd", "--stream", "json", "--auth", "basic", "--username", "fb", "--secret", "pw")
	fluent := `{"date":1763802000.5,"log":"type=USER_LOGIN msg=audit(1763802000.500:101): pid=42 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.9 addr=203.0.113.9 terminal=ssh res=failed'"}` + "\n" +
		`{"date":1763802001.0,"log":"type=SYSCALL msg=audit(1763802001.000:102): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=43 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"id\" exe=\"/usr/bin/id\" key=\"exec\""}` + "\n"
	var fcode int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		req, _ := http.NewRequest(http.MethodPost, d.url+"/http/fluentbit", strings.NewReader(fluent))
		req.SetBasicAuth("fb", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if fcode = resp.StatusCode; fcode != 404 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the daemon looks at the sources file every 2 s
	}
	if fcode != 200 {
		t.Fatalf("fluentbit source: %d", fcode)
	}
	resp, err := http.Get(d.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	if !strings.Contains(d.output(), "osprey serve: stopped") {
		t.Errorf("no clean stop:\n%s", d.output())
	}
	got := lakeQuery(t, dir, `SELECT count(*), count(DISTINCT actionName), min(p_source_id), max(p_source_label) FROM panther_logs.panther_audit`)
	if len(got) != 1 || got[0] != "500 500 audit audit" {
		t.Errorf("panther_audit: %v", got)
	}
	got = lakeQuery(t, dir, `SELECT type, uid, success, p_source_id FROM panther_logs.linux_auditd ORDER BY eventId`)
	if strings.Join(got, "; ") != "USER_LOGIN 0 <nil> fluentbit; SYSCALL 0 yes fluentbit" {
		t.Errorf("linux_auditd: %v", got)
	}
}

// TestServeMetrics checks /metrics after some traffic.
func TestServeMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	osprey(t, "--lake", dir, "source", "add", "audit", "--log-type", "Panther.Audit")
	cfg := filepath.Join(t.TempDir(), "osprey.yml")
	os.WriteFile(cfg, []byte("flush:\n  age: 200ms\n"), 0o644)
	d := startServe(t, dir, "--config", cfg)
	defer d.cmd.Process.Kill()
	body := auditEvent("A", time.Now()) + "\nnot json\n"
	if code, text, err := post(d.url+"/http/audit", []byte(body), nil); code != 200 {
		t.Fatalf("post: %d %q %v", code, text, err)
	}
	// The events are counted when they reach the lake writer, at most a flush age later.
	want := []string{
		`osprey_events_total{source="audit",log_type="Panther.Audit"} 1`,
		`osprey_classification_failures_total{source="audit"} 1`,
		`osprey_http_requests_total{source="audit",code="200"} 1`,
		`osprey_wal_bytes `, `osprey_flushes_total `,
	}
	var text string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(d.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if text = string(b); strings.Contains(text, want[0]) && strings.Contains(text, want[1]) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q:\n%s", w, text)
		}
	}
	d.stop(t, syscall.SIGTERM)
}

// TestServeKill9 posts events with unique ids from several clients while osprey serve is
// killed with SIGKILL and restarted, several times: every event it acknowledged is in the lake
// exactly once, and every file in the lake is whole.
func TestServeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the daemon several times")
	}
	dir := filepath.Join(t.TempDir(), "lake")
	osprey(t, "--lake", dir, "source", "add", "audit", "--log-type", "Panther.Audit")
	cfg := filepath.Join(t.TempDir(), "osprey.yml")
	// Frequent flushes, so that kills land before, during and after them.
	os.WriteFile(cfg, []byte("flush:\n  age: 150ms\n"), 0o644)
	rng := rand.New(rand.NewPCG(9, 9))
	var next atomic.Int64
	var mu sync.Mutex
	acked := map[string]bool{}
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for round := range 5 {
		d := startServe(t, dir, "--config", cfg)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					n := int(next.Add(20))
					var body strings.Builder
					var ids []string
					for i := n - 20; i < n; i++ {
						id := fmt.Sprint("ID-", i)
						ids = append(ids, id)
						body.WriteString(auditEvent(id, base.Add(time.Duration(i)*time.Second)) + "\n")
					}
					code, _, err := post(d.url+"/http/audit", []byte(body.String()), nil)
					if err != nil {
						return // the daemon is gone
					}
					if code == 200 {
						mu.Lock()
						for _, id := range ids {
							acked[id] = true
						}
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond) // let traffic run: where the kill lands is the point
		if round < 4 {
			d.cmd.Process.Kill()
			<-d.done
			d.cmd.Wait()
		} else if err := d.stop(t, syscall.SIGTERM); err != nil {
			t.Fatalf("last stop: %v\n%s", err, d.output())
		}
		close(stop)
		wg.Wait()
	}
	// One more start and clean stop reads whatever the last kill left in the log.
	d := startServe(t, dir, "--config", cfg)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
	dups := lakeQuery(t, dir, `SELECT actionName, count(*) FROM panther_logs.panther_audit GROUP BY 1 HAVING count(*) > 1 LIMIT 5`)
	if len(dups) > 0 {
		t.Errorf("events in the lake more than once: %v", dups)
	}
	present := map[string]bool{}
	for _, r := range lakeQuery(t, dir, `SELECT actionName FROM panther_logs.panther_audit`) {
		present[r] = true
	}
	missing := 0
	for id := range acked {
		if !present[id] {
			missing++
		}
	}
	if missing > 0 || len(acked) == 0 {
		t.Errorf("%d of %d acknowledged events are missing", missing, len(acked))
	}
	t.Logf("%d events acknowledged, %d in the lake, 4 kills", len(acked), len(present))
	// Every data file is whole: DuckDB reads them all (a partial file fails the query).
	glob := filepath.Join(dir, "panther_logs", "panther_audit", "*", "*", "*", "*.parquet")
	files, _ := filepath.Glob(glob)
	got := lakeQuery(t, dir, fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s')`, glob))
	if len(got) != 1 || got[0] != fmt.Sprint(len(present)) {
		t.Errorf("%d files hold %v rows, want %d", len(files), got, len(present))
	}
}

// TestServeDropOff checks that a source without events raises an Osprey.SourceAlarm event,
// which lands in the lake like any other.
func TestServeDropOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	osprey(t, "--lake", dir, "source", "add", "fb", "--log-type", "Linux.Auditd", "--drop-off", "300ms")
	cfg := filepath.Join(t.TempDir(), "osprey.yml")
	os.WriteFile(cfg, []byte("flush:\n  age: 200ms\n"), 0o644)
	d := startServe(t, dir, "--config", cfg)
	defer d.cmd.Process.Kill()
	const want = `osprey_source_alarms_total{source="fb",state="silent"} 1`
	var text string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.Contains(text, want); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(d.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
	}
	if !strings.Contains(text, want) {
		t.Fatalf("no alarm in the metrics:\n%s", text)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
	got := lakeQuery(t, dir, `SELECT state, sourceId, thresholdSeconds, p_source_id, p_log_type FROM panther_logs.osprey_sourcealarm`)
	if len(got) != 1 || got[0] != "silent fb 0 osprey Osprey.SourceAlarm" {
		t.Errorf("alarm rows %v", got)
	}
}
