// Package units holds osprey's one grammar for durations and one for sizes, read the same way
// by the configuration, the command line, the query API and Panther's time macros.
//
// A duration is Go's notation (90s, 1h30m, 250ms) or a number and a unit, with or without a
// space between them: '7d', '7 days', '6 h', '1.5 hours', '2w'. Units: ms; s, sec, secs,
// second, seconds; m, min, mins, minute, minutes; h, hr, hrs, hour, hours; d, day, days; w, wk,
// wks, week, weeks; in any case. "0" is zero; a bare number is refused (is 60 seconds or
// minutes?), except where a caller says it means seconds (Panther's macros).
//
// A size is a number of bytes with an optional unit, with or without a space: 4096, 10MiB,
// 1.5 GB, 512k. Units: B; KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB, and K, M, G, T
// (powers of 1024); in any case.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond,
	"s":  time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "wks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// ParseDuration reads a duration (see the package comment). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	text := strings.TrimSpace(s)
	if text == "0" {
		return 0, nil
	}
	if d, err := time.ParseDuration(text); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("duration %q: negative", s)
		}
		return d, nil
	}
	num, unit := split(text)
	n, err := strconv.ParseFloat(num, 64)
	mult, ok := durationUnits[strings.ToLower(unit)]
	switch {
	case err != nil || num == "" || unit == "" && ok:
		return 0, fmt.Errorf("duration %q: want a number and a unit, such as 90s, 15m, 6h, 7d, '7 days' or 1h30m", s)
	case unit == "":
		return 0, fmt.Errorf("duration %q: a number needs a unit (s, m, h, d or w, or their names)", s)
	case !ok:
		return 0, fmt.Errorf("duration %q: unknown unit %q (want ms, s, m, h, d or w, or their names)", s, unit)
	case n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || n*float64(mult) > math.MaxInt64:
		return 0, fmt.Errorf("duration %q: out of range", s)
	}
	return time.Duration(n * float64(mult)), nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
}

// ParseSize reads a size in bytes (see the package comment).
func ParseSize(s string) (int64, error) {
	num, unit := split(strings.TrimSpace(s))
	n, err := strconv.ParseFloat(num, 64)
	mult, ok := sizeUnits[strings.ToLower(unit)]
	switch {
	case err != nil || num == "":
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, such as 4096, 64KiB, 10MiB or 1GB", s)
	case !ok:
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KB, MB, GB, KiB, MiB or GiB)", s, unit)
	case n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || n*float64(mult) > math.MaxInt64:
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(n * float64(mult)), nil
}

// split cuts "1.5 hours" into "1.5" and "hours".
func split(s string) (num, unit string) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// Duration is a duration read with ParseDuration, as a command-line flag (it is a pflag.Value:
// flags.Var(&d, ...)) or a YAML value.
type Duration time.Duration

// Set reads a flag's value.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String writes the duration in Go's notation.
func (d Duration) String() string { return time.Duration(d).String() }

// Type names the flag's type in help.
func (Duration) Type() string { return "duration" }

// UnmarshalYAML reads a duration, quoted or not.
func (d *Duration) UnmarshalYAML(b []byte) error {
	return d.Set(strings.Trim(strings.TrimSpace(string(b)), `"'`))
}
