package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// Framing is how a stream is cut into records.
type Framing string

// The framings.
const (
	// Auto picks JSON for a stream that starts with a JSON array, a JSON value spread over
	// several lines or an envelope document, else Lines (see Sniff).
	Auto Framing = "auto"
	// Lines makes each line a record.
	Lines Framing = "lines"
	// JSON makes each JSON value of the stream a record, whatever its lines: the elements of
	// a top-level array, and of the array of an envelope ({"Records": [...]}), are records of
	// their own. Records are handed on compacted to one line each.
	JSON Framing = "json"
)

// ParseFraming reads a framing's name.
func ParseFraming(s string) (Framing, error) {
	switch f := Framing(s); f {
	case Auto, Lines, JSON:
		return f, nil
	case "":
		return Auto, nil
	}
	return "", errors.New(`framing must be auto, lines or json`)
}

// SniffSize is how many bytes of a stream Sniff wants to see.
const SniffSize = 64 << 10

// Sniff picks the framing of a stream from its first bytes: JSON when it starts with '[', with
// a JSON object that does not end on its first line (pretty-printed JSON), or with an object
// whose first key is one of envelopes (a CloudTrail file, even on one line); else Lines.
func Sniff(head []byte, envelopes []string) Framing {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	i := skipWS(head, 0)
	if i >= len(head) {
		return Lines
	}
	switch head[i] {
	case '[':
		return JSON
	case '{':
	default:
		return Lines
	}
	if _, ok := envelopeKey(head[i:], envelopes); ok {
		return JSON
	}
	line := head[i:]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	} else if len(head) >= SniffSize {
		return Lines // a long first line: JSON lines, as far as can be told
	}
	if valueEnd(line, 0) < 0 {
		return JSON
	}
	return Lines
}

// envelopeKey reports whether an object's first key is one of keys and holds an array.
func envelopeKey(obj []byte, keys []string) (string, bool) {
	i := skipWS(obj, 1)
	end := stringEnd(obj, i)
	if end < 0 {
		return "", false
	}
	key := obj[i+1 : end-1]
	j := skipWS(obj, end)
	if j >= len(obj) || obj[j] != ':' {
		return "", false
	}
	j = skipWS(obj, j+1)
	if j >= len(obj) || obj[j] != '[' {
		return "", false
	}
	for _, k := range keys {
		if string(key) == k {
			return k, true
		}
	}
	return "", false
}

// JSONChunks reads r as a sequence of JSON values and sends its records in chunks, one
// compacted record per line (see JSON). Chunk.Line is the number of the chunk's first record.
// It only follows strings and brackets: a record that is not valid JSON is handed on for the
// parser to refuse. It returns the bytes read and the read error, if any.
func JSONChunks(ctx context.Context, r io.Reader, opts Options, envelopes []string, pool *Pool, out chan<- Chunk) (int64, error) {
	opts.defaults()
	sp := &jsonSplitter{opts: opts, envelopes: envelopes, pool: pool, out: out, ctx: ctx, next: 1}
	sp.chunk = pool.get(opts.ChunkSize)
	sp.first = 1
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if ferr := sp.feed(buf[:n]); ferr != nil {
			return total, ferr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if ferr := sp.finish(); ferr != nil {
				return total, ferr
			}
			return total, err
		}
	}
}

type splitState uint8

const (
	stTop     splitState = iota // between top-level values
	stHead                      // reading the start of a top-level object: is it an envelope?
	stList                      // in a top-level or envelope array, between elements
	stRecord                    // in a record
	stSkipObj                   // after an envelope's array: the rest of its object
)

type jsonSplitter struct {
	opts      Options
	envelopes []string
	pool      *Pool
	out       chan<- Chunk
	ctx       context.Context

	state    splitState
	inList   bool // the record being read is an element of a list
	envelope bool // the list is an envelope's: its object's rest follows it
	inStr    bool
	esc      bool
	depth    int
	head     []byte // the start of a top-level object, while stHead
	headStr  bool   // the head's first key is being read

	rec      []byte // the record being read, compacted
	recSize  int64  // its size, when over the limit
	over     bool
	chunk    *[]byte
	first    int64 // number of the chunk's first record
	next     int64 // number of the next record
	finished bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (sp *jsonSplitter) feed(p []byte) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch sp.state {
		case stTop:
			switch {
			case isSpace(c):
			case c == '[':
				sp.state, sp.inList, sp.envelope = stList, true, false
			case c == '{' && len(sp.envelopes) > 0:
				sp.state, sp.head = stHead, append(sp.head[:0], c)
			case c == 0xef || c == 0xbb || c == 0xbf:
				// a UTF-8 byte order mark
			default:
				sp.state, sp.inList = stRecord, false
				if err := sp.recordByte(c); err != nil {
					return err
				}
			}
		case stHead:
			sp.head = append(sp.head, c)
			if decided, isEnvelope := sp.decideHead(); decided {
				if isEnvelope {
					sp.state, sp.inList, sp.envelope = stList, true, true
					sp.head = sp.head[:0]
				} else {
					// An ordinary object: its start is the start of a record.
					sp.state, sp.inList = stRecord, false
					head := sp.head
					sp.head = nil
					for _, b := range head {
						if sp.state != stRecord {
							return errors.New("BUG: record ended inside its head")
						}
						if err := sp.recordByte(b); err != nil {
							return err
						}
					}
					sp.head = head[:0]
				}
			}
		case stList:
			switch {
			case isSpace(c), c == ',':
			case c == ']':
				if sp.envelope {
					sp.state, sp.depth, sp.inStr, sp.esc = stSkipObj, 1, false, false
				} else {
					sp.state = stTop
				}
			default:
				sp.state = stRecord
				if err := sp.recordByte(c); err != nil {
					return err
				}
			}
		case stRecord:
			if err := sp.recordByte(c); err != nil {
				return err
			}
		case stSkipObj:
			switch {
			case sp.inStr:
				if sp.esc {
					sp.esc = false
				} else if c == '\\' {
					sp.esc = true
				} else if c == '"' {
					sp.inStr = false
				}
			case c == '"':
				sp.inStr = true
			case c == '{' || c == '[':
				sp.depth++
			case c == '}' || c == ']':
				if sp.depth--; sp.depth == 0 {
					sp.state = stTop
				}
			}
		}
	}
	return nil
}

