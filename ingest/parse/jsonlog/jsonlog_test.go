package jsonlog_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
)

func compile(t testing.TB, yaml string) *batch.Schema {
	t.Helper()
	s, err := logschema.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := batch.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rows parses records and returns the built rows as JSON objects, or the error of each record.
func rows(t testing.TB, s *batch.Schema, recs ...string) ([]map[string]any, []error) {
	t.Helper()
	p := jsonlog.New(s)
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetSource(batch.Source{ID: "src-1", Label: "test source"})
	b.SetParseTime(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC))
	var errs []error
	for _, r := range recs {
		b.Begin()
		if err := p.Parse([]byte(r), b); err != nil {
			b.Rollback()
			errs = append(errs, err)
			continue
		}
		errs = append(errs, nil)
		b.End()
	}
	rec := b.Build()
	defer rec.Release()
	return recordJSON(t, rec), errs
}

func recordJSON(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	data, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return out
}

func auditSchema(t testing.TB) *batch.Schema {
	r, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := r.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	return lt.Table
}

func TestPantherAudit(t *testing.T) {
	s := auditSchema(t)
	got, errs := rows(t, s, `{"XForwardedFor": ["1.2.3.4", "5.6.7.8", "1.2.3.4"], "actionDescription": "Adds a new User role",
		"actionName": "CREATE_USER_ROLE", "actionParams": {"dynamic": {"input": {"name": "ITE Role"}}, "static": {}},
		"actionResult": "FAILED", "actor": {"attributes": {"email": "random@noreply.com", "emailVerified": false},
		"id": "PantherSSO_random@noreply.com", "name": "random@noreply.com", "type": "USER"},
		"errors": [{"message": "You cannot save a role"}], "pantherVersion": "1.53.7", "sourceIP": "1.2.3.4",
		"timestamp": "2023-02-09 21:45:59.352910070", "unknownKey": 1, "p_row_id": "spoofed"}`)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	r := got[0]
	want := map[string]string{
		"actionName":         `"CREATE_USER_ROLE"`,
		"actionResult":       `"FAILED"`,
		"actionParams":       `{"dynamic":"{\"input\":{\"name\":\"ITE Role\"}}","input":null,"static":"{}"}`,
		"actionDetails":      `null`,
		"actor":              `{"attributes":"{\"email\":\"random@noreply.com\",\"emailVerified\":false}","id":"PantherSSO_random@noreply.com","name":"random@noreply.com","type":"USER"}`,
		"errors":             `[{"message":"You cannot save a role"}]`,
		"XForwardedFor":      `["1.2.3.4","5.6.7.8","1.2.3.4"]`,
		"timestamp":          `"2023-02-09T21:45:59.35291Z"`,
		"p_event_time":       `"2023-02-09T21:45:59.35291Z"`,
		"p_parse_time":       `"2026-11-22T13:00:00Z"`,
		"p_log_type":         `"Panther.Audit"`,
		"p_source_id":        `"src-1"`,
		"p_source_label":     `"test source"`,
		"p_any_ip_addresses": `["1.2.3.4","5.6.7.8"]`,
		"p_any_trace_ids":    `["PantherSSO_random@noreply.com"]`,
		"p_any_usernames":    `["random@noreply.com"]`,
		"p_any_emails":       `["random@noreply.com"]`,
	}
	for k, w := range want {
		b, _ := json.Marshal(r[k])
		if string(b) != w {
			t.Errorf("%s = %s, want %s", k, b, w)
		}
	}
	if id, _ := r["p_row_id"].(string); len(id) != 32 || id == "spoofed" {
		t.Errorf("p_row_id = %q", r["p_row_id"])
	}
	if _, ok := r["unknownKey"]; ok {
		t.Error("a key the schema does not name became a column")
	}
}

