package syslogsrc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// readBuffer is the size of a connection's read buffer: with the message buffer (at most the
// message limit), all a connection holds.
const readBuffer = 16 << 10

// maxCountDigits is the longest octet count read: counts of a billion bytes or more are refused.
const maxCountDigits = 9

var errBadCount = errors.New("octet count of 10 digits or more")

// A frame is one message of a TCP stream, placed in the stream.
type frame struct {
	msg   []byte // the message, or its first max bytes; valid until the next call
	size  int64  // bytes of the message read: len(msg) and those dropped past the limit
	start int64  // stream offset of the message's first byte (past an octet count)
	end   int64  // stream offset past the frame (its newline included)
}

// A frameReader cuts a TCP stream into syslog messages, octet-counted ("<length> <message>",
// RFC 6587) or newline-delimited, told apart per message: one that starts with a count and a
// space is octet-counted. It holds at most max bytes of a message: past them, a message's bytes
// are read and dropped (counted in frame.size) until its newline or its count ends it, so a
// stream without a newline, or with a huge count, costs time and no memory.
type frameReader struct {
	br  *bufio.Reader
	max int
	buf []byte // the message, grown up to max
	off int64  // bytes read from the stream
}

func newFrameReader(r io.Reader, max int) *frameReader { return newFrameReaderSize(r, max, readBuffer) }

// newFrameReaderSize is newFrameReader with a read buffer of another size (tests cross its
// edges with small ones).
func newFrameReaderSize(r io.Reader, max, size int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, size), max: max}
}

// held returns the bytes the reader holds at most from now on: its read buffer and the
// message buffer (which only grows).
func (r *frameReader) held() int { return r.br.Size() + cap(r.buf) }

// next returns the next frame. At the stream's clean end it returns io.EOF and an empty frame.
// On an error it returns the frame read so far, which may hold a message: a last line without
// a newline comes with io.EOF, an octet-counted frame the stream ended inside with
// io.ErrUnexpectedEOF, a read cut by a timeout or a closed connection with that error.
func (r *frameReader) next() (frame, error) {
	r.buf = r.buf[:0]
	n, err := r.count()
	switch {
	case err != nil:
		return frame{start: r.off, end: r.off}, err
	case n > 0:
		return r.counted(n)
	}
	return r.line()
}

// count reads an octet count and its space if the stream goes on with one, and returns it (0
// if the next message is newline-delimited). A count of maxCountDigits+1 digits or more is an
// error: such a stream is broken or hostile, its framing is lost (there is no telling where
// the next message starts) and only closing the connection ends it, while skipping a
// gigabyte would tie the connection up for as long as the sender cares to send. Counts below
// that are read, whatever the limit: the bytes past it are dropped as they come.
func (r *frameReader) count() (int, error) {
	for i := 1; i <= maxCountDigits+1; i++ {
		b, err := r.br.Peek(i)
		if len(b) < i {
			if i > 1 && errors.Is(err, io.EOF) {
				return 0, nil // digits and the stream's end: a last line without a newline
			}
			return 0, err // the stream's clean end (io.EOF), or a read error
		}
		c := b[i-1]
		switch {
		case c == ' ' && i > 1:
			n := 0
			for _, d := range b[:i-1] {
				n = 10*n + int(d-'0')
			}
			r.br.Discard(i)
			r.off += int64(i)
			return n, nil
		case c < '0' || c > '9' || i == 1 && c == '0':
			return 0, nil // not a count: a line
		}
	}
	return 0, errBadCount
}

// counted reads an octet-counted message of n bytes.
func (r *frameReader) counted(n int) (frame, error) {
	f := frame{start: r.off}
	keep := min(n, r.max)
	r.grow(keep)
	got, err := io.ReadFull(r.br, r.buf[:keep])
	r.off += int64(got)
	f.msg, f.size = r.buf[:got], int64(got)
	if err == nil && n > keep {
		var d int
		d, err = r.br.Discard(n - keep)
		r.off += int64(d)
		f.size += int64(d)
	}
	f.end = r.off
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return f, fmt.Errorf("octet-counted frame of %d bytes: %w", n, err)
	}
	return f, nil
}

// line reads a newline-delimited message (without its newline).
func (r *frameReader) line() (frame, error) {
	f := frame{start: r.off}
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.off += int64(len(chunk))
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		f.size += int64(len(body))
		if room := r.max - len(r.buf); room > 0 {
			body = body[:min(len(body), room)]
			r.grow(len(r.buf) + len(body))
			r.buf = append(r.buf, body...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		f.msg, f.end = r.buf, r.off
		return f, err
	}
}

// grow makes room for n bytes in the message buffer (n <= max), doubling it to spare
// copies and never past max.
func (r *frameReader) grow(n int) {
	if n <= cap(r.buf) {
		return
	}
	nb := make([]byte, len(r.buf), min(r.max, max(n, 2*cap(r.buf), 512)))
	copy(nb, r.buf)
	r.buf = nb
}
