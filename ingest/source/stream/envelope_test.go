package stream

import (
	"fmt"
	"strings"
	"testing"
)

func TestSplitEnvelope(t *testing.T) {
	f := func(doc string, wantOK bool, want string, wantErr string) {
		t.Helper()
		elems, ok, err := SplitEnvelope([]byte(doc), []string{"Records"})
		got := make([]string, len(elems))
		for i, e := range elems {
			got[i] = string(e)
		}
		if ok != wantOK || strings.Join(got, "|") != want {
			t.Errorf("%s: got %v %q, want %v %q", doc, ok, got, wantOK, want)
		}
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want %q", doc, err, wantErr)
		}
	}
	f(`{"Records":[{"a":1},{"b":"x]}"}]}`, true, `{"a":1}|{"b":"x]}"}`, "")
	f(" {\n  \"Records\" : [\n {\"a\":[1,2]} ,\n\t{\"b\":\"\\\"}\"}\n ]\n}\n", true, `{"a":[1,2]}|{"b":"\"}"}`, "")
	f(`{"Records":[]}`, true, ``, "")
	f(`{"Records":[1,"s",null]}`, true, `1|"s"|null`, "")
	f(`{"Records":[{"a":1}],"Digest":{"x":[]}}`, true, `{"a":1}`, "")
	f(`{"eventName":"x","Records":[]}`, false, ``, "")
	f(`{"Records":{"a":1}}`, false, ``, "")
	f(`[{"a":1}]`, false, ``, "")
	f(`not json`, false, ``, "")
	f(`{"Records":[{"a":1},{"b":2}`, true, `{"a":1}|{"b":2}`, "unexpected end")
	f(`{"Records":[{"a":1} {"b":2}]}`, true, `{"a":1}`, "want ',' or ']'")
	f(`{"Records":[{"a":1}]`, true, `{"a":1}`, "after the records")
	f(`{"Records":[{"a":"unterminated}]}`, true, ``, "invalid JSON")
}

func BenchmarkSplitEnvelope(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"Records":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"eventVersion":"1.08","eventName":"GetObject","requestParameters":{"bucketName":"b%d","key":"k \"q\""}}`, i)
	}
	sb.WriteString(`]}`)
	doc := []byte(sb.String())
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, _, err := SplitEnvelope(doc, []string{"Records"}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTopKeys checks the keys of a JSON object's top level, and what is not a well-formed
// object.
func TestTopKeys(t *testing.T) {
	for _, c := range []struct {
		doc  string
		keys string
		ok   bool
	}{
		{`{"a":1,"b":{"c":[1,"}"]},"d":"x\"y"}`, "a b d", true},
		{` { } `, "", true},
		{`{"a\"b" : null }`, `a\"b`, true},
		{`{"a":}`, "a", false},
		{`{"a":1`, "a", false},
		{`{"a" 1}`, "a", false},
		{`{a:1}`, "", false},
		{`[1]`, "", false},
	} {
		keys, ok := TopKeys([]byte(c.doc), nil)
		var got []string
		for _, k := range keys {
			got = append(got, string(k))
		}
		if strings.Join(got, " ") != c.keys || ok != c.ok {
			t.Errorf("%s: %q, %v; want %q, %v", c.doc, got, ok, c.keys, c.ok)
		}
	}
}