func TestErrors(t *testing.T) {
	s := auditSchema(t)
	base := map[string]any{
		"actionName": "X", "actionResult": "SUCCEEDED", "actor": map[string]any{"id": "1", "type": "USER"},
		"timestamp": "2022-04-28T15:30:22Z", "pantherVersion": "1.0",
	}
	with := func(edit func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	f := func(rec, want string) {
		t.Helper()
		got, errs := rows(t, s, rec)
		if errs[0] == nil {
			t.Errorf("%s: parsed, want error %q", rec, want)
			return
		}
		if !strings.Contains(errs[0].Error(), want) {
			t.Errorf("%s: error %q, want %q", rec, errs[0], want)
		}
		if len(got) != 0 {
			t.Errorf("a refused record left %d rows", len(got))
		}
	}
	f(`{"actionName":`, "invalid JSON")
	f(`[1,2]`, "record is a JSON array, not an object")
	f(with(func(m map[string]any) { delete(m, "actionName") }), "required field actionName is missing")
	f(with(func(m map[string]any) { m["actionName"] = nil }), "required field actionName is missing")
	f(with(func(m map[string]any) { m["actionResult"] = "MAYBE" }), `field actionResult: value "MAYBE" is not allowed`)
	f(with(func(m map[string]any) { m["actor"] = map[string]any{"type": "USER"} }), "required field actor.id is missing")
	f(with(func(m map[string]any) { m["actor"] = "bob" }), "field actor: a string is not an object")
	f(with(func(m map[string]any) { m["timestamp"] = "yesterday" }), "field timestamp")
	f(with(func(m map[string]any) { m["timestamp"] = true }), "field timestamp: a true is not a timestamp")
	// A json field is checked whole, the keys scanned for indicators included.
	for _, bad := range []string{
		`{"email":"a@b.c",}`, `{"email":"a@b.c" "x":1}`, `{"email":"a\qb"}`, `{"email":}`,
		`{"x":{"email":"a@b.c",}}`, `{"email":"a@b.c","x":[1,}`,
	} {
		rec := strings.Replace(with(func(m map[string]any) {}), `"actor":{`, `"actor":{"attributes":`+bad+`,`, 1)
		f(rec, "invalid JSON")
	}
}

func TestRollbackLeavesNoTrace(t *testing.T) {
	s := auditSchema(t)
	good := `{"actionName":"A","actionResult":"SUCCEEDED","actor":{"id":"1","type":"USER","name":"n"},"errors":[{"message":"m"}],"XForwardedFor":["9.9.9.9"],"timestamp":"2022-04-28T15:30:22Z","pantherVersion":"1"}`
	// The bad record fails late (pantherVersion missing) after lists and indicators were written.
	bad := `{"actionName":"B","actionResult":"SUCCEEDED","actor":{"id":"2","type":"USER","name":"x"},"errors":[{"message":"e1"},{"message":"e2"}],"XForwardedFor":["8.8.8.8"],"sourceIP":"7.7.7.7","timestamp":"2022-04-28T15:30:22Z"}`
	got, errs := rows(t, s, good, bad, good)
	if errs[1] == nil {
		t.Fatal("bad record parsed")
	}
	if len(got) != 2 {
		t.Fatalf("got %d rows, want 2", len(got))
	}
	for i, r := range got {
		b, _ := json.Marshal([]any{r["actionName"], r["errors"], r["XForwardedFor"], r["p_any_ip_addresses"], r["p_any_usernames"]})
		if want := `["A",[{"message":"m"}],["9.9.9.9"],["9.9.9.9"],["n"]]`; string(b) != want {
			t.Errorf("row %d = %s, want %s", i, b, want)
		}
	}
}

func TestTypes(t *testing.T) {
	s := compile(t, `schema: Test.Types
fields:
  - name: s
    type: string
  - name: i
    type: int
  - name: small
    type: smallint
  - name: big
    type: bigint
  - name: f
    type: float
  - name: ok
    type: boolean
  - name: t
    type: timestamp
    timeFormats: [unix_ms, rfc3339]
    isEventTime: true
  - name: later
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: j
    type: json
  - name: emb
    type: object
    isEmbeddedJSON: true
    fields:
      - name: k
        type: string
  - name: list
    type: array
    element:
      type: bigint
`)
	got, errs := rows(t, s,
		`{"s": 42, "i": "7", "small": 0, "big": 9007199254740993, "f": "1.5", "ok": false, "t": 1651159822420, "j": {"a": [1, "x"]}, "emb": "{\"k\": \"v\"}", "list": [1, null, 3]}`,
		`{"s": "x", "i": 0, "ok": "TRUE", "later": "2022-01-01T00:00:00Z", "list": 5}`,
		`{"i": 2147483648}`,
		`{"small": 1.5}`,
		`{"ok": "maybe"}`,
		`{"emb": "{not json"}`,
		"{\"s\": \"bad \xff utf8\"}",
	)
	for i, want := range []string{"", "", "not a 32-bit integer", "not a 16-bit integer", "not a boolean", "embedded JSON", ""} {
		switch {
		case want == "" && errs[i] != nil:
			t.Errorf("record %d: %v", i, errs[i])
		case want != "" && (errs[i] == nil || !strings.Contains(errs[i].Error(), want)):
			t.Errorf("record %d: error %v, want %q", i, errs[i], want)
		}
	}
	if len(got) != 3 {
		t.Fatalf("got %d rows", len(got))
	}
	check := func(row int, col, want string) {
		t.Helper()
		b, _ := json.Marshal(got[row][col])
		if string(b) != want {
			t.Errorf("row %d %s = %s, want %s", row, col, b, want)
		}
	}
	check(0, "s", `"42"`)
	check(0, "i", `7`)
	check(0, "small", `0`)
	check(0, "big", `9007199254740993`)
	check(0, "f", `1.5`)
	check(0, "ok", `false`)
	check(0, "p_event_time", `"2022-04-28T15:30:22.42Z"`)
	check(0, "j", `"{\"a\":[1,\"x\"]}"`)
	check(0, "emb", `{"k":"v"}`)
	check(0, "list", `[1,null,3]`)
	check(1, "i", `0`)
	check(1, "ok", `true`)
	check(1, "list", `[5]`)
	check(1, "t", `null`)
	check(1, "p_event_time", `"2022-01-01T00:00:00Z"`)
	check(2, "s", "\"bad \uFFFD utf8\"")
	check(2, "p_event_time", `"2026-11-22T13:00:00Z"`) // no event time: parse time
	if s.Arrow.Field(0).Name != "s" || !slices.ContainsFunc(s.Arrow.Fields(), batch.IsJSON) {
		t.Errorf("arrow schema %v", s.Arrow)
	}
}

func BenchmarkPantherAudit(b *testing.B) {
	s := auditSchema(b)
	rec := []byte(`{"actionName":"UPDATE_USER","actionDescription":"Updates the information for a user","actionResult":"SUCCEEDED","actionParams":{"dynamic":{"input":{"email":"marge.4@springfield.gov","role":{"kind":"ID","value":"(redacted)"},"id":"1000148"}},"static":{}},"actor":{"id":"PantherSSO_homer.3@springfield.gov","type":"USER","name":"homer.3@springfield.gov","attributes":{"email":"homer.3@springfield.gov","emailVerified":true,"roleId":"af870fd0-0a3b-4a64-8bfb-98a33c862be8"}},"sourceIP":"187.12.30.233","XForwardedFor":["187.12.30.233","10.40.0.173"],"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","timestamp":"2026-11-15T12:50:32.055967336Z","pantherVersion":"1.110.14"}`)
	p := jsonlog.New(s)
	bl := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		bl.Begin()
		if err := p.Parse(rec, bl); err != nil {
			b.Fatal(err)
		}
		bl.End()
		if n++; n%8192 == 0 {
			bl.Build().Release()
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// TestPantherDecoding checks the rules Panther's decoder (encoding/json's) has and osprey
// follows: keys match fields without regard to case when no field has the exact name (and
// never replace a value from an exact match), and empty arrays are left out.
func TestPantherDecoding(t *testing.T) {
	s := compile(t, `schema: Test.Decoding
fields:
  - name: eventId
    type: string
  - name: TimeStamp
    type: bigint
  - name: list
    type: array
    element:
      type: string
  - name: obj
    type: object
    fields:
      - name: userName
        type: string
        indicators: [username]
`)
	f := func(rec, want string) {
		t.Helper()
		got, errs := rows(t, s, rec)
		if errs[0] != nil {
			t.Fatalf("%s: %v", rec, errs[0])
		}
		b, _ := json.Marshal([]any{got[0]["eventId"], got[0]["TimeStamp"], got[0]["list"], got[0]["obj"], got[0]["p_any_usernames"]})
		if string(b) != want {
			t.Errorf("%s: got %s, want %s", rec, b, want)
		}
	}
	f(`{"eventID":"e1","timestamp":7,"OBJ":{"username":"bob"}}`, `["e1",7,null,{"userName":"bob"},["bob"]]`)
	f(`{"TimeStamp":1,"timestamp":"not a number"}`, `[null,1,null,null,null]`)
	f(`{"timestamp":5,"TimeStamp":2}`, `[null,2,null,null,null]`)
	f(`{"eventId":"exact","EVENTID":"folded"}`, `["exact",null,null,null,null]`)
	f(`{"list":[]}`, `[null,null,null,null,null]`)
	f(`{"list":[""]}`, `[null,null,[""],null,null]`)
}

// TestJSONIndicators checks that indicators on a json field apply to every string inside it.
func TestJSONIndicators(t *testing.T) {
	s := compile(t, `schema: Test.JSONIndicators
fields:
  - name: params
    type: json
    indicators: [aws_arn]
  - name: embedded
    type: json
    isEmbeddedJSON: true
    indicators: [ip]
`)
	got, errs := rows(t, s, `{"params":{"key":"arn:aws:kms:us-east-1:123456789012:key/k1","n":1,"list":["x",{"deep":"arn:aws:s3:::bucket"}],"arn:aws:iam::111111111111:root":true},`+
		`"embedded":"[\"10.0.0.1\",{\"a\":\"not an ip\",\"b\":\"2001:db8::1\"}]"}`)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	b, _ := json.Marshal([]any{got[0]["p_any_aws_arns"], got[0]["p_any_aws_account_ids"], got[0]["p_any_ip_addresses"]})
	if want := `[["arn:aws:kms:us-east-1:123456789012:key/k1","arn:aws:s3:::bucket"],["123456789012"],["10.0.0.1","2001:db8::1"]]`; string(b) != want {
		t.Errorf("got %s, want %s (keys are not values)", b, want)
	}
}

// TestJSONFieldsStayValid checks that a json column holds valid JSON even when the record has
// raw control characters inside strings, which some writers leave and the decoder tolerates.
func TestJSONFieldsStayValid(t *testing.T) {
	s := compile(t, "schema: Test.Raw\nfields:\n  - name: j\n    type: json\n  - name: s\n    type: string\n")
	got, errs := rows(t, s, "{\"j\":{\"k\":\"a\x07b\tc\",\"n\":[1, 2]},\"s\":\"x\ty\"}")
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got[0]["j"] != `{"k":"a\u0007b\u0009c","n":[1,2]}` || got[0]["s"] != "x\ty" {
		t.Errorf("j = %q, s = %q", got[0]["j"], got[0]["s"])
	}
}

// A key given twice keeps its last value, and the row keeps nothing of the earlier one: not
// its indicators (which pointed into the bytes the last value overwrote), not its event time.
func TestRepeatedKeyKeepsLastValue(t *testing.T) {
	s := compile(t, `schema: Test.Repeated
fields:
  - name: host
    type: string
    indicators: [domain]
  - name: t
    type: timestamp
    timeFormats: [rfc3339]
    isEventTime: true
  - name: obj
    type: object
    fields:
      - name: ip
        type: string
        indicators: [ip]
  - name: params
    type: json
    indicators: [ip]
`)
	got, errs := rows(t, s,
		`{"host":"first.example.com","t":"2026-01-01T00:00:00Z","obj":{"ip":"10.0.0.1"},"params":{"a":"10.0.0.2"},`+
			`"host":"x","obj":{"ip":"10.0.0.3"},"t":"2026-02-02T00:00:00Z","params":{"b":"10.0.0.4"},"host":"later.example.org"}`,
		// The case the fuzz target found: an invalid byte made the first value longer than the
		// bytes the second one wrote over it.
		"{\"host\":\"0\xea00\",\"host\":[]}",
		`{"t":"2026-03-03T00:00:00Z","t":null}`)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	b, _ := json.Marshal([]any{got[0]["host"], got[0]["p_any_domain_names"], got[0]["p_any_ip_addresses"], got[0]["p_event_time"]})
	if want := `["later.example.org",["later.example.org"],["10.0.0.3","10.0.0.4"],"2026-02-02T00:00:00Z"]`; string(b) != want {
		t.Errorf("record 0: got %s, want %s", b, want)
	}
	b, _ = json.Marshal([]any{got[1]["host"], got[1]["p_any_domain_names"]})
	if want := `["[]",["[]"]]`; string(b) != want {
		t.Errorf("record 1: got %s, want %s", b, want)
	}
	if got, want := got[2]["p_event_time"], "2026-11-22T13:00:00Z"; got != want {
		t.Errorf("record 2: event time %v, want the parse time %v (the time given was replaced by null)", got, want)
	}
}
