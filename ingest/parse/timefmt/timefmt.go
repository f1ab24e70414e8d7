// Package timefmt parses timestamps in the time formats of Panther's log schemas: rfc3339, unix,
// unix_ms, unix_us, unix_ns, cloudflare, strftime patterns (%Y-%m-%d %H:%M:%S.%f) and Go layouts
// (layout=2006-01-02). A format is compiled once; parsing allocates nothing on the common paths.
package timefmt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A Parser parses one timestamp format.
type Parser interface {
	// Parse parses s. Results are in UTC.
	Parse(s []byte) (time.Time, error)
}

// Compile returns the parser for a format.
func Compile(format string) (Parser, error) {
	switch format {
	case "rfc3339":
		return rfc3339{}, nil
	case "unix":
		return unix{scale: 0}, nil
	case "unix_ms":
		return unix{scale: 3}, nil
	case "unix_us":
		return unix{scale: 6}, nil
	case "unix_ns":
		return unix{scale: 9}, nil
	case "cloudflare":
		return cloudflare{}, nil
	}
	if layout, ok := strings.CutPrefix(format, "layout="); ok {
		if layout == "" {
			return nil, fmt.Errorf("empty Go layout in time format %q", format)
		}
		return goLayout(layout), nil
	}
	if strings.Contains(format, "%") {
		return compileStrftime(format)
	}
	return nil, fmt.Errorf("unknown time format %q", format)
}

// Multi tries several parsers in order and returns the first success.
type Multi []Parser

// tryer is a parser with a cheap way to fail: Multi tries each format without building an
// error, and builds one only when every format failed.
type tryer interface {
	try(s []byte) (time.Time, bool)
}

// Parse implements Parser.
func (m Multi) Parse(s []byte) (time.Time, error) {
	for _, p := range m {
		if tp, ok := p.(tryer); ok {
			if t, ok := tp.try(s); ok {
				return t, nil
			}
			continue
		}
		if t, err := p.Parse(s); err == nil {
			return t, nil
		}
	}
	if len(m) == 0 {
		return time.Time{}, errors.New("no time format")
	}
	_, err := m[0].Parse(s)
	if len(m) > 1 {
		err = fmt.Errorf("%w (and %d other time formats)", err, len(m)-1)
	}
	return time.Time{}, err
}

func (r rfc3339) try(s []byte) (time.Time, bool) {
	// A timestamp without a zone is common in logs that also use other formats: reject it
	// before parsing (parseDateTime's errors cost an allocation).
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' {
		return time.Time{}, false
	}
	if last := s[len(s)-1]; last != 'Z' && last != 'z' && (last < '0' || last > '9' || bytes.IndexAny(s[19:], "+-") < 0) {
		return time.Time{}, false
	}
	t, rest, err := parseDateTime(s, true)
	if err != nil || len(rest) == 0 {
		return time.Time{}, false
	}
	return withZone(t, rest)
}

func (p *strftime) try(s []byte) (time.Time, bool) {
	t, err := p.parse(s)
	return t, err == nil
}

// Bounds of a timestamp stored as microseconds since the epoch in an int64.
var (
	MinTime = time.UnixMicro(-1 << 63).UTC()
	MaxTime = time.UnixMicro(1<<63 - 1).UTC()
)

func inRange(t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		return fmt.Errorf("time %s is out of range", t.Format(time.RFC3339))
	}
	return nil
}

type goLayout string

func (l goLayout) Parse(s []byte) (time.Time, error) {
	t, err := time.Parse(string(l), string(s))
	if err != nil {
		return time.Time{}, err
	}
	t = t.UTC()
	return t, inRange(t)
}

// rfc3339 parses RFC 3339 timestamps (T or space between date and time, any number of fraction
// digits, Z or a numeric offset) without allocating.
type rfc3339 struct{}

func (r rfc3339) Parse(s []byte) (time.Time, error) {
	t, rest, err := parseDateTime(s, true)
	if err != nil {
		return time.Time{}, err
	}
	if len(rest) == 0 {
		return time.Time{}, fmt.Errorf("rfc3339 %q: missing time zone", s)
	}
	t, ok := withZone(t, rest)
	if !ok {
		return time.Time{}, fmt.Errorf("rfc3339 %q: bad time zone", s)
	}
	return t, nil
}

// withZone applies the zone that is all of rest.
func withZone(t time.Time, rest []byte) (time.Time, bool) {
	off, n, ok := parseZone(rest)
	if !ok || n != len(rest) {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(off) * time.Second), true
}

