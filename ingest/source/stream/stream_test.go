package stream

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/zstd"
)

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestDecompress checks that the compression is recognized from the first bytes of the data
// alone, and that the decompressed bytes are the original ones.
func TestDecompress(t *testing.T) {
	text := "line one\nline two\n"
	for _, tc := range []struct {
		name string
		in   []byte
		comp Compression
		want string
	}{
		{"plain", []byte(text), None, text},
		{"empty", nil, None, ""},
		{"one byte", []byte{0x1f}, None, "\x1f"},
		{"three bytes", []byte("abc"), None, "abc"},
		{"half of the gzip magic", []byte("\x1fabc\n"), None, "\x1fabc\n"},
		{"half of the zstd magic", []byte{0x28, 0xb5, 'x', '\n'}, None, "(\xb5x\n"},
		{"gzip magic later in the data", concat([]byte("x"), gzipBytes(t, text)), None, "x" + string(gzipBytes(t, text))},
		{"gzip", gzipBytes(t, text), Gzip, text},
		{"gzip of nothing", gzipBytes(t, ""), Gzip, ""},
		{"concatenated gzip members", concat(gzipBytes(t, "a\n"), gzipBytes(t, "b\n"), gzipBytes(t, "c")), Gzip, "a\nb\nc"},
		{"zstd", zstdBytes(t, text), Zstd, text},
		{"concatenated zstd frames", concat(zstdBytes(t, "a\n"), zstdBytes(t, "b\n")), Zstd, "a\nb\n"},
		{"zstd of nothing", zstdBytes(t, ""), Zstd, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A one-byte reader makes sure detection does not rely on the first Read
			// returning the whole magic.
			r, comp, err := Decompress(iotest.OneByteReader(bytes.NewReader(tc.in)))
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			defer r.Close()
			if comp != tc.comp {
				t.Errorf("compression = %q, want %q", comp, tc.comp)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("data = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecompressLarge checks a compressed stream much larger than Decompress's 64 KiB peek
// buffer, with each compression.
func TestDecompressLarge(t *testing.T) {
	var sb strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&sb, "{\"n\":%d,\"pad\":\"%s\"}\n", i, strings.Repeat("p", i%37))
	}
	text := sb.String()
	for _, tc := range []struct {
		comp Compression
		in   []byte
	}{
		{None, []byte(text)},
		{Gzip, gzipBytes(t, text)},
		{Zstd, zstdBytes(t, text)},
	} {
		r, comp, err := Decompress(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.comp, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if comp != tc.comp || err != nil || string(got) != text {
			t.Errorf("%s: got compression %q, error %v, %d bytes (equal: %v), want %d bytes",
				tc.comp, comp, err, len(got), string(got) == text, len(text))
		}
	}
}

// TestDecompressErrors checks the errors of broken streams: a bad gzip header fails at once,
// a truncated or corrupt body fails when read, and a failing reader's error is passed on.
func TestDecompressErrors(t *testing.T) {
	text := strings.Repeat("some log line\n", 200)
	gz := gzipBytes(t, text)
	zs := zstdBytes(t, text)

	t.Run("bad gzip header", func(t *testing.T) {
		// The gzip magic followed by a compression method other than deflate.
		_, comp, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0x07, 0, 0, 0, 0, 0, 0, 0}))
		if err == nil || comp != Gzip {
			t.Errorf("got compression %q, error %v; want gzip and an error", comp, err)
		}
	})
	t.Run("gzip header cut short", func(t *testing.T) {
		_, comp, err := Decompress(bytes.NewReader(gz[:5]))
		if err == nil || comp != Gzip {
			t.Errorf("got compression %q, error %v; want gzip and an error", comp, err)
		}
	})
	for _, tc := range []struct {
		name string
		in   []byte
		comp Compression
	}{
		{"truncated gzip", gz[:len(gz)/2], Gzip},
		{"gzip without its trailer", gz[:len(gz)-4], Gzip},
		{"gzip with a bad checksum", append(append([]byte(nil), gz[:len(gz)-8]...), 0, 0, 0, 0, 0, 0, 0, 0), Gzip},
		{"truncated zstd", zs[:len(zs)/2], Zstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, comp, err := Decompress(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Decompress: %v (the header is intact: the error should come from reading)", err)
			}
			defer r.Close()
			if comp != tc.comp {
				t.Errorf("compression = %q, want %q", comp, tc.comp)
			}
			got, err := io.ReadAll(r)
			if err == nil {
				t.Fatalf("read %d bytes without an error", len(got))
			}
			if !strings.HasPrefix(text, string(got)) {
				t.Errorf("the %d bytes read before the error are not a prefix of the data", len(got))
			}
		})
	}
	t.Run("truncated gzip is an unexpected EOF", func(t *testing.T) {
		// ingest reports this error as a truncated stream.
		r, _, err := Decompress(bytes.NewReader(gz[:len(gz)/2]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("failing reader", func(t *testing.T) {
		boom := errors.New("boom")
		_, _, err := Decompress(iotest.ErrReader(boom))
		if !errors.Is(err, boom) {
			t.Errorf("error = %v, want %v", err, boom)
		}
	})
}

// got is a chunk as a test sees it: its data copied out before the chunk is released.
type got struct {
	Data      string
	Line      int64
	Oversized *Oversized
}

// run cuts r into chunks with a pool, releasing every chunk once copied, and returns them.
func run(t *testing.T, r io.Reader, opts Options) ([]got, int64, error) {
	t.Helper()
	pool := NewPool(4)
	out := make(chan Chunk)
	var n int64
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		n, err = Chunks(context.Background(), r, opts, pool, out)
	}()
	var chunks []got
	for c := range out {
		g := got{Data: string(c.Data), Line: c.Line}
		if c.Oversized != nil {
			o := *c.Oversized
			o.Head = append([]byte(nil), o.Head...)
			g.Oversized = &o
		}
		chunks = append(chunks, g)
		c.Release(pool)
	}
	<-done
	return chunks, n, err
}

// record is one line of a stream as delivered in chunks.
type record struct {
	line int64
	text string // the line with its '\n', or an oversized line's head
	over bool
	size int64 // an oversized line's size
}

// records splits chunks into lines, checking that the chunks are well formed: line numbers
// follow each other, and every chunk but the last holds whole lines.
func records(t *testing.T, chunks []got) []record {
	t.Helper()
	var recs []record
	next := int64(1)
	for i, c := range chunks {
		if c.Line != next {
			t.Errorf("chunk %d starts at line %d, want %d", i, c.Line, next)
		}
		if c.Oversized != nil {
			if c.Data != "" {
				t.Errorf("oversized chunk %d also has data %q", i, c.Data)
			}
			recs = append(recs, record{line: c.Line, text: string(c.Oversized.Head), over: true, size: c.Oversized.Size})
			next = c.Line + 1
			continue
		}
		if c.Data == "" {
			continue // a chunk without lines carries nothing
		}
		if i < len(chunks)-1 && !strings.HasSuffix(c.Data, "\n") {
			t.Errorf("chunk %d (not the last) does not end with a newline: %q", i, c.Data)
		}
		line := c.Line
		for _, l := range strings.SplitAfter(c.Data, "\n") {
			if l == "" {
				continue
			}
			recs = append(recs, record{line: line, text: l})
			line++
		}
		next = line
	}
	return recs
}

// want lists the lines of an input the way Chunks should deliver them, for lines that are
// all within the limit.
func want(input string) []record {
	var recs []record
	for i, l := range strings.SplitAfter(input, "\n") {
		if l != "" {
			recs = append(recs, record{line: int64(i + 1), text: l})
		}
	}
	return recs
}

func diff(t *testing.T, gotRecs, wantRecs []record) {
	t.Helper()
	for i := range max(len(gotRecs), len(wantRecs)) {
		switch {
		case i >= len(gotRecs):
			t.Errorf("missing record %d: %+v", i, wantRecs[i])
		case i >= len(wantRecs):
			t.Errorf("extra record %d: %+v", i, gotRecs[i])
		case gotRecs[i] != wantRecs[i]:
			t.Errorf("record %d = %+v, want %+v", i, gotRecs[i], wantRecs[i])
		default:
			continue
		}
		if t.Failed() && i > 5 {
			return
		}
	}
}

// TestChunks checks that lines are delivered whole, in order and with their line numbers, with
// a chunk size small enough that most inputs span several chunks.
func TestChunks(t *testing.T) {
	lines := func(n int, f func(i int) string) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString(f(i))
			sb.WriteByte('\n')
		}
		return sb.String()
	}
	for _, tc := range []struct {
		name  string
		input string
	}{
		{"empty", ""},
		{"one newline", "\n"},
		{"blank lines", "\n\n\n"},
		{"one line", "hello\n"},
		{"no final newline", "hello\nworld"},
		{"only a partial line", "partial"},
		{"many short lines", lines(100, func(i int) string { return fmt.Sprintf("line %d", i) })},
		{"lines of every length", lines(70, func(i int) string { return strings.Repeat("x", i) })},
		{"exactly one chunk", strings.Repeat("x", 63) + "\n"},
		{"two exact chunks", strings.Repeat("x", 63) + "\n" + strings.Repeat("y", 63) + "\n"},
		{"chunk size plus one", strings.Repeat("x", 64) + "\n"},
		{"line of 63 bytes then more", strings.Repeat("x", 62) + "\nab\ncd"},
		{"long lines within the limit", lines(5, func(i int) string { return strings.Repeat(string(rune('a'+i)), 64+50*i) })},
		{"long final line without newline", "a\n" + strings.Repeat("z", 150)},
		{"CRLF", "a\r\nb\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{ChunkSize: 64, MaxRecordSize: 1000, HeadSize: 16}
			chunks, n, err := run(t, strings.NewReader(tc.input), opts)
			if err != nil {
				t.Fatalf("Chunks: %v", err)
			}
			if n != int64(len(tc.input)) {
				t.Errorf("read %d bytes, want %d", n, len(tc.input))
			}
			diff(t, records(t, chunks), want(tc.input))
		})
	}
}

