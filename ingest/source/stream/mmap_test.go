//go:build unix

package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes data to a temporary file and opens it.
func writeFile(t *testing.T, data string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// mapped cuts a mapping into chunks, copying each out and releasing it.
func mapped(t *testing.T, m *Mapping, opts Options) ([]got, int64, error) {
	t.Helper()
	out := make(chan Chunk)
	var n int64
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		n, err = m.Chunks(context.Background(), opts, out)
	}()
	var chunks []got
	for c := range out {
		chunks = append(chunks, got{Data: string(c.Data), Line: c.Line})
		c.Release(nil)
	}
	<-done
	return chunks, n, err
}

// TestMapping checks that a mapped file gives the lines, line numbers and byte count reading it
// gives: lines of random lengths, some longer than a chunk, with and without a final newline.
func TestMapping(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, final := range []string{"\n", ""} {
		var b strings.Builder
		for b.Len() < 3*minMapSize {
			n := rng.IntN(200)
			if rng.IntN(500) == 0 {
				n = 300 << 10 // longer than the chunks below
			}
			fmt.Fprintf(&b, "%d:%s\n", b.Len(), strings.Repeat("x", n))
		}
		data := strings.TrimSuffix(b.String(), "\n") + final
		f := writeFile(t, data)
		m, err := Map(f)
		if err != nil || m == nil {
			t.Fatalf("Map = %v, %v", m, err)
		}
		if c, err := m.Compression(); c != None || err != nil {
			t.Errorf("Compression = %v, %v", c, err)
		}
		opts := Options{ChunkSize: 64 << 10, MaxRecordSize: 1 << 30}
		chunks, n, err := mapped(t, m, opts)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Chunks = %d bytes, %v; want %d", n, err, len(data))
		}
		want, _, _ := run(t, strings.NewReader(data), opts)
		diff(t, records(t, chunks), records(t, want))
		if m.mark != len(data) || len(m.done) != 0 {
			t.Errorf("after every chunk was released: mark %d of %d, %d pending", m.mark, len(data), len(m.done))
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestMapNotWorthIt checks that small files and compressed data are left to be read.
func TestMapNotWorthIt(t *testing.T) {
	if m, err := Map(writeFile(t, "a\nb\n")); m != nil || err != nil {
		t.Errorf("a small file was mapped: %v, %v", m, err)
	}
	m, err := Map(writeFile(t, string(gzipMagic)+strings.Repeat("z", minMapSize)))
	if err != nil || m == nil {
		t.Fatalf("Map = %v, %v", m, err)
	}
	defer m.Close()
	if c, err := m.Compression(); c != Gzip || err != nil {
		t.Errorf("Compression = %v, %v; want gzip", c, err)
	}
}

// TestMappingReleaseOutOfOrder checks that pages are dropped only below the first chunk still
// in flight, whatever order chunks are released in.
func TestMappingReleaseOutOfOrder(t *testing.T) {
	f := writeFile(t, strings.Repeat("0123456789abcde\n", 4*minMapSize/16))
	m, err := Map(f)
	if err != nil || m == nil {
		t.Fatalf("Map = %v, %v", m, err)
	}
	defer m.Close()
	page := os.Getpagesize()
	a, b, c := page+10, 2*page+20, 3*page+30 // chunks [0,a) [a,b) [b,c)
	m.release(b, c)
	m.release(a, b)
	if m.mark != 0 || m.freed != 0 {
		t.Fatalf("released past the first chunk in flight: mark %d, freed %d", m.mark, m.freed)
	}
	m.release(0, a)
	if m.mark != c || m.freed != 3*page {
		t.Errorf("mark %d, freed %d; want %d and %d", m.mark, m.freed, c, 3*page)
	}
}

// TestMappingTruncated checks that a file truncated while it is mapped ends Chunks with
// ErrTruncated instead of crashing the process.
func TestMappingTruncated(t *testing.T) {
	f := writeFile(t, strings.Repeat("some log line\n", 4*minMapSize/14))
	m, err := Map(f)
	if err != nil || m == nil {
		t.Fatalf("Map = %v, %v", m, err)
	}
	defer m.Close()
	if err := os.Truncate(f.Name(), minMapSize); err != nil {
		t.Fatal(err)
	}
	_, n, err := mapped(t, m, Options{ChunkSize: 64 << 10})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Chunks = %v, want ErrTruncated", err)
	}
	if n > minMapSize {
		t.Errorf("sent %d bytes of a file truncated to %d", n, minMapSize)
	}
}
