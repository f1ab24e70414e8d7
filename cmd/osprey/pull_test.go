package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
)

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// trailObject is a CloudTrail log file of n events named name-i, at t.
func trailObject(name string, n int, t time.Time) []byte {
	var recs []string
	for i := range n {
		recs = append(recs, fmt.Sprintf(`{"eventVersion":"1.08","eventTime":%q,"eventSource":"iam.amazonaws.com","eventName":"%s-%d","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.%d","recipientAccountId":"123456789012"}`,
			t.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339), name, i, i%250))
	}
	return []byte(`{"Records":[` + strings.Join(recs, ",") + "]}\n")
}

func setAWSEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// TestServePullSources runs osprey serve with an s3 source fed by moto's S3 -> SNS -> SQS and a
// rapid7 source polling a local Rapid7 API: objects uploaded and audit events served land in
// the lake, /metrics and osprey source list show each source's health, and the queue is empty.
func TestServePullSources(t *testing.T) {
	m := s3test.StartMoto(t)
	n := s3test.SetUpNotifications(t, m, "trail")
	setAWSEnv(t)
	queued := n.Pending(t) // the test event S3 sends when notifications are set up, if any
	now := time.Now().UTC()

	// A Rapid7 API with two audit events, answering at once.
	var r7 *httptest.Server
	r7 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "r7-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/log_search/management/logs":
			fmt.Fprint(w, `{"logs":[{"id":"audit-1","name":"Platform Audit Log","logsets_info":[{"name":"Audit Logs"}]}]}`)
		case strings.HasPrefix(r.URL.Path, "/log_search/query/logs/audit-1"):
			var evs []map[string]any
			for i := range 2 {
				msg := fmt.Sprintf(`{"action":"LOGIN","audit_id":"r7-%d","time":%q}`, i, now.Add(-10*time.Minute).Format(time.RFC3339))
				evs = append(evs, map[string]any{"log_id": "audit-1", "sequence_number_str": fmt.Sprint(i), "timestamp": now.Add(-10 * time.Minute).UnixMilli(), "message": msg})
			}
			json.NewEncoder(w).Encode(map[string]any{"events": evs})
		default:
			http.NotFound(w, r)
		}
	}))
	defer r7.Close()
	t.Setenv("OSPREY_TEST_R7_KEY", "r7-key")

	dir := filepath.Join(t.TempDir(), "lake")
	cfg := filepath.Join(t.TempDir(), "osprey.yml")
	os.WriteFile(cfg, fmt.Appendf(nil, `lake: %s
sources:
  - id: trail
    type: s3
    logTypes: [AWS.CloudTrail]
    s3:
      bucket: trail
      prefix: AWSLogs/
      prefixes:
        - {prefix: AWSLogs/digest/, exclude: true}
      queue: %s
      region: us-east-1
      endpoint: %s
      pathStyle: true
  - id: r7
    type: rapid7
    rapid7:
      baseURL: %s
      apiKeyEnv: OSPREY_TEST_R7_KEY
      interval: 1h
`, dir, n.QueueURL, m.URL, r7.URL), 0o644)

	d := startServe(t, dir, "--config", cfg, "--log-level", "info")
	defer d.cmd.Process.Kill()
	n.Put(t, "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/x y.json.gz", gzipBytes(trailObject("ev", 40, now.Add(-time.Hour))), "")
	n.Put(t, "AWSLogs/digest/d.json.gz", gzipBytes([]byte(`{"digest":true}`)), "")
	d.waitOutput(t, 1, "s3 object read", "x y.json.gz", "records=40")
	d.waitOutput(t, queued+2, "sqs message handled", "deleted=true")
	d.waitOutput(t, 1, "rapid7 poll", "records=2")

	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`osprey_source_objects_total{source="trail"} 1`,
		`osprey_source_records_total{source="trail"} 40`,
		`osprey_source_healthy{source="trail"} 1`,
		`osprey_source_records_total{source="r7"} 2`,
		`osprey_source_healthy{source="r7"} 1`,
		`osprey_source_lag_seconds{source="trail"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %q:\n%s", want, body)
		}
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	if left := n.Pending(t); left != 0 {
		t.Errorf("%d messages left in the queue", left)
	}
	list := osprey(t, "--lake", dir, "source", "list", "--config", cfg)
	for _, want := range []string{"trail  s3", "s3://trail/AWSLogs/ via " + n.QueueURL, "r7     rapid7"} {
		if !strings.Contains(list, want) {
			t.Errorf("source list has no %q:\n%s", want, list)
		}
	}
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "trail" && f[0] != "r7" {
			continue
		}
		counts := strings.Join(f[len(f)-2:], " ")
		if want := map[string]string{"trail": "1 40", "r7": "1 2"}[f[0]]; !strings.Contains(line, " ok ") || counts != want {
			t.Errorf("source list line %q: want ok and objects, records %s", line, want)
		}
	}
	got := lakeQuery(t, dir, `SELECT count(*), count(DISTINCT eventName), min(p_source_file.aws_s3_key), min(p_source_id) FROM panther_logs.aws_cloudtrail`)
	if want := "40 40 AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/22/x y.json.gz trail"; len(got) != 1 || got[0] != want {
		t.Errorf("cloudtrail rows %q, want %q", got, want)
	}
	got = lakeQuery(t, dir, `SELECT count(*), min(p_source_id), count(p_source_file) FROM panther_logs.rapid7_auditlog`)
	if len(got) != 1 || got[0] != "2 r7 0" {
		t.Errorf("rapid7 rows %q", got)
	}
}

// TestBackfill backfills a bucket of the in-process S3 with osprey ingest s3://: objects since
// a date are ingested, a rerun ingests nothing, a new object alone is ingested next, and an
// object that cannot be read is recorded in panther_monitor.source_errors. A streaming rule
// runs on the backfilled events, its matches committed with each batch.
func TestBackfill(t *testing.T) {
	srv := s3test.New()
	defer srv.Close()
	setAWSEnv(t)
	old := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	recent := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ev := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	srv.Put("trail", "AWSLogs/a.json.gz", gzipBytes(trailObject("a", 30, ev)), recent)
	srv.Put("trail", "AWSLogs/b.json", trailObject("b", 20, ev), recent)
	srv.Put("trail", "AWSLogs/old.json", trailObject("old", 5, ev), old)
	srv.Put("trail", "AWSLogs/empty.json", nil, recent)
	srv.Put("trail", "other/c.json", trailObject("c", 5, ev), recent)
	dir := filepath.Join(t.TempDir(), "lake")
	rules := filepath.Join(t.TempDir(), "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	rule := "AnalysisType: rule\nRuleID: Test.A\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\nQuery: SELECT * FROM panther_logs.aws_cloudtrail WHERE starts_with(eventName, 'a-')\n"
	if err := os.WriteFile(filepath.Join(rules, "a.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--lake", dir, "ingest", "--log-type", "AWS.CloudTrail", "--source-id", "trail-backfill", "--detections", rules,
		"--endpoint", srv.URL, "--path-style", "--region", "us-east-1", "--progress", "never", "--commit-every", "1KB",
		"s3://trail/AWSLogs/", "--since", "2026-01-01"}
	out := osprey(t, args...)
	if !strings.Contains(out, "2 objects to ingest") || !strings.Contains(out, "ingested 50 events") {
		t.Errorf("first run:\n%s", out)
	}
	out = osprey(t, args...)
	if !strings.Contains(out, "0 objects to ingest") || !strings.Contains(out, "2 ingested before") {
		t.Errorf("rerun:\n%s", out)
	}
	srv.Put("trail", "AWSLogs/d.json", trailObject("d", 7, ev), recent)
	srv.Put("trail", "AWSLogs/broken.json", trailObject("broken", 1, ev), recent)
	srv.FailGets("trail", "AWSLogs/broken.json", 1000)
	cmd := execOsprey(args...)
	if code := cmd.exitCode; code != 1 || !strings.Contains(cmd.out, "2 objects to ingest") || !strings.Contains(cmd.out, "1 objects could not be read") {
		t.Errorf("third run (exit %d):\n%s", code, cmd.out)
	}
	got := lakeQuery(t, dir, `SELECT split_part(eventName, '-', 1), count(*), count(DISTINCT eventName), min(p_source_file.aws_s3_key), min(p_source_id) FROM panther_logs.aws_cloudtrail GROUP BY 1 ORDER BY 1`)
	want := []string{"a 30 30 AWSLogs/a.json.gz trail-backfill", "b 20 20 AWSLogs/b.json trail-backfill", "d 7 7 AWSLogs/d.json trail-backfill"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = lakeQuery(t, dir, `SELECT source, object, p_source_file.aws_s3_key, error LIKE '%500%' FROM panther_monitor.source_errors`)
	if len(got) != 1 || got[0] != "trail-backfill s3://trail/AWSLogs/broken.json AWSLogs/broken.json true" {
		t.Errorf("source errors %q", got)
	}
	got = lakeQuery(t, dir, `SELECT count(*), count(DISTINCT p_row_id), count(DISTINCT p_alert_id) FROM panther_rule_matches.aws_cloudtrail WHERE p_rule_id = 'Test.A'`)
	if len(got) != 1 || got[0] != "30 30 1" {
		t.Errorf("rule matches (count, distinct rows, alerts) %q, want 30 30 1", got)
	}
	var a []map[string]any
	if err := json.Unmarshal([]byte(osprey(t, "--lake", dir, "alerts", "list", "--format", "json")), &a); err != nil || len(a) != 1 || a[0]["eventCount"] != 30.0 {
		t.Errorf("alerts %v (%v), want one of 30 events", a, err)
	}
}

type result struct {
	out      string
	exitCode int
}

func execOsprey(args ...string) result {
	out, err := runCmd("osprey", args...)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
	}
	return result{out, code}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestSourceAddPull adds s3 and rapid7 sources with osprey source add and lists them before
// any osprey serve ran; bad ones are refused.
func TestSourceAddPull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	osprey(t, "--lake", dir, "source", "add", "trail", "--type", "s3", "--log-type", "AWS.CloudTrail", "--bucket", "b",
		"--prefix", "AWSLogs/", "--prefix-log-types", "AWSLogs/app/=Panther.Audit", "--exclude-prefix", "AWSLogs/digest/",
		"--queue", "https://sqs.us-east-1.amazonaws.com/1/q", "--region", "us-east-1")
	osprey(t, "--lake", dir, "source", "add", "r7", "--type", "rapid7", "--region", "us3", "--api-key-env", "R7_KEY")
	list := osprey(t, "--lake", dir, "source", "list")
	for _, want := range []string{"s3://b/AWSLogs/ via https://sqs.us-east-1.amazonaws.com/1/q", "rapid7 us3", "Rapid7.AuditLog", "unknown (osprey serve not running)"} {
		if !strings.Contains(list, want) {
			t.Errorf("list has no %q:\n%s", want, list)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "s3", "--log-type", "AWS.CloudTrail"}, "needs s3.bucket"},
		{[]string{"--type", "s3", "--log-type", "AWS.CloudTrail", "--bucket", "b", "--prefix-log-types", "x/=No.Such"}, "unknown log type"},
		{[]string{"--type", "rapid7", "--region", "us3"}, "apiKeyEnv"},
	} {
		r := execOsprey(append([]string{"--lake", dir, "source", "add", "bad"}, tc.args...)...)
		if r.exitCode == 0 || !strings.Contains(r.out, tc.want) {
			t.Errorf("source add %v: exit %d, %q; want %q", tc.args, r.exitCode, r.out, tc.want)
		}
	}
}
