package timefmt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// strftime is a compiled strftime pattern: literal text and directives matched in order.
type strftime struct {
	format string
	items  []item
	zone   bool // the pattern has %z or %Z
}

type item struct {
	lit  string // literal text when dir == 0
	dir  byte   // directive letter
	last bool   // last item: a variable-width directive may take the rest
}

var monthNames = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
var dayNames = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// dateTime parses the common zone-less layouts YYYY-MM-DD[T ]hh:mm:ss[.frac] (UTC) with the
// fixed-position parser; strftime patterns that mean exactly that use it.
type dateTime struct {
	format string
	sep    byte // ' ' or 'T'
	frac   bool // a fraction of a second is required
}

var fastLayouts = map[string]dateTime{
	"%Y-%m-%d %H:%M:%S.%f": {sep: ' ', frac: true},
	"%Y-%m-%dT%H:%M:%S.%f": {sep: 'T', frac: true},
	"%Y-%m-%d %H:%M:%S":    {sep: ' '},
	"%Y-%m-%dT%H:%M:%S":    {sep: 'T'},
	"%F %T":                {sep: ' '},
	"%FT%T":                {sep: 'T'},
}

func (p dateTime) try(s []byte) (time.Time, bool) {
	if len(s) < 19 || s[10] != p.sep || p.frac != (len(s) > 19 && s[19] == '.') {
		return time.Time{}, false
	}
	t, rest, err := parseDateTime(s, p.sep == ' ')
	return t, err == nil && len(rest) == 0
}

// Parse implements Parser.
func (p dateTime) Parse(s []byte) (time.Time, error) {
	if t, ok := p.try(s); ok {
		return t, nil
	}
	return time.Time{}, &mismatchError{format: p.format, value: string(s)}
}

func compileStrftime(format string) (Parser, error) {
	if fast, ok := fastLayouts[format]; ok {
		fast.format = format
		return fast, nil
	}
	return compileStrftimePattern(format)
}

