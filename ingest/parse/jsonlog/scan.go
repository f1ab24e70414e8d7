package jsonlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads one JSON text. It checks the grammar of everything it reads, including values it
// skips, so that a record is either valid JSON or refused.
type scanner struct {
	data    []byte
	pos     int
	scratch []byte // unescaped strings; slices of it stay valid until the next record
	sawWS   bool   // white space was skipped since the flag was cleared
	ascii   bool   // the last string read was pure ASCII
}

func (s *scanner) reset(data []byte) {
	s.data, s.pos = data, 0
	s.scratch = s.scratch[:0]
}

// errorf makes a syntax error at the current position.
func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return // the common case in compact JSON
	}
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
			s.sawWS = true
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end, want %q", c)
		}
		return s.errorf("unexpected %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// str reads a string at the current position (which is '"') and returns its value; the value
// points into the input when it has no escapes, else into scratch.
func (s *scanner) str() ([]byte, error) {
	start := s.pos + 1
	end, special, hi := scanString(s.data, start)
	if end < 0 {
		s.pos = len(s.data)
		return nil, s.errorf("unterminated string")
	}
	if !special {
		s.pos = end + 1
		s.ascii = !hi
		return s.data[start:end], nil
	}
	s.ascii = false
	return s.unescape(start)
}

// SWAR constants: bytes with every byte set to 0x01, 0x80, '"' and '\\'.
const (
	lsb       = 0x0101010101010101
	msb       = 0x8080808080808080
	quotes    = lsb * '"'
	backslash = lsb * '\\'
)

// scanString finds the first '"' or '\\' from start, eight bytes at a time. It returns its
// index (-1 if none), whether it is a backslash, and whether a byte >= 0x80 came before it.
func scanString(d []byte, start int) (int, bool, bool) {
	i := start
	var hi uint64
	for ; i+8 <= len(d); i += 8 {
		x := binary.LittleEndian.Uint64(d[i:])
		q := x ^ quotes
		b := x ^ backslash
		// A zero byte in q or b marks a quote or a backslash.
		m := ((q-lsb)&^q | (b-lsb)&^b) & msb
		if m != 0 {
			// Only bytes before the first mark count for hi.
			n := bits.TrailingZeros64(m) / 8
			hi |= x & (1<<(8*n) - 1) & msb
			i += n
			return i, d[i] == '\\', hi != 0
		}
		hi |= x & msb
	}
	for ; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			return i, false, hi != 0
		case c == '\\':
			return i, true, hi != 0
		case c >= 0x80:
			hi = 1
		}
	}
	return -1, false, false
}

