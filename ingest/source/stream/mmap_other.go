//go:build !unix

package stream

import (
	"context"
	"errors"
	"os"
)

// Mapping is not supported here: Map returns nil and files are read as streams.
type Mapping struct{}

// ErrTruncated reports a file that lost data while it was read in place.
var ErrTruncated = errors.New("the file was truncated while it was read")

// Map returns nil: files are read as streams on this system.
func Map(f *os.File) (*Mapping, error) { return nil, nil }

// Compression is never called: Map returns no mapping.
func (m *Mapping) Compression() (Compression, error) { return None, nil }

// Sniff is never called: Map returns no mapping.
func (m *Mapping) Sniff(envelopes []string) (Framing, error) { return Lines, nil }

// Head is never called: Map returns no mapping.
func (m *Mapping) Head(n int) ([]byte, error) { return nil, nil }

// Close does nothing.
func (m *Mapping) Close() error { return nil }

// Chunks is never called: Map returns no mapping.
func (m *Mapping) Chunks(ctx context.Context, opts Options, out chan<- Chunk) (int64, error) {
	return 0, errors.New("memory-mapped files are not supported")
}

func (m *Mapping) release(start, end int) {}

// IsFault reports false: nothing is mapped.
func IsFault(r any) bool { return false }
