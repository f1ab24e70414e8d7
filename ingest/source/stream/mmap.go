//go:build unix

package stream

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"
)

// A Mapping is a regular file mapped into memory and cut into chunks in place: its bytes are
// never copied out of the kernel's page cache, which for a large file costs as much CPU as
// parsing a tenth of it. Chunk data then points into the mapping: consumers must be done with a
// chunk when they release it. The pages of released chunks are dropped from memory as the
// consumers move on, so a mapping holds about the chunks in flight.
//
// A file truncated while it is mapped makes reading its lost pages fault. Goroutines reading a
// mapping's chunks turn that fault into a panic with debug.SetPanicOnFault and recover it with
// IsFault; Chunks does so itself.
type Mapping struct {
	data []byte

	mu    sync.Mutex
	done  map[int]int // end of each released chunk, by start, past mark
	mark  int         // every chunk before mark was released
	freed int         // bytes before freed were dropped from memory (a page multiple)
}

// ErrTruncated reports a file that lost data while it was read in place.
var ErrTruncated = errors.New("the file was truncated while it was read")

// minMapSize is the smallest file worth mapping: below it a read costs less than setting up
// and tearing down the mapping.
const minMapSize = 1 << 20

// Map maps a regular file of at least a MiB for reading in place. It returns nil and no error
// for a file that is not worth mapping (small, or not a regular file); the caller reads it.
func Map(f *os.File) (*Mapping, error) {
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() < minMapSize || int64(int(info.Size())) != info.Size() {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil // some file systems cannot map: read instead
	}
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL) // a hint; reading works without it
	return &Mapping{data: data, done: map[int]int{}}, nil
}

// Compression reports the compression of the mapped data (read it as a stream if not None).
func (m *Mapping) Compression() (c Compression, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !IsFault(r) {
				panic(r)
			}
			err = ErrTruncated
		}
	}()
	switch {
	case bytes.HasPrefix(m.data, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(m.data, zstdMagic):
		return Zstd, nil
	}
	return None, nil
}

// Sniff picks the framing of the mapped data from its first bytes (see Sniff).
func (m *Mapping) Sniff(envelopes []string) (f Framing, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !IsFault(r) {
				panic(r)
			}
			err = ErrTruncated
		}
	}()
	return Sniff(m.data[:min(len(m.data), SniffSize)], envelopes), nil
}

// Head returns a copy of the first n bytes of the mapped data (fewer in a smaller file).
func (m *Mapping) Head(n int) (head []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !IsFault(r) {
				panic(r)
			}
			err = ErrTruncated
		}
	}()
	return append([]byte(nil), m.data[:min(len(m.data), n)]...), nil
}

// Close unmaps the file. Every chunk must have been released.
func (m *Mapping) Close() error {
	if m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	return err
}

// Chunks sends the mapping's lines in chunks of about opts.ChunkSize bytes (whole lines: a
// longer line makes a chunk of its own) until the data ends or ctx is done. It returns the
// bytes sent, and ErrTruncated if the file lost data while it was read.
func (m *Mapping) Chunks(ctx context.Context, opts Options, out chan<- Chunk) (sent int64, err error) {
	opts.defaults()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !IsFault(r) {
				panic(r)
			}
			err = ErrTruncated
		}
	}()
	data := m.data
	line := int64(1)
	for pos := 0; pos < len(data); {
		end := len(data)
		if pos+opts.ChunkSize < len(data) {
			end = pos + opts.ChunkSize
			if i := bytes.LastIndexByte(data[pos:end], '\n'); i >= 0 {
				end = pos + i + 1
			} else if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(data)
			}
		}
		c := Chunk{Data: data[pos:end:end], Line: line, mapping: m, start: pos}
		line += int64(bytes.Count(c.Data, []byte{'\n'}))
		select {
		case out <- c:
		case <-ctx.Done():
			m.release(pos, end)
			return sent, ctx.Err()
		}
		sent += int64(end - pos)
		pos = end
	}
	return sent, nil
}

// release records that the chunk [start, end) is done with and drops the pages that no chunk
// in flight needs any more.
func (m *Mapping) release(start, end int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done[start] = end
	for {
		e, ok := m.done[m.mark]
		if !ok {
			break
		}
		delete(m.done, m.mark)
		m.mark = e
	}
	page := os.Getpagesize()
	if free := m.mark / page * page; free > m.freed {
		// Dropping the pages keeps the file's resident memory to the chunks in flight; they
		// would be read again from the page cache if touched.
		_ = unix.Madvise(m.data[m.freed:free], unix.MADV_DONTNEED)
		m.freed = free
	}
}

// IsFault reports whether a recovered panic value is a memory fault, as debug.SetPanicOnFault
// makes reading a truncated mapping.
func IsFault(r any) bool {
	err, ok := r.(runtime.Error)
	if !ok {
		return false
	}
	_, addr := err.(interface{ Addr() uintptr })
	return addr
}
