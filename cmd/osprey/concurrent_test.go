package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConcurrentWriters runs, on one lake at the same time, every kind of process that writes
// it: osprey serve receiving events over HTTP, two osprey ingest processes ingesting a sample
// file again and again, osprey lake compact --older-than 0s in a loop (merging the files the
// others commit into the same hours), and osprey schedule run of a scheduled query in a loop.
// Their commits to the catalog conflict and are retried: every command succeeds, and once serve
// has stopped every event is in the lake exactly once.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	osprey(t, "--lake", lakeDir, "source", "add", "audit", "--log-type", "Panther.Audit")
	rules := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	search := "AnalysisType: scheduled_query\nQueryName: Heartbeat\nSchedule: {RateMinutes: 60}\nResultTable: heartbeat\nQuery: SELECT 'alive' AS state\n"
	if err := os.WriteFile(filepath.Join(rules, "search.yml"), []byte(search), 0o644); err != nil {
		t.Fatal(err)
	}
	// The ingested file: the Panther.Audit sample (events of 20 to 22 November 2026) 50 times.
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "samples", "panther_audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sampleEvents := bytes.Count(sample, []byte("\n"))
	const copies = 50
	input := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(input, bytes.Repeat(sample, copies), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "osprey.yml")
	if err := os.WriteFile(cfg, []byte("flush:\n  age: 100ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	d := startServe(t, lakeDir, "--config", cfg)
	defer d.cmd.Process.Kill()

	var (
		mu       sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// run runs a command to its end: it must succeed and warn of nothing.
	run := func(args ...string) (string, bool) {
		cmd := exec.Command("osprey", append([]string{"--lake", lakeDir}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			fail("osprey %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
			return "", false
		}
		if warned(stderr.String()) {
			fail("osprey %s warned:\n%s", strings.Join(args, " "), stderr.String())
		}
		return stdout.String(), true
	}

	// The writers that run a fixed number of times: two ingests, and the scheduled query at
	// the hours of a day.
	const ingestRuns, scheduledRuns = 2, 5
	var writers sync.WaitGroup
	for i := range 2 {
		writers.Go(func() {
			for range ingestRuns {
				if _, ok := run("ingest", "-q", "--log-type", "Panther.Audit", "--source-id", fmt.Sprint("ingest", i), input); !ok {
					return
				}
			}
		})
	}
	writers.Go(func() {
		for h := range scheduledRuns {
			at := time.Date(2026, 11, 21, h, 0, 0, 0, time.UTC).Format(time.RFC3339)
			if _, ok := run("schedule", "run", "Heartbeat", "--at", at, "--detections", rules); !ok {
				return
			}
		}
	})
	done := make(chan struct{})
	go func() { writers.Wait(); close(done) }()
	running := func() bool {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}

	// While they run: compaction in a loop, and events posted to serve, into the hours of the
	// ingested events. Both go on until the others are done (and a bounded number of times).
	var others sync.WaitGroup
	compactions, merged := 0, 0
	others.Go(func() {
		for i := 0; i == 0 || running() && i < 100; i++ {
			out, ok := run("lake", "compact", "--older-than", "0s")
			if !ok {
				return
			}
			compactions++
			var periods, in int
			if _, err := fmt.Sscanf(out, "compacted %d periods: %d files", &periods, &in); err != nil {
				fail("osprey lake compact printed %q", out)
				return
			}
			merged += in
		}
	})
	const perPost = 50
	posted := 0
	others.Go(func() {
		base := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		for i := 0; i == 0 || running() && i < 400; i++ {
			var body strings.Builder
			for j := range perPost {
				n := i*perPost + j
				body.WriteString(auditEvent(fmt.Sprint("S-", n), base.Add(time.Duration(n)*17*time.Second)) + "\n")
			}
			code, text, err := post(d.url+"/http/audit", []byte(body.String()), nil)
			if err != nil || code != 200 {
				fail("post %d: %d %q %v", i, code, text, err)
				return
			}
			posted += perPost
		}
	})
	others.Wait()
	<-done
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		fail("osprey serve exited with %v", err)
	}
	if !strings.Contains(d.output(), "osprey serve: stopped") || warned(d.output()) {
		fail("osprey serve did not stop cleanly, or warned")
	}
	for _, f := range failures {
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Fatalf("osprey serve's output:\n%s", d.output())
	}

	sql := func(q string) string {
		t.Helper()
		out := strings.TrimSpace(osprey(t, "--lake", lakeDir, "sql", "-c", q, "--format", "csv"))
		_, rows, _ := strings.Cut(out, "\n") // the header
		return rows
	}
	got := sql(`SELECT p_source_id, count(*) AS n, count(DISTINCT p_row_id) AS ids FROM panther_logs.panther_audit GROUP BY p_source_id ORDER BY p_source_id`)
	perIngest := ingestRuns * copies * sampleEvents
	want := fmt.Sprintf("audit,%d,%d\ningest0,%d,%d\ningest1,%d,%d", posted, posted, perIngest, perIngest, perIngest, perIngest)
	if got != want {
		t.Errorf("panther_audit rows by source:\n%s\nwant\n%s", got, want)
	}
	got = sql(`SELECT count(*) AS n, count(DISTINCT p_row_id) AS ids FROM panther_logs.panther_audit`)
	if want := fmt.Sprintf("%d,%d", posted+2*perIngest, posted+2*perIngest); got != want {
		t.Errorf("panther_audit: rows, distinct p_row_id %s, want %s", got, want)
	}
	got = sql(`SELECT count(DISTINCT actionName) FROM panther_logs.panther_audit WHERE p_source_id = 'audit'`)
	if want := fmt.Sprint(posted); got != want {
		t.Errorf("events posted to serve: %s distinct, want %s", got, want)
	}
	got = sql(`SELECT count(*) AS n, count(DISTINCT p_scheduled_time) AS runs FROM panther_views.heartbeat`)
	if want := fmt.Sprintf("%d,%d", scheduledRuns, scheduledRuns); got != want {
		t.Errorf("panther_views.heartbeat: rows, runs %s, want %s (a row per run)", got, want)
	}
	t.Logf("%d events posted, %d ingested, %d compactions merged %d files", posted, 2*perIngest, compactions, merged)
}

// warned reports whether a command's stderr holds a warning or an error, of osprey's logger or
// of a library's.
func warned(stderr string) bool {
	for _, w := range []string{"level=WARN", "level=ERROR", "Warning", "error"} {
		if strings.Contains(stderr, w) {
			return true
		}
	}
	return false
}
