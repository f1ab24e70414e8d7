package syslogsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// chunkReader returns at most n bytes a read, so that frames cross read boundaries.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// frames reads every frame of in, describing each as "msg" or "msg/size" when cut, and the
// error that ended the stream ("" at a clean end).
func frames(in string, max, buf, chunk int) ([]string, error) {
	fr := newFrameReaderSize(&chunkReader{[]byte(in), chunk}, max, buf)
	var out []string
	for range len(in) + 1 {
		f, err := fr.next()
		if f.size > 0 {
			s := string(f.msg)
			if f.size > int64(len(f.msg)) {
				s += "/" + strconv.FormatInt(f.size, 10)
			}
			out = append(out, s)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	panic("BUG: more frames than bytes")
}

func TestFrameReader(t *testing.T) {
	f := func(in string, max int, want string, wantErr error) {
		t.Helper()
		for _, chunk := range []int{1, 3, 1 << 20} {
			got, err := frames(in, max, 16, chunk)
			if strings.Join(got, "|") != want || !errors.Is(err, wantErr) {
				t.Errorf("%q max %d chunk %d: got %q, %v; want %q, %v", in, max, chunk, strings.Join(got, "|"), err, want, wantErr)
			}
		}
	}
	f("", 10, "", nil)
	f("a\nb\n", 10, "a|b", nil)
	f("a\nlast", 10, "a|last", nil) // a last line without a newline
	f("0123456789abc\nnext\n", 4, "0123/13|next", nil)
	f(strings.Repeat("x", 100)+"\nok\n", 5, "xxxxx/100|ok", nil) // longer than the read buffer
	f("5 hello3 abc\n", 10, "hello|abc", nil)                    // octet-counted, then a newline inside one
	f("12 hello world!x\n", 5, "hello/12|x", nil)                // a count over the limit: the rest skipped
	f("4 ab", 10, "ab", io.ErrUnexpectedEOF)                     // the stream ends inside a count
	f("999999999 x", 3, "x", io.ErrUnexpectedEOF)                // 9 digits: read, cut
	f("<13>a\n1234567890 x\nnot read\n", 10, "<13>a", errBadCount)
	f("12abc\n0 x\n007\n", 10, "12abc|0 x|007", nil) // digits without a space, a leading 0: lines
	f("\n\n", 10, "", nil)                           // empty lines: frames of size 0
	f("123", 10, "123", nil)                         // digits at the end: a line
}

// checkFrames reads in and checks the frames account for it: each message is the bytes of in
// at its offset, at most max of them, its dropped bytes follow it, and between frames are
// only octet counts and newlines. The reader ends at the end of in, unless on a bad count.
func checkFrames(t *testing.T, in []byte, max, buf, chunk int) []frame {
	t.Helper()
	fr := newFrameReaderSize(&chunkReader{in, chunk}, max, buf)
	var out []frame
	var pos int64
	for range len(in) + 1 {
		f, err := fr.next()
		if len(f.msg) > max {
			t.Fatalf("frame of %d bytes, over the limit of %d", len(f.msg), max)
		}
		if f.start < pos || f.start+f.size > f.end || f.end > int64(len(in)) || int64(len(f.msg)) > f.size {
			t.Fatalf("frame %+v out of place after %d", f, pos)
		}
		if gap := string(in[pos:f.start]); gap != "" && !regexpCount(gap) {
			t.Fatalf("between frames at %d: %q", pos, gap)
		}
		if !bytes.Equal(f.msg, in[f.start:f.start+int64(len(f.msg))]) {
			t.Fatalf("frame at %d: %q is not the input's %q", f.start, f.msg, in[f.start:f.start+int64(len(f.msg))])
		}
		if tail := string(in[f.start+f.size : f.end]); tail != "" && tail != "\n" {
			t.Fatalf("frame at %d ends with %q", f.start, tail)
		}
		if err == nil && f.end <= pos {
			t.Fatalf("no progress at %d", pos)
		}
		pos = f.end
		f.msg = bytes.Clone(f.msg) // the reader's buffer is reused
		out = append(out, f)
		switch {
		case errors.Is(err, errBadCount):
			return out
		case err != nil:
			if pos != int64(len(in)) {
				t.Fatalf("%v at %d of %d", err, pos, len(in))
			}
			return out
		}
	}
	t.Fatalf("more frames than bytes")
	return nil
}

// regexpCount reports whether s is an octet count and its space.
func regexpCount(s string) bool {
	n, ok := strings.CutSuffix(s, " ")
	_, err := strconv.ParseUint(n, 10, 64)
	return ok && err == nil && n[0] != '0' && len(n) <= maxCountDigits
}

func fuzzSizes(max, buf, chunk uint16) (int, int, int) {
	return 1 + int(max%300), 16 + int(buf%100), 1 + int(chunk%50)
}

// FuzzFraming reads any stream (both framings, broken ones) and checks that every byte is
// accounted for: frames never exceed the limit, and messages, the bytes dropped past the limit,
// octet counts and newlines make up the input. Run it with
//
//	go test -run '^$' -fuzz FuzzFraming -fuzztime 1m ./ingest/syslogsrc/
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"<13>Nov 22 10:00:00 host app: one\n<13>Nov 22 10:00:01 host app: two\r\n",
		"59 <165>1 2026-11-22T10:00:00Z host app 1 ID47 - octet counted<13>x\n",
		"12 hello world!x\n", "4 ab", "1234567890 x", "\n\n0 x\n007\n", "9", "1 \n2 \n\n",
		strings.Repeat("x", 500) + "\n" + strings.Repeat("y", 40),
	} {
		f.Add([]byte(s), uint16(10), uint16(0), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, max, buf, chunk uint16) {
		m, b, c := fuzzSizes(max, buf, chunk)
		checkFrames(t, in, m, b, c)
	})
}

