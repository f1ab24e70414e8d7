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
)

// TestServeQueryAPI queries the lake through osprey serve's POST /v1/query: tokens, formats,
// parameters, the row limit, the timeout, and the statements that must not run.
func TestServeQueryAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	samples, err := filepath.Abs("../../testdata/samples/panther_audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	osprey(t, "--lake", dir, "ingest", "-t", "Panther.Audit", "-q", samples)
	secret := strings.TrimSpace(lastLine(osprey(t, "--lake", dir, "token", "create", "reader", "--role", "read")))
	if !strings.HasPrefix(secret, "osp_") {
		t.Fatalf("token create printed %q", secret)
	}
	d := startServe(t, dir)
	defer d.cmd.Process.Kill()
	ask := func(token, body string) (int, string) {
		t.Helper()
		hdr := map[string]string{"Content-Type": "application/json"}
		if token != "" {
			hdr["Authorization"] = "Bearer " + token
		}
		code, text, err := post(d.url+"/v1/query", []byte(body), hdr)
		if err != nil {
			t.Fatal(err)
		}
		return code, text
	}
	q := `{"sql": "SELECT count(*) AS n FROM panther_logs.panther_audit"}`
	if code, _ := ask("", q); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := ask("osp_not-a-token", q); code != 401 {
		t.Errorf("a wrong token: %d", code)
	}
	code, text := ask(secret, q)
	if code != 200 || strings.Join(strings.Fields(text), "") != `[{"n":20}]` {
		t.Fatalf("count: %d %s", code, text)
	}
	code, text = ask(secret, `{"sql": "SELECT count(*) AS n FROM panther_logs.panther_audit WHERE actionName = $a", "params": {"a": "SIGN_IN"}, "format": "csv"}`)
	if code != 200 || text != "n\n4\n" {
		t.Errorf("parameter, csv: %d %q", code, text)
	}
	code, text = ask(secret, `{"sql": "SELECT p_row_id FROM panther_logs.panther_audit", "max_rows": 3, "format": "jsonl"}`)
	if code != 200 || strings.Count(text, "\n") != 3 {
		t.Errorf("max_rows 3: %d %q", code, text)
	}
	code, text = ask(secret, `{"sql": "SELECT * FROM panther_logs.panther_audit", "format": "parquet"}`)
	if code != 200 || !strings.HasPrefix(text, "PAR1") || !strings.HasSuffix(text, "PAR1") {
		t.Errorf("parquet: %d, %d bytes", code, len(text))
	}
	code, text = ask(secret, `{"sql": "SELECT count(*) FROM range(100000000000) a, range(10) b", "timeout": "200ms"}`)
	if code != 504 {
		t.Errorf("a query past its timeout: %d %s", code, text)
	}
	for _, escape := range []string{
		"COPY (SELECT 1) TO '/tmp/osprey-escape.csv'",
		"SELECT * FROM read_csv('/etc/passwd')",
		"ATTACH '/tmp/osprey-escape.db' AS x",
		"INSTALL httpfs",
		"SET enable_external_access = true",
		"SELECT 1; SELECT 2",
	} {
		body, _ := json.Marshal(map[string]string{"sql": escape})
		if code, text := ask(secret, string(body)); code != 400 || !strings.Contains(text, `"error"`) {
			t.Errorf("%s: %d %s", escape, code, text)
		}
	}
	if code, text := ask(secret, `{"sql": "SELECT 1", "format": "xml"}`); code != 400 {
		t.Errorf("format xml: %d %s", code, text)
	}
	// A revoked token is refused at once.
	osprey(t, "--lake", dir, "token", "revoke", "reader")
	if code, _ := ask(secret, q); code != 401 {
		t.Errorf("a revoked token: %d", code)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// queryAPIPeakRSS bounds the peak RSS of osprey serve while its query API answers results of
// gigabytes. Queries run in worker processes (killed past apiWorkerMemory) and their results
// stream through serve in 32 KiB copies, so serve's memory does not depend on them: 70 MiB
// was measured, and the old API, which built results in its own memory, was OOM-killed. With
// 163 built-in log types instead of 29, serve holds 4 MiB more of schemas: 249 MiB was measured
// under the race detector (227 MiB before), 123 MiB without it (113 before).
const queryAPIPeakRSS = 280 << 20

// TestServeQueryAPIHugeResult asks for results of gigabytes: they stream, stop at max_bytes
// with X-Osprey-Truncated in a trailer, and serve's memory stays bounded.
func TestServeQueryAPIHugeResult(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	samples, err := filepath.Abs("../../testdata/samples/panther_audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	osprey(t, "--lake", dir, "ingest", "-t", "Panther.Audit", "-q", samples)
	secret := strings.TrimSpace(lastLine(osprey(t, "--lake", dir, "token", "create", "reader", "--role", "read")))
	d := startServe(t, dir)
	defer d.cmd.Process.Kill()
	for _, tc := range []struct {
		body     string
		code     int
		maxBytes int64 // for 200: the result stops just past it
	}{
		// DuckDB would build the 3 GB result before its first row: the worker is stopped.
		{`{"sql": "SELECT repeat('x', 10000000) AS s FROM range(300)", "max_rows": 1000000}`, http.StatusInsufficientStorage, 0},
		{`{"sql": "SELECT repeat('x', 100000) AS s FROM range(3000)", "max_rows": 1000000}`, 200, 64 << 20},
		{`{"sql": "SELECT repeat('y', 1000) AS s FROM range(3000000)", "max_rows": 1000000, "format": "csv", "max_bytes": 10000000}`, 200, 10_000_000},
		{`{"sql": "SELECT md5(i::VARCHAR) AS a, md5((i * 7)::VARCHAR) AS b FROM range(3000000) t(i)", "max_rows": 1000000, "format": "parquet", "max_bytes": 10000000}`, 200, 10_000_000},
	} {
		req, err := http.NewRequest("POST", d.url+"/v1/query", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read the result: %v", tc.body, err)
		}
		n := int64(len(body))
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d: %.200s", tc.body, resp.StatusCode, tc.code, body)
			continue
		}
		if tc.code != 200 {
			if !strings.Contains(string(body), "memory") {
				t.Errorf("%s: %s, want an error about memory", tc.body, body)
			}
			continue
		}
		if resp.Trailer.Get("X-Osprey-Truncated") != "true" {
			t.Errorf("%s: trailer %v, want X-Osprey-Truncated true", tc.body, resp.Trailer)
		}
		// The result stops at the first row past max_bytes (and a Parquet footer).
		if n < tc.maxBytes || n > tc.maxBytes+(20<<20) {
			t.Errorf("%s: %d bytes, want about %d", tc.body, n, tc.maxBytes)
		}
		t.Logf("%s: %d bytes, %s rows", tc.body, n, resp.Trailer.Get("X-Osprey-Rows"))
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &peak)
		}
	}
	t.Logf("peak RSS %d MiB", peak>>10)
	if peak<<10 > queryAPIPeakRSS || peak == 0 {
		t.Errorf("peak RSS %d MiB, want at most %d MiB", peak>>10, queryAPIPeakRSS>>20)
	}
	// A body over the API's limit is 413.
	big := `{"sql": "SELECT 1 -- ` + strings.Repeat("x", 2<<20) + `"}`
	code, _, err := post(d.url+"/v1/query", []byte(big), map[string]string{"Authorization": "Bearer " + secret})
	if err != nil || code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB body: %d %v, want 413", code, err)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
}
