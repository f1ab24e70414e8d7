package timefmt

import (
	"testing"
	"time"
)

// FuzzCompileParse compiles arbitrary formats and parses arbitrary strings with them: neither
// panics, and a parsed time is in UTC.
func FuzzCompileParse(f *testing.F) {
	for _, s := range [][2]string{
		{"%Y-%m-%d %H:%M:%S.%f", "2026-11-22 10:00:00.123456"},
		{"%d/%b/%Y:%H:%M:%S %z", "22/Nov/2026:10:00:00 +0100"},
		{"%s", "1700000000"},
		{"%b %e %H:%M:%S", "Nov  2 10:00:00"},
		{"%Y-%m-%dT%H:%M:%S%Z", "2026-11-22T10:00:00Z"},
		{"%%%y%j%p%I%a%A%B%c%D%T%F", "x"},
		{"rfc3339", "2026-11-22T10:00:00.5+01:00"},
		{"unix_ms", "1700000000123.5"},
		{"cloudflare", "2026-11-22T10:00:00Z"},
		{"layout=2006-01-02 15:04", "2026-11-22 10:00"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, format string, s []byte) {
		p, err := Compile(format)
		if err != nil {
			return
		}
		got, err := p.Parse(s)
		if err == nil && got.Location() != time.UTC {
			t.Errorf("Compile(%q).Parse(%q) = %v, not in UTC", format, s, got)
		}
		if err == nil {
			if _, err := (Multi{p}).Parse(s); err != nil {
				t.Errorf("Multi of one parser refuses %q, which the parser reads: %v", s, err)
			}
		}
	})
}

// FuzzStrftimeRoundTrip formats a time with a strftime format and parses it back: the same
// instant, to the format's precision.
func FuzzStrftimeRoundTrip(f *testing.F) {
	f.Add(int64(1700000000), uint32(123456000), uint8(0))
	f.Add(int64(-1), uint32(0), uint8(1))
	f.Add(int64(253402300799), uint32(999999999), uint8(2))
	formats := []struct{ strftime, layout string }{
		{"%Y-%m-%d %H:%M:%S", "2006-01-02 15:04:05"},
		{"%Y-%m-%dT%H:%M:%S.%f", "2006-01-02T15:04:05.000000"},
		{"%d/%b/%Y:%H:%M:%S", "02/Jan/2006:15:04:05"},
	}
	f.Fuzz(func(t *testing.T, sec int64, nsec uint32, which uint8) {
		ft := formats[int(which)%len(formats)]
		// Years 0 to 9999, as four digits.
		sec = sec % (253402300800 + 62135596800)
		if sec < 0 {
			sec = -sec
		}
		sec -= 62135596800
		in := time.Unix(sec, int64(nsec%1e9)).UTC()
		text := in.Format(ft.layout)
		p, err := Compile(ft.strftime)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Parse([]byte(text))
		if err != nil {
			t.Fatalf("%q: %q: %v", ft.strftime, text, err)
		}
		want, _ := time.Parse(ft.layout, text)
		if !got.Equal(want) {
			t.Errorf("%q: %q parsed as %v, want %v", ft.strftime, text, got, want)
		}
	})
}
