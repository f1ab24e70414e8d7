package infer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/schema/infer"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

func TestInfer(t *testing.T) {
	in := infer.New()
	for _, rec := range []string{
		`{"time":"2026-11-21T10:00:00Z","n":1,"ratio":1,"flag":true,"mixed":1,"src":"10.0.0.1","site":"https://a.example/x","who":"a@b.example","arn":"arn:aws:iam::123456789012:user/x","sum":"d41d8cd98f00b204e9800998ecf8427e","obj":{"a":"2026-11-21 10:00:00","b":null},"tags":["x"],"blob":{"k":1},"created_at":1795268531000,"bad key":1,"p_row_id":"no"}`,
		`{"time":"2026-11-22T10:00:00.5+01:00","n":2,"ratio":0.5,"flag":false,"mixed":"two","src":"2001:db8::1","site":"http://b.example","who":"c@d.example","obj":{"a":"2026-11-22 11:00:00","c":[1,2.5]},"tags":[],"blob":"scalar","created_at":1795268532000,"Time":"dup"}`,
		`{"time":"2026-11-22T11:00:00Z","n":3,"ratio":2,"flag":null,"mixed":false,"src":"10.0.0.3","site":"ftp://c.example/","who":"e@f.example","obj":null,"tags":null,"created_at":1795268533000}`,
	} {
		if err := in.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Add([]byte(`[1]`)); err == nil {
		t.Error("an array record was accepted")
	}
	got := string(infer.YAML(in.Schema("Custom.Inferred")))
	want := `schema: Custom.Inferred
description: Inferred from 3 sample records.
fields:
  - name: time
    required: true
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: "n"
    required: true
    type: bigint
  - name: ratio
    required: true
    type: float
  - name: flag
    type: boolean
  - name: mixed
    required: true
    type: string
  - name: src
    required: true
    type: string
    indicators: [ip]
  - name: site
    required: true
    type: string
    indicators: [url]
  - name: who
    required: true
    type: string
    indicators: [email]
  - name: arn
    type: string
    indicators: [aws_arn]
  - name: sum
    type: string
    indicators: [md5]
  - name: obj
    type: object
    fields:
      - name: a
        type: timestamp
        timeFormat: "%Y-%m-%d %H:%M:%S"
      - name: b
        type: json
      - name: c
        type: array
        element:
          type: float
  - name: tags
    type: array
    element:
      type: string
  - name: blob
    type: json
  - name: created_at
    required: true
    type: timestamp
    timeFormat: unix_ms
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	skipped := strings.Join(in.Skipped(), ",")
	for _, k := range []string{"bad key", "p_row_id", "Time"} {
		if !strings.Contains(skipped, k) {
			t.Errorf("skipped %q lacks %q", skipped, k)
		}
	}
}

// TestRoundTrip infers the schema of each JSON sample of the project and checks that it loads
// and that every sample record parses with it.
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../../../testdata/samples/*.jsonl")
	if err != nil || len(files) < 10 {
		t.Fatalf("samples: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
		in := infer.New()
		for _, l := range lines {
			if err := in.Add(l); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		yaml := infer.YAML(in.Schema("Custom.Sample"))
		s, err := logschema.Parse(yaml, f+".yml")
		if err != nil {
			t.Fatalf("%s: inferred schema does not load: %v\n%s", f, err, yaml)
		}
		c, err := batch.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		p := jsonlog.New(c)
		b := batch.NewBuilder(c, batch.NewRowIDs())
		for i, l := range lines {
			b.Begin()
			if err := p.Parse(l, b); err != nil {
				t.Errorf("%s:%d: %v\n%s", f, i+1, err, yaml)
				b.Rollback()
				continue
			}
			b.End()
		}
		b.Build().Release()
	}
}

// A field that is an empty string in some record is not required: the parsers refuse "" for a
// required string, so the inferred schema would refuse its own samples.
func TestEmptyStringNotRequired(t *testing.T) {
	in := infer.New()
	for _, rec := range []string{`{"id":"a","label":"x"}`, `{"id":"b","label":""}`} {
		if err := in.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	got := string(infer.YAML(in.Schema("Custom.Empty")))
	want := `fields:
  - name: id
    required: true
    type: string
  - name: label
    type: string
`
	if !strings.Contains(got, want) {
		t.Errorf("got\n%s\nwant it to contain\n%s", got, want)
	}
}
