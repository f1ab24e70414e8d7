package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestSniff(t *testing.T) {
	env := []string{"Records"}
	for in, want := range map[string]Framing{
		`{"a":1}` + "\n" + `{"a":2}`:            Lines,
		"{\n  \"a\": 1\n}\n":                    JSON,
		`[{"a":1},{"a":2}]`:                     JSON,
		" \n[\n":                                JSON,
		`{"Records":[{"a":1}]}`:                 JSON,
		`{"Records": {"a":1}}`:                  Lines,
		`{"eventName":"x","Records":[]}` + "\n": Lines,
		"type=SYSCALL msg=audit(1.2:3): a=b":    Lines,
		"":                                      Lines,
		"\xef\xbb\xbf[1]":                       JSON,
		"<34>1 - - - - - -":                     Lines,
	} {
		if got := Sniff([]byte(in), env); got != want {
			t.Errorf("Sniff(%q) = %s, want %s", in, got, want)
		}
	}
	long := `{"a":"` + strings.Repeat("x", SniffSize) + `"}`
	if got := Sniff([]byte(long[:SniffSize]), env); got != Lines {
		t.Errorf("a long first line: %s, want lines", got)
	}
}

// jsonRecords runs JSONChunks and returns the records with their numbers, and the oversized ones.
func jsonRecords(t *testing.T, in string, opts Options) []string {
	t.Helper()
	out := make(chan Chunk, 1000)
	pool := NewPool(4)
	n, err := JSONChunks(context.Background(), strings.NewReader(in), opts, []string{"Records"}, pool, out)
	close(out)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(in)) {
		t.Errorf("read %d bytes, want %d", n, len(in))
	}
	var got []string
	for c := range out {
		if c.Oversized != nil {
			got = append(got, fmt.Sprintf("%d:oversized %d %q", c.Line, c.Oversized.Size, c.Oversized.Head))
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(c.Data), "\n"), "\n")
		for i, l := range lines {
			got = append(got, fmt.Sprintf("%d:%s", c.Line+int64(i), l))
		}
		c.Release(pool)
	}
	return got
}

func TestJSONChunks(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		got := jsonRecords(t, in, Options{})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
	// CloudTrail's pretty-printed Records files, one after the other.
	f("{\n  \"Records\": [\n    {\"eventName\": \"A\",\n     \"x\": [1, 2]},\n    {\"eventName\": \"B \\\" ]}\"}\n  ]\n}\n{\"Records\":[{\"eventName\":\"C\"}]}",
		`1:{"eventName":"A","x":[1,2]}`, `2:{"eventName":"B \" ]}"}`, `3:{"eventName":"C"}`)
	// Members after the envelope's array are skipped.
	f(`{"Records":[{"a":1}],"Digest":{"b":[2]}} {"c":3}`, `1:{"a":1}`, `2:{"c":3}`)
	// A top-level array, and values spread over lines.
	f("[\n {\"a\": 1},\n 2, \"s\", null, [3]\n]\n{\n \"b\" :\n [ ]\n}", `1:{"a":1}`, `2:2`, `3:"s"`, `4:null`, `5:[3]`, `6:{"b":[]}`)
	// Objects that are not envelopes, JSON lines.
	f("{\"Other\":[1]}\n{\"a\":\"x y\"}\n", `1:{"Other":[1]}`, `2:{"a":"x y"}`)
	f(`{}{"Records":[]}{"Records": "no"}`, `1:{}`, `2:{"Records":"no"}`)
	// Garbage is handed on as records for the parser to refuse; an unfinished value too.
	f("garbage here\n{\"a\":", `1:garbage`, `2:here`, `3:{"a":`)
	f("", []string{}...)
}

func TestJSONChunksLimits(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"Records":[`)
	for i := range 50 {
		if i > 0 {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", 20))
	}
	sb.WriteString(`,{"big":"` + strings.Repeat("b", 200) + `"},{"n":50}]}`)
	got := jsonRecords(t, sb.String(), Options{ChunkSize: 100, MaxRecordSize: 100, HeadSize: 10})
	if len(got) != 52 {
		t.Fatalf("%d records, want 52: %q", len(got), got)
	}
	if got[0] != `1:{"n":0,"pad":"pppppppppppppppppppp"}` || got[49] != `50:{"n":49,"pad":"pppppppppppppppppppp"}` {
		t.Errorf("records: %q ... %q", got[0], got[49])
	}
	if got[50] != `51:oversized 210 "{\"big\":\"bb"` || got[51] != `52:{"n":50}` {
		t.Errorf("oversized record: %q, then %q", got[50], got[51])
	}
}
