package s3src

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ospreyhq/osprey/ingest/source/records"
	"github.com/ospreyhq/osprey/ingest/source/stream"
)

// SplitOptions bound how an object is cut into records.
type SplitOptions struct {
	// ChunkSize is about how many bytes of records are handed on at a time; default 4 MiB.
	ChunkSize int
	// MaxRecord is the longest record kept whole; a longer line is cut to MaxRecord+1 bytes,
	// which the workers keep as an oversized failure. Default 32 MiB (stream's limit).
	MaxRecord int
	// MaxDocument is the largest JSON document (a pretty-printed CloudTrail file, a JSON
	// array) read whole to split it; default 512 MiB.
	MaxDocument int
	// Envelope is the field of a top-level object whose array holds the records; default
	// Records (CloudTrail, and S3 event notifications written to objects).
	Envelope string
}

func (o *SplitOptions) defaults() {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 4 << 20
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = stream.Options{}.WithDefaults().MaxRecordSize
	}
	if o.MaxDocument <= 0 {
		o.MaxDocument = 512 << 20
	}
	if o.Envelope == "" {
		o.Envelope = "Records"
	}
}

// sniffSize is how much of an object is looked at to tell lines from a multi-line document.
const sniffSize = 64 << 10

// ErrTooLarge refuses a multi-line JSON document larger than MaxDocument.
var ErrTooLarge = errors.New("JSON document too large to split")

// Split reads an object's body (plain, gzip or zstd: sniffed from the bytes, never from the
// name) and hands its records to fn, a chunk of about ChunkSize bytes at a time. fn owns the
// records it is given: they are not reused. It returns the bytes read after decompression.
//
// The body is lines, one record each (JSON lines, or text), where a line that is an object
// with the envelope field ({"Records":[...]} on one line) is replaced by the elements of its
// array; or one multi-line JSON document (a pretty-printed CloudTrail file, a JSON array),
// read whole and split into the elements of its array or envelope.
func Split(body io.Reader, opts SplitOptions, fn func(records [][]byte) error) (int64, error) {
	opts.defaults()
	dr, comp, err := stream.Decompress(body)
	if err != nil {
		return 0, err
	}
	defer dr.Close()
	br := bufio.NewReaderSize(dr, sniffSize)
	// A read error here (a truncated stream) comes again after the bytes read before it.
	head, _ := br.Peek(sniffSize)
	s := &splitter{opts: opts, fn: fn}
	var n int64
	if isDocument(head) {
		n, err = s.document(br)
	} else {
		n, err = s.lines(br)
	}
	return n, readError(comp, err)
}

func readError(comp stream.Compression, err error) error {
	if err != nil && comp != stream.None && errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s stream is truncated: %w", comp, err)
	}
	return err
}

// isDocument reports whether a body starts with a JSON value that its first line does not
// hold: a multi-line document rather than JSON lines.
func isDocument(head []byte) bool {
	i := 0
	for i < len(head) && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n') {
		i++
	}
	if i == len(head) || head[i] != '{' && head[i] != '[' {
		return false
	}
	line := head[i:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	body := bytes.TrimRight(line, " \t\r")
	rs, err := records.Splitter{Kind: records.JSON}.Split(body)
	// One whole value on the first line: JSON lines. Anything else (an unfinished value) is a
	// document, unless the first line was cut by the sniff window.
	if err == nil && len(rs) == 1 && len(rs[0]) == len(bytes.TrimSpace(body)) && validJSON(rs[0]) {
		return false
	}
	return bytes.IndexByte(head[i:], '\n') >= 0
}

func validJSON(b []byte) bool {
	_, err := records.Splitter{Kind: records.JSONArray}.Split(append(append([]byte{'['}, b...), ']'))
	return err == nil
}

type splitter struct {
	opts  SplitOptions
	fn    func([][]byte) error
	recs  [][]byte
	bytes int
}

// emit adds a record to the chunk, handing the chunk on when full.
func (s *splitter) emit(rec []byte) error {
	s.recs = append(s.recs, rec)
	s.bytes += len(rec)
	if s.bytes >= s.opts.ChunkSize {
		return s.flush()
	}
	return nil
}