// decideHead tells, once it can, whether the object started in head is an envelope: its first
// key is one of the envelopes and its value an array.
func (sp *jsonSplitter) decideHead() (decided, envelope bool) {
	h := sp.head
	i := skipWS(h, 1)
	if i >= len(h) {
		return len(h) > 4096, false
	}
	if h[i] != '"' {
		return true, false
	}
	end := stringEnd(h, i)
	if end < 0 {
		return len(h) > 4096, false
	}
	j := skipWS(h, end)
	if j >= len(h) {
		return false, false
	}
	if h[j] != ':' {
		return true, false
	}
	j = skipWS(h, j+1)
	if j >= len(h) {
		return false, false
	}
	_, ok := envelopeKey(h, sp.envelopes)
	return true, ok
}

// recordByte adds a byte to the record being read, dropping white space outside strings, and
// ends the record when its value is complete.
func (sp *jsonSplitter) recordByte(c byte) error {
	if sp.inStr {
		if c == '\n' {
			// A raw line feed in a string (not JSON, but lenient parsers read it) would cut the
			// record in two lines: it is written as the escape \n.
			sp.add('\\')
			sp.add('n')
			sp.esc = false
			return nil
		}
		sp.add(c)
		if sp.esc {
			sp.esc = false
		} else if c == '\\' {
			sp.esc = true
		} else if c == '"' {
			sp.inStr = false
			if sp.depth == 0 {
				return sp.endRecord()
			}
		}
		return nil
	}
	switch c {
	case '"':
		sp.inStr = true
		sp.add(c)
	case '{', '[':
		sp.depth++
		sp.add(c)
	case '}', ']':
		if sp.depth == 0 {
			// A scalar element ended by its list's ']' (or a stray bracket).
			if err := sp.endRecord(); err != nil {
				return err
			}
			if c == ']' && sp.inList {
				return sp.feed([]byte{c})
			}
			return nil
		}
		sp.add(c)
		if sp.depth--; sp.depth == 0 {
			return sp.endRecord()
		}
	case ' ', '\t', '\n', '\r':
		if sp.depth == 0 && len(sp.rec) > 0 {
			return sp.endRecord() // a scalar ends at white space
		}
	case ',':
		if sp.depth == 0 {
			return sp.endRecord()
		}
		sp.add(c)
	default:
		sp.add(c)
	}
	return nil
}

func (sp *jsonSplitter) add(c byte) {
	if sp.over {
		sp.recSize++
		return
	}
	sp.rec = append(sp.rec, c)
	if len(sp.rec) > sp.opts.MaxRecordSize {
		sp.over = true
		sp.recSize = int64(len(sp.rec))
		sp.rec = sp.rec[:sp.opts.HeadSize]
	}
}

// endRecord hands the record on and goes back to the state that follows it.
func (sp *jsonSplitter) endRecord() error {
	if sp.inList {
		sp.state = stList
	} else {
		sp.state = stTop
	}
	sp.depth, sp.inStr, sp.esc = 0, false, false
	if len(sp.rec) == 0 && !sp.over {
		return nil
	}
	n := sp.next
	sp.next++
	if sp.over {
		if err := sp.flush(); err != nil {
			return err
		}
		head := append([]byte(nil), sp.rec...)
		sp.rec, sp.over = sp.rec[:0], false
		sp.first = sp.next
		return sp.send(Chunk{Line: n, Oversized: &Oversized{Head: head, Size: sp.recSize}})
	}
	*sp.chunk = append(*sp.chunk, sp.rec...)
	*sp.chunk = append(*sp.chunk, '\n')
	sp.rec = sp.rec[:0]
	if len(*sp.chunk) >= sp.opts.ChunkSize {
		return sp.flush()
	}
	return nil
}

// flush sends the records gathered so far.
func (sp *jsonSplitter) flush() error {
	if len(*sp.chunk) == 0 {
		sp.first = sp.next
		return nil
	}
	c := Chunk{Data: *sp.chunk, Line: sp.first, buf: sp.chunk}
	sp.chunk = sp.pool.get(sp.opts.ChunkSize)
	sp.first = sp.next
	return sp.send(c)
}

func (sp *jsonSplitter) send(c Chunk) error {
	select {
	case sp.out <- c:
		return nil
	case <-sp.ctx.Done():
		c.Release(sp.pool)
		return sp.ctx.Err()
	}
}

// finish hands on what is left at the end of the stream: an unfinished record is a record
// (its parser will refuse it).
func (sp *jsonSplitter) finish() error {
	if sp.state == stHead {
		// The start of an object the stream ended in: a record, compacted as any other.
		head := sp.head
		sp.head = nil
		sp.state, sp.inList = stRecord, false
		for _, b := range head {
			if err := sp.recordByte(b); err != nil {
				return err
			}
		}
	}
	if len(sp.rec) > 0 || sp.over {
		sp.inList = false
		if err := sp.endRecord(); err != nil {
			return err
		}
	}
	if err := sp.flush(); err != nil {
		return err
	}
	sp.pool.put(sp.chunk)
	return nil
}
