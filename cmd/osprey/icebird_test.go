package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/s3src/s3test"
	"github.com/ospreyhq/osprey/internal/pgtest"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/parquet-go/parquet-go"
)

// TestIcebirdReadsLake builds one lake with osprey's own commands (two runs of osprey ingest,
// osprey serve with a streaming rule that matches and one that fails, osprey schedule run,
// osprey lake compact) and reads every Iceberg table of it with icebird
// (tools/parquet-check/iceberg.mjs), an implementation of Iceberg that is neither iceberg-go nor
// osprey's: through the catalog's current metadata it must find the same rows, every column of
// every row, as osprey sql.
func TestIcebirdReadsLake(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "lake")
		testIcebirdReadsLake(t, testLake{args: []string{"--lake", dir}, config: "lake: " + dir, opts: lake.Options{Dir: dir}})
	})
	// The same on a lake in S3 (moto_server), its catalog in PostgreSQL: icebird reads the
	// bucket over HTTP.
	t.Run("s3", func(t *testing.T) {
		m := s3test.StartMoto(t)
		m.CreateBucket(t, "lake")
		m.SetEnv(t)
		t.Setenv("OSPREY_S3_ENDPOINT", m.URL) // for iceberg.mjs
		dsn := pgtest.Start(t).NewDatabase(t)
		state := filepath.Join(t.TempDir(), "state")
		testIcebirdReadsLake(t, testLake{
			args:   []string{"--lake", "s3://lake/osprey", "--state", state, "--catalog", dsn},
			config: fmt.Sprintf("lake: s3://lake/osprey\nstate: %s\ncatalog: {type: postgres, dsn: %q}", state, dsn),
			opts:   lake.Options{Dir: state, Location: "s3://lake/osprey", Catalog: iceberg.Postgres, CatalogDSN: dsn},
		})
	})
}

// testLake is a lake the tests run commands on: its flags, its lines in a configuration file,
// and its options.
type testLake struct {
	args   []string
	config string
	opts   lake.Options
}

// with returns the lake's flags followed by args.
func (lk testLake) with(args ...string) []string { return append(slices.Clone(lk.args), args...) }

