package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// TestMain makes the test binary a query worker when serve starts it as one (the default
// Options.QueryWorker is this executable with QueryWorkerArg).
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == QueryWorkerArg {
		if err := QueryWorkerMain(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testConfig is a configuration with one unauthenticated HTTP source of Panther.Audit, on a
// lake in a temporary directory, listening on a free loopback port.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	yml := fmt.Sprintf(`lake: %s
listen: 127.0.0.1:0
sources:
  - id: audit
    type: http
    logTypes: [Panther.Audit]
`, t.TempDir())
	cfg, err := config.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start opens a Server and runs it until the test ends; stop ends it early and returns Run's
// error.
func start(t *testing.T, cfg *config.Config) (s *Server, stop func() error) {
	t.Helper()
	s, err := Open(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var stopped bool
	var runErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

func post(t *testing.T, url, contentType, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A Server runs in the test's process: events posted to a source are answered 200, queried
// through the API (a query worker process) and, after a clean stop, in the lake.
func TestServeInProcess(t *testing.T) {
	cfg := testConfig(t)
	_, secret, err := config.CreateToken(cfg.Lake, "reader", config.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := start(t, cfg)
	base := "http://" + s.Addr().String()
	var events strings.Builder
	for i := range 20 {
		fmt.Fprintf(&events, `{"actionName":"E%d","actionResult":"SUCCEEDED","actor":{"id":"u","type":"USER"},"timestamp":"2026-12-07T10:%02d:00Z","pantherVersion":"1"}`+"\n", i, i)
	}
	if code, body := post(t, base+"/http/audit", "application/x-ndjson", events.String(), http.Header{}); code != http.StatusOK {
		t.Fatalf("POST /http/audit: %d %s", code, body)
	}
	// The query API reads the lake: the events are there once a flush made them queryable,
	// which a clean stop does; before it, the API must still answer (with what is flushed).
	auth := http.Header{"Authorization": {"Bearer " + secret}}
	code, body := post(t, base+"/v1/query", "application/json", `{"sql":"SELECT 40 + 2 AS answer"}`, auth)
	if code != http.StatusOK || !strings.Contains(body, "42") {
		t.Fatalf("POST /v1/query: %d %s", code, body)
	}
	if code, body := post(t, base+"/v1/query", "application/json", `{"sql":"SELECT 1"}`, http.Header{}); code != http.StatusUnauthorized {
		t.Errorf("a query without a token: %d %s, want 401", code, body)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h healthBody
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" {
		t.Errorf("GET /healthz: %d %+v %v", resp.StatusCode, h, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after a clean stop: %v", err)
	}
	l, err := lake.OpenExisting(cfg.Lake)
	if err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(context.Background(), l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, distinct int
	if err := db.SQL().QueryRow("SELECT count(*), count(DISTINCT actionName) FROM panther_logs.panther_audit").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 20 || distinct != 20 {
		t.Errorf("the lake has %d rows (%d distinct) after the stop, want the 20 acknowledged", n, distinct)
	}
}

// One Server per lake; a failed Open releases what it took, and so does Run when it returns.
func TestOpenReleases(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	cfg := testConfig(t)
	_, stop := start(t, cfg)
	if _, err := Open(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "another osprey serve") {
		t.Fatalf("a second Open on the lake: %v, want the lake's serve lock refused", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	bad := *cfg
	bad.Listen = "127.0.0.1:99999"
	if _, err := Open(context.Background(), &bad, Options{}); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Open with a bad address: %v, want a listen error", err)
	}
	// The failed Open released the lake's serve lock (with the garbage collector off, so that
	// no finalizer closes a leaked file for it).
	if !lockFree(t, cfg.Lake) {
		t.Error("a failed Open left the lake's serve lock held")
	}
	_, stop = start(t, cfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// lockFree reports whether the lake's serve lock can be taken.
func lockFree(t *testing.T, lakeDir string) bool {
	t.Helper()
	f, err := os.OpenFile(lake.ServeLock(lakeDir), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}
