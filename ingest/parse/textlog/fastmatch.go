package textlog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// fastMatch matches records against patterns such as
//
//	%{remote_ip} - %{user} [%{time}] "%{request}" %{status}
//
// The text between two fields is the delimiter that ends the first; the last field takes the
// rest of the record when no text follows it. A field between quotes ("%{request}" or
// '%{request}') is read as a quoted string: it ends at the first quote not escaped with a
// backslash, and its escapes are undone. Fields without a name (%{} or %{-}) are read and
// dropped. Patterns are tried in order; the first that matches the whole record wins.
type fastMatch struct {
	patterns []*fmPattern
}

type fmPattern struct {
	text   string
	prefix []byte
	fields []fmField
}

type fmField struct {
	name   string // "" for an anonymous field
	delim  []byte // the text after the field; empty for a tail capture
	quote  byte   // the quote around the field, or 0
	isTail bool
}

func newFastMatch(patterns []string) (*fastMatch, error) {
	if len(patterns) == 0 {
		return nil, errors.New("fastmatch needs at least one pattern")
	}
	fm := &fastMatch{}
	for _, text := range patterns {
		p, err := compileFastMatch(text)
		if err != nil {
			return nil, err
		}
		fm.patterns = append(fm.patterns, p)
	}
	return fm, nil
}

// CheckFastMatch reports whether a fastmatch pattern is well formed.
func CheckFastMatch(pattern string) error {
	_, err := compileFastMatch(pattern)
	return err
}

func compileFastMatch(text string) (*fmPattern, error) {
	p := &fmPattern{text: text}
	rest := text
	i := strings.Index(rest, "%{")
	if i < 0 {
		return nil, fmt.Errorf("fastmatch pattern %q has no %%{field}", text)
	}
	p.prefix = []byte(rest[:i])
	rest = rest[i:]
	for len(rest) > 0 {
		// rest starts with %{
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("fastmatch pattern %q: unclosed %%{", text)
		}
		name := rest[2:end]
		if name == "-" {
			name = ""
		}
		rest = rest[end+1:]
		next := strings.Index(rest, "%{")
		var delim string
		if next < 0 {
			delim, rest = rest, ""
		} else {
			delim, rest = rest[:next], rest[next:]
			if delim == "" {
				return nil, fmt.Errorf("fastmatch pattern %q: fields %%{%s} and the next need text between them", text, name)
			}
		}
		f := fmField{name: name, delim: []byte(delim), isTail: delim == "" && rest == ""}
		// A field between quotes: the text before it ends with the quote and its delimiter
		// starts with it.
		before := p.prefix
		if n := len(p.fields); n > 0 {
			before = p.fields[n-1].delim
		}
		if len(before) > 0 && len(delim) > 0 {
			if q := before[len(before)-1]; (q == '"' || q == '\'') && delim[0] == q {
				f.quote = q
			}
		}
		p.fields = append(p.fields, f)
	}
	return p, nil
}

func (fm *fastMatch) split(rec []byte, vals []value) ([]value, error) {
	var err error
	for _, p := range fm.patterns {
		var ok bool
		if vals, ok = p.match(rec, vals[:0]); ok {
			return vals, nil
		}
	}
	if len(fm.patterns) == 1 {
		err = fmt.Errorf("does not match the fastmatch pattern %q", fm.patterns[0].text)
	} else {
		err = fmt.Errorf("matches none of the %d fastmatch patterns", len(fm.patterns))
	}
	return vals[:0], err
}

func (p *fmPattern) match(rec []byte, vals []value) ([]value, bool) {
	if !bytes.HasPrefix(rec, p.prefix) {
		return vals, false
	}
	pos := len(p.prefix)
	for _, f := range p.fields {
		var v []byte
		switch {
		case f.isTail:
			v, pos = rec[pos:], len(rec)
		case f.quote != 0:
			end, escaped := quoteEnd(rec, pos, f.quote)
			if end < 0 || !bytes.HasPrefix(rec[end:], f.delim) {
				return vals, false
			}
			v = rec[pos:end]
			if escaped {
				v = unescapeQuoted(v, f.quote)
			}
			pos = end + len(f.delim)
		default:
			i := bytes.Index(rec[pos:], f.delim)
			if i < 0 {
				return vals, false
			}
			v = rec[pos : pos+i]
			pos += i + len(f.delim)
		}
		if f.name != "" {
			vals = append(vals, value{name: f.name, v: v})
		}
	}
	return vals, pos == len(rec)
}

// quoteEnd returns the index of the quote that closes a quoted value starting at pos, and
// whether the value holds escapes.
func quoteEnd(rec []byte, pos int, q byte) (int, bool) {
	escaped := false
	for i := pos; i < len(rec); i++ {
		switch rec[i] {
		case '\\':
			escaped = true
			i++
		case q:
			return i, escaped
		}
	}
	return -1, false
}

// unescapeQuoted undoes backslash escapes of a quoted value (into a new slice).
func unescapeQuoted(v []byte, q byte) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			n := v[i+1]
			switch n {
			case q, '\\':
				out = append(out, n)
				i++
				continue
			case 'n':
				out = append(out, '\n')
				i++
				continue
			case 't':
				out = append(out, '\t')
				i++
				continue
			}
		}
		out = append(out, c)
	}
	return out
}
