// Package records splits a body (an HTTP request, an object) into records by stream type:
// lines, a stream of JSON values (NDJSON or concatenated objects), a JSON array (optionally
// under an envelope field such as CloudTrail's "Records"), or a CloudWatch Logs subscription
// payload. Records are parsed later; splitting only finds their boundaries, checking the JSON
// structure enough to find them (brackets, strings and escapes). In a stream of JSON values,
// text that is not JSON becomes a record of its own, a line at a time (to be kept as a
// failure); an array, envelope or CloudWatch payload that is malformed cannot be split and the
// body is refused as a whole, before anything in it is acknowledged.
package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Kind is a stream type.
type Kind string

// The stream types.
const (
	Auto       Kind = "auto"       // chosen from the body: see Split
	Lines      Kind = "lines"      // one record per line; blank lines are skipped
	JSON       Kind = "json"       // JSON values one after the other (NDJSON, or objects back to back)
	JSONArray  Kind = "jsonarray"  // one JSON array, or an object holding it under Envelope
	CloudWatch Kind = "cloudwatch" // a CloudWatch Logs subscription payload: the messages of its log events
)

// Kinds lists the stream types, for help and validation.
var Kinds = []Kind{Auto, Lines, JSON, JSONArray, CloudWatch}

// Splitter splits bodies of one stream type.
type Splitter struct {
	Kind Kind
	// Envelope is the field of a top-level object holding the array of records (JSONArray);
	// empty means the body is the array itself.
	Envelope string
	// MaxRecords, when positive, refuses bodies with more records (ErrTooMany).
	MaxRecords int
}

// Errors.
var (
	ErrTooMany   = errors.New("too many records")
	ErrMalformed = errors.New("malformed body")
)

// Validate checks the splitter's settings.
func (s Splitter) Validate() error {
	switch s.Kind {
	case Auto, Lines, JSON, CloudWatch, "":
		if s.Envelope != "" {
			return fmt.Errorf("an envelope field is for the %s stream type", JSONArray)
		}
	case JSONArray:
	default:
		return fmt.Errorf("unknown stream type %q (want one of %v)", s.Kind, Kinds)
	}
	return nil
}

// Split returns the records of a body; they alias it. Auto takes a body starting with '[' as a
// JSON array, an object with messageType and logEvents as a CloudWatch payload, other JSON as
// a stream of values, and anything else as lines.
func (s Splitter) Split(body []byte) ([][]byte, error) {
	kind := s.Kind
	if kind == Auto || kind == "" {
		kind = detect(body)
	}
	var recs [][]byte
	var err error
	switch kind {
	case Lines:
		recs = lines(body, s.MaxRecords)
	case JSON:
		recs, err = values(body, s.MaxRecords)
	case JSONArray:
		recs, err = array(body, s.Envelope, s.MaxRecords)
	case CloudWatch:
		recs, err = cloudWatch(body)
	default:
		return nil, fmt.Errorf("unknown stream type %q", kind)
	}
	if err != nil {
		return nil, err
	}
	if s.MaxRecords > 0 && len(recs) > s.MaxRecords {
		return nil, fmt.Errorf("%w: more than %d in one body", ErrTooMany, s.MaxRecords)
	}
	return recs, nil
}

func detect(body []byte) Kind {
	i := skipSpace(body, 0)
	if i == len(body) {
		return Lines
	}
	switch body[i] {
	case '[':
		return JSONArray
	case '{':
		head := body[i:min(len(body), i+512)]
		if bytes.Contains(head, []byte(`"messageType"`)) && bytes.Contains(body, []byte(`"logEvents"`)) {
			return CloudWatch
		}
		return JSON
	}
	return Lines
}

