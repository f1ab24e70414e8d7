package syslog_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/syslog"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

const schema5424 = `schema: Syslog.RFC5424
parser:
  native:
    name: Syslog.RFC5424
fields:
  - name: priority
    type: smallint
    required: true
  - name: facility
    type: smallint
  - name: severity
    type: smallint
  - name: version
    type: int
  - name: timestamp
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: hostname
    type: string
    indicators: [hostname]
  - name: appname
    type: string
  - name: procid
    type: string
  - name: msgid
    type: string
  - name: structured_data
    type: json
  - name: message
    type: string
`

const schema3164 = `schema: Syslog.RFC3164
parser:
  native:
    name: Syslog.RFC3164
fields:
  - name: priority
    type: smallint
  - name: facility
    type: smallint
  - name: severity
    type: smallint
  - name: timestamp
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: hostname
    type: string
  - name: appname
    type: string
  - name: procid
    type: string
  - name: message
    type: string
  - name: extra
    type: string
`

var parseTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func compile(t testing.TB, yaml string) *batch.Schema {
	t.Helper()
	s, err := logschema.Parse([]byte(yaml), "syslog.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := batch.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rows parses records and returns each row's JSON without the p_ fields of the run, or the error.
func rows(t testing.TB, s *batch.Schema, f syslog.Format, recs ...string) []string {
	t.Helper()
	p, err := syslog.New(s, f)
	if err != nil {
		t.Fatal(err)
	}
	b := batch.NewBuilder(s, batch.NewRowIDs())
	b.SetParseTime(parseTime)
	out := make([]string, len(recs))
	var ok []int
	for i, r := range recs {
		b.Begin()
		if err := p.Parse([]byte(r), b); err != nil {
			b.Rollback()
			out[i] = "error: " + err.Error()
			continue
		}
		b.End()
		ok = append(ok, i)
	}
	rec := b.Build()
	defer rec.Release()
	for row, i := range ok {
		js := string(batch.AppendRowJSON(nil, rec, row))
		out[i] = js[:strings.Index(js, `,"p_log_type"`)] + "}"
	}
	return out
}

func TestRFC5424(t *testing.T) {
	s := compile(t, schema5424)
	f := func(in, want string) {
		t.Helper()
		if got := rows(t, s, syslog.RFC5424, in)[0]; got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	// The examples of RFC 5424, section 6.5.
	f(`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8`,
		`{"priority":34,"facility":4,"severity":2,"version":1,"timestamp":"2003-10-11T22:14:15.003Z","hostname":"mymachine.example.com","appname":"su","msgid":"ID47","message":"BOM'su root' failed for lonvick on /dev/pts/8"}`)
	f(`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
		`{"priority":165,"facility":20,"severity":5,"version":1,"timestamp":"2003-08-24T12:14:15.000003Z","hostname":"192.0.2.1","appname":"myproc","procid":"8710","message":"%% It's time to make the do-nuts."}`)
	f(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		`{"priority":165,"facility":20,"severity":5,"version":1,"timestamp":"2003-10-11T22:14:15.003Z","hostname":"mymachine.example.com","appname":"evntslog","msgid":"ID47","structured_data":{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"},"examplePriority@32473":{"class":"high"}}}`)
	f("<13>1 - - - - - [id esc=\"a \\\"quoted\\\" \\] value\"] \xef\xbb\xbfhello",
		`{"priority":13,"facility":1,"severity":5,"version":1,"structured_data":{"id":{"esc":"a \"quoted\" ] value"}},"message":"hello"}`)
	f(`<34>1 2026-11-21T08:00:00Z host app 1 - -`,
		`{"priority":34,"facility":4,"severity":2,"version":1,"timestamp":"2026-11-21T08:00:00Z","hostname":"host","appname":"app","procid":"1"}`)
	for in, want := range map[string]string{
		`<34>Oct 11 22:14:15 mymachine su: 'su root' failed`: "want <PRI>VERSION",
		`34>1 - - - - - -`:                            "no <PRI>",
		`<999>1 - - - - - -`:                          "bad <PRI>",
		`<34>1 2003-10-11T22:14:15.003Z host app`:     "ends early",
		`<34>1 yesterday host app - - - msg`:          "timestamp",
		`<34>1 - host app - - [id a="1" msg`:          "STRUCTURED-DATA",
		`<34>1 - host app - - nope`:                   "STRUCTURED-DATA",
		`<34>1 - host app - - [id a=1]`:               "STRUCTURED-DATA",
		`<34>1 2003-10-11T22:14:15.003Z - - - - -`:    "",
		`<34>1 2003-10-11T22:14:15.003Z - - - - -msg`: "STRUCTURED-DATA",
	} {
		got := rows(t, s, syslog.RFC5424, in)[0]
		if want == "" {
			if strings.HasPrefix(got, "error") {
				t.Errorf("%s: %s", in, got)
			}
			continue
		}
		if !strings.HasPrefix(got, "error") || !strings.Contains(got, want) {
			t.Errorf("%s: got %s, want an error with %q", in, got, want)
		}
	}
}

func TestRFC3164(t *testing.T) {
	s := compile(t, schema3164)
	f := func(in, want string) {
		t.Helper()
		if got := rows(t, s, syslog.RFC3164, in)[0]; got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	f(`<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
		`{"priority":34,"facility":4,"severity":2,"timestamp":"2026-10-11T22:14:15Z","hostname":"mymachine","appname":"su","message":"'su root' failed for lonvick on /dev/pts/8"}`)
	// Files leave out the PRI; the year is the one before the parse time (Dec is last year's).
	f(`Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186`,
		`{"timestamp":"2025-12-10T06:55:46Z","hostname":"LabSZ","appname":"sshd","procid":"24200","message":"Invalid user webmaster from 173.234.31.186"}`)
	f(`Jul  3 04:08:03 combo syslogd 1.4.1: restart.`,
		`{"timestamp":"2026-07-03T04:08:03Z","hostname":"combo","appname":"syslogd","message":"1.4.1: restart."}`)
	f(`Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0`,
		`{"timestamp":"2026-06-14T15:16:01Z","hostname":"combo","appname":"sshd(pam_unix)","procid":"19939","message":"authentication failure; logname= uid=0"}`)
	f(`<13>2026-11-21T09:30:00.123+01:00 web-1 nginx[77]: GET /`,
		`{"priority":13,"facility":1,"severity":5,"timestamp":"2026-11-21T08:30:00.123Z","hostname":"web-1","appname":"nginx","procid":"77","message":"GET /"}`)
	f(`Nov 21 10:00:00.250 fw01 kernel: drop`,
		`{"timestamp":"2026-11-21T10:00:00.25Z","hostname":"fw01","appname":"kernel","message":"drop"}`)
	f(`Nov 21 10:00:00 kernel: no hostname`,
		`{"timestamp":"2026-11-21T10:00:00Z","appname":"kernel","message":"no hostname"}`)
	f(`Nov 21 10:00:00 host`, `{"timestamp":"2026-11-21T10:00:00Z","hostname":"host"}`)
	for _, in := range []string{`hello world`, `<34>hello`, `Foo 21 10:00:00 host a: b`, `Nov 41 10:00:00 host a: b`, `Nov 21 10:00:00host`} {
		if got := rows(t, s, syslog.RFC3164, in)[0]; !strings.HasPrefix(got, "error") {
			t.Errorf("%s: parsed as %s", in, got)
		}
	}
}

func TestChecks(t *testing.T) {
	if syslog.Check5424([]byte(`<34>1 -`)) != nil || syslog.Check5424([]byte(`<34>Oct`)) == nil || syslog.Check5424([]byte(`{"a":1}`)) == nil {
		t.Error("Check5424")
	}
	if syslog.Check3164([]byte(`Oct 11`)) != nil || syslog.Check3164([]byte(`<34>Oct`)) != nil || syslog.Check3164([]byte(`{"a":1}`)) == nil {
		t.Error("Check3164")
	}
}

func TestSchemaTypes(t *testing.T) {
	s := compile(t, "schema: Bad.Syslog\nfields:\n  - name: priority\n    type: string\n")
	if _, err := syslog.New(s, syslog.RFC3164); err == nil || !strings.Contains(err.Error(), "cannot fill column priority") {
		t.Errorf("error %v", err)
	}
}

// TestLoghub parses real syslog files (loghub's Linux and OpenSSH samples): every line parses.
func TestLoghub(t *testing.T) {
	s := compile(t, schema3164)
	for _, name := range []string{"loghub-Linux_2k.log", "loghub-OpenSSH_2k.log"} {
		path := "../../../../shared/corpora/syslog/" + name
		f, err := os.Open(path)
		if err != nil {
			t.Skipf("corpus not available: %v", err)
		}
		var lines []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		got := rows(t, s, syslog.RFC3164, lines...)
		bad := 0
		for i, r := range got {
			if strings.HasPrefix(r, "error") {
				bad++
				if bad <= 5 {
					t.Errorf("%s:%d: %s: %s", name, i+1, lines[i], r)
				}
			} else if !strings.Contains(r, `"appname":`) || !strings.Contains(r, `"timestamp":`) {
				t.Errorf("%s:%d: no appname or timestamp: %s", name, i+1, r)
			}
		}
		if len(lines) != 2000 || bad > 0 {
			t.Errorf("%s: %d lines, %d failed", name, len(lines), bad)
		}
	}
}
