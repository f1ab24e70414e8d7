package main

import (
	"encoding/json"
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
