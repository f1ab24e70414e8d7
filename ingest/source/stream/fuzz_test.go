package stream

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzChunks cuts arbitrary bytes into lines, with small chunks and a small record limit: the
// chunks number their lines one after the other, and the lines are the input's, in order,
// each line whole or, over the limit, its head and size.
func FuzzChunks(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), uint8(4), uint8(8))
	f.Add([]byte("one long line without a newline at all\nshort\n"), uint8(8), uint8(16))
	f.Add([]byte("\n\n\n"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk, limit uint8) {
		opts := Options{ChunkSize: int(chunk) + 1, MaxRecordSize: int(limit) + 1}
		opts.HeadSize = min(4, opts.MaxRecordSize) // a head shorter than the limit, as configured
		chunks, n, err := run(t, iotest.HalfReader(bytes.NewReader(data)), opts)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("read %d of %d bytes: %v", n, len(data), err)
		}
		recs := records(t, chunks) // checks the numbering
		lines := strings.SplitAfter(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(recs) != len(lines) {
			t.Fatalf("%d records, want %d lines", len(recs), len(lines))
		}
		for i, r := range recs {
			line := lines[i]
			if r.over {
				body := strings.TrimSuffix(line, "\n")
				if r.size != int64(len(body)) || len(body) <= opts.MaxRecordSize || !strings.HasPrefix(body, r.text) || len(r.text) > opts.HeadSize {
					t.Errorf("line %d %q: oversized head %q size %d", i+1, line, r.text, r.size)
				}
				continue
			}
			if r.text != line {
				t.Errorf("line %d: got %q, want %q", i+1, r.text, line)
			}
		}
	})
}

// FuzzJSONChunks cuts arbitrary bytes into JSON records. Whatever the input:
//   - chunks number their records one after the other, one record a line;
//   - the records are the same however the reads split the input;
//   - without envelopes or oversized records, the records are the input less white space
//     and the brackets and commas between values: nothing is lost, doubled or reordered;
//   - with envelopes, the records' bytes are a subsequence of the input.
func FuzzJSONChunks(f *testing.F) {
	f.Add([]byte("{\n  \"Records\": [\n    {\"eventName\": \"A\",\n     \"x\": [1, 2]},\n    {\"eventName\": \"B \\\" ]}\"}\n  ]\n}\n{\"Records\":[{\"eventName\":\"C\"}]}"), uint8(16), false)
	f.Add([]byte(`{"Records":[{"a":1}],"Digest":{"b":[2]}} {"c":3}`), uint8(8), true)
	f.Add([]byte("[\n {\"a\": 1},\n 2, \"s\", null, [3]\n]\n{\n \"b\" :\n [ ]\n}"), uint8(4), false)
	f.Add([]byte("garbage here\n{\"a\":"), uint8(255), false)
	f.Add([]byte("\xef\xbb\xbf{\"a\":\"x\ny\"}\n1"), uint8(2), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, small bool) {
		opts := Options{ChunkSize: int(chunk) + 1, MaxRecordSize: 1 << 20, HeadSize: 16}
		if small {
			opts.MaxRecordSize = 24
		}
		for _, envelopes := range [][]string{nil, {"Records"}} {
			whole := jsonChunks(t, bytes.NewReader(data), opts, envelopes, len(data))
			bytewise := jsonChunks(t, iotest.OneByteReader(bytes.NewReader(data)), opts, envelopes, len(data))
			if !equalRecords(whole, bytewise) {
				t.Fatalf("envelopes %q: records differ with reads of one byte:\n%+v\n%+v", envelopes, whole, bytewise)
			}
			var out []byte
			oversized := false
			for _, r := range whole {
				oversized = oversized || r.over
				if r.over {
					if len(r.text) > opts.HeadSize || r.size <= int64(opts.MaxRecordSize) {
						t.Errorf("oversized record: head %q, size %d", r.text, r.size)
					}
					continue
				}
				out = append(out, strings.TrimSuffix(r.text, "\n")...)
			}
			// A raw line feed in a string is written as the escape \n.
			esc := []byte(`\n`)
			out, in := bytes.ReplaceAll(out, esc, nil), bytes.ReplaceAll(data, esc, nil)
			switch {
			case oversized:
			case envelopes == nil:
				if got, want := content(out), content(in); got != want {
					t.Fatalf("records' content\n %q\nwant\n %q", got, want)
				}
			case !isSubsequence(out, in):
				t.Fatalf("records %q are not a subsequence of the input", out)
			}
		}
	})
}

// jsonRecords runs JSONChunks on r, checking the numbering of its chunks, and returns the
// records.
func jsonChunks(t *testing.T, r io.Reader, opts Options, envelopes []string, size int) []record {
	t.Helper()
	pool := NewPool(4)
	out := make(chan Chunk)
	var n int64
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		n, err = JSONChunks(context.Background(), r, opts, envelopes, pool, out)
	}()
	var chunks []got
	for c := range out {
		g := got{Data: string(c.Data), Line: c.Line}
		if c.Oversized != nil {
			o := *c.Oversized
			o.Head = bytes.Clone(o.Head)
			g.Oversized = &o
		}
		chunks = append(chunks, g)
		c.Release(pool)
	}
	<-done
	if err != nil || n != int64(size) {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	for i, c := range chunks {
		if c.Oversized == nil && !strings.HasSuffix(c.Data, "\n") {
			t.Fatalf("chunk %d does not end with a newline: %q", i, c.Data)
		}
	}
	recs := records(t, chunks)
	for _, r := range recs {
		if !r.over && r.text == "\n" {
			t.Errorf("record %d is empty", r.line)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return recs
}

func equalRecords(a, b []record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// content is b less the bytes the JSON framing may drop between and around values: white
// space, brackets and commas, and byte order marks.
func content(b []byte) string {
	var out []byte
	for _, c := range b {
		if bytes.IndexByte([]byte(" \t\r\n,[]{}\xef\xbb\xbf"), c) < 0 {
			out = append(out, c)
		}
	}
	return string(out)
}

func isSubsequence(sub, s []byte) bool {
	for _, c := range sub {
		i := bytes.IndexByte(s, c)
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return true
}
