package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hook is a webhook receiver that fails its first requests with 503, then accepts.
type hook struct {
	mu        sync.Mutex
	failFirst int
	attempts  map[string]int // by X-Osprey-Delivery
	accepted  []map[string]any
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	id := r.Header.Get("X-Osprey-Delivery")
	h.attempts[id]++
	if h.failFirst > 0 {
		h.failFirst--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var a map[string]any
	if err := json.Unmarshal(body, &a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.accepted = append(h.accepted, a)
}

func (h *hook) state() (attempts map[string]int, accepted []map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	attempts = map[string]int{}
	for k, v := range h.attempts {
		attempts[k] = v
	}
	return attempts, append([]map[string]any(nil), h.accepted...)
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestServeDetections runs osprey serve with a streaming rule, a file destination and a
// webhook that is down at first: events posted to the HTTP source raise one alert (two matches
// of one dedup string), the file gets it at once, the webhook once it recovers (the same
// delivery id on every attempt), and a restart sends nothing again. The matches are in the lake.
func TestServeDetections(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	rules := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	rule := `AnalysisType: rule
RuleID: Test.Detection.Deleted
DisplayName: Detection deleted
LogTypes: [Panther.Audit]
Severity: High
Query: |
  SELECT *, 'Detection deleted by ' || actor.name AS alert_title, actor.name AS alert_dedup
  FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'
`
	if err := os.WriteFile(filepath.Join(rules, "deleted.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	// A scheduled query that last ran three hours ago (by osprey schedule run, below): serve
	// runs the missed runs once when it starts.
	search := `AnalysisType: scheduled_query
QueryName: Heartbeat
Schedule: {RateMinutes: 60}
ResultTable: heartbeat
Query: SELECT 'alive' AS state
`
	if err := os.WriteFile(filepath.Join(rules, "search.yml"), []byte(search), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &hook{failFirst: 2, attempts: map[string]int{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	alertsFile := filepath.Join(dir, "alerts.jsonl")
	cfg := fmt.Sprintf(`lake: %s
sources:
  - id: audit
    type: http
    logTypes: [Panther.Audit]
detections:
  dirs: [%s]
destinations:
  - id: file
    type: file
    path: %s
  - id: hook
    type: webhook
    url: %s
    secret: k3y
`, lakeDir, rules, alertsFile, srv.URL)
	cfgPath := filepath.Join(dir, "osprey.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	threeHoursAgo := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	osprey(t, "--lake", lakeDir, "schedule", "run", "Heartbeat", "--at", threeHoursAgo, "--detections", rules)
	serve := func() *daemon {
		cmd := startServeConfig(t, cfgPath)
		return cmd
	}
	d := serve()
	defer d.cmd.Process.Kill()
	now := time.Now().UTC()
	body := auditEventBy("DELETE_DETECTION", "ana", now) + "\n" + auditEventBy("DELETE_DETECTION", "ana", now.Add(time.Second)) + "\n" +
		auditEventBy("LIST_DATA_LAKE_DATABASES", "ana", now) + "\n"
	if code, text, err := post(d.url+"/http/audit", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("post: %d %q %v", code, text, err)
	}
	readFile := func() []string {
		data, _ := os.ReadFile(alertsFile)
		if len(data) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	waitFor(t, "the alert in the file destination", func() bool { return len(readFile()) > 0 })
	waitFor(t, "the webhook to accept the alert", func() bool { _, acc := h.state(); return len(acc) > 0 })
	attempts, accepted := h.state()
	if len(attempts) != 1 || len(accepted) != 1 {
		t.Fatalf("webhook: attempts by delivery id %v, %d accepted; want one delivery", attempts, len(accepted))
	}
	for id, n := range attempts {
		if n != 3 {
			t.Errorf("delivery %s tried %d times, want 3 (two 503s, then 200)", id, n)
		}
	}
	if a := accepted[0]; a["ruleId"] != "Test.Detection.Deleted" || a["title"] != "Detection deleted by ana" || a["severity"] != "High" {
		t.Errorf("alert sent: %v", a)
	}
	waitFor(t, "the missed runs of the scheduled query", func() bool {
		got := lakeQuery(t, lakeDir, `SELECT count(DISTINCT p_scheduled_time) FROM panther_views.heartbeat`)
		return len(got) == 1 && got[0] == "2"
	})
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	got := lakeQuery(t, lakeDir, `SELECT count(*), min(p_rule_id), count(DISTINCT p_alert_id) FROM panther_rule_matches.panther_audit`)
	if len(got) != 1 || got[0] != "2 Test.Detection.Deleted 1" {
		t.Errorf("rule matches: %v", got)
	}
	if got := lakeQuery(t, lakeDir, `SELECT count(DISTINCT p_scheduled_time) FROM panther_views.heartbeat`); len(got) != 1 || got[0] != "2" {
		t.Errorf("runs of the scheduled query: %v, want 2 (by hand, then the missed runs once)", got)
	}
	// A restart with the same events replayed nowhere: nothing is sent again.
	d = serve()
	if code, _, err := post(d.url+"/http/audit", []byte(auditEventBy("DELETE_DETECTION", "ana", now.Add(2*time.Second))+"\n"), nil); err != nil || code != 200 {
		t.Fatalf("post: %d %v", code, err)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	if n := len(readFile()); n != 1 {
		t.Errorf("%d alerts in the file, want 1 (the third match joins the alert)", n)
	}
	if attempts, accepted := h.state(); len(attempts) != 1 || len(accepted) != 1 {
		t.Errorf("after a restart: attempts %v, %d accepted", attempts, len(accepted))
	}
	got = lakeQuery(t, lakeDir, `SELECT count(*), count(DISTINCT p_alert_id) FROM panther_rule_matches.panther_audit`)
	if len(got) != 1 || got[0] != "3 1" {
		t.Errorf("rule matches after the restart: %v", got)
	}
}

func auditEventBy(action, actor string, ts time.Time) string {
	return fmt.Sprintf(`{"actionName":%q,"actionResult":"SUCCEEDED","actor":{"id":%q,"type":"USER","name":%q},"timestamp":%q,"pantherVersion":"1.0"}`,
		action, "SSO_"+actor, actor, ts.UTC().Format(time.RFC3339Nano))
}