func (s *splitter) flush() error {
	if len(s.recs) == 0 {
		return nil
	}
	recs := s.recs
	s.recs, s.bytes = nil, 0
	return s.fn(recs)
}

// record emits a line (or a value), or the elements of the envelope array it holds. The
// envelope field is looked for in the first lookAt bytes.
func (s *splitter) record(line []byte, lookAt int) error {
	if len(line) > 0 && line[0] == '{' && bytes.Contains(line[:min(len(line), lookAt)], []byte(`"`+s.opts.Envelope+`"`)) {
		if elems, err := (records.Splitter{Kind: records.JSONArray, Envelope: s.opts.Envelope}).Split(line); err == nil {
			for _, e := range elems {
				if err := s.emit(e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return s.emit(line)
}

// lines reads whole lines in blocks of ChunkSize; records alias the blocks, which are not
// reused.
func (s *splitter) lines(r *bufio.Reader) (int64, error) {
	var n int64
	var carry []byte // a partial line from the previous block
	for {
		buf := make([]byte, len(carry), max(s.opts.ChunkSize, 2*len(carry)))
		copy(buf, carry)
		m, err := fill(r, buf[len(carry):cap(buf)])
		n += int64(m)
		buf = buf[:len(carry)+m]
		// At the end, or at a read error (a truncated gzip), the records read so far are
		// handed on before the error.
		eof := err != nil
		data := buf
		if !eof {
			last := bytes.LastIndexByte(data, '\n')
			if last < 0 {
				if len(data) > s.opts.MaxRecord {
					// A line longer than any record: keep its head, skip the rest.
					if err := s.emit(data[:s.opts.MaxRecord+1]); err != nil {
						return n, err
					}
					skipped, err := skipLine(r)
					n += skipped
					if err != nil {
						if errors.Is(err, io.EOF) {
							return n, s.flush()
						}
						return n, err
					}
					carry = nil
					continue
				}
				carry = data
				continue
			}
			carry = append([]byte(nil), data[last+1:]...)
			data = data[:last+1]
		} else {
			carry = nil
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			var line []byte
			if i < 0 {
				line, data = data, nil
			} else {
				line, data = data[:i], data[i+1:]
			}
			line = bytes.TrimRight(line, "\r")
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			// CloudTrail writes "Records" first; a JSON line that merely mentions the word
			// further on is not looked at twice.
			if err := s.record(line, 256); err != nil {
				return n, err
			}
		}
		if eof {
			if ferr := s.flush(); ferr != nil || errors.Is(err, io.EOF) {
				return n, ferr
			}
			return n, err
		}
	}
}

// fill reads until buf is full or the reader fails; at the end of the stream it returns io.EOF
// (where io.ReadFull would not tell a short last read from a truncated compressed stream).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// skipLine reads up to and including the next newline.
func skipLine(r *bufio.Reader) (int64, error) {
	var n int64
	for {
		b, err := r.ReadSlice('\n')
		n += int64(len(b))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return n, err
		}
	}
}

// document reads a multi-line JSON document whole and emits its records: the elements of a
// top-level array or of the envelope array of a top-level object, else each top-level value.
func (s *splitter) document(r io.Reader) (int64, error) {
	body, err := io.ReadAll(io.LimitReader(r, int64(s.opts.MaxDocument)+1))
	n := int64(len(body))
	if err != nil {
		return n, err
	}
	if len(body) > s.opts.MaxDocument {
		return n, fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.opts.MaxDocument)
	}
	values, err := records.Splitter{Kind: records.JSON}.Split(body)
	if err != nil {
		return n, err
	}
	for _, v := range values {
		switch {
		case len(v) > 0 && v[0] == '[':
			elems, err := records.Splitter{Kind: records.JSONArray}.Split(v)
			if err != nil {
				if err := s.emit(v); err != nil {
					return n, err
				}
				continue
			}
			for _, e := range elems {
				if err := s.emit(e); err != nil {
					return n, err
				}
			}
		default:
			if err := s.record(v, len(v)); err != nil {
				return n, err
			}
		}
	}
	return n, s.flush()
}