// unescape reads a string with escapes starting at data[start] (after the opening quote).
func (s *scanner) unescape(start int) ([]byte, error) {
	out := len(s.scratch)
	i := start
	for {
		if i >= len(s.data) {
			s.pos = i
			return nil, s.errorf("unterminated string")
		}
		c := s.data[i]
		switch c {
		case '"':
			s.pos = i + 1
			return s.scratch[out:len(s.scratch):len(s.scratch)], nil
		case '\\':
			if i+1 >= len(s.data) {
				s.pos = i
				return nil, s.errorf("unterminated string")
			}
			e := s.data[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				s.scratch = append(s.scratch, e)
			case 'b':
				s.scratch = append(s.scratch, '\b')
			case 'f':
				s.scratch = append(s.scratch, '\f')
			case 'n':
				s.scratch = append(s.scratch, '\n')
			case 'r':
				s.scratch = append(s.scratch, '\r')
			case 't':
				s.scratch = append(s.scratch, '\t')
			case 'u':
				r, ok := hex4(s.data, i)
				if !ok {
					s.pos = i
					return nil, s.errorf(`bad \u escape`)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if i+6 <= len(s.data) && s.data[i] == '\\' && s.data[i+1] == 'u' {
						r2, ok = hex4(s.data, i+2)
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError // a lone surrogate
					}
				}
				s.scratch = utf8.AppendRune(s.scratch, r)
			default:
				s.pos = i - 1
				return nil, s.errorf("bad escape \\%c", e)
			}
		default:
			// Copy the run up to the next quote or backslash at once.
			j := i + 1
			for j < len(s.data) && s.data[j] != '"' && s.data[j] != '\\' {
				j++
			}
			s.scratch = append(s.scratch, s.data[i:j]...)
			i = j
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// kind is the kind of the JSON value at the current position.
type kind byte

const (
	kindEnd kind = iota
	kindObject
	kindArray
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindBad
)

func (k kind) String() string {
	return [...]string{"end", "object", "array", "string", "number", "true", "false", "null", "invalid value"}[k]
}

// kinds maps the first byte of a value to its kind.
var kinds = func() (t [256]kind) {
	for i := range t {
		t[i] = kindBad
	}
	t['{'], t['['], t['"'], t['t'], t['f'], t['n'] = kindObject, kindArray, kindString, kindTrue, kindFalse, kindNull
	for _, c := range "-0123456789" {
		t[c] = kindNumber
	}
	return t
}()

func (s *scanner) kind() kind {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return kinds[s.data[s.pos]]
	}
	if s.peek() == 0 {
		return kindEnd
	}
	return kinds[s.data[s.pos]]
}

// isASCII reports whether b holds only ASCII bytes, eight at a time.
func isASCII(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&msb != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// literal reads true, false or null.
func (s *scanner) literal(want string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(want)) {
		return s.errorf("invalid literal")
	}
	s.pos += len(want)
	return nil
}

// number reads a number and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.pos
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, s.errorf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return nil, s.errorf("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return nil, s.errorf("invalid number")
		}
	}
	s.pos = i
	return d[start:i], nil
}

var errTooDeep = errors.New("JSON nested too deeply")

const maxDepth = 512

// skip reads any value, checking its grammar, and returns its text.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.pos
	if err := s.skipValue(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	switch k := s.kind(); k {
	case kindObject:
		s.pos++
		if s.peek() == '}' {
			s.pos++
			return nil
		}
		for {
			if s.peek() != '"' {
				return s.errorf("want a key")
			}
			if err := s.skipString(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				return nil
			default:
				return s.errorf("want ',' or '}'")
			}
		}
	case kindArray:
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return nil
			default:
				return s.errorf("want ',' or ']'")
			}
		}
	case kindString:
		return s.skipString()
	case kindNumber:
		_, err := s.number()
		return err
	case kindTrue:
		return s.literal("true")
	case kindFalse:
		return s.literal("false")
	case kindNull:
		return s.literal("null")
	case kindEnd:
		return s.errorf("unexpected end")
	default:
		return s.errorf("unexpected %q", s.data[s.pos])
	}
}

// skipString skips a string without unescaping it, checking its escapes.
func (s *scanner) skipString() error {
	i := s.pos + 1
	for {
		j := bytes.IndexByte(s.data[i:], '"')
		if j < 0 {
			s.pos = len(s.data)
			return s.errorf("unterminated string")
		}
		seg := s.data[i : i+j]
		if bytes.IndexByte(seg, '\\') < 0 {
			s.pos = i + j + 1
			return nil
		}
		// The segment has escapes: walk them to find the real end and check them.
		k := i
		for k < len(s.data) {
			c := s.data[k]
			if c == '"' {
				s.pos = k + 1
				return nil
			}
			if c != '\\' {
				k++
				continue
			}
			if k+1 >= len(s.data) {
				break
			}
			switch s.data[k+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				k += 2
			case 'u':
				if _, ok := hex4(s.data, k+2); !ok {
					s.pos = k
					return s.errorf(`bad \u escape`)
				}
				k += 6
			default:
				s.pos = k
				return s.errorf("bad escape")
			}
		}
		s.pos = len(s.data)
		return s.errorf("unterminated string")
	}
}
