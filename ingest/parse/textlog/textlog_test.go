package textlog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/parse/textlog"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// parser compiles a schema with a text parser.
func parser(t *testing.T, yaml string) (*textlog.Parser, *batch.Schema) {
	t.Helper()
	s, err := logschema.Parse([]byte(yaml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := batch.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := textlog.New(s.Parser, c, jsonlog.New(c))
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// parse returns each record's row as JSON, or "error: ..." / "skip".
func parse(t *testing.T, p *textlog.Parser, s *batch.Schema, recs ...string) []string {
	t.Helper()
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetParseTime(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	var out []string
	var ok []int
	for i, r := range recs {
		b.Begin()
		err := p.Parse([]byte(r), b)
		switch {
		case errors.Is(err, textlog.ErrSkip):
			b.Rollback()
			out = append(out, "skip")
		case err != nil:
			b.Rollback()
			out = append(out, "error: "+err.Error())
		default:
			b.End()
			out = append(out, "")
			ok = append(ok, i)
		}
	}
	rec := b.Build()
	defer rec.Release()
	for row, i := range ok {
		out[i] = trimStandard(string(batch.AppendRowJSON(nil, rec, row)))
	}
	return out
}

// trimStandard drops the p_ fields that change from run to run.
func trimStandard(row string) string {
	for _, f := range []string{"p_row_id", "p_parse_time", "p_source_id", "p_source_label", "p_log_type"} {
		i := strings.Index(row, `,"`+f+`":"`)
		if i < 0 {
			continue
		}
		end := strings.Index(row[i+len(f)+5:], `"`)
		row = row[:i] + row[i+len(f)+5+end+1:]
	}
	return row
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d: %q", len(got), len(want), got)
	}
	for i := range got {
		if strings.HasSuffix(want[i], "...") && strings.HasPrefix(got[i], strings.TrimSuffix(want[i], "...")) {
			continue
		}
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestFastMatch(t *testing.T) {
	p, s := parser(t, `schema: Test.Access
parser:
  fastmatch:
    match:
      - '%{ip} - %{user} [%{time}] "%{method} %{path} %{proto}" %{status} %{bytes} "%{referer}" "%{agent}"'
      - '%{ip} - %{user} [%{time}] "%{method} %{path} %{proto}" %{status} %{bytes}'
    emptyValues: ["-"]
fields:
  - name: ip
    type: string
    indicators: [ip]
    required: true
  - name: user
    type: string
  - name: time
    type: timestamp
    timeFormat: "%d/%b/%Y:%H:%M:%S %z"
    isEventTime: true
  - name: method
    type: string
  - name: path
    type: string
  - name: proto
    type: string
  - name: status
    type: smallint
  - name: bytes
    type: bigint
  - name: referer
    type: string
  - name: agent
    type: string
`)
	check(t, parse(t, p, s,
		`10.1.2.3 - alice [21/Nov/2026:10:00:01 +0100] "GET /a?b=1 HTTP/1.1" 200 512 "https://ex.com/" "curl/8.4 \"quoted\""`,
		`10.1.2.3 - - [21/Nov/2026:10:00:01 +0000] "POST /login HTTP/2.0" 401 -`,
		`10.1.2.3 - - [21/Nov/2026:10:00:01 +0000] "POST /login HTTP/2.0" 401 - trailing`,
		`10.1.2.3 - - [21/Nov/2026:10:00:01 +0000] "POST /login HTTP/2.0" abc 12`,
		`garbage`,
	),
		`{"ip":"10.1.2.3","user":"alice","time":"2026-11-21T09:00:01Z","method":"GET","path":"/a?b=1","proto":"HTTP/1.1","status":200,"bytes":512,"referer":"https://ex.com/","agent":"curl/8.4 \"quoted\"","p_event_time":"2026-11-21T09:00:01Z","p_any_ip_addresses":["10.1.2.3"]}`,
		`{"ip":"10.1.2.3","time":"2026-11-21T10:00:01Z","method":"POST","path":"/login","proto":"HTTP/2.0","status":401,"p_event_time":"2026-11-21T10:00:01Z","p_any_ip_addresses":["10.1.2.3"]}`,
		`error: field bytes: "- trailing" is not a 64-bit integer`, // the last field takes the rest
		`error: field status: "abc" is not a 16-bit integer`,
		`error: matches none of the 2 fastmatch patterns`,
	)
}

func TestFastMatchTailAndAnonymous(t *testing.T) {
	p, s := parser(t, `schema: Test.Tail
parser:
  fastmatch:
    match: ['%{ts} [%{service}@%{host}] [%{} %{level}] %{message}']
    trimSpace: true
fields:
  - name: ts
    type: timestamp
    timeFormat: rfc3339
  - name: service
    type: string
  - name: host
    type: string
    indicators: [hostname]
  - name: level
    type: string
    validate:
      allow: [DEBUG, INFO, WARN, ERROR]
  - name: message
    type: string
`)
	check(t, parse(t, p, s,
		`2026-11-20T14:32:05Z [billing@10.0.0.7] [x INFO] Something went wrong: [again]  `,
		`2026-11-20T14:32:05Z [billing@db1.internal] [x TRACE] nope`,
	),
		`{"ts":"2026-11-20T14:32:05Z","service":"billing","host":"10.0.0.7","level":"INFO","message":"Something went wrong: [again]","p_event_time":"2026-11-22T12:00:00Z","p_any_ip_addresses":["10.0.0.7"]}`,
		`error: field level: value "TRACE" is not allowed`,
	)
}

func TestRegex(t *testing.T) {
	p, s := parser(t, `schema: Test.Juniper
parser:
  regex:
    patternDefinitions:
      JTIME: '[A-Z][a-z]{2} +\d?\d \d\d:\d\d:\d\d'
      API_KEY: '[a-fA-F0-9]{32}'
    match:
      - '^%{JTIME:timestamp}'
      - ' %{HOSTNAME:host} \[mws-audit\]'
      - '\[%{DATA:log_level}\] ?'
      - '(\[%{API_KEY:apikey}\]|\[%{USERNAME:username}\]) '
      - '(\[%{IP:request_ip}\] )?'
      - '%{GREEDYDATA:message}'
fields:
  - name: timestamp
    type: timestamp
    timeFormat: '%b %d %H:%M:%S'
  - name: host
    type: string
  - name: log_level
    type: string
  - name: apikey
    type: string
  - name: username
    type: string
    indicators: [username]
  - name: request_ip
    type: string
    indicators: [ip]
  - name: message
    type: string
`)
	check(t, parse(t, p, s,
		`Nov 21 16:14:23 my-jwas [mws-audit][INFO] [mykonos] [10.10.0.117] Logged in successfully`,
		`Nov 21 19:16:22 my-jwas [mws-audit][INFO] [ea77722a8516b0d1135abb19b1982852] Deactivate response 1832840420318015488`,
		`Nov 21 19:16:22 something else`,
	),
		`{"timestamp":"2026-11-21T16:14:23Z","host":"my-jwas","log_level":"INFO","username":"mykonos","request_ip":"10.10.0.117","message":"Logged in successfully","p_event_time":"2026-11-22T12:00:00Z","p_any_ip_addresses":["10.10.0.117"],"p_any_usernames":["mykonos"]}`,
		`{"timestamp":"2026-11-21T19:16:22Z","host":"my-jwas","log_level":"INFO","apikey":"ea77722a8516b0d1135abb19b1982852","message":"Deactivate response 1832840420318015488","p_event_time":"2026-11-22T12:00:00Z"}`,
		`error: does not match the regex`,
	)
}

func TestCSV(t *testing.T) {
	p, s := parser(t, `schema: Test.CSV
parser:
  csv:
    delimiter: ","
    columns: [year, month, day, time, action, ip_address, "", message]
    emptyValues: ["-"]
    expandFields:
      timestamp: '%{year}-%{month}-%{day}T%{time}Z'
fields:
  - name: timestamp
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
    required: true
  - name: action
    type: string
    required: true
  - name: ip_address
    type: string
    indicators: [ip]
  - name: message
    type: string
  - name: details
    type: json
`)
	check(t, parse(t, p, s,
		`2026,11,21,10:35:23,SEND,192.168.1.3,dropped,"PING, ""quoted"""`,
		`2026,11,21,10:35:25,RESTART,-,x,System restarts`,
		`2026,11,21,10:35:25,RESTART,-,x`,
		`2026,11,21,10:35:25,-,-,x,no action`,
		`2026,11,21,10:35:25,RESTART,-,x,"unterminated`,
	),
		`{"timestamp":"2026-11-21T10:35:23Z","action":"SEND","ip_address":"192.168.1.3","message":"PING, \"quoted\"","p_event_time":"2026-11-21T10:35:23Z","p_any_ip_addresses":["192.168.1.3"]}`,
		`{"timestamp":"2026-11-21T10:35:25Z","action":"RESTART","message":"System restarts","p_event_time":"2026-11-21T10:35:25Z"}`,
		`error: csv row has 7 values, want 8`,
		`error: required field action is missing`,
		`error: csv: unterminated quoted value at byte 32`,
	)
}

func TestCSVHeader(t *testing.T) {
	const schema = `schema: Test.Flow
parser:
  csv:
    delimiter: " "
    hasHeader: true
    %s
fields:
  - name: version
    type: int
  - name: account_id
    type: string
    indicators: [aws_account_id]
  - name: srcaddr
    type: string
    indicators: [ip]
  - name: bytes
    type: bigint
`
	// With columns, the header is recognized by its names ('-' and '_' alike) and skipped.
	p, s := parser(t, strings.Replace(schema, "%s", "columns: [version, account_id, srcaddr, bytes]", 1))
	check(t, parse(t, p, s,
		"version account-id srcaddr bytes",
		"2 123456789012 172.31.16.139 4249",
	),
		"skip",
		`{"version":2,"account_id":"123456789012","srcaddr":"172.31.16.139","bytes":4249,"p_event_time":"2026-11-22T12:00:00Z","p_any_ip_addresses":["172.31.16.139"],"p_any_aws_account_ids":["123456789012"]}`,
	)
	// Without columns, the first row names them; a repeated header is skipped too.
	p, s = parser(t, strings.Replace(schema, "%s", "", 1))
	check(t, parse(t, p, s,
		"srcaddr version bytes",
		"10.0.0.1 2 100",
		"srcaddr version bytes",
		"10.0.0.2 2",
	),
		"skip",
		`{"version":2,"srcaddr":"10.0.0.1","bytes":100,"p_event_time":"2026-11-22T12:00:00Z","p_any_ip_addresses":["10.0.0.1"]}`,
		"skip",
		`error: csv row has 2 values, want 3`,
	)
}

func TestJSONValuesInText(t *testing.T) {
	p, s := parser(t, `schema: Test.Embedded
parser:
  fastmatch:
    match: ['%{level} %{ctx} %{tags}']
fields:
  - name: level
    type: string
  - name: ctx
    type: object
    fields:
      - name: user
        type: string
        indicators: [email]
  - name: tags
    type: json
`)
	check(t, parse(t, p, s,
		`warn {"user":"a@b.example"} ["x",1]`,
		`warn {"user":nope} plain`,
	),
		`{"level":"warn","ctx":{"user":"a@b.example"},"tags":["x",1],"p_event_time":"2026-11-22T12:00:00Z","p_any_emails":["a@b.example"]}`,
		`error: field ctx: a string is not an object`,
	)
}

func TestSchemaErrors(t *testing.T) {
	f := func(parserYAML, want string) {
		t.Helper()
		s, err := logschema.Parse([]byte("schema: Test.Bad\nparser:\n"+parserYAML+"fields:\n  - name: a\n    type: string\n"), "bad.yml")
		if err != nil {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want %q", err, want)
			}
			return
		}
		c, err := batch.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = textlog.New(s.Parser, c, jsonlog.New(c))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	f("  fastmatch:\n    match: ['%{a}%{b}']\n", "need text between them")
	f("  fastmatch:\n    match: ['%{a']\n", "unclosed")
	f("  fastmatch:\n    match: ['no fields']\n", "has no %{field}")
	f("  regex:\n    match: ['%{NOPE:a}']\n", "unknown pattern %{NOPE}")
	f("  regex:\n    match: ['(?<=x)a']\n", "regex")
	f("  regex:\n    patternDefinitions: {A: '%{B}', B: '%{A}'}\n    match: ['%{A:a}']\n", "loop")
	f("  csv:\n    delimiter: ';;'\n    columns: [a]\n", "single character")
	f("  csv:\n    delimiter: ','\n", "columns or hasHeader")
	f("  fastmatch:\n    match: ['%{a}']\n    expandFields: {b: '%{a'}\n", "expandFields b")
}

func TestRequiredLiterals(t *testing.T) {
	f := func(parts []string, want string) {
		t.Helper()
		lits, err := textlog.RequiredLiterals(parts, map[string]string{"Q": `[^"]*`})
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%q", lits)
		if got != want {
			t.Errorf("%q: got %s, want %s", parts, got, want)
		}
	}
	f([]string{`^%{NOTSPACE:a} \[mws-audit\] "%{Q:b}"`, `( x)?`, `(?i:CASE)`, `(y|z)`, `w+`, `v{2}`}, `[" [mws-audit] \"" "\"" "w" "v" "v"]`)
	f([]string{`%{GREEDYDATA:all}`}, `[]`)
}

func TestEmptyTypedValues(t *testing.T) {
	p, s := parser(t, "schema: Test.Empty\nparser:\n  csv:\n    columns: [a, n, t]\nfields:\n  - name: a\n    type: string\n  - name: n\n    type: int\n  - name: t\n    type: timestamp\n    timeFormat: unix\n")
	check(t, parse(t, p, s, `,,`, `x,1,1795268531`),
		`{"a":"","p_event_time":"2026-11-22T12:00:00Z"}`,
		`{"a":"x","n":1,"t":"2026-11-21T13:42:11Z","p_event_time":"2026-11-22T12:00:00Z"}`)
}
