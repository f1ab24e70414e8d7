package logschema

import (
	"errors"
	"strings"
	"testing"
)

const good = `schema: Custom.MyApp
description: an application log
fields:
  - name: time
    type: timestamp
    timeFormats: [rfc3339, unix_ms]
    isEventTime: true
    required: true
  - name: user
    type: object
    fields:
      - name: email
        type: string
        indicators: [email]
      - name: ips
        type: array
        element:
          type: string
        indicators: [ip]
  - name: payload
    type: json
  - name: count
    type: bigint
`

func TestParseGood(t *testing.T) {
	s, err := Parse([]byte(good), "myapp.yml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema != "Custom.MyApp" || len(s.Fields) != 4 {
		t.Fatalf("got schema %q with %d fields", s.Schema, len(s.Fields))
	}
	user := s.Fields[1]
	if user.Line != 9 || user.Fields[1].Line != 15 {
		t.Errorf("lines: user at %d, user.ips at %d; want 9 and 15", user.Line, user.Fields[1].Line)
	}
	if got := s.Fields[0].Formats(); strings.Join(got, ",") != "rfc3339,unix_ms" {
		t.Errorf("formats = %v", got)
	}
	if got := user.Fields[1].Element.Type; got != TypeString {
		t.Errorf("element type = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	f := func(name, yaml string, want ...string) {
		t.Helper()
		_, err := Parse([]byte(yaml), "bad.yml")
		if err == nil {
			t.Errorf("%s: no error, want %q", name, want)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", name, err, w)
			}
		}
		var serr *Error
		if !errors.As(err, &serr) || serr.File != "bad.yml" {
			t.Errorf("%s: error %v does not carry the file", name, err)
		}
	}
	f("unknown type", "schema: A.B\nfields:\n  - name: x\n    type: strng\n", "bad.yml:3:", `unknown type "strng"`)
	f("unknown key", "schema: A.B\nfields:\n  - name: x\n    type: string\n    indicator: [ip]\n", "bad.yml:5", "indicator")
	f("no schema", "fields:\n  - name: x\n    type: string\n", "missing schema name")
	f("bad name", "schema: MyApp\nfields:\n  - name: x\n    type: string\n", `invalid schema name "MyApp"`)
	f("no fields", "schema: A.B\n", "has no fields")
	f("timestamp without format", "schema: A.B\nfields:\n  - name: t\n    type: timestamp\n", "bad.yml:3:", "needs timeFormat")
	f("bad time format", "schema: A.B\nfields:\n  - name: t\n    type: timestamp\n    timeFormat: iso\n", `unknown time format "iso"`)
	f("bad strftime", "schema: A.B\nfields:\n  - name: t\n    type: timestamp\n    timeFormat: '%Y-%Q'\n", "unsupported directive %Q")
	f("event time on string", "schema: A.B\nfields:\n  - name: t\n    type: string\n    isEventTime: true\n", "isEventTime is only valid on timestamps")
	f("object without fields", "schema: A.B\nfields:\n  - name: o\n    type: object\n", `field "o": an object needs fields`)
	f("array without element", "schema: A.B\nfields:\n  - name: a\n    type: array\n", "an array needs an element")
	f("unknown indicator", "schema: A.B\nfields:\n  - name: a\n    type: string\n    indicators: [ipv4]\n", `unknown indicator "ipv4"`)
	f("indicator on bool", "schema: A.B\nfields:\n  - name: a\n    type: boolean\n    indicators: [ip]\n", "indicators apply to strings")
	f("duplicate", "schema: A.B\nfields:\n  - name: a\n    type: string\n  - name: A\n    type: string\n", "bad.yml:5:", "repeats the field on line 3")
	f("reserved", "schema: A.B\nfields:\n  - name: p_event_time\n    type: string\n", "reserved for standard fields")
	f("nested error line", "schema: A.B\nfields:\n  - name: o\n    type: object\n    fields:\n      - name: x\n        type: nope\n", "bad.yml:6:", `field "o.x": unknown type`)
	f("two parsers", "schema: A.B\nparser:\n  native:\n    name: X\n  csv:\n    columns: [a]\nfields:\n  - name: a\n    type: string\n", "exactly one of")
	f("csv without columns", "schema: A.B\nparser:\n  csv:\n    delimiter: ','\nfields:\n  - name: a\n    type: string\n", "needs columns or hasHeader")
	f("parser line", "schema: A.B\nparser:\n  csv:\n    delimiter: ','\nfields:\n  - name: a\n    type: string\n", "bad.yml:3:")
	f("two sources", "schema: A.B\nfields:\n  - name: a\n    type: string\n    rename: {from: b}\n    copy: {from: c}\n", "bad.yml:3:", "use one")
	f("mask on int", "schema: A.B\nfields:\n  - name: a\n    type: int\n    mask: {type: sha256}\n", "must be a string")
	f("bad mask", "schema: A.B\nfields:\n  - name: a\n    type: string\n    mask: {type: rot13}\n", "mask type must be")
	f("split without separator", "schema: A.B\nfields:\n  - name: a\n    type: string\n    split: {from: b}\n", "split needs a separator")
	f("yaml syntax", "schema: A.B\nfields:\n  - name: [\n", "bad.yml:")
	f("several mistakes", "schema: A.B\nfields:\n  - name: a\n    type: nope\n  - name: b\n    type: object\n", "bad.yml:3:", "bad.yml:5:")
}

func TestTableName(t *testing.T) {
	for in, want := range map[string]string{
		"Panther.Audit":  "panther_audit",
		"AWS.CloudTrail": "aws_cloudtrail",
		"Microsoft365.Audit.AzureActiveDirectory": "microsoft365_audit_azureactivedirectory",
		"Custom.My-App": "custom_my_app",
	} {
		if got := TableName(in); got != want {
			t.Errorf("TableName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadsKey checks which record keys fill a field: its name without regard to case, and
// Panther's at_sign_x for a field @x.
func TestReadsKey(t *testing.T) {
	for _, c := range []struct {
		name, key string
		want      bool
	}{
		{"eventID", "eventID", true},
		{"eventID", "eventId", true},
		{"eventID", "event_id", false},
		{"@timestamp", "at_sign_timestamp", true},
		{"@timestamp", "at_sign_Timestamp", true},
		{"@timestamp", "timestamp", false},
		{"timestamp", "at_sign_timestamp", false},
		{"@", "at_sign_", false},
	} {
		if got := ReadsKey(c.name, c.key); got != c.want {
			t.Errorf("ReadsKey(%q, %q) = %v, want %v", c.name, c.key, got, c.want)
		}
	}
	if k, ok := PantherKey("@type"); !ok || k != "at_sign_type" {
		t.Errorf("PantherKey(@type) = %q, %v", k, ok)
	}
	if _, ok := PantherKey("type"); ok {
		t.Error("PantherKey(type) is a key")
	}
}