// TestChunksReaders checks that the result does not depend on how the reader splits its data,
// nor on whether it returns the last bytes with io.EOF.
func TestChunksReaders(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	for i := range 300 {
		n := rng.IntN(40)
		if i%50 == 7 {
			n = 64 + rng.IntN(200) // longer than a chunk, within the limit
		}
		sb.WriteString(strings.Repeat(string(rune('a'+i%26)), n))
		sb.WriteByte('\n')
	}
	sb.WriteString("tail")
	input := sb.String()
	for name, r := range map[string]func() io.Reader{
		"plain":         func() io.Reader { return strings.NewReader(input) },
		"one byte":      func() io.Reader { return iotest.OneByteReader(strings.NewReader(input)) },
		"half":          func() io.Reader { return iotest.HalfReader(strings.NewReader(input)) },
		"data with EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(input)) },
	} {
		t.Run(name, func(t *testing.T) {
			chunks, n, err := run(t, r(), Options{ChunkSize: 64, MaxRecordSize: 1000})
			if err != nil {
				t.Fatalf("Chunks: %v", err)
			}
			if n != int64(len(input)) {
				t.Errorf("read %d bytes, want %d", n, len(input))
			}
			diff(t, records(t, chunks), want(input))
		})
	}
}

// TestOversized checks that a line over MaxRecordSize comes as one Oversized chunk with its
// head and full size, and that the lines after it still come with the right numbers. Size
// counts the line's newline, as ingest's failure rows expect (raw_size).
func TestOversized(t *testing.T) {
	big := strings.Repeat("0123456789", 30) // 300 bytes
	opts := Options{ChunkSize: 64, MaxRecordSize: 100, HeadSize: 16}
	for _, tc := range []struct {
		name   string
		input  string
		want   []record
		reader func(string) io.Reader
	}{
		{
			name:  "between lines",
			input: "first\n" + big + "\nthird\nfourth\n",
			want: []record{
				{line: 1, text: "first\n"},
				{line: 2, text: big[:16], over: true, size: 300},
				{line: 3, text: "third\n"},
				{line: 4, text: "fourth\n"},
			},
		},
		{
			name:  "first line",
			input: big + "\nnext",
			want: []record{
				{line: 1, text: big[:16], over: true, size: 300},
				{line: 2, text: "next"},
			},
		},
		{
			name:  "last line without newline",
			input: "a\n" + big,
			want: []record{
				{line: 1, text: "a\n"},
				{line: 2, text: big[:16], over: true, size: 300},
			},
		},
		{
			// One byte at a time, so that the second line is not read along with the end of
			// the first: read that way it would arrive in a chunk, where the consumer checks it
			// with TooLong (TestTooLong).
			name:  "two in a row",
			input: big + "\n" + big + big + "\nend\n",
			want: []record{
				{line: 1, text: big[:16], over: true, size: 300},
				{line: 2, text: big[:16], over: true, size: 600},
				{line: 3, text: "end\n"},
			},
			reader: func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		},
		{
			name:  "one byte at a time",
			input: "first\n" + big + "\nthird\n",
			want: []record{
				{line: 1, text: "first\n"},
				{line: 2, text: big[:16], over: true, size: 300},
				{line: 3, text: "third\n"},
			},
			reader: func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		},
		{
			name:  "long line within the limit is not oversized",
			input: "a\n" + big[:90] + "\nb\n",
			want: []record{
				{line: 1, text: "a\n"},
				{line: 2, text: big[:90] + "\n"},
				{line: 3, text: "b\n"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tc.input)
			if tc.reader != nil {
				r = tc.reader(tc.input)
			}
			chunks, n, err := run(t, r, opts)
			if err != nil {
				t.Fatalf("Chunks: %v", err)
			}
			if n != int64(len(tc.input)) {
				t.Errorf("read %d bytes, want %d", n, len(tc.input))
			}
			diff(t, records(t, chunks), tc.want)
		})
	}
}

