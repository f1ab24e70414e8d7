package logtypes_test

import (
	"errors"
	"testing"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
)

// The fuzz targets of the parser families. Each feeds records to a log type's parser and holds
// it to one property: it does not panic, a record it accepts makes one row that fits the
// table (batch.Schema.Check: columns, UTF-8, valid JSON, required and allowed values, sorted
// distinct indicators), and a record it refuses leaves nothing behind. Run one with
//
//	go test -run '^$' -fuzz FuzzCSV -fuzztime 1m ./ingest/logtypes/

// fuzzSchema exercises every type of the schema language through the JSON decoder.
const fuzzSchema = `schema: Fuzz.AllTypes
fields:
  - name: s
    type: string
    indicators: [ip, domain, url, email, aws_arn, md5, sha256, mac]
  - name: req
    type: string
    required: true
    validate:
      allow: [a, b, c]
  - name: i
    type: int
  - name: si
    type: smallint
  - name: bi
    type: bigint
  - name: f
    type: float
  - name: bo
    type: boolean
  - name: t
    type: timestamp
    timeFormats: [rfc3339, unix_ms, "%d/%b/%Y:%H:%M:%S %z", "layout=Jan 2 2006"]
    isEventTime: true
  - name: t2
    type: timestamp
    timeFormat: cloudflare
    isEventTime: true
  - name: ip
    type: string
    validate:
      ip: any
  - name: obj
    type: object
    fields:
      - name: x
        type: string
        required: true
        indicators: [hostname]
      - name: y
        type: array
        element:
          type: bigint
  - name: emb
    type: object
    isEmbeddedJSON: true
    fields:
      - name: z
        type: string
        indicators: [net_addr]
  - name: list
    type: array
    element:
      type: object
      fields:
        - name: v
          type: string
          indicators: [aws_account_id, aws_instance_id]
  - name: j
    type: json
    indicators: [ip]
    fields:
      - name: user
        type: string
        indicators: [username]
  - name: renamed
    type: string
    rename:
      from: old name
  - name: masked
    type: string
    mask:
      type: sha1
  - name: joined
    type: string
    concat:
      paths: [req, obj.x]
      separator: "-"
  - name: part
    type: string
    split:
      from: s
      separator: "@"
      index: -1
`

func fuzzLogType(t testing.TB, name string) *logtypes.LogType {
	t.Helper()
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if name == "Fuzz.AllTypes" {
		s, err := logschema.Parse([]byte(fuzzSchema), "fuzz.yml")
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Add(s, false); err != nil {
			t.Fatal(err)
		}
	}
	lt, err := reg.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return lt
}

// fuzzParse parses records with a fresh parser and builder and checks the property.
func fuzzParse(t *testing.T, lt *logtypes.LogType, recs ...[]byte) {
	p, err := lt.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	b := batch.NewBuilder(lt.Table, batch.NewRowIDs())
	rows := 0
	for _, rec := range recs {
		b.Begin()
		if err := p.Parse(rec, b); err != nil {
			b.Rollback()
			if err.Error() == "" && !errors.Is(err, logtypes.ErrSkip) {
				t.Fatal("an error without a message")
			}
			if b.Rows() != rows {
				t.Fatalf("a refused record left a row (%d rows, want %d)", b.Rows(), rows)
			}
			continue
		}
		b.End() // panics when a column did not get exactly one value
		rows++
	}
	out := b.Build()
	defer out.Release()
	if int(out.NumRows()) != rows {
		t.Fatalf("built %d rows, want %d", out.NumRows(), rows)
	}
	if err := lt.Table.Check(out); err != nil {
		t.Fatalf("a row does not fit the table: %v", err)
	}
}

func fuzzTarget(f *testing.F, logType string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lt := fuzzLogType(f, logType)
	f.Fuzz(func(t *testing.T, rec []byte) { fuzzParse(t, lt, rec) })
}

func FuzzJSON(f *testing.F) {
	fuzzTarget(f, "Fuzz.AllTypes",
		`{"s":"a@b.example","req":"a","i":1,"si":-2,"bi":9007199254740993,"f":1.5e3,"bo":true,"t":"2026-11-21T10:00:00Z","ip":"::1","obj":{"x":"10.0.0.1","y":[1,2]},"emb":"{\"z\":\"[::1]:80\"}","list":[{"v":"123456789012"}],"j":{"user":"u","k":["1.2.3.4"]},"old name":"r","masked":"m"}`,
		`{"req":"b","t":1795268531000,"t2":"1795268531","i":"7","f":"2","bo":"false","list":{"v":"i-0123"},"obj":{"x":"h"},"j":"[\"x\"]"}`,
		`{"req":"c","t":"21/Nov/2026:10:00:00 +0100","s":"arn:aws:ec2:us-east-1:123456789012:instance/i-1","obj":null,"list":[],"j":null}`,
		`{"req":"d"}`, `{"req":"a","i":2147483648}`, `{"req":"a","t":"Nov 21 2026"}`, `{"req":"a","ip":"nope"}`,
		`{"req":"a","emb":"{\"z\":1}"}`, `{"req":"a","REQ":"b","Obj":{"X":"y"}}`, `{"req":"a","s":"\ud800\u00e9\xff"}`,
		`[1]`, `{`, ``, `{"req":"a"} x`, `{"req":"a","obj":{"x":""}}`)
}

