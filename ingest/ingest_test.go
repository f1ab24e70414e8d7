package ingest_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/klauspost/compress/zstd"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// collect is a Sink that keeps every row as a JSON object, by "db.table".
type collect struct {
	mu   sync.Mutex
	rows map[string][]map[string]any
}

func (c *collect) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	data, err := rec.MarshalJSON() // copy now: the record's memory is reused after Write
	if err != nil {
		return err
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[string][]map[string]any{}
	}
	c.rows[db+"."+table] = append(c.rows[db+"."+table], rows...)
	return nil
}

func (c *collect) table(name string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rows[name]
}

func logTypes(t testing.TB, names ...string) []*logtypes.LogType {
	t.Helper()
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		return reg.All()
	}
	var out []*logtypes.LogType
	for _, n := range names {
		lt, err := reg.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lt)
	}
	return out
}

// run ingests streams (name -> bytes) and returns the sink and summary.
func run(t testing.TB, opts ingest.Options, streams ...[2]string) (*collect, ingest.Summary) {
	t.Helper()
	sink := &collect{}
	if opts.Source.ID == "" {
		opts.Source = batch.Source{ID: "test", Label: "test label"}
	}
	in, err := ingest.New(context.Background(), sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if err := in.Ingest(context.Background(), s[0], strings.NewReader(s[1])); err != nil {
			t.Fatal(err)
		}
	}
	summary, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sink, summary
}

func auditEvent(action, ts string) string {
	return fmt.Sprintf(`{"actionName":%q,"actionResult":"SUCCEEDED","actor":{"id":"u1","type":"USER","name":"ana"},"timestamp":%q,"pantherVersion":"1.0","sourceIP":"198.51.100.7"}`, action, ts)
}

func TestBadLinesAreKeptAndTheRestIngests(t *testing.T) {
	input := strings.Join([]string{
		auditEvent("A", "2026-11-22T10:00:00Z"),
		`{"actionName": "B", broken json`,
		``,
		auditEvent("C", "2026-11-22T10:00:01Z"),
		`{"actionName":"D","actionResult":"SUCCEEDED","actor":{"id":"u1","type":"USER"},"timestamp":"2026-11-22T10:00:02Z"}`, // no pantherVersion
		auditEvent("E", "2026-11-22T10:00:03Z") + "\r",
	}, "\n")
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{"audit.jsonl", input})
	if got := s.Events["panther_audit"]; got != 3 {
		t.Errorf("events = %d, want 3", got)
	}
	if s.Failures != 2 || s.Blank != 1 {
		t.Errorf("failures %d, blank %d; want 2 and 1", s.Failures, s.Blank)
	}
	fails := sink.table("panther_monitor.classification_failures")
	if len(fails) != 2 {
		t.Fatalf("%d failure rows, want 2", len(fails))
	}
	sort.Slice(fails, func(i, j int) bool { return fmt.Sprint(fails[i]["line"]) < fmt.Sprint(fails[j]["line"]) })
	for i, want := range []struct {
		line  string
		error string
	}{{"2", "invalid JSON"}, {"5", "required field pantherVersion is missing"}} {
		f := fails[i]
		if fmt.Sprint(f["line"]) != want.line || !strings.Contains(fmt.Sprint(f["error"]), want.error) {
			t.Errorf("failure %d: line %v error %q; want line %s and %q", i, f["line"], f["error"], want.line, want.error)
		}
		if f["source"] != "audit.jsonl" || f["p_source_id"] != "test" || fmt.Sprint(f["log_types"]) != "[Panther.Audit]" {
			t.Errorf("failure %d: source %v, p_source_id %v, log_types %v", i, f["source"], f["p_source_id"], f["log_types"])
		}
		if f["truncated"] != false || f["raw"] == "" || f["p_row_id"] == nil || f["p_event_time"] == nil {
			t.Errorf("failure %d: %v", i, f)
		}
	}
	var actions []string
	for _, r := range sink.table("panther_logs.panther_audit") {
		actions = append(actions, r["actionName"].(string))
	}
	sort.Strings(actions)
	if strings.Join(actions, "") != "ACE" {
		t.Errorf("actions %v", actions)
	}
}

func gz(t testing.TB, data string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(data))
	w.Close()
	return b.Bytes()
}