// TestOversizedHuge checks a line far over the limit (several of longLine's 1 MiB reads): the
// head is HeadSize bytes, and the memory kept for the line stays bounded by the limit rather
// than the line.
func TestOversizedHuge(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), 3<<20/8) // 3 MiB
	input := concat([]byte("x\n"), big, []byte("\ny\n"))
	opts := Options{ChunkSize: 4 << 10, MaxRecordSize: 64 << 10, HeadSize: 1 << 10}
	chunks, n, err := run(t, bytes.NewReader(input), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(input)) {
		t.Errorf("read %d bytes, want %d", n, len(input))
	}
	diff(t, records(t, chunks), []record{
		{line: 1, text: "x\n"},
		{line: 2, text: string(big[:1<<10]), over: true, size: int64(len(big))},
		{line: 3, text: "y\n"},
	})
	for _, c := range chunks {
		if c.Oversized != nil && cap(c.Oversized.Head) > 4<<20 {
			t.Errorf("the head keeps %d bytes of memory", cap(c.Oversized.Head))
		}
	}
}

// TestOptionsDefaults checks the defaults applied to unset options.
func TestOptionsDefaults(t *testing.T) {
	var o Options
	o.defaults()
	if o.ChunkSize <= 0 || o.MaxRecordSize != 32<<20 || o.HeadSize != 64<<10 {
		t.Errorf("defaults = %+v", o)
	}
	if o.MaxRecordSize < o.ChunkSize {
		t.Errorf("default MaxRecordSize %d is below the default ChunkSize %d", o.MaxRecordSize, o.ChunkSize)
	}
	set := Options{ChunkSize: 1, MaxRecordSize: 2, HeadSize: 3}
	set.defaults()
	if set != (Options{ChunkSize: 1, MaxRecordSize: 2, HeadSize: 3}) {
		t.Errorf("defaults changed set options: %+v", set)
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestChunksReadError checks that a read error ends Chunks with that error, after the lines
// read before it (including a partial last line) were sent and counted.
func TestChunksReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		name  string
		input string
	}{
		{"after whole lines", "a\nb\n"},
		{"in a line", "a\nb\npart"},
		{"in a long line", "a\n" + strings.Repeat("L", 200)},
		{"at once", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks, n, err := run(t, &failingReader{data: []byte(tc.input), err: boom}, Options{ChunkSize: 64, MaxRecordSize: 1000})
			if !errors.Is(err, boom) {
				t.Errorf("error = %v, want %v", err, boom)
			}
			if n != int64(len(tc.input)) {
				t.Errorf("read %d bytes, want %d", n, len(tc.input))
			}
			diff(t, records(t, chunks), want(tc.input))
		})
	}
}