func testIcebirdReadsLake(t *testing.T, lk testLake) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the lake is not read with icebird")
	}
	tool, err := filepath.Abs(filepath.Join("..", "..", "tools", "parquet-check"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "icebird")); err != nil {
		t.Fatalf("icebird is not installed: run `make tools` (npm ci in %s)", tool)
	}
	samples, err := filepath.Abs(filepath.Join("..", "..", "testdata", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	sample := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(samples, n))
		}
		return out
	}
	// wantRows is the rows each table must have, counted from what the commands say they wrote
	// (0: some, for alert_history, whose rows depend on how serve cuts its batches). Both
	// readers go through the same registration: a file it lacks is seen here.
	wantRows := map[string]int64{}
	// Two runs of ingest: panther_audit and okta_systemlog get files from both.
	summary := regexp.MustCompile(`(?m)^\s+(\w+\.\w+)\s+(\d+)$`)
	for _, files := range [][]string{
		sample("panther_audit.jsonl", "okta_systemlog.jsonl", "zeek_dns.jsonl", "aws_cloudtrail.jsonl"),
		sample("panther_audit.jsonl", "okta_systemlog.jsonl", "gsuite_reports.jsonl"),
	} {
		out := osprey(t, lk.with(append([]string{"ingest"}, files...)...)...)
		for _, m := range summary.FindAllStringSubmatch(out, -1) {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			wantRows[m[1]] += n
		}
	}

	// A scheduled query's results: panther_views.
	searches := filepath.Join(dir, "searches")
	writeFile(t, filepath.Join(searches, "heartbeat.yml"), `AnalysisType: scheduled_query
QueryName: Heartbeat
Schedule: {RateMinutes: 60}
ResultTable: heartbeat
Query: SELECT 'alive' AS state, 42 AS answer
`)
	osprey(t, lk.with("schedule", "run", "Heartbeat", "--detections", searches)...)

	// serve: a rule that matches (panther_rule_matches, panther_monitor.alert_history), a rule
	// that fails on the events (panther_rule_errors) and a line that is not an event
	// (panther_monitor.classification_failures).
	rules := filepath.Join(dir, "rules")
	writeFile(t, filepath.Join(rules, "deleted.yml"), `AnalysisType: rule
RuleID: Test.Detection.Deleted
DisplayName: Detection deleted
LogTypes: [Panther.Audit]
Severity: High
Query: |
  SELECT *, 'Detection deleted by ' || actor.name AS alert_title, actor.name AS alert_dedup
  FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION'
`)
	writeFile(t, filepath.Join(rules, "broken.yml"), `AnalysisType: rule
RuleID: Test.Broken
LogTypes: [Panther.Audit]
Severity: Low
Query: SELECT * FROM panther_logs.panther_audit WHERE CAST(actionName AS INTEGER) > 0
`)
	cfg := filepath.Join(dir, "osprey.yml")
	writeFile(t, cfg, fmt.Sprintf(`%s
sources:
  - id: audit
    type: http
    logTypes: [Panther.Audit]
detections:
  dirs: [%s]
`, lk.config, rules))
	secret := strings.TrimSpace(lastLine(osprey(t, lk.with("token", "create", "reader", "--role", "read")...)))
	d := startServeConfig(t, cfg)
	defer d.cmd.Process.Kill()
	// The query API reads the lake too (in a query worker of its own).
	code, text, err := post(d.url+"/v1/query", []byte(`{"sql": "SELECT count(*) AS n FROM panther_logs.zeek_dns", "format": "csv"}`),
		map[string]string{"Authorization": "Bearer " + secret})
	if want := fmt.Sprintf("n\n%d\n", wantRows["panther_logs.zeek_dns"]); err != nil || code != 200 || text != want {
		t.Errorf("POST /v1/query: %d %q %v, want %q", code, text, err, want)
	}
	now := time.Now().UTC()
	body := auditEventBy("DELETE_DETECTION", "ana", now) + "\n" + auditEventBy("DELETE_DETECTION", "ana", now.Add(time.Second)) + "\n" +
		auditEventBy("LIST_DATA_LAKE_DATABASES", "bo", now) + "\nnot an event\n"
	if code, text, err := post(d.url+"/http/audit", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("post: %d %q %v", code, text, err)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("osprey serve exited with %v:\n%s", err, d.output())
	}
	wantRows["panther_logs.panther_audit"] += 3
	wantRows["panther_rule_matches.panther_audit"] = 2
	wantRows["panther_rule_errors.panther_audit"] = 3 // every row of the batch the rule failed on
	wantRows["panther_monitor.classification_failures"] = 1
	wantRows["panther_monitor.alert_history"] = 0
	wantRows["panther_views.heartbeat"] = 1

	// Export reads it.
	exported := filepath.Join(dir, "okta.parquet")
	osprey(t, lk.with("export", "--table", "panther_logs.okta_systemlog", "--out", exported)...)
	if n := parquetRows(t, exported); n != wantRows["panther_logs.okta_systemlog"] {
		t.Errorf("export wrote %d rows of panther_logs.okta_systemlog, want %d", n, wantRows["panther_logs.okta_systemlog"])
	}

	out := osprey(t, lk.with("lake", "compact", "--older-than", "0s")...)
	if m := regexp.MustCompile(`compacted (\d+) periods`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Fatalf("osprey lake compact merged nothing: %s", out)
	}

	var status []struct {
		DB, Table      string
		Files          int
		Rows           int64
		LastCompaction time.Time
	}
	if err := json.Unmarshal([]byte(ospreyStdout(t, lk.with("lake", "status", "--json")...)), &status); err != nil {
		t.Fatalf("osprey lake status --json: %v", err)
	}
	meta := currentMetadata(t, lk.opts)
	var locs []string
	for _, st := range status {
		loc, ok := meta[st.DB+"."+st.Table]
		if !ok {
			t.Fatalf("osprey lake status lists %s.%s, the catalog has no metadata for it", st.DB, st.Table)
		}
		locs = append(locs, loc)
	}
	read := icebirdRead(t, node, tool, locs)
	var tables []string
	compacted, several := false, false
	for i, st := range status {
		name := st.DB + "." + st.Table
		tables = append(tables, name)
		compacted = compacted || !st.LastCompaction.IsZero()
		several = several || st.Files > 1
		t.Run(name, func(t *testing.T) {
			t.Parallel() // at most -parallel (GOMAXPROCS) osprey sql at a time
			got := read[i]
			t.Logf("%d rows in %d files", got.Rows, st.Files)
			if want, ok := wantRows[name]; !ok {
				t.Errorf("a table no command said it wrote")
			} else if got.Rows == 0 || want > 0 && got.Rows != want {
				t.Errorf("icebird read %d rows, the commands wrote %d (0: some)", got.Rows, want)
			}
			if got.Rows != st.Rows {
				t.Errorf("icebird read %d rows, osprey lake status says %d", got.Rows, st.Rows)
			}
			compareRows(t, got, sqlRows(t, lk, st.DB, st.Table))
		})
	}
	for want := range wantRows {
		if !slices.Contains(tables, want) {
			t.Errorf("the lake has no table %s: %v", want, tables)
		}
	}
	if len(wantRows) < 10 {
		t.Errorf("the commands wrote %d tables, want 10: %v", len(wantRows), wantRows)
	}
	if len(meta) != len(status) {
		t.Errorf("the catalog has %d tables, osprey lake status %d", len(meta), len(status))
	}
	if !compacted || !several {
		t.Errorf("no table compacted (%v) or none of several files (%v)", compacted, several)
	}
}