// FuzzOctetCounted frames messages (the input cut at 0xff bytes) with octet counts and checks
// that they come back as sent, cut to the limit, each with its size. Run it with
//
//	go test -run '^$' -fuzz FuzzOctetCounted -fuzztime 1m ./ingest/syslogsrc/
func FuzzOctetCounted(f *testing.F) {
	for _, s := range []string{"<13>a\xff<165>1 - - - - - - x\n\xff\n\n", "\xff\xff", "12 34\xff5 "} {
		f.Add([]byte(s), uint16(10), uint16(0), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, max, buf, chunk uint16) {
		m, b, c := fuzzSizes(max, buf, chunk)
		var stream bytes.Buffer
		var msgs [][]byte
		for msg := range bytes.SplitSeq(in, []byte{0xff}) {
			if len(msg) == 0 {
				continue // no count of 0
			}
			fmt.Fprintf(&stream, "%d %s", len(msg), msg)
			msgs = append(msgs, msg)
		}
		got := checkFrames(t, stream.Bytes(), m, b, c)
		if len(got) != len(msgs)+1 || got[len(msgs)].size != 0 {
			t.Fatalf("%d frames for %d messages", len(got), len(msgs))
		}
		for i, msg := range msgs {
			if want := msg[:min(len(msg), m)]; !bytes.Equal(got[i].msg, want) || got[i].size != int64(len(msg)) {
				t.Fatalf("message %d: got %q of %d bytes, want %q of %d", i, got[i].msg, got[i].size, want, len(msg))
			}
		}
	})
}

// FuzzNewlineDelimited sends lines (any bytes but a newline, after a '<' as a syslog PRI
// starts, so that none reads as an octet count) and checks that they come back as sent, cut
// to the limit, each with its size. Run it with
//
//	go test -run '^$' -fuzz FuzzNewlineDelimited -fuzztime 1m ./ingest/syslogsrc/
func FuzzNewlineDelimited(f *testing.F) {
	for _, s := range []string{"13>Nov 22 10:00:00 host app: one\n165>1 - - - - - -\r\n\n", "12 x\n\x00", "x"} {
		f.Add([]byte(s), uint16(10), uint16(0), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, max, buf, chunk uint16) {
		m, b, c := fuzzSizes(max, buf, chunk)
		var stream []byte
		lines := bytes.Split(in, []byte{'\n'})
		for i, l := range lines {
			lines[i] = append([]byte{'<'}, l...)
			stream = append(append(stream, lines[i]...), '\n')
		}
		got := checkFrames(t, stream, m, b, c)
		if len(got) != len(lines)+1 || got[len(lines)].size != 0 {
			t.Fatalf("%d frames for %d lines", len(got), len(lines))
		}
		for i, l := range lines {
			if want := l[:min(len(l), m)]; !bytes.Equal(got[i].msg, want) || got[i].size != int64(len(l)) {
				t.Fatalf("line %d: got %q of %d bytes, want %q of %d", i, got[i].msg, got[i].size, want, len(l))
			}
		}
	})
}
