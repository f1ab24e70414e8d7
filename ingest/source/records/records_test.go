package records

import (
	"errors"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	f := func(s Splitter, body string, want ...string) {
		t.Helper()
		got, err := s.Split([]byte(body))
		if err != nil {
			t.Errorf("%s %q: %v", s.Kind, body, err)
			return
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if strings.Join(gs, "|") != strings.Join(want, "|") || len(gs) != len(want) {
			t.Errorf("%s %q = %q, want %q", s.Kind, body, gs, want)
		}
	}
	f(Splitter{Kind: Lines}, "a\nb\r\n\n  \nc", "a", "b", "c")
	f(Splitter{Kind: Lines}, "")
	f(Splitter{Kind: JSON}, `{"a":1}`+"\n"+`{"b":"}"}`, `{"a":1}`, `{"b":"}"}`)
	f(Splitter{Kind: JSON}, `{"a":{"b":[1,2]}}{"c":"\"{"}  {"d":null}`, `{"a":{"b":[1,2]}}`, `{"c":"\"{"}`, `{"d":null}`)
	f(Splitter{Kind: JSON}, " \n ")
	// Text that is not JSON is kept, a line at a time, and splitting goes on.
	f(Splitter{Kind: JSON}, `{"a":1}`+"\nnot json at all\n"+`{"a":2} 3 tru`+"\n"+`{"a":`, `{"a":1}`, "not json at all", `{"a":2}`, "3", "tru", `{"a":`)
	f(Splitter{Kind: JSONArray}, `[{"a":1}, {"b":[2]} ,"x",3]`, `{"a":1}`, `{"b":[2]}`, `"x"`, `3`)
	f(Splitter{Kind: JSONArray}, ` [ ] `)
	f(Splitter{Kind: JSONArray, Envelope: "Records"}, `{"x":{"Records":"no"},"Records":[{"e":1},{"e":2}],"y":[]}`, `{"e":1}`, `{"e":2}`)
	f(Splitter{Kind: CloudWatch}, `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[{"id":"1","timestamp":1,"message":"{\"a\":1}"},{"id":"2","timestamp":2,"message":"plain text"}]}`,
		`{"a":1}`, `plain text`)
	f(Splitter{Kind: CloudWatch}, `{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"CWL CONTROL MESSAGE"}]}`)
	// Auto chooses from the body.
	f(Splitter{Kind: Auto}, `[{"a":1},{"a":2}]`, `{"a":1}`, `{"a":2}`)
	f(Splitter{Kind: Auto}, `{"a":1}`+"\n"+`{"a":2}`, `{"a":1}`, `{"a":2}`)
	f(Splitter{Kind: Auto}, `{"messageType":"DATA_MESSAGE","logEvents":[{"message":"m"}]}`, "m")
	f(Splitter{Kind: Auto}, "type=SYSCALL msg=audit(1.0:1): x\n<13>Nov 22 host app: y\n", "type=SYSCALL msg=audit(1.0:1): x", "<13>Nov 22 host app: y")
}

func TestSplitErrors(t *testing.T) {
	f := func(s Splitter, body string, want error) {
		t.Helper()
		if _, err := s.Split([]byte(body)); !errors.Is(err, want) {
			t.Errorf("%s %q: error %v, want %v", s.Kind, body, err, want)
		}
	}
	f(Splitter{Kind: JSONArray}, `{"a":1}`, ErrMalformed)
	f(Splitter{Kind: JSONArray}, `[1,2`, ErrMalformed)
	f(Splitter{Kind: JSONArray}, `[1 2]`, ErrMalformed)
	f(Splitter{Kind: JSONArray}, `[1] x`, ErrMalformed)
	f(Splitter{Kind: JSONArray, Envelope: "Records"}, `{"Other":[1]}`, ErrMalformed)
	f(Splitter{Kind: JSONArray, Envelope: "Records"}, `[1]`, ErrMalformed)
	f(Splitter{Kind: CloudWatch}, `{"messageType":"DATA_MESSAGE","logEvents":`, ErrMalformed)
	f(Splitter{Kind: CloudWatch}, `{"messageType":"OTHER"}`, ErrMalformed)
	f(Splitter{Kind: Lines, MaxRecords: 2}, "a\nb\nc\n", ErrTooMany)
	f(Splitter{Kind: JSON, MaxRecords: 1}, `{}{}`, ErrTooMany)
	f(Splitter{Kind: JSONArray, MaxRecords: 3}, `[1,2,3,4,5]`, ErrTooMany)
	if err := (Splitter{Kind: "xml"}).Validate(); err == nil {
		t.Error("an unknown stream type is valid")
	}
	if err := (Splitter{Kind: Lines, Envelope: "Records"}).Validate(); err == nil {
		t.Error("an envelope for lines is valid")
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,{"b":"]"}]`, `{"Records":[{}]}`, "x\ny", `{"messageType":"DATA_MESSAGE","logEvents":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range []Splitter{{Kind: Auto}, {Kind: JSON}, {Kind: JSONArray}, {Kind: JSONArray, Envelope: "Records"}, {Kind: Lines}} {
			recs, err := s.Split(body)
			if err != nil {
				continue
			}
			for _, r := range recs {
				if len(r) == 0 && s.Kind != JSONArray {
					t.Fatalf("%s: empty record from %q", s.Kind, body)
				}
			}
		}
	})
}