func compileStrftimePattern(format string) (*strftime, error) {
	p := &strftime{format: format}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.items = append(p.items, item{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i == len(format) {
			return nil, fmt.Errorf("time format %q ends with %%", format)
		}
		d := format[i]
		switch d {
		case '%':
			lit.WriteByte('%')
		case 'n', 't':
			lit.WriteByte(' ')
		case 'T': // %H:%M:%S
			flush()
			p.items = append(p.items, item{dir: 'H'}, item{lit: ":"}, item{dir: 'M'}, item{lit: ":"}, item{dir: 'S'})
		case 'D': // %m/%d/%y
			flush()
			p.items = append(p.items, item{dir: 'm'}, item{lit: "/"}, item{dir: 'd'}, item{lit: "/"}, item{dir: 'y'})
		case 'F': // %Y-%m-%d
			flush()
			p.items = append(p.items, item{dir: 'Y'}, item{lit: "-"}, item{dir: 'm'}, item{lit: "-"}, item{dir: 'd'})
		case 'R': // %H:%M
			flush()
			p.items = append(p.items, item{dir: 'H'}, item{lit: ":"}, item{dir: 'M'})
		case 'Y', 'y', 'm', 'd', 'e', 'H', 'I', 'M', 'S', 'f', 'L', 'z', 'Z', 'b', 'h', 'B', 'a', 'A', 'p', 'j', 's':
			flush()
			if d == 'h' {
				d = 'b'
			}
			if d == 'z' || d == 'Z' {
				p.zone = true
			}
			p.items = append(p.items, item{dir: d})
		default:
			return nil, fmt.Errorf("time format %q: unsupported directive %%%c", format, d)
		}
	}
	flush()
	if len(p.items) > 0 {
		p.items[len(p.items)-1].last = true
	}
	return p, nil
}

func checkStrftime(format string) error {
	_, err := compileStrftime(format)
	return err
}

// Parse implements Parser.
func (p *strftime) Parse(s []byte) (time.Time, error) {
	t, err := p.parse(s)
	if err == errMismatch {
		return t, p.mismatch(s)
	}
	return t, err
}

// parse is Parse returning errMismatch, which costs nothing, when s does not fit the pattern.
func (p *strftime) parse(s []byte) (time.Time, error) {
	year, month, day := 1970, 1, 1
	hour, min, sec, nsec := 0, 0, 0, 0
	yday := 0
	pm, hasPM, twelve := false, false, false
	offset := 0
	var epoch *int64
	in := s
	for _, it := range p.items {
		if it.dir == 0 {
			if !bytes.HasPrefix(in, []byte(it.lit)) {
				return time.Time{}, errMismatch
			}
			in = in[len(it.lit):]
			continue
		}
		var ok bool
		var v, n int
		switch it.dir {
		case 'Y':
			v, n, ok = number(in, 4, 4, true)
			year = v
		case 'y':
			v, n, ok = number(in, 2, 2, false)
			if v < 69 {
				year = 2000 + v
			} else {
				year = 1900 + v
			}
		case 'm':
			month, n, ok = number(in, 1, 2, false)
		case 'd':
			day, n, ok = number(in, 1, 2, false)
		case 'e':
			sp := 0
			for sp < len(in) && in[sp] == ' ' {
				sp++
			}
			day, n, ok = number(in[sp:], 1, 2, false)
			n += sp
		case 'H':
			hour, n, ok = number(in, 1, 2, false)
		case 'I':
			hour, n, ok = number(in, 1, 2, false)
			twelve = true
		case 'M':
			min, n, ok = number(in, 1, 2, false)
		case 'S':
			sec, n, ok = number(in, 1, 2, false)
		case 'j':
			yday, n, ok = number(in, 1, 3, false)
		case 'f', 'L':
			nsec, n = fraction(in)
			ok = n > 0
		case 's':
			v, n, ok = number(in, 1, 19, true)
			e := int64(v)
			epoch = &e
		case 'z':
			offset, n, ok = parseZone(in)
		case 'Z':
			offset, n, ok = zoneName(in)
		case 'b':
			month, n, ok = name(in, monthNames, true)
			month++
		case 'B':
			month, n, ok = name(in, monthNames, false)
			month++
		case 'a':
			_, n, ok = name(in, dayNames, true)
		case 'A':
			_, n, ok = name(in, dayNames, false)
		case 'p':
			if len(in) >= 2 {
				switch strings.ToUpper(string(in[:2])) {
				case "AM":
					ok, hasPM, n = true, true, 2
				case "PM":
					ok, hasPM, pm, n = true, true, true, 2
				}
			}
		}
		if !ok {
			return time.Time{}, errMismatch
		}
		in = in[n:]
	}
	if len(in) != 0 {
		return time.Time{}, errMismatch
	}
	if epoch != nil {
		t := time.Unix(*epoch, int64(nsec)).UTC()
		return t, inRange(t)
	}
	if twelve || hasPM {
		if hour < 1 || hour > 12 {
			return time.Time{}, fmt.Errorf("%q: hour %d out of range for a 12-hour clock", s, hour)
		}
		hour %= 12
		if pm {
			hour += 12
		}
	}
	if yday > 0 {
		if yday > 366 {
			return time.Time{}, fmt.Errorf("%q: day of year out of range", s)
		}
		t := time.Date(year, 1, 1, hour, min, sec, nsec, time.UTC).AddDate(0, 0, yday-1)
		return t.Add(-time.Duration(offset) * time.Second), nil
	}
	if err := checkDate(year, month, day, hour, min, sec); err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", s, err)
	}
	t := utcDate(year, month, day, hour, min, sec, nsec)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

// errMismatch is returned by Parse when the text does not fit the pattern: callers that try
// several formats (Multi) fail often and cheaply; the message is built by mismatch below.
var errMismatch = errors.New("mismatch")

func (p *strftime) mismatch(s []byte) error {
	return &mismatchError{format: p.format, value: string(s)}
}

type mismatchError struct{ format, value string }

func (e *mismatchError) Error() string {
	return fmt.Sprintf("%q does not match time format %q", e.value, e.format)
}

// number reads between lo and hi digits (optionally signed).
func number(s []byte, lo, hi int, signed bool) (int, int, bool) {
	i, neg := 0, false
	if signed && len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		i = 1
	}
	start := i
	v := 0
	for i < len(s) && i-start < hi && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + int(s[i]-'0')
		i++
	}
	if i-start < lo {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// name matches a month or day name, abbreviated to three letters or in full, in any case.
func name(s []byte, names []string, abbrev bool) (int, int, bool) {
	for i, n := range names {
		if abbrev {
			if len(s) >= 3 && strings.EqualFold(string(s[:3]), n[:3]) {
				return i, 3, true
			}
			continue
		}
		if len(s) >= len(n) && strings.EqualFold(string(s[:len(n)]), n) {
			return i, len(n), true
		}
	}
	return 0, 0, false
}

// zoneOffsets are the zone abbreviations with a fixed, unambiguous offset (seconds east of UTC).
var zoneOffsets = map[string]int{
	"UTC": 0, "GMT": 0, "UT": 0, "Z": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600,
	"CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600,
	"PST": -8 * 3600, "PDT": -7 * 3600,
	"CET": 1 * 3600, "CEST": 2 * 3600,
}

// zoneName reads a zone abbreviation from zoneOffsets, or a numeric offset.
func zoneName(s []byte) (int, int, bool) {
	if off, n, ok := parseZone(s); ok {
		return off, n, true
	}
	end := 0
	for end < len(s) && s[end] >= 'A' && s[end] <= 'Z' {
		end++
	}
	off, ok := zoneOffsets[string(s[:end])]
	return off, end, ok
}