// endless repeats a line forever.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		if e.n%10 == 9 {
			p[i] = '\n'
		} else {
			p[i] = 'e'
		}
		e.n++
	}
	return len(p), nil
}

// TestChunksCancel checks that cancelling the context stops Chunks, both while no one takes
// its chunks and while someone does, on a stream that never ends.
func TestChunksCancel(t *testing.T) {
	t.Run("blocked on send", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan Chunk) // never read
		errc := make(chan error, 1)
		go func() {
			_, err := Chunks(ctx, &endless{}, Options{ChunkSize: 64}, NewPool(2), out)
			errc <- err
		}()
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Chunks did not return after cancel")
		}
	})
	t.Run("while consuming", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := make(chan Chunk)
		pool := NewPool(2)
		errc := make(chan error, 1)
		go func() {
			_, err := Chunks(ctx, &endless{}, Options{ChunkSize: 64}, pool, out)
			errc <- err
		}()
		var line int64 = 1
		for i := 0; i < 50; i++ {
			c := <-out
			if c.Line != line || len(c.Data) != 60 {
				t.Fatalf("chunk %d: line %d with %d bytes, want line %d with 60 bytes", i, c.Line, len(c.Data), line)
			}
			line += 6
			c.Release(pool)
		}
		cancel()
		// Chunks may have a chunk ready to send when it sees the cancel: drain until it returns.
		timeout := time.After(10 * time.Second)
	drain:
		for {
			select {
			case c := <-out:
				c.Release(pool)
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error = %v, want context.Canceled", err)
				}
				break drain
			case <-timeout:
				t.Fatal("Chunks did not return after cancel")
			}
		}
	})
}