func TestCompressedStreams(t *testing.T) {
	var lines []string
	for i := range 5000 {
		lines = append(lines, auditEvent(fmt.Sprintf("ACT_%d", i), "2026-11-22T10:00:00Z"))
	}
	data := strings.Join(lines, "\n") + "\n"
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write([]byte(data))
	zw.Close()
	// Two concatenated gzip members are one stream.
	half := len(lines) / 2
	two := append(gz(t, strings.Join(lines[:half], "\n")+"\n"), gz(t, strings.Join(lines[half:], "\n")+"\n")...)
	for name, raw := range map[string][]byte{"plain": []byte(data), "gzip": gz(t, data), "zstd": zs.Bytes(), "gzip-members": two} {
		t.Run(name, func(t *testing.T) {
			_, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{"f", string(raw)})
			if s.Events["panther_audit"] != 5000 || s.Failures != 0 || len(s.Errors) != 0 {
				t.Errorf("summary %+v", s)
			}
		})
	}
}

func TestTruncatedGzip(t *testing.T) {
	var lines []string
	for i := range 20000 {
		lines = append(lines, auditEvent(fmt.Sprintf("ACT_%d", i), "2026-11-22T10:00:00Z"))
	}
	raw := gz(t, strings.Join(lines, "\n")+"\n")
	cut := raw[:len(raw)*2/3]
	_, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{"cut.jsonl.gz", string(cut)})
	n := s.Events["panther_audit"]
	if n == 0 || n >= 20000 {
		t.Errorf("%d events from a truncated stream, want some but not all", n)
	}
	if len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "cut.jsonl.gz: gzip stream is truncated") {
		t.Errorf("errors %q", s.Errors)
	}
	// The line cut in the middle is a failure, not silently dropped (or, if the cut fell
	// between lines, there is none).
	if s.Failures > 1 {
		t.Errorf("%d failures, want at most the one cut line", s.Failures)
	}
}

func TestEmptyStreams(t *testing.T) {
	_, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")},
		[2]string{"empty", ""}, [2]string{"empty.gz", string(gz(t, ""))}, [2]string{"blank", "\n\n  \n"})
	if s.Total() != 0 || s.Failures != 0 || len(s.Errors) != 0 || s.Files != 3 || s.Blank != 3 {
		t.Errorf("summary %+v", s)
	}
}

func TestLongLines(t *testing.T) {
	// A 10 MB event parses whole: it is under the record size limit.
	big := strings.Repeat("x", 10<<20)
	event := fmt.Sprintf(`{"actionName":"BIG","actionDescription":%q,"actionResult":"SUCCEEDED","actor":{"id":"u","type":"USER"},"timestamp":"2026-11-22T10:00:00Z","pantherVersion":"1"}`, big)
	input := auditEvent("BEFORE", "2026-11-22T10:00:00Z") + "\n" + event + "\n" + auditEvent("AFTER", "2026-11-22T10:00:00Z") + "\n"
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{"big", input})
	if s.Events["panther_audit"] != 3 || s.Failures != 0 {
		t.Fatalf("summary %+v", s)
	}
	for _, r := range sink.table("panther_logs.panther_audit") {
		if r["actionName"] == "BIG" && len(r["actionDescription"].(string)) != len(big) {
			t.Errorf("big description has %d bytes", len(r["actionDescription"].(string)))
		}
	}
	// Over the limit, the line is kept as a failure with its beginning, and the lines after it
	// still ingest.
	opts := ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}
	opts.Stream.MaxRecordSize = 1 << 20
	sink, s = run(t, opts, [2]string{"big", input})
	if s.Events["panther_audit"] != 2 || s.Failures != 1 {
		t.Fatalf("summary %+v", s)
	}
	f := sink.table("panther_monitor.classification_failures")[0]
	if f["truncated"] != true || fmt.Sprint(f["raw_size"]) != fmt.Sprint(len(event)) || fmt.Sprint(f["line"]) != "2" ||
		!strings.Contains(f["error"].(string), "over the limit") || len(f["raw"].(string)) != 64<<10 {
		t.Errorf("failure row: line %v size %v truncated %v error %q raw %d bytes", f["line"], f["raw_size"], f["truncated"], f["error"], len(f["raw"].(string)))
	}
}

