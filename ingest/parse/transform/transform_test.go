package transform_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/parse/jsonlog"
	"github.com/ospreyhq/osprey/ingest/parse/transform"
	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

const schema = `schema: Test.Transform
fields:
  - name: userId
    type: string
    rename:
      from: PIN
    mask:
      type: redact
      with: "****"
  - name: email
    type: string
    copy:
      from: user.contact.email
    indicators: [email]
  - name: domain
    type: string
    split:
      from: user.contact.email
      separator: "@"
      index: -1
    indicators: [domain]
  - name: fullName
    type: string
    concat:
      paths: [user.first, user.middle, user.last]
      separator: " "
  - name: secret
    type: string
    mask:
      type: sha256
      salt: pepper
  - name: hashedNumber
    type: string
    mask:
      type: md5
  - name: user
    type: object
    fields:
      - name: first
        type: string
      - name: last
        type: string
      - name: ssn
        type: string
        mask:
          type: redact
  - name: items
    type: array
    element:
      type: object
      fields:
        - name: name
          type: string
          rename:
            from: NAME
`

func TestTransformations(t *testing.T) {
	s, err := logschema.Parse([]byte(schema), "t.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := batch.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	tr := transform.New(s, jsonlog.New(c))
	if tr == nil {
		t.Fatal("no transformer for a schema with transformations")
	}
	f := func(in, want string) {
		t.Helper()
		b := batch.NewBuilder(c, batch.NewRowIDs())
		b.SetParseTime(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
		b.Begin()
		if err := tr.Parse([]byte(in), b); err != nil {
			b.Rollback()
			if got := "error: " + err.Error(); !strings.HasPrefix(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", in, got, want)
			}
			return
		}
		b.End()
		rec := b.Build()
		defer rec.Release()
		got := string(batch.AppendRowJSON(nil, rec, 0))
		got = got[:strings.Index(got, `,"p_log_type"`)] + "}"
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	f(`{"PIN":"1234","user":{"first":"Marge","last":"Simpson","ssn":"078-05-1120","contact":{"email":"marge@springfield.example"}},"secret":"hunter2","hashedNumber":42,"items":[{"NAME":"a"},{"name":"b"}]}`,
		`{"userId":"****","email":"marge@springfield.example","domain":"springfield.example","fullName":"Marge Simpson",`+
			`"secret":"ca458f67a1e64e60f40414c062c57abbfc1d41b5d0c30cd07d12704540067f21","hashedNumber":"a1d0c6e83f027327d8461063f4ac58a6",`+
			`"user":{"first":"Marge","last":"Simpson","ssn":"***"},"items":[{"name":"a"},{"name":"b"}]}`)
	// Absent sources give absent values; without the renamed key, a value under the field's own
	// name is kept (and masked).
	f(`{"userId":"kept","user":{"contact":{}}}`, `{"userId":"****","user":{}}`)
	f(`not json`, `error: invalid JSON`)
}

func TestNone(t *testing.T) {
	s, err := logschema.Parse([]byte("schema: Test.Plain\nfields:\n  - name: a\n    type: string\n"), "p.yml")
	if err != nil {
		t.Fatal(err)
	}
	if transform.Has(s) || transform.New(s, nil) != nil {
		t.Error("a schema without transformations got a transformer")
	}
}