// TestPool checks that a released chunk's buffer is handed out again, that a buffer too small
// for the request is not, and that the pool keeps no more than its size.
func TestPool(t *testing.T) {
	p := NewPool(2)
	b := p.get(64)
	if len(*b) != 0 || cap(*b) < 64 {
		t.Fatalf("new buffer: len %d cap %d", len(*b), cap(*b))
	}
	*b = append(*b, "old data"...)
	c := Chunk{Data: (*b)[:3], buf: b}
	c.Release(p)
	if c.Data != nil || c.buf != nil {
		t.Errorf("released chunk still holds data %q / buffer %v", c.Data, c.buf)
	}
	c.Release(p) // a second release does nothing
	if len(p.free) != 1 {
		t.Fatalf("pool holds %d buffers after one release, want 1", len(p.free))
	}
	if again := p.get(64); again != b || len(*again) != 0 {
		t.Errorf("get after release returned %p (len %d), want the released buffer %p emptied", again, len(*again), b)
	}

	// A pooled buffer smaller than the request is not used.
	small := p.get(16)
	p.put(small)
	if got := p.get(1024); got == small || cap(*got) < 1024 {
		t.Errorf("get(1024) returned the 16-byte buffer (cap %d)", cap(*got))
	}

	// A chunk without a buffer (an oversized line or a long line) releases nothing.
	(&Chunk{Data: []byte("x")}).Release(p)
	if len(p.free) != 0 {
		t.Errorf("pool holds %d buffers, want 0", len(p.free))
	}

	// The pool keeps at most n buffers; putting more does not block.
	for range 5 {
		p.put(p.get(8))
		buf := make([]byte, 0, 8)
		p.put(&buf)
	}
	if len(p.free) != 2 {
		t.Errorf("pool holds %d buffers, want its size 2", len(p.free))
	}

	// Buffers grown past 64 MiB are not kept.
	q := NewPool(1)
	huge := make([]byte, 0, 64<<20+1)
	q.put(&huge)
	if len(q.free) != 0 {
		t.Errorf("pool kept a buffer of %d bytes", cap(huge))
	}
}