// TestLongLineWithinChunk checks the record size limit on a line that fits a chunk: the limit
// holds whatever the chunk size.
func TestLongLineWithinChunk(t *testing.T) {
	event := fmt.Sprintf(`{"actionName":"BIG","actionDescription":%q,"actionResult":"SUCCEEDED","actor":{"id":"u","type":"USER"},"timestamp":"2026-11-22T10:00:00Z","pantherVersion":"1"}`, strings.Repeat("x", 5000))
	input := auditEvent("BEFORE", "2026-11-22T10:00:00Z") + "\n" + event + "\n" + auditEvent("AFTER", "2026-11-22T10:00:00Z") + "\n"
	opts := ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}
	opts.Stream.MaxRecordSize, opts.Stream.HeadSize = 1000, 100
	sink, s := run(t, opts, [2]string{"big", input})
	if s.Events["panther_audit"] != 2 || s.Failures != 1 {
		t.Fatalf("summary %+v", s)
	}
	f := sink.table("panther_monitor.classification_failures")[0]
	if f["truncated"] != true || fmt.Sprint(f["raw_size"]) != fmt.Sprint(len(event)) || fmt.Sprint(f["line"]) != "2" ||
		!strings.Contains(f["error"].(string), "over the limit of 1000 bytes") || f["raw"] != event[:100] {
		t.Errorf("failure row: line %v size %v truncated %v error %q raw %q", f["line"], f["raw_size"], f["truncated"], f["error"], f["raw"])
	}
}

func TestInvalidUTF8(t *testing.T) {
	bad := "{\"actionName\":\"A\xff\xfeB\",\"actionResult\":\"SUCCEEDED\",\"actor\":{\"id\":\"u\",\"type\":\"USER\"},\"timestamp\":\"2026-11-22T10:00:00Z\",\"pantherVersion\":\"1\"}"
	junk := "\xff\xfe not json \xc3"
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{"utf8", bad + "\n" + junk + "\n"})
	if s.Events["panther_audit"] != 1 || s.Failures != 1 {
		t.Fatalf("summary %+v", s)
	}
	if got := sink.table("panther_logs.panther_audit")[0]["actionName"]; got != "A\uFFFD\uFFFDB" {
		t.Errorf("actionName = %q, want invalid bytes replaced", got)
	}
	if got := sink.table("panther_monitor.classification_failures")[0]["raw"]; got != "\uFFFD\uFFFD not json \uFFFD" {
		t.Errorf("raw = %q", got)
	}
}

func TestYear9999(t *testing.T) {
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")},
		[2]string{"future", auditEvent("FUTURE", "9999-12-31T23:59:59.999999Z") + "\n" + auditEvent("NOW", "2026-11-22T10:00:00Z")})
	if s.Events["panther_audit"] != 2 || s.Failures != 0 {
		t.Fatalf("summary %+v", s)
	}
	if want := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC); !s.Latest.Equal(want) {
		t.Errorf("latest = %v, want %v", s.Latest, want)
	}
	for _, r := range sink.table("panther_logs.panther_audit") {
		if r["actionName"] == "FUTURE" && r["p_event_time"] != "9999-12-31T23:59:59.999999Z" {
			t.Errorf("p_event_time = %v", r["p_event_time"])
		}
	}
	// A time that does not fit in microseconds since 1970 in 64 bits is refused, not wrapped.
	_, s = run(t, ingest.Options{LogTypes: logTypes(t, "Rapid7.AuditLog")},
		[2]string{"overflow", `{"action":"a","audit_id":"1","time":"2026-01-01T00:00:00Z","service_info":{"event":{"timestamp":9999999999999999999}}}`})
	if s.Failures != 1 {
		t.Errorf("an overflowing unix_ms time: summary %+v", s)
	}
}

func TestClassification(t *testing.T) {
	lines := []string{
		auditEvent("A", "2026-11-22T10:00:00Z"),
		`type=USER_LOGIN msg=audit(1795000000.100:42): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=192.0.2.1 terminal=sshd res=failed'`,
		`{"action":"LOGIN","audit_id":"x1","time":"2026-11-20T06:00:01Z"}`,
		`neither`,
		auditEvent("B", "2026-11-22T10:00:00Z"),
		`{"actionName":"CREATE_USER","actionResult":"SUCCEEDED","timestamp":"2026-11-20T06:00:01Z","pantherVersion":"1.0"}`,
	}
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t)}, [2]string{"mixed", strings.Join(lines, "\n")})
	want := map[string]int64{"panther_audit": 2, "linux_auditd": 1, "rapid7_auditlog": 1}
	for table, n := range want {
		if s.Events[table] != n {
			t.Errorf("%s: %d events, want %d (summary %+v)", table, s.Events[table], n, s)
		}
	}
	fails := sink.table("panther_monitor.classification_failures")
	if len(fails) != 2 {
		t.Fatalf("%d failures, want 2", len(fails))
	}
	sort.Slice(fails, func(i, j int) bool { return fmt.Sprint(fails[i]["line"]) < fmt.Sprint(fails[j]["line"]) })
	// A text record: the reason of each text type, and of the JSON types together.
	for _, want := range []string{"JSON log types: not a JSON object", "Linux.Auditd: not an audit record"} {
		if !strings.Contains(fails[0]["error"].(string), want) {
			t.Errorf("failure reason %q lacks %q", fails[0]["error"], want)
		}
	}
	// A JSON record no type takes: the type nearest to it, and what it lacks.
	if e := fails[1]["error"].(string); !strings.Contains(e, "the nearest, Panther.Audit: required field actor is missing") {
		t.Errorf("failure reason %q, want Panther.Audit's missing actor", e)
	}
}