// parseDateTime parses YYYY-MM-DD[T ]hh:mm:ss[.frac] and returns the rest of s.
func parseDateTime(s []byte, allowSpace bool) (time.Time, []byte, error) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, nil, fmt.Errorf("%q is not an RFC 3339 timestamp", s)
	}
	switch s[10] {
	case 'T', 't':
	case ' ':
		if !allowSpace {
			return time.Time{}, nil, fmt.Errorf("%q is not an RFC 3339 timestamp", s)
		}
	default:
		return time.Time{}, nil, fmt.Errorf("%q is not an RFC 3339 timestamp", s)
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	min, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, nil, fmt.Errorf("%q is not an RFC 3339 timestamp", s)
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
		n, used := fraction(rest[1:])
		if used == 0 {
			return time.Time{}, nil, fmt.Errorf("%q: empty fraction of a second", s)
		}
		nsec = n
		rest = rest[1+used:]
	}
	if err := checkDate(year, month, day, hour, min, sec); err != nil {
		return time.Time{}, nil, fmt.Errorf("%q: %w", s, err)
	}
	return utcDate(year, month, day, hour, min, sec, nsec), rest, nil
}

// utcDate is time.Date in UTC for a checked date (a leap second carries into the next minute,
// as time.Date normalizes it), computed with the days-from-civil algorithm: time.Date
// normalizes every field and looks up the location, at several times the cost.
func utcDate(year, month, day, hour, min, sec, nsec int) time.Time {
	days := daysFromCivil(year, month, day)
	unix := days*86400 + int64(hour*3600+min*60+sec)
	return time.Unix(unix, int64(nsec)).UTC()
}

// daysFromCivil returns the days from 1970-01-01 to a proleptic Gregorian date
// (http://howardhinnant.github.io/date_algorithms.html).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400                     // [0, 399]
	doy := (153*((m+9)%12)+2)/5 + d - 1    // [0, 365], from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return int64(era)*146097 + int64(doe) - 719468
}

func checkDate(year, month, day, hour, min, sec int) error {
	switch {
	case month < 1 || month > 12:
		return errors.New("month out of range")
	case day < 1 || day > daysIn(time.Month(month), year):
		return errors.New("day out of range")
	case hour > 23:
		return errors.New("hour out of range")
	case min > 59:
		return errors.New("minute out of range")
	case sec > 60: // leap seconds are accepted and normalized
		return errors.New("second out of range")
	}
	return nil
}

func daysIn(m time.Month, year int) int {
	if m == time.February && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return monthDays[m]
}