func lines(body []byte, max int) [][]byte {
	var recs [][]byte
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		var line []byte
		if i < 0 {
			line, body = body, nil
		} else {
			line, body = body[:i], body[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		recs = append(recs, line)
		if max > 0 && len(recs) > max {
			break // enough to refuse the body
		}
	}
	return recs
}

// values splits JSON values separated by white space. Text that is not a JSON value is not
// lost: the rest of its line is a record of its own (a failure once parsed), and splitting
// goes on at the next line.
func values(body []byte, max int) ([][]byte, error) {
	var recs [][]byte
	for i := skipSpace(body, 0); i < len(body); i = skipSpace(body, i) {
		end, err := valueEnd(body, i)
		if err != nil || !validToken(body[i:end]) {
			end = i + bytes.IndexByte(body[i:], '\n')
			if end < i {
				end = len(body)
			}
		}
		recs = append(recs, bytes.TrimRight(body[i:end], " \t\r"))
		if max > 0 && len(recs) > max {
			break
		}
		i = end
	}
	return recs, nil
}

// array splits the elements of a JSON array, or of the array under envelope in an object.
func array(body []byte, envelope string, max int) ([][]byte, error) {
	i := skipSpace(body, 0)
	if envelope != "" {
		start, end, objEnd, err := field(body, i, envelope)
		if err != nil {
			return nil, err
		}
		if skipSpace(body, objEnd) != len(body) {
			return nil, fmt.Errorf("%w: data after the object", ErrMalformed)
		}
		body, i = body[:end], start
	}
	if i == len(body) || body[i] != '[' {
		return nil, fmt.Errorf("%w: not a JSON array", ErrMalformed)
	}
	var recs [][]byte
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		i++
	} else {
		for {
			end, err := valueEnd(body, i)
			if err != nil {
				return nil, err
			}
			recs = append(recs, body[i:end])
			if max > 0 && len(recs) > max {
				return recs, nil
			}
			i = skipSpace(body, end)
			if i == len(body) {
				return nil, fmt.Errorf("%w: unterminated array", ErrMalformed)
			}
			if body[i] == ']' {
				i++
				break
			}
			if body[i] != ',' {
				return nil, fmt.Errorf("%w: want ',' or ']' at byte %d", ErrMalformed, i)
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return nil, fmt.Errorf("%w: data after the array", ErrMalformed)
	}
	return recs, nil
}

// field finds the value of a top-level key of the object at i, and returns its span and the
// end of the object.
func field(body []byte, i int, key string) (start, end, objEnd int, err error) {
	if i == len(body) || body[i] != '{' {
		return 0, 0, 0, fmt.Errorf("%w: want an object holding %q", ErrMalformed, key)
	}
	start = -1
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return 0, 0, 0, fmt.Errorf("%w: the object has no %q", ErrMalformed, key)
	}
	for {
		if i == len(body) || body[i] != '"' {
			return 0, 0, 0, fmt.Errorf("%w: want a key at byte %d", ErrMalformed, i)
		}
		kend, err := stringEnd(body, i)
		if err != nil {
			return 0, 0, 0, err
		}
		var k string
		if err := json.Unmarshal(body[i:kend], &k); err != nil {
			return 0, 0, 0, fmt.Errorf("%w: bad key at byte %d", ErrMalformed, i)
		}
		i = skipSpace(body, kend)
		if i == len(body) || body[i] != ':' {
			return 0, 0, 0, fmt.Errorf("%w: want ':' at byte %d", ErrMalformed, i)
		}
		i = skipSpace(body, i+1)
		vend, err := valueEnd(body, i)
		if err != nil {
			return 0, 0, 0, err
		}
		if k == key {
			start, end = i, vend
		}
		i = skipSpace(body, vend)
		if i == len(body) {
			return 0, 0, 0, fmt.Errorf("%w: unterminated object", ErrMalformed)
		}
		if body[i] == '}' {
			break
		}
		if body[i] != ',' {
			return 0, 0, 0, fmt.Errorf("%w: want ',' or '}' at byte %d", ErrMalformed, i)
		}
		i = skipSpace(body, i+1)
	}
	if start < 0 {
		return 0, 0, 0, fmt.Errorf("%w: the object has no %q", ErrMalformed, key)
	}
	return start, end, i + 1, nil
}

// cloudWatch returns the messages of a CloudWatch Logs subscription payload (none for a
// control message).
func cloudWatch(body []byte) ([][]byte, error) {
	var p struct {
		MessageType string `json:"messageType"`
		LogEvents   []struct {
			Message string `json:"message"`
		} `json:"logEvents"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: CloudWatch Logs payload: %v", ErrMalformed, err)
	}
	switch p.MessageType {
	case "CONTROL_MESSAGE":
		return nil, nil
	case "DATA_MESSAGE":
	default:
		return nil, fmt.Errorf("%w: CloudWatch Logs payload of messageType %q", ErrMalformed, p.MessageType)
	}
	recs := make([][]byte, 0, len(p.LogEvents))
	for _, e := range p.LogEvents {
		recs = append(recs, []byte(e.Message))
	}
	return recs, nil
}

// validToken reports whether a value valueEnd delimited is JSON: an object, array or string
// (checked by their delimiters), or a literal or number.
func validToken(v []byte) bool {
	switch {
	case len(v) == 0:
		return false
	case v[0] == '{' || v[0] == '[' || v[0] == '"':
		return true
	case string(v) == "true" || string(v) == "false" || string(v) == "null":
		return true
	}
	return json.Valid(v) // a number
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value at i: an object or array by its brackets (strings
// skipped with their escapes), a string, or a scalar up to the next delimiter.
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: unexpected end", ErrMalformed)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		var stack []byte
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				stack = append(stack, c)
			case '}', ']':
				if len(stack) == 0 || (c == '}') != (stack[len(stack)-1] == '{') {
					return 0, fmt.Errorf("%w: unbalanced %q at byte %d", ErrMalformed, c, j)
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated value starting at byte %d", ErrMalformed, i)
	case ',', ':', ']', '}':
		return 0, fmt.Errorf("%w: unexpected %q at byte %d", ErrMalformed, b[i], i)
	}
	j := i
	for j < len(b) && !bytes.ContainsRune([]byte(" \t\r\n,]}"), rune(b[j])) {
		j++
	}
	return j, nil
}

// stringEnd returns the end of the JSON string at i (after its closing quote).
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		case '\n':
			return 0, fmt.Errorf("%w: newline in a string at byte %d", ErrMalformed, j)
		}
	}
	return 0, fmt.Errorf("%w: unterminated string at byte %d", ErrMalformed, i)
}