func TestRowIDsAreUnique(t *testing.T) {
	var lines []string
	for i := range 30000 {
		lines = append(lines, auditEvent("A", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	input := strings.Join(lines, "\n")
	opts := ingest.Options{LogTypes: logTypes(t, "Panther.Audit"), Workers: 4, Stream: streamOpts(64 << 10)}
	seen := map[string]bool{}
	for range 2 { // across runs too
		sink, _ := run(t, opts, [2]string{"a", input})
		rows := sink.table("panther_logs.panther_audit")
		if len(rows) != len(lines) {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			id := r["p_row_id"].(string)
			if seen[id] || len(id) != 32 {
				t.Fatalf("p_row_id %q repeated or malformed", id)
			}
			seen[id] = true
		}
	}
}

// TestEventHours checks that rows of many hours, late ones included, reach the sink in a few
// large batches of many hours each (the lake splits a batch by day), not a batch per hour.
func TestEventHours(t *testing.T) {
	var lines []string
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range 20000 {
		ts := base.Add(time.Duration(i) * 10 * time.Second)
		if i%50 == 0 {
			ts = ts.Add(-7 * time.Hour) // late
		}
		lines = append(lines, auditEvent("A", ts.Format(time.RFC3339Nano)))
	}
	sink := &hourSink{}
	in, err := ingest.New(context.Background(), sink, ingest.Options{LogTypes: logTypes(t, "Panther.Audit"), Workers: 3, Stream: streamOpts(32 << 10)})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ingest(context.Background(), "f", strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
	s, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sink.rows != 20000 || s.Total() != 20000 {
		t.Errorf("rows %d, summary %d", sink.rows, s.Total())
	}
	// 20,000 rows over 56 hours, 3 workers: a batch per worker, whatever the hours.
	if sink.batches > 3 || sink.mixed != sink.batches {
		t.Errorf("%d batches, %d of several hours; want at most 3, each of several hours", sink.batches, sink.mixed)
	}
}

func streamOpts(chunk int) (o stream.Options) {
	o.ChunkSize = chunk
	return o
}

type hourSink struct {
	mu                   sync.Mutex
	rows, mixed, batches int
}

func (h *hourSink) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	idx := rec.Schema().FieldIndices("p_event_time")[0]
	col := rec.Column(idx)
	first := ""
	mixed := false
	for i := range col.Len() {
		hour := col.ValueStr(i)[:13]
		if first == "" {
			first = hour
		} else if hour != first {
			mixed = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rows += int(rec.NumRows())
	h.batches++
	if mixed {
		h.mixed++
	}
	return nil
}

// TestPantherAuditCorpus runs the Panther.Audit events of Panther's own rule tests. Those that
// carry every required field parse; the others are refused, naming the missing field.
func TestPantherAuditCorpus(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "corpora", "panther_audit", "panther-analysis-rule-tests.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	defer f.Close()
	var logs []string
	var complete int
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tc struct {
			Log map[string]any `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tc.Log)
		logs = append(logs, string(b))
		if tc.Log["timestamp"] != nil && tc.Log["pantherVersion"] != nil {
			complete++
		}
	}
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "Panther.Audit")}, [2]string{path, strings.Join(logs, "\n")})
	if int(s.Events["panther_audit"]) != complete || int(s.Failures) != len(logs)-complete {
		t.Errorf("%d parsed and %d failed; want %d and %d", s.Events["panther_audit"], s.Failures, complete, len(logs)-complete)
	}
	for _, f := range sink.table("panther_monitor.classification_failures") {
		if e := f["error"].(string); !strings.Contains(e, "required field timestamp is missing") && !strings.Contains(e, "required field pantherVersion is missing") {
			t.Errorf("unexpected failure: %s", e)
		}
	}
	for _, r := range sink.table("panther_logs.panther_audit") {
		// Panther's own values: actor.id is a trace id, actor.name a username.
		if ids, _ := r["p_any_trace_ids"].([]any); len(ids) != 1 {
			t.Errorf("p_any_trace_ids = %v", r["p_any_trace_ids"])
		}
		if r["p_event_time"] == nil || r["timestamp"] != r["p_event_time"] {
			t.Errorf("timestamp %v, p_event_time %v", r["timestamp"], r["p_event_time"])
		}
	}
	t.Logf("%d events: %d parsed, %d refused for a missing required field", len(logs), complete, len(logs)-complete)
}

// TestIngestFileMapped checks that a file read in place (mapped) gives the rows, failures and
// counts reading it as a stream gives, and reports its progress.
func TestIngestFileMapped(t *testing.T) {
	var lines []string
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range 12000 {
		lines = append(lines, auditEvent(fmt.Sprint("A", i), base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
		if i%1000 == 0 {
			lines = append(lines, "not json")
		}
	}
	data := strings.Join(lines, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := ingest.Options{LogTypes: logTypes(t, "Panther.Audit"), Source: batch.Source{ID: "test", Label: "test label"},
		Stream: streamOpts(64 << 10)}
	sink := &collect{}
	in, err := ingest.New(context.Background(), sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var progress atomic.Int64
	if err := in.IngestFile(context.Background(), path, f, func(n int64) { progress.Add(n) }); err != nil {
		t.Fatal(err)
	}
	s, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, ws := run(t, opts, [2]string{path, data})
	if s.Events["panther_audit"] != 12000 || s.Failures != 12 || s.Bytes != int64(len(data)) || len(s.Errors) != 0 {
		t.Errorf("summary %+v", s)
	}
	if s.Events["panther_audit"] != ws.Events["panther_audit"] || s.Failures != ws.Failures || s.Bytes != ws.Bytes {
		t.Errorf("mapped summary %+v, read %+v", s, ws)
	}
	if progress.Load() != int64(len(data)) {
		t.Errorf("progress reported %d bytes of %d", progress.Load(), len(data))
	}
	got := map[string]string{}
	for _, r := range sink.table("panther_logs.panther_audit") {
		got[r["actionName"].(string)] = fmt.Sprint(r["p_event_time"])
	}
	for _, r := range want.table("panther_logs.panther_audit") {
		if got[r["actionName"].(string)] != fmt.Sprint(r["p_event_time"]) {
			t.Fatalf("row %s differs: %s, read %s", r["actionName"], got[r["actionName"].(string)], r["p_event_time"])
		}
	}
	var lineNos []string
	for _, f := range sink.table("panther_monitor.classification_failures") {
		lineNos = append(lineNos, fmt.Sprint(f["line"]))
	}
	var wantNos []string
	for i, l := range lines {
		if l == "not json" {
			wantNos = append(wantNos, fmt.Sprint(i+1))
		}
	}
	sort.Strings(lineNos)
	sort.Strings(wantNos)
	if strings.Join(lineNos, ",") != strings.Join(wantNos, ",") {
		t.Errorf("failure lines %v, want %v", lineNos, wantNos)
	}
}

// TestIngestRecordsSources checks records given whole, from two sources at once: rows and
// failures carry their own source's p_source_id and label, each source is classified against
// its own log types, and Flush hands everything to the sink before Close.
func TestIngestRecordsSources(t *testing.T) {
	sink := &collect{}
	in, err := ingest.New(context.Background(), sink, ingest.Options{LogTypes: logTypes(t, "Panther.Audit"), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	audit := &ingest.Source{Source: batch.Source{ID: "http-audit", Label: "Panther audit over HTTP"}, LogTypes: logTypes(t, "Panther.Audit")}
	r7 := &ingest.Source{Source: batch.Source{ID: "r7", Label: "Rapid7 pull"}, LogTypes: logTypes(t, "Rapid7.AuditLog")}
	r7Event := `{"action":"LOGIN","audit_id":"a1","result":"SUCCESS","access_method":"UI","product":"idr","description":"d","time":"2026-11-22T10:00:00Z"}`
	ctx := context.Background()
	var done sync.WaitGroup
	for i := range 50 {
		recs := [][]byte{[]byte(auditEvent(fmt.Sprint("A", i), "2026-11-22T10:00:00Z")), []byte("garbage")}
		if err := in.IngestRecords(ctx, audit, "req", recs, &done); err != nil {
			t.Fatal(err)
		}
		if err := in.IngestRecords(ctx, r7, "pull", [][]byte{[]byte(r7Event), []byte(auditEvent("X", "2026-11-22T10:00:00Z"))}, &done); err != nil {
			t.Fatal(err)
		}
	}
	done.Wait()
	if err := in.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	audits := sink.table("panther_logs.panther_audit")
	r7s := sink.table("panther_logs.rapid7_auditlog")
	fails := sink.table("panther_monitor.classification_failures")
	if len(audits) != 50 || len(r7s) != 50 || len(fails) != 100 {
		t.Fatalf("after Flush: %d audit rows, %d Rapid7 rows, %d failures", len(audits), len(r7s), len(fails))
	}
	for _, r := range audits {
		if r["p_source_id"] != "http-audit" || r["p_source_label"] != "Panther audit over HTTP" {
			t.Fatalf("audit row source %v / %v", r["p_source_id"], r["p_source_label"])
		}
	}
	for _, r := range r7s {
		if r["p_source_id"] != "r7" {
			t.Fatalf("Rapid7 row source %v", r["p_source_id"])
		}
	}
	bySource := map[string]int{}
	for _, f := range fails {
		bySource[f["p_source_id"].(string)+" "+fmt.Sprint(f["log_types"])]++
	}
	// The audit event sent by the Rapid7 source fails: that source only takes Rapid7.AuditLog.
	if bySource["http-audit [Panther.Audit]"] != 50 || bySource["r7 [Rapid7.AuditLog]"] != 50 {
		t.Errorf("failures by source: %v", bySource)
	}
	s, err := in.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s.Events["panther_audit"] != 50 || s.Events["rapid7_auditlog"] != 50 || s.Failures != 100 {
		t.Errorf("summary %+v", s)
	}
}

// TestJSONDocuments ingests CloudTrail-style files: pretty-printed {"Records": [...]}
// documents, one-line ones, a JSON array, and a JSON lines file with an envelope on a line.
func TestJSONDocuments(t *testing.T) {
	s, err := logschema.Parse([]byte(`schema: Test.Trail
parser:
  native:
    name: AWS.CloudTrail
fields:
  - name: eventName
    type: string
    required: true
  - name: eventTime
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: requestParameters
    type: json
`), "trail.yml")
	if err != nil {
		t.Fatal(err)
	}
	reg := logtypes.New()
	if err := reg.Add(s, false); err != nil {
		t.Fatal(err)
	}
	lt, _ := reg.Lookup("Test.Trail")
	event := func(name string) string {
		return fmt.Sprintf(`{"eventName":%q,"eventTime":"2026-11-21T10:00:00Z","requestParameters":{"key":"arn:aws:s3:::b/%s"}}`, name, name)
	}
	pretty := "{\n  \"Records\": [\n    " + event("A") + ",\n    " + strings.Replace(event("B"), ",", ",\n      ", -1) + "\n  ]\n}\n"
	oneLine := `{"Records":[` + event("C") + "," + event("D") + `]}`
	array := "[\n" + event("E") + ",\n" + event("F") + "\n]"
	jsonl := event("G") + "\n" + `{"Records":[` + event("H") + `,{"bad":1}]}` + "\n" + `{"Records":[` + event("I") + ` oops]}` + "\n"
	sink, sum := run(t, ingest.Options{LogTypes: []*logtypes.LogType{lt}},
		[2]string{"pretty.json", pretty}, [2]string{"oneline.json", oneLine}, [2]string{"array.json", array}, [2]string{"lines.jsonl", jsonl})
	var names []string
	for _, r := range sink.table("panther_logs.test_trail") {
		names = append(names, r["eventName"].(string))
	}
	sort.Strings(names)
	if got := strings.Join(names, ""); got != "ABCDEFGHI" || sum.Events["test_trail"] != 9 {
		t.Errorf("rows %q (summary %+v), want ABCDEFGHI", got, sum)
	}
	fails := sink.table("panther_monitor.classification_failures")
	if len(fails) != 2 || sum.Failures != 2 {
		t.Fatalf("%d failures, want 2 (the element without eventName, the broken envelope)", len(fails))
	}
	sort.Slice(fails, func(i, j int) bool { return fmt.Sprint(fails[i]["error"]) < fmt.Sprint(fails[j]["error"]) })
	if e := fails[0]["error"].(string); !strings.Contains(e, "want ',' or ']'") {
		t.Errorf("failure: %s", e)
	}
	if e := fails[1]["error"].(string); !strings.Contains(e, "required field eventName is missing") || fails[1]["raw"] != `{"bad":1}` || fails[1]["line"] != json.Number("2") {
		t.Errorf("failure: %v", fails[1])
	}
}

// TestSkippedRecords checks that a CSV header is skipped, neither a row nor a failure.
func TestSkippedRecords(t *testing.T) {
	s, err := logschema.Parse([]byte("schema: Test.CSV\nparser:\n  csv:\n    delimiter: ','\n    hasHeader: true\n    columns: [a, b]\nfields:\n  - name: a\n    type: string\n  - name: b\n    type: int\n"), "csv.yml")
	if err != nil {
		t.Fatal(err)
	}
	reg := logtypes.New()
	if err := reg.Add(s, false); err != nil {
		t.Fatal(err)
	}
	lt, _ := reg.Lookup("Test.CSV")
	_, sum := run(t, ingest.Options{LogTypes: []*logtypes.LogType{lt}}, [2]string{"x.csv", "a,b\nx,1\ny,2\nA,B\nz,nope\n"})
	if sum.Events["test_csv"] != 2 || sum.Skipped != 2 || sum.Failures != 1 {
		t.Errorf("summary %+v, want 2 rows, 2 headers skipped, 1 failure", sum)
	}
}

// TestCloudTrailCorpus ingests real CloudTrail data: events shipped one per line by Logstash,
// and the Records files (pretty-printed, gzip, with new, missing and broken fields) of the AWS
// CloudTrail processing library. Each event is a row; what is not an event is a failure.
func TestCloudTrailCorpus(t *testing.T) {
	const dir = "../../shared/corpora/cloudtrail"
	files, _ := filepath.Glob(filepath.Join(dir, "awslib", "*"))
	if len(files) == 0 {
		t.Skipf("corpus not at %s", dir)
	}
	files = append(files, filepath.Join(dir, "otrf-ec2_proxy_s3_exfiltration.jsonl"))
	var streams [][2]string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, [2]string{filepath.Base(f), string(data)})
	}
	sink, s := run(t, ingest.Options{LogTypes: logTypes(t, "AWS.CloudTrail")}, streams...)
	// 103 Logstash events, and 6 + 6 (gzip) + 3 + 2 + 2 + 1 + 1 events of the Records files.
	if got := s.Events["aws_cloudtrail"]; got != 124 {
		t.Errorf("%d events, want 124", got)
	}
	perFile := map[string]int{}
	for _, f := range sink.table("panther_monitor.classification_failures") {
		perFile[f["source"].(string)]++
	}
	want := map[string]int{
		"SQSMessageBody": 1, "SQSMessageBodyWrongFormat": 1, // SNS notifications, not events
		"SerializerAllFieldsNull.json":         1, // an event of nulls only
		"SerializerTestFileBadJsonFormat.json": 1, // a brace missing: the rest is one bad record
		"SerializerTestFileMissField.json":     1, // eventTime "ThisIsAWrongEventTime"
	}
	if fmt.Sprint(perFile) != fmt.Sprint(want) {
		t.Errorf("failures per file %v, want %v", perFile, want)
	}
	var logstash int
	for _, r := range sink.table("panther_logs.aws_cloudtrail") {
		if r["@timestamp"] != nil {
			logstash++
			if r["p_event_time"] != r["@timestamp"] {
				t.Errorf("p_event_time %v, @timestamp %v", r["p_event_time"], r["@timestamp"])
			}
		}
	}
	if logstash != 103 {
		t.Errorf("%d rows with @timestamp, want 103", logstash)
	}
}

// TestHeaderColumns ingests CSV files whose header names the columns, in small chunks spread
// over workers: the workers that never see the header still know the columns.
func TestHeaderColumns(t *testing.T) {
	s, err := logschema.Parse([]byte("schema: Test.Header\nparser:\n  csv:\n    delimiter: ','\n    hasHeader: true\nfields:\n  - name: n\n    type: bigint\n    required: true\n  - name: who\n    type: string\n    required: true\n"), "h.yml")
	if err != nil {
		t.Fatal(err)
	}
	reg := logtypes.New()
	if err := reg.Add(s, false); err != nil {
		t.Fatal(err)
	}
	lt, _ := reg.Lookup("Test.Header")
	var a, b strings.Builder
	a.WriteString("who,n\n")
	b.WriteString("n,extra,who\n")
	for i := range 2000 {
		fmt.Fprintf(&a, "user%d,%d\n", i, i)
		fmt.Fprintf(&b, "%d,x,other%d\n", i, i)
	}
	opts := ingest.Options{LogTypes: []*logtypes.LogType{lt}, Workers: 3, Stream: stream.Options{ChunkSize: 1024}}
	sink, sum := run(t, opts, [2]string{"a.csv", a.String()}, [2]string{"b.csv", b.String()})
	if sum.Events["test_header"] != 4000 || sum.Skipped != 2 || sum.Failures != 0 {
		t.Fatalf("summary %+v, want 4000 rows, 2 headers skipped", sum)
	}
	for _, r := range sink.table("panther_logs.test_header") {
		who := r["who"].(string)
		if !strings.HasSuffix(who, fmt.Sprint(r["n"])) {
			t.Fatalf("row %v: columns mixed up", r)
		}
	}
}

// TestMaxDelay checks that with Options.MaxDelay a worker hands its rows to the sink on its
// own, without Flush, once they have waited that long and not before; without it they wait for
// Flush. The clock is synctest's: the test fails if nothing arrives, and takes no real time.
func TestMaxDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	for _, maxDelay := range []time.Duration{0, delay} {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			sink := &collect{}
			in, err := ingest.New(ctx, sink, ingest.Options{Workers: 2, MaxDelay: maxDelay})
			if err != nil {
				t.Fatal(err)
			}
			src := &ingest.Source{Source: batch.Source{ID: "s"}, LogTypes: logTypes(t, "Panther.Audit")}
			var done sync.WaitGroup
			for i := range 3 {
				recs := [][]byte{[]byte(auditEvent(fmt.Sprint("A", i), "2026-11-22T10:00:00Z"))}
				if err := in.IngestRecords(ctx, src, "req", recs, &done); err != nil {
					t.Fatal(err)
				}
			}
			done.Wait()
			time.Sleep(delay - time.Millisecond)
			synctest.Wait()
			if got := len(sink.table("panther_logs.panther_audit")); got != 0 {
				t.Errorf("MaxDelay %v: the sink has %d rows before the delay, want 0", maxDelay, got)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			want := 3
			if maxDelay == 0 {
				time.Sleep(time.Hour) // without MaxDelay nothing is handed on, however long
				synctest.Wait()
				want = 0
			}
			if got := len(sink.table("panther_logs.panther_audit")); got != want {
				t.Errorf("MaxDelay %v: the sink has %d rows before Flush, want %d", maxDelay, got, want)
			}
			if _, err := in.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(sink.table("panther_logs.panther_audit")); got != 3 {
				t.Errorf("MaxDelay %v: %d rows after Close, want 3", maxDelay, got)
			}
		})
	}
}

// TestBatchBounds checks the flush policy's bounds in the middle of a job: a builder is handed
// to the sink as soon as it holds Options.BatchRows rows or Options.BatchBytes bytes, and the
// largest one as soon as a worker holds more than Options.MaxBuffered; the rest waits for Close.
func TestBatchBounds(t *testing.T) {
	f := func(name string, opts ingest.Options, records, want int) {
		t.Helper()
		ctx := context.Background()
		sink := &collect{}
		opts.Workers = 1
		in, err := ingest.New(ctx, sink, opts)
		if err != nil {
			t.Fatal(err)
		}
		src := &ingest.Source{Source: batch.Source{ID: "s"}, LogTypes: logTypes(t, "Panther.Audit")}
		var recs [][]byte
		for i := range records {
			recs = append(recs, []byte(auditEvent(fmt.Sprint("A", i), "2026-11-22T10:00:00Z")))
		}
		var done sync.WaitGroup
		if err := in.IngestRecords(ctx, src, "req", recs, &done); err != nil {
			t.Fatal(err)
		}
		done.Wait()
		if got := len(sink.table("panther_logs.panther_audit")); got != want {
			t.Errorf("%s: the sink has %d rows before Close, want %d", name, got, want)
		}
		if _, err := in.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(sink.table("panther_logs.panther_audit")); got != records {
			t.Errorf("%s: %d rows after Close, want %d", name, got, records)
		}
	}
	f("defaults", ingest.Options{}, 250, 0)
	f("BatchRows", ingest.Options{BatchRows: 100}, 250, 200)
	f("BatchBytes", ingest.Options{BatchBytes: 1}, 300, 256) // checked every 256 rows
	f("MaxBuffered", ingest.Options{MaxBuffered: 1}, 5, 5)
}
