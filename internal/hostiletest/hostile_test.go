package hostiletest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

func TestGzipBomb(t *testing.T) {
	b := GzipBomb(8 << 20)
	if len(b) > 64<<10 {
		t.Errorf("%d bytes on the wire, want a small fraction of 8 MiB", len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n != 8<<20 {
		t.Errorf("decoded %d bytes (%v), want 8 MiB", n, err)
	}
}
