package httpsrc

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// DefaultBodyMemory is the default of Options.BodyMemory.
const DefaultBodyMemory = 512 << 20

// Memory a decoder holds besides its output, counted against the budget: flate's 32 KiB
// window and tables; a zstd window of at most zstdMaxWindow and its block buffers.
const (
	gzipDecoderCost = 64 << 10
	zstdMaxWindow   = 8 << 20 // the window zstd's format asks every decoder to support
	zstdDecoderCost = zstdMaxWindow + 1<<20
)

var (
	errEncoding = errors.New("unsupported Content-Encoding")
	errTooLarge = errors.New("body too large")
	errBudget   = errors.New("request bodies are using all the memory allowed to them")
)

// budget bounds the bytes of request bodies (as sent and decoded) and of decoders held by
// all requests at once. Requests take from it before they allocate, and a request that
// cannot take what it needs is refused (503) rather than made to wait: requests that wait
// while holding part of the budget could wait for each other forever.
type budget struct {
	mu   sync.Mutex
	size int64
	left int64
}

func newBudget(size int64) *budget { return &budget{size: size, left: size} }

// remaining returns the bytes not taken.
func (b *budget) remaining() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left
}

// lease is what one request holds of the budget; release gives it all back.
type lease struct {
	b *budget
	n int64
}

// grow takes n more bytes, or fails with errBudget.
func (l *lease) grow(n int64) error {
	if n <= 0 {
		return nil
	}
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if n > l.b.left {
		return errBudget
	}
	l.b.left -= n
	l.n += n
	return nil
}

// shrink gives n bytes back.
func (l *lease) shrink(n int64) {
	n = min(n, l.n)
	l.b.mu.Lock()
	l.b.left += n
	l.b.mu.Unlock()
	l.n -= n
}

func (l *lease) release() { l.shrink(l.n) }

// firstBuffer is the first buffer of a body as sent: bodies come in over the network, and a
// larger buffer is taken only once this one is full.
const firstBuffer = 32 << 10

// readAll reads r to its end, refusing past limit bytes with errTooLarge. Its buffer starts
// at first bytes and doubles as data comes, up to size+1 when the size to come is known (a
// Content-Length; 0 if not): a client that announces a large body and sends little of it
// holds little. Every buffer is taken from the lease before it is allocated, so that no body
// is held in memory outside the budget; a buffer outgrown is given back once copied.
func readAll(r io.Reader, first, size, limit int64, l *lease) ([]byte, error) {
	most := limit + 1
	if size > 0 {
		most = min(most, size+1) // room to see the end without growing
	}
	n := min(max(first, 512), most)
	if err := l.grow(n); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, errTooLarge
			}
			next := min(2*int64(cap(buf)), most)
			if next <= int64(cap(buf)) { // the announced size is passed: net/http does not let it
				next = min(2*int64(cap(buf)), limit+1)
			}
			if err := l.grow(next); err != nil {
				return nil, err
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			l.shrink(int64(cap(buf)))
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errTooLarge
	}
	return buf, nil
}

// identity reports whether a Content-Encoding leaves the body as it is.
func identity(enc string) bool {
	enc = strings.ToLower(strings.TrimSpace(enc))
	return enc == "" || enc == "identity"
}

// decode undoes a Content-Encoding, refusing output past max; the output and the decoder's
// own memory are taken from the lease.
func decode(enc string, raw []byte, max int64, l *lease) ([]byte, error) {
	if identity(enc) {
		return raw, nil
	}
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "gzip", "x-gzip":
		if err := l.grow(gzipDecoderCost); err != nil {
			return nil, err
		}
		defer l.shrink(gzipDecoderCost)
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case "zstd":
		if err := l.grow(zstdDecoderCost); err != nil {
			return nil, err
		}
		defer l.shrink(zstdDecoderCost)
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(uint64(max)+1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w %q (use gzip, zstd or none)", errEncoding, enc)
	}
	// Logs compress some tenfold: start there rather than grow from nothing.
	out, err := readAll(r, 10*int64(len(raw)), 0, max, l)
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, errBudget):
		return nil, err
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, errTooLarge
	case err != nil:
		return nil, fmt.Errorf("%s: %w", enc, err)
	}
	return out, nil
}