// TestChunksUsePool checks that Chunks takes its buffers from the pool and that chunks
// released by the consumer come back (the data of every chunk stays right meanwhile).
func TestChunksUsePool(t *testing.T) {
	pool := NewPool(8)
	mine := make([]byte, 0, 64)
	pool.put(&mine)
	var sb strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sb, "%03d-%s\n", i, strings.Repeat("v", i%20))
	}
	input := sb.String()
	out := make(chan Chunk)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		_, err := Chunks(context.Background(), strings.NewReader(input), Options{ChunkSize: 64, MaxRecordSize: 1000}, pool, out)
		errc <- err
	}()
	var chunks []got
	buffers := map[*byte]bool{}
	first := true
	for c := range out {
		if len(c.Data) > 0 {
			if first && &c.Data[0] != &mine[:1][0] {
				t.Errorf("the first chunk does not use the pooled buffer")
			}
			first = false
			buffers[&c.Data[0]] = true
		}
		chunks = append(chunks, got{Data: string(c.Data), Line: c.Line})
		c.Release(pool)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	diff(t, records(t, chunks), want(input))
	// Without reuse every chunk would have its own buffer.
	if len(buffers) >= len(chunks)/2 {
		t.Errorf("%d chunks used %d buffers: released buffers are not reused", len(chunks), len(buffers))
	}
}

// TestChunksFromDecompress checks the two together on a gzip stream of several members: the
// chunks give back the decompressed lines with their numbers.
func TestChunksFromDecompress(t *testing.T) {
	part1 := "alpha\nbeta\n"
	part2 := strings.Repeat("gamma gamma gamma\n", 20) + "delta"
	r, comp, err := Decompress(bytes.NewReader(concat(gzipBytes(t, part1), gzipBytes(t, part2))))
	if err != nil || comp != Gzip {
		t.Fatalf("Decompress: %q, %v", comp, err)
	}
	defer r.Close()
	chunks, n, err := run(t, r, Options{ChunkSize: 64, MaxRecordSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(part1+part2)) {
		t.Errorf("read %d bytes, want %d (the decompressed size)", n, len(part1+part2))
	}
	diff(t, records(t, chunks), want(part1+part2))
}

// TestTooLong checks the limit consumers apply to the lines of a chunk.
func TestTooLong(t *testing.T) {
	o := Options{MaxRecordSize: 10, HeadSize: 4}.WithDefaults()
	if o.ChunkSize != 8<<20 {
		t.Errorf("default chunk size %d", o.ChunkSize)
	}
	if _, long := o.TooLong([]byte("0123456789")); long {
		t.Error("a line of exactly the limit is too long")
	}
	head, long := o.TooLong([]byte("0123456789a"))
	if !long || string(head) != "0123" {
		t.Errorf("TooLong = %q, %v", head, long)
	}
	if head, long := (Options{MaxRecordSize: 2, HeadSize: 100}).TooLong([]byte("abc")); !long || string(head) != "abc" {
		t.Errorf("a head longer than the line: %q, %v", head, long)
	}
}
