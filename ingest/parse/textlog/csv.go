package textlog

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
)

// csvSplit reads delimiter-separated records. A value may be quoted with double quotes, a
// quote inside written twice (RFC 4180). Columns name the values in order; an empty name drops
// its column. A record with another number of values than columns does not match.
//
// With hasHeader, a header row is skipped (ErrSkip): when columns are given, a row whose values
// are the column names (compared without regard to case, '-' or '_') is the header; without
// columns, the header row names the columns (the first row the parser sees, or the first line
// of the stream given with SetHeader), and a later row equal to it is skipped too.
type csvSplit struct {
	delim     []byte
	columns   []string
	hasHeader bool
	fromRow   bool // the columns are to come from a header row
	learned   bool // columns came from a header row
	vals      [][]byte
	scratch   []byte
}

func newCSV(c *logschema.CSVParser) (*csvSplit, error) {
	d := c.Delimiter
	if d == "" {
		d = ","
	}
	if utf8.RuneCountInString(d) != 1 {
		return nil, fmt.Errorf("csv delimiter %q must be a single character", d)
	}
	if d == `"` || d == "\n" || d == "\r" {
		return nil, fmt.Errorf("csv delimiter %q cannot be a quote or a line break", d)
	}
	if len(c.Columns) == 0 && !c.HasHeader {
		return nil, fmt.Errorf("csv needs columns or hasHeader: true")
	}
	return &csvSplit{delim: []byte(d), columns: c.Columns, hasHeader: c.HasHeader, fromRow: c.HasHeader && len(c.Columns) == 0}, nil
}

// setHeader takes the column names from a header row.
func (c *csvSplit) setHeader(line []byte) {
	if !c.fromRow {
		return
	}
	fields, err := c.fields(line)
	if err != nil {
		return
	}
	c.columns = make([]string, len(fields))
	for i, f := range fields {
		c.columns[i] = string(bytes.TrimSpace(f))
	}
	c.learned = true
}

func (c *csvSplit) split(rec []byte, vals []value) ([]value, error) {
	fields, err := c.fields(rec)
	if err != nil {
		return vals, err
	}
	if c.hasHeader {
		switch {
		case c.columns == nil:
			c.columns = make([]string, len(fields))
			for i, f := range fields {
				c.columns[i] = string(bytes.TrimSpace(f))
			}
			c.learned = true
			return vals, ErrSkip
		case c.isHeader(fields):
			return vals, ErrSkip
		}
	}
	if len(fields) != len(c.columns) {
		return vals, fmt.Errorf("csv row has %d values, want %d", len(fields), len(c.columns))
	}
	for i, f := range fields {
		if name := c.columns[i]; name != "" {
			vals = append(vals, value{name: name, v: f})
		}
	}
	return vals, nil
}

// isHeader reports whether a row holds the column names.
func (c *csvSplit) isHeader(fields [][]byte) bool {
	if len(fields) != len(c.columns) {
		return false
	}
	for i, f := range fields {
		if c.learned {
			if string(bytes.TrimSpace(f)) != c.columns[i] {
				return false
			}
			continue
		}
		if c.columns[i] != "" && !sameName(bytes.TrimSpace(f), c.columns[i]) {
			return false
		}
	}
	return true
}

// sameName compares names without regard to ASCII case, '-', '_' or spaces (account-id is
// account_id).
func sameName(a []byte, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && (a[i] == '-' || a[i] == '_' || a[i] == ' ') {
			i++
		}
		for j < len(b) && (b[j] == '-' || b[j] == '_' || b[j] == ' ') {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		x, y := a[i], b[j]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
		i++
		j++
	}
}

// fields cuts a row into values; quoted values are unquoted into c.scratch.
func (c *csvSplit) fields(rec []byte) ([][]byte, error) {
	c.vals = c.vals[:0]
	c.scratch = c.scratch[:0]
	// Values unquoted into scratch are recorded as offsets first: scratch may move as it grows.
	type span struct {
		start, end int
		inScratch  bool
	}
	var spans [32]span
	list := spans[:0]
	pos := 0
	for {
		if pos < len(rec) && rec[pos] == '"' {
			start := len(c.scratch)
			i := pos + 1
			for {
				j := bytes.IndexByte(rec[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("csv: unterminated quoted value at byte %d", pos)
				}
				c.scratch = append(c.scratch, rec[i:i+j]...)
				i += j + 1
				if i < len(rec) && rec[i] == '"' {
					c.scratch = append(c.scratch, '"')
					i++
					continue
				}
				break
			}
			list = append(list, span{start, len(c.scratch), true})
			switch {
			case i == len(rec):
				pos = -1
			case bytes.HasPrefix(rec[i:], c.delim):
				pos = i + len(c.delim)
			default:
				// Text after the closing quote ("a"b): keep it, as lenient readers do.
				k := bytes.Index(rec[i:], c.delim)
				if k < 0 {
					k = len(rec) - i
				}
				c.scratch = append(c.scratch, rec[i:i+k]...)
				list[len(list)-1].end = len(c.scratch)
				if i+k == len(rec) {
					pos = -1
				} else {
					pos = i + k + len(c.delim)
				}
			}
		} else {
			k := bytes.Index(rec[pos:], c.delim)
			if k < 0 {
				list = append(list, span{pos, len(rec), false})
				pos = -1
			} else {
				list = append(list, span{pos, pos + k, false})
				pos += k + len(c.delim)
			}
		}
		if pos < 0 {
			break
		}
	}
	for _, s := range list {
		if s.inScratch {
			c.vals = append(c.vals, c.scratch[s.start:s.end:s.end])
		} else {
			c.vals = append(c.vals, rec[s.start:s.end:s.end])
		}
	}
	return c.vals, nil
}