// parquetRows returns the row count of a Parquet file, from its footer.
func parquetRows(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pf.NumRows()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ospreyStdout runs osprey and returns what it wrote to stdout.
func ospreyStdout(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("osprey", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("osprey %v: %v\n%s", args, err, stderr.Bytes())
	}
	return string(out)
}

// currentMetadata returns the location of each table's current metadata file, by db.table, as
// the catalog has it.
func currentMetadata(t *testing.T, o lake.Options) map[string]string {
	t.Helper()
	l, err := lake.OpenWith(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := l.OpenCatalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ptrs, err := cat.Current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ptrs {
		out[p.DB+"."+p.Table] = strings.TrimPrefix(p.Location, "file://")
	}
	return out
}

// icebirdTable is what iceberg.mjs --records prints.
type icebirdTable struct {
	Rows    int64             `json:"rows"`
	Columns []string          `json:"columns"`
	Records []json.RawMessage `json:"records"`
}

// icebirdRead reads the tables whose current metadata files are metas with icebird, in one
// run of iceberg.mjs.
func icebirdRead(t *testing.T, node, tool string, metas []string) []icebirdTable {
	t.Helper()
	args := []string{filepath.Join(tool, "iceberg.mjs"), "--records"}
	for _, m := range metas {
		// <table>/metadata/<file>: a path, or an s3:// location.
		i := strings.LastIndex(m, "/metadata/")
		args = append(args, m[:i], m[i+len("/metadata/"):])
	}
	cmd := exec.Command(node, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("icebird: %v\n%s", err, stderr.Bytes())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	tables := make([]icebirdTable, len(metas))
	for i, m := range metas {
		if err := dec.Decode(&tables[i]); err != nil {
			t.Fatalf("icebird's output for %s: %v", m, err)
		}
	}
	return tables
}

// sqlRows returns every row of db.table as osprey sql prints it in JSON lines.
func sqlRows(t *testing.T, lk testLake, db, table string) []json.RawMessage {
	t.Helper()
	out := ospreyStdout(t, lk.with("sql", "-c", fmt.Sprintf(`SELECT * FROM %q.%q`, db, table), "--format", "jsonl")...)
	var rows []json.RawMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		rows = append(rows, json.RawMessage(slices.Clone(sc.Bytes())))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// partitionColumns are the columns that osprey's views add from the Hive directories of a
// table's files, not columns of its Iceberg schema.
var partitionColumns = []string{"year", "month", "day", "hour"}

// avroName matches the column names that icebird reads. icebird looks a column up in a data
// file by the Avro-sanitized form of its name ("id.orig_h" as "id_x2Eorig_h", as Iceberg's Java
// writer names Parquet columns) and does not apply the table's name mapping
// (schema.name-mapping.default) to files without field ids, which osprey's files are: it reads
// NULL for the other columns. Those are checked to be NULL on icebird's side and not compared.
var avroName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// compareRows checks that icebird and osprey sql give the same multiset of rows, each with
// every column of the table's Iceberg schema.
func compareRows(t *testing.T, got icebirdTable, want []json.RawMessage) {
	t.Helper()
	if got.Rows != int64(len(got.Records)) {
		t.Fatalf("iceberg.mjs printed %d rows and %d records", got.Rows, len(got.Records))
	}
	var unreadable []string
	for _, c := range got.Columns {
		if !avroName.MatchString(c) {
			unreadable = append(unreadable, c)
		}
	}
	if len(unreadable) > 0 {
		t.Logf("columns icebird cannot read by name, not compared: %q", unreadable)
	}
	var gotRows, wantRows []row
	for _, r := range got.Records {
		m := decodeRow(t, r)
		for _, c := range unreadable {
			if m[c] != nil {
				t.Errorf("icebird read %s = %v: it reads that column now, compare it", c, m[c])
			}
			delete(m, c)
		}
		gotRows = append(gotRows, newRow(m))
	}
	for i, r := range want {
		m := decodeRow(t, r)
		for _, c := range partitionColumns {
			if !slices.Contains(got.Columns, c) {
				delete(m, c)
			}
		}
		for _, c := range unreadable {
			delete(m, c)
		}
		if i == 0 {
			cols := slices.Sorted(maps.Keys(m))
			iceCols := slices.DeleteFunc(slices.Clone(got.Columns), func(c string) bool { return slices.Contains(unreadable, c) })
			slices.Sort(iceCols)
			if !slices.Equal(cols, iceCols) {
				t.Errorf("columns:\nicebird    %q\nosprey sql %q", iceCols, cols)
			}
		}
		wantRows = append(wantRows, newRow(m))
	}
	if len(gotRows) != len(wantRows) {
		t.Errorf("icebird read %d rows, osprey sql %d", len(gotRows), len(wantRows))
	}
	onlyGot, onlyWant := multisetDiff(gotRows, wantRows)
	// A row of each side with the same p_row_id (or, without one, in the same place in sorted
	// order) differs by its columns.
	reported := 0
	for len(onlyGot) > 0 && len(onlyWant) > 0 && reported < 3 {
		g := onlyGot[0]
		j := slices.IndexFunc(onlyWant, func(w row) bool { return w.id != "" && w.id == g.id })
		if j < 0 && g.id != "" {
			break
		}
		j = max(j, 0)
		w := onlyWant[j]
		for _, c := range slices.Sorted(maps.Keys(g.m)) {
			if a, b := canonJSON(g.m[c]), canonJSON(w.m[c]); a != b {
				t.Errorf("row %s, column %s:\nicebird    %.500s\nosprey sql %.500s", cmp.Or(g.id, "-"), c, a, b)
			}
		}
		onlyGot, onlyWant = onlyGot[1:], slices.Delete(onlyWant, j, j+1)
		reported++
	}
	for _, only := range []struct {
		side string
		rows []row
	}{{"icebird", onlyGot}, {"osprey sql", onlyWant}} {
		side, rows := only.side, only.rows
		for i, r := range rows {
			if i == 3 {
				t.Errorf("... and %d more rows only %s read", len(rows)-3, side)
				break
			}
			t.Errorf("a row only %s read: %.1000s", side, r.canon)
		}
	}
}

// row is a row of a table, decoded, with its canonical text and its p_row_id ("" if none).
type row struct {
	m     map[string]any
	canon string
	id    string
}

func newRow(m map[string]any) row {
	id, _ := m["p_row_id"].(string)
	return row{m: m, canon: canonJSON(m), id: id}
}

func decodeRow(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("row %.200s: %v", raw, err)
	}
	return m
}

// multisetDiff returns the rows of a that are not in b and those of b not in a, each as often
// as it is missing, sorted by their canonical text.
func multisetDiff(a, b []row) (onlyA, onlyB []row) {
	byCanon := func(x, y row) int { return strings.Compare(x.canon, y.canon) }
	a, b = slices.SortedFunc(slices.Values(a), byCanon), slices.SortedFunc(slices.Values(b), byCanon)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].canon < b[j].canon):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j].canon < a[i].canon:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

// canonJSON renders a decoded JSON value with sorted keys and numbers in one form, so that
// osprey sql's JSON and iceberg.mjs's compare equal when their values are.
func canonJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		if i, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return v.String()
	case string:
		return strconv.Quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = canonJSON(x)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + ":" + canonJSON(v[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	panic(fmt.Sprintf("BUG: canonJSON of %T", v))
}
