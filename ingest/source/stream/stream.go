// Package stream turns byte streams into records: it detects gzip and zstd compression from
// the data (never from a file name) and cuts the stream into chunks of whole lines that workers
// parse in parallel. A line too long to fit a chunk is not dropped: its beginning is handed on as
// an oversized record so that it can be kept as a failure, and reading goes on at the next line.
// Lines within a chunk may still exceed a record size limit smaller than a chunk: consumers check
// them with Options.TooLong. A line without end (/dev/zero) keeps at most the limit in memory,
// and is handed on as oversized when ctx ends the read. Interruptible and Open make reads and
// opens that wait (pipes, FIFOs, terminals) end with ctx.
package stream

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression is a detected compression format.
type Compression string

// The compressions Decompress recognizes.
const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns a reader of r's decompressed bytes and the compression it found.
// Concatenated gzip members are read as one stream.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, None, err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, Zstd, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), Zstd, nil
	}
	return io.NopCloser(br), None, nil
}

// Chunk is a run of whole lines of a stream.
type Chunk struct {
	// Data holds whole lines, each ending with '\n' except possibly the stream's last line.
	Data []byte
	// Line is the number of the first line of Data (1-based).
	Line int64
	// Oversized, when set, is a line longer than the limit; Data is empty.
	Oversized *Oversized
	buf       *[]byte
	mapping   *Mapping // the mapping Data points into, and where in it
	start     int
}

// Oversized is the beginning of a line that exceeded the record size limit.
type Oversized struct {
	Head []byte // the first bytes of the line
	Size int64  // the line's length, without its newline
}

// Options configure Chunks.
type Options struct {
	ChunkSize     int // bytes of lines per chunk; default 8 MiB
	MaxRecordSize int // longest line accepted; default 32 MiB
	HeadSize      int // bytes kept of an oversized line; default 64 KiB
}

// WithDefaults returns the options with the defaults of unset ones filled in.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

// TooLong reports whether a line of a chunk is over the record size limit (of options with
// their defaults), and returns the part of it an oversized record keeps.
func (o Options) TooLong(line []byte) ([]byte, bool) {
	if len(line) <= o.MaxRecordSize {
		return nil, false
	}
	return line[:min(len(line), o.HeadSize)], true
}

func (o *Options) defaults() {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 8 << 20
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = 32 << 20
	}
	if o.HeadSize <= 0 {
		o.HeadSize = 64 << 10
	}
}

// Release returns a chunk's buffer for reuse; the chunk must not be used afterwards.
func (c *Chunk) Release(p *Pool) {
	if c.buf != nil {
		p.put(c.buf)
		c.buf = nil
	}
	if c.mapping != nil {
		c.mapping.release(c.start, c.start+len(c.Data))
		c.mapping = nil
	}
	c.Data = nil
}

// Pool recycles chunk buffers.
type Pool struct {
	free chan *[]byte
}

// NewPool returns a pool that keeps up to n buffers.
func NewPool(n int) *Pool { return &Pool{free: make(chan *[]byte, n)} }

func (p *Pool) get(size int) *[]byte {
	select {
	case b := <-p.free:
		if cap(*b) >= size {
			*b = (*b)[:0]
			return b
		}
	default:
	}
	b := make([]byte, 0, size)
	return &b
}

func (p *Pool) put(b *[]byte) {
	if cap(*b) > 64<<20 {
		return // do not keep buffers grown for huge lines
	}
	select {
	case p.free <- b:
	default:
	}
}

// Chunks reads r and sends its lines in chunks until r ends, ctx is done or a read fails. It
// returns the number of bytes read and the read error, if any; a stream that ends in the middle
// of a line sends that last partial line.
func Chunks(ctx context.Context, r io.Reader, opts Options, pool *Pool, out chan<- Chunk) (int64, error) {
	opts.defaults()
	var total int64
	line := int64(1)
	bufp := pool.get(opts.ChunkSize)
	buf := *bufp
	send := func(c Chunk) error {
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var readErr error
	eof := false
	for !eof {
		// Fill the buffer to ChunkSize.
		for len(buf) < opts.ChunkSize && readErr == nil {
			n, err := r.Read(buf[len(buf):opts.ChunkSize])
			buf = buf[:len(buf)+n]
			total += int64(n)
			if err != nil {
				readErr = err
			}
		}
		if readErr != nil {
			eof = true
			if errors.Is(readErr, io.EOF) {
				readErr = nil
			}
		}
		cut := len(buf)
		if !eof {
			cut = bytes.LastIndexByte(buf, '\n') + 1
		}
		if cut == 0 {
			// No newline in a full buffer: one long line. Read on until it ends.
			head, size, nl, rest, err := longLine(ctx, r, buf, opts)
			if ctx.Err() != nil && err == ctx.Err() {
				if size > int64(opts.MaxRecordSize) {
					// Interrupted in a line already over the limit (a stream of NULs without a
					// newline, say): it is a failure whatever follows. The reader of out takes
					// every chunk until out is closed, so this send needs no ctx.
					out <- Chunk{Line: line, Oversized: &Oversized{Head: head, Size: size}}
				}
				return total + size - int64(len(buf)), err
			}
			total += size - int64(len(buf)) + int64(len(rest))
			if nl {
				size-- // the record's size, as for any line, is without its newline
			}
			if size > int64(opts.MaxRecordSize) {
				if err := send(Chunk{Line: line, Oversized: &Oversized{Head: head, Size: size}}); err != nil {
					return total, err
				}
			} else {
				if err := send(Chunk{Data: head, Line: line}); err != nil {
					return total, err
				}
			}
			line++
			buf = append(buf[:0], rest...)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				if len(buf) == 0 {
					eof = true
				}
			}
			continue
		}
		*bufp = buf
		c := Chunk{Data: buf[:cut], Line: line, buf: bufp}
		line += int64(bytes.Count(c.Data, []byte{'\n'}))
		next := pool.get(opts.ChunkSize)
		*next = append((*next)[:0], buf[cut:]...)
		if err := send(c); err != nil {
			return total, err
		}
		bufp, buf = next, *next
	}
	return total, readErr
}

// longLine reads the rest of a line that does not fit a chunk. It returns the line (or, when it
// exceeds the limit, its head), the bytes it took (with its newline), whether it ended with a
// newline, the bytes read after the line and the read error that ended it early, if any, or
// ctx's error when ctx ends first. It keeps at most MaxRecordSize bytes of the line however long
// it is.
func longLine(ctx context.Context, r io.Reader, start []byte, opts Options) ([]byte, int64, bool, []byte, error) {
	line := append([]byte(nil), start...)
	size := int64(len(start))
	over := false
	tmp := make([]byte, 1<<20)
	for {
		n, err := r.Read(tmp)
		chunk := tmp[:n]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			size += int64(i + 1)
			if !over {
				line = append(line, chunk[:i+1]...)
			}
			rest := append([]byte(nil), chunk[i+1:]...)
			return finish(line, size-1, over, opts), size, true, rest, err
		}
		size += int64(n)
		if !over {
			line = append(line, chunk...)
			if len(line) > opts.MaxRecordSize {
				over = true
			}
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return finish(line, size, over, opts), size, false, nil, err
		}
	}
}

func finish(line []byte, size int64, over bool, opts Options) []byte {
	if over || size > int64(opts.MaxRecordSize) {
		return line[:min(len(line), opts.HeadSize)]
	}
	return line
}