var monthDays = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// parseZone parses Z, +hh:mm, +hhmm or +hh at the start of s; it returns the offset in seconds
// east of UTC and the bytes used.
func parseZone(s []byte) (int, int, bool) {
	if len(s) == 0 {
		return 0, 0, false
	}
	if s[0] == 'Z' || s[0] == 'z' {
		return 0, 1, true
	}
	if s[0] != '+' && s[0] != '-' {
		return 0, 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	var hh, mm int
	var n int
	switch {
	case len(s) >= 6 && s[3] == ':':
		h, ok1 := digits(s[1:3])
		m, ok2 := digits(s[4:6])
		if !ok1 || !ok2 {
			return 0, 0, false
		}
		hh, mm, n = h, m, 6
	case len(s) >= 5:
		h, ok1 := digits(s[1:3])
		m, ok2 := digits(s[3:5])
		if !ok1 || !ok2 {
			return 0, 0, false
		}
		hh, mm, n = h, m, 5
	case len(s) >= 3:
		h, ok := digits(s[1:3])
		if !ok {
			return 0, 0, false
		}
		hh, n = h, 3
	default:
		return 0, 0, false
	}
	if hh > 23 || mm > 59 {
		return 0, 0, false
	}
	return sign * (hh*3600 + mm*60), n, true
}

// digits parses a short run of ASCII digits.
func digits(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

// fraction parses the digits of a fraction of a second; it returns nanoseconds (extra digits
// beyond nine are read and dropped) and the number of bytes used.
func fraction(s []byte) (int, int) {
	n, used := 0, 0
	for used < len(s) && s[used] >= '0' && s[used] <= '9' {
		if used < 9 {
			n = n*10 + int(s[used]-'0')
		}
		used++
	}
	for i := used; i < 9; i++ {
		n *= 10
	}
	return n, used
}

// unix parses a number of seconds (scale 0), milliseconds (3), microseconds (6) or nanoseconds (9)
// since the epoch, with an optional fraction, from JSON numbers or strings.
type unix struct{ scale int }

func (u unix) Parse(s []byte) (time.Time, error) {
	if len(s) == 0 {
		return time.Time{}, errors.New("empty unix time")
	}
	neg := false
	i := 0
	if s[0] == '-' {
		neg = true
		i = 1
	}
	var whole int64
	start := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if whole > (1<<62)/10 {
			return time.Time{}, fmt.Errorf("unix time %q is out of range", s)
		}
		whole = whole*10 + int64(s[i]-'0')
	}
	if i == start {
		return time.Time{}, fmt.Errorf("%q is not a unix time", s)
	}
	frac := 0 // nanoseconds of the unit
	if i < len(s) && s[i] == '.' {
		n, used := fraction(s[i+1:])
		frac = n
		i += 1 + used
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		return parseUnixFloat(s, u.scale)
	}
	if i != len(s) {
		return time.Time{}, fmt.Errorf("%q is not a unix time", s)
	}
	// Convert (whole + frac/1e9) units of 10^-scale seconds to seconds and nanoseconds.
	pow := int64(1)
	for range u.scale {
		pow *= 10
	}
	sec := whole / pow
	nsec := (whole%pow)*(1e9/pow) + int64(frac)/pow
	if neg {
		sec, nsec = -sec, -nsec
	}
	t := time.Unix(sec, nsec).UTC()
	return t, inRange(t)
}

// parseUnixFloat handles numbers in exponent form such as 1.6e9, as some JSON encoders write them.
func parseUnixFloat(s []byte, scale int) (time.Time, error) {
	var f float64
	if _, err := fmt.Sscanf(string(s), "%g", &f); err != nil {
		return time.Time{}, fmt.Errorf("%q is not a unix time", s)
	}
	for range scale {
		f /= 10
	}
	if f > 9.2e12 || f < -9.2e12 {
		return time.Time{}, fmt.Errorf("unix time %q is out of range", s)
	}
	sec := int64(f)
	t := time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	return t, inRange(t)
}

// cloudflare parses the timestamps of Cloudflare's Logpush, whose format is a per-job setting:
// RFC 3339, or a number of seconds, milliseconds, microseconds or nanoseconds since the epoch
// (told apart by size: Logpush writes whole units).
type cloudflare struct{}

func (cloudflare) Parse(s []byte) (time.Time, error) {
	if len(s) > 0 && (s[0] >= '0' && s[0] <= '9' || s[0] == '-') && bytes.IndexByte(s, '-') <= 0 {
		digits := 0
		for _, c := range s {
			if c == '.' {
				break
			}
			digits++
		}
		if s[0] == '-' {
			digits--
		}
		scale := 0
		switch {
		case digits > 17:
			scale = 9
		case digits > 14:
			scale = 6
		case digits > 11:
			scale = 3
		}
		return unix{scale: scale}.Parse(s)
	}
	return rfc3339{}.Parse(s)
}

// OrRow returns a parser that reads what p reads and, when p refuses a value, Panther's form
// of a timestamp in its rows: "2006-01-02 15:04:05.000000000" (a space, any fraction, no zone or Z:
// UTC). Rows exported from Panther, and the events of Panther's rule tests, hold every
// timestamp in that form whatever the log's own format; a schema's timestamp fields read them.
func OrRow(p Parser) Parser { return orRow{p} }

type orRow struct{ p Parser }

func (r orRow) Parse(s []byte) (time.Time, error) {
	t, err := r.p.Parse(s)
	if err == nil {
		return t, nil
	}
	if len(s) >= 19 && s[10] == ' ' {
		if rt, rest, rerr := parseDateTime(s, true); rerr == nil && (len(rest) == 0 || string(rest) == "Z") {
			return rt, nil
		}
	}
	return t, err
}

// YearLess reports whether a format of a parser reads timestamps without a year
// ("Dec  4 08:01:17"), which such formats give as of 1970: their year is to be completed
// (CompleteYear).
func YearLess(p Parser) bool {
	switch x := p.(type) {
	case orRow:
		return YearLess(x.p)
	case Multi:
		return slices.ContainsFunc(x, YearLess)
	case *strftime:
		for _, it := range x.items {
			switch it.dir {
			case 'Y', 'y', 'G', 'g', 'C', 's', 'F', 'D', 'c', 'x':
				return false
			}
		}
		return true
	}
	return false
}

// CompleteYear gives a timestamp read without a year the year that puts it closest before now,
// allowing two days ahead (clocks differ), as syslog's RFC 3164 timestamps are read.
func CompleteYear(t, now time.Time) time.Time {
	if t.Year() != 1970 {
		return t // the value held a year (another format of the field, Panther's row form)
	}
	c := time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	if c.After(now.AddDate(0, 0, 2)) {
		c = c.AddDate(-1, 0, 0)
	}
	return c
}