func FuzzFastMatch(f *testing.F) {
	fuzzTarget(f, "Apache.AccessCombined",
		`198.51.100.77 - jordan [21/Nov/2026:10:20:01 +0000] "GET /a HTTP/1.1" 200 228112 "https://x.example/" "Mozilla/5.0"`,
		`192.0.2.66 - - [22/Nov/2026:08:31:00 +0000] "-" 408 - "-" "-"`,
		`1.2.3.4 - - [21/Nov/2026:10:20:01 +0000] "GET /\"q\" HTTP/1.1" 200 -1 "a\\" "b"`,
		`x - - [`, `"" "" "" [] "" "" ""`)
}

func FuzzRegex(f *testing.F) {
	fuzzTarget(f, "AWS.ALB",
		`https 2026-11-21T10:15:32.407712Z app/shop-prod/50dc6c495c0c9188 198.51.100.77:53221 10.20.1.10:8080 0.001 0.048 0.000 200 200 842 5122 "GET https://shop.example:443/api?id=812 HTTP/2.0" "Mozilla/5.0" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-api/73e2d6bc24d8a067 "Root=1-673f1a2b-0a1b2c3d" "shop.example" "arn:aws:acm:eu-west-1:123456789012:certificate/1" 1 2026-11-21T10:15:32.358000Z "forward" "-" "-" "10.20.1.10:8080" "200" "-" "-" TID_0a1b`,
		`http 2026-11-21T10:16:01.120001Z app/x/1 192.0.2.66:40122 - -1 -1 -1 301 - 120 331 "GET http://x:80/ HTTP/1.1" "curl" - - - "Root=1" "-" "-" 0 2026-11-21T10:16:01.119000Z "redirect" "https://x/" "-" "-" "-" "-" "-"`,
		`ws 1 2 3:4 5:6 a b c 999999 70000 x y "" "" - - - ""`)
}

func FuzzCSV(f *testing.F) {
	fuzzTarget(f, "AWS.VPCFlow",
		"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
		"2 123456789012 eni-0a1b2c3d4e5f60718 192.0.2.66 10.20.1.10 51122 22 6 20 4249 1795316400 1795316460 REJECT OK",
		"2 123456789012 eni-0123456789abcdef0 - - - - - - - 1795316400 1795316460 - NODATA",
		`2 "1 2" x "a""b" y 1 2 3 4 5 6 7 ACCEPT OK`, `2 1 x y z 70000 -1 999999 1e3 x 1 2 ACCEPT OK`)
}

func FuzzSyslog(f *testing.F) {
	seeds := []string{
		`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed`,
		`<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\]"][p@1 class="high"] msg`,
		`<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
		`Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0`,
		`<13>2026-11-22T06:00:00.250+01:00 web-eu-1 app[77]: payment worker restarted`,
		`<191>1 - - - - - -`, `<0>Feb 29 00:00:00 h t[: x`, `<1>1 - - - - - [a b="\"]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	rfc5424 := fuzzLogType(f, "Syslog.RFC5424")
	rfc3164 := fuzzLogType(f, "Syslog.RFC3164")
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzParse(t, rfc5424, rec)
		fuzzParse(t, rfc3164, rec)
	})
}

// FuzzCloudTrail feeds whole files: cut into records as ingest cuts them (JSON framing,
// {"Records": [...]} envelopes), each parsed as AWS.CloudTrail.
func FuzzCloudTrail(f *testing.F) {
	for _, s := range []string{
		"{\n \"Records\": [\n  {\"eventVersion\":\"1.08\",\"eventTime\":\"2026-11-21T09:15:40Z\",\"eventSource\":\"signin.amazonaws.com\",\"eventName\":\"ConsoleLogin\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::123456789012:user/m\"},\"requestParameters\":{\"k\":\"arn:aws:s3:::b\"},\"resources\":[{\"ARN\":\"arn:aws:s3:::b\"}]},\n  {\"eventVersion\":\"1.09\",\"@timestamp\":\"2026-11-21T09:15:41Z\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\"}\n ]\n}",
		`{"eventVersion":"1","eventTime":"2026-11-21T09:15:40Z","eventSource":"x","eventName":"y","responseElements":null}`,
		`[{"eventVersion":"1","eventSource":"x","eventName":"y"}]`,
		`{"Records":[{"a":1} {"b":2}]}`, `{"Records":[`, `}}]]{"Records"`,
	} {
		f.Add([]byte(s))
	}
	lt := fuzzLogType(f, "AWS.CloudTrail")
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _ := schematest.Records(data, []string{"Records"})
		fuzzParse(t, lt, recs...)
	})
}
