package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/internal/disktest"
)

// TestServeDiskFull runs osprey serve on a lake on a small tmpfs, fills the disk and frees it:
// while it is full, requests are answered 503 or 429 with Retry-After (or 200 when the
// records did reach the disk), /healthz and /metrics say why, and serve keeps running; once
// the filler is gone serve resumes by itself, and after it stops every event it answered 200
// is in the lake exactly once. The write-ahead log is on the full disk with the lake (its
// appends fail first), or on another disk (the lake's flushes fail while the log takes
// records). With a streaming rule on every event, serve recovers the same way, and counts each
// event's match once: in the lake's matches and in the alert.
func TestServeDiskFull(t *testing.T) {
	t.Run("log and lake", func(t *testing.T) { testServeDiskFull(t, false, false) })
	t.Run("lake", func(t *testing.T) { testServeDiskFull(t, true, false) })
	t.Run("lake with detections", func(t *testing.T) { testServeDiskFull(t, true, true) })
}

func testServeDiskFull(t *testing.T, walElsewhere, detect bool) {
	mnt := disktest.Tmpfs(t, "32m")
	dir := filepath.Join(mnt, "lake")
	osprey(t, "--lake", dir, "source", "add", "audit", "--log-type", "Panther.Audit")
	if walElsewhere {
		disktest.BindMount(t, t.TempDir(), filepath.Join(dir, "_osprey", "wal"))
	}
	cfg := filepath.Join(t.TempDir(), "osprey.yml")
	conf := "flush:\n  age: 200ms\n"
	if detect {
		rules := t.TempDir()
		rule := "AnalysisType: rule\nRuleID: Test.Every.Event\nLogTypes: [Panther.Audit]\nSeverity: Low\n" +
			"Query: SELECT * FROM panther_logs.panther_audit WHERE actionName LIKE 'ID-%'\n"
		if err := os.WriteFile(filepath.Join(rules, "every.yml"), []byte(rule), 0o644); err != nil {
			t.Fatal(err)
		}
		conf += "detections:\n  dirs: [" + rules + "]\n  maxDelay: 50ms\n"
	}
	os.WriteFile(cfg, []byte(conf), 0o644)
	d := startServe(t, dir, "--config", cfg)
	defer d.cmd.Process.Kill()

	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	acked := map[string]bool{}
	sent := 0
	// postBatch posts n new events and returns the answer; 200 counts them as acknowledged.
	postBatch := func(n int) (int, http.Header) {
		t.Helper()
		var body strings.Builder
		for i := range n {
			body.WriteString(auditEvent(fmt.Sprint("ID-", sent+i), base.Add(time.Duration(sent+i)*time.Second)) + "\n")
		}
		req, _ := http.NewRequest(http.MethodPost, d.url+"/http/audit", strings.NewReader(body.String()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post: %v\n%s", err, d.output())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			for i := range n {
				acked[fmt.Sprint("ID-", sent+i)] = true
			}
		}
		sent += n
		return resp.StatusCode, resp.Header
	}
	if code, _ := postBatch(100); code != http.StatusOK {
		t.Fatalf("post before the disk is full: %d", code)
	}

	filler := disktest.Fill(t, mnt, 64<<10)
	if walElsewhere {
		// The log takes the records, and writing them to the lake fails (at the flush, or
		// earlier when a table's first file is created, as the rule's matches are).
		if code, _ := postBatch(20); code != http.StatusOK {
			t.Fatalf("post with the log on a disk with room: %d", code)
		}
		d.waitOutput(t, 1, "ingest cannot write")
	}
	code := http.StatusOK
	var hdr http.Header
	for range 1000 {
		if code, hdr = postBatch(20); code != http.StatusOK {
			break
		}
		if walElsewhere {
			t.Fatalf("post while the lake cannot be written: 200")
		}
	}
	if code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
		t.Fatalf("post on a full disk: %d, want 503 or 429\n%s", code, d.output())
	}
	if hdr.Get("Retry-After") == "" {
		t.Errorf("a %d without Retry-After", code)
	}
	d.waitOutput(t, 1, "ingest cannot write")

	resp, err := http.Get(d.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Degraded string }
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || health.Status != "degraded" || !strings.HasPrefix(health.Degraded, "disk full: ") {
		t.Errorf("healthz on a full disk: %d %+v, want 503, degraded: disk full: ...", resp.StatusCode, health)
	}
	resp, err = http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nosprey_ingest_degraded 1\n") {
		t.Errorf("metrics on a full disk lack osprey_ingest_degraded 1")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Serve resumes by itself: a flush it retries succeeds (and says so), or, when only the
	// log had failed, the next request is written.
	resumed := strings.Count(d.output(), "ingest writes again")
	if code, _ := postBatch(20); code != http.StatusOK {
		d.waitOutput(t, resumed+1, "ingest writes again")
		if code, _ := postBatch(20); code != http.StatusOK {
			t.Fatalf("post once serve writes again: %d\n%s", code, d.output())
		}
	}
	for range 5 {
		if code, _ := postBatch(20); code != http.StatusOK {
			t.Fatalf("post after the disk was freed: %d\n%s", code, d.output())
		}
	}
	resp, err = http.Get(d.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after recovery: %d", resp.StatusCode)
	}

	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	// Every acknowledged event is in the lake once; a refused one may be there too (the client
	// would send it again), but never twice.
	seen := map[string]int{}
	for _, id := range lakeQuery(t, dir, `SELECT actionName FROM panther_logs.panther_audit`) {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s is in the lake %d times", id, n)
		}
	}
	missing := 0
	for id := range acked {
		if seen[id] != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged events are not in the lake", missing, len(acked))
	}
	if detect {
		// Every event in the lake matched once, though the rule ran on some of them before
		// the write that lost them.
		got := lakeQuery(t, dir, `SELECT count(*), count(DISTINCT p_row_id) FROM panther_rule_matches.panther_audit`)
		if want := fmt.Sprintf("%d %d", len(seen), len(seen)); len(got) != 1 || got[0] != want {
			t.Errorf("matches in the lake (all, distinct): %v, want %s", got, want)
		}
		var alerts []struct {
			Events int `json:"eventCount"`
		}
		if err := json.Unmarshal([]byte(osprey(t, "--lake", dir, "alerts", "list", "--format", "json")), &alerts); err != nil {
			t.Fatal(err)
		}
		if len(alerts) != 1 || alerts[0].Events != len(seen) {
			t.Errorf("alerts %+v, want one of %d events", alerts, len(seen))
		}
	}
	t.Logf("%d events sent, %d acknowledged, %d in the lake", sent, len(acked), len(seen))
}
