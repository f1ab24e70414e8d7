package timefmt

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	f := func(format, in, want string) {
		t.Helper()
		p, err := Compile(format)
		if err != nil {
			t.Fatalf("Compile(%q): %v", format, err)
		}
		got, err := p.Parse([]byte(in))
		if err != nil {
			t.Errorf("%s: Parse(%q): %v", format, in, err)
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("%s: Parse(%q) is in %v, want UTC", format, in, got.Location())
		}
		if s := got.Format(time.RFC3339Nano); s != want {
			t.Errorf("%s: Parse(%q) = %s, want %s", format, in, s, want)
		}
	}
	f("rfc3339", "2022-04-28T15:30:22Z", "2022-04-28T15:30:22Z")
	f("rfc3339", "2022-04-28T15:30:22.42Z", "2022-04-28T15:30:22.42Z")
	f("rfc3339", "2022-04-28t15:30:22.123456789z", "2022-04-28T15:30:22.123456789Z")
	f("rfc3339", "2022-04-28T15:30:22.1234567891234Z", "2022-04-28T15:30:22.123456789Z")
	f("rfc3339", "2022-04-28T17:30:22+02:00", "2022-04-28T15:30:22Z")
	f("rfc3339", "2022-04-28T10:30:22-0500", "2022-04-28T15:30:22Z")
	f("rfc3339", "2022-04-28 15:30:22Z", "2022-04-28T15:30:22Z")
	f("rfc3339", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z")
	f("unix", "1364481363.243", "2013-03-28T14:36:03.243Z")
	f("unix", "1364481363", "2013-03-28T14:36:03Z")
	f("unix", "-1.5", "1969-12-31T23:59:58.5Z")
	f("unix", "1.6e9", "2020-09-13T12:26:40Z")
	f("unix_ms", "1651159822420", "2022-04-28T15:30:22.42Z")
	f("unix_ms", "1651159822420.5", "2022-04-28T15:30:22.4205Z")
	f("unix_us", "1651159822420001", "2022-04-28T15:30:22.420001Z")
	f("unix_ns", "1651159822420001002", "2022-04-28T15:30:22.420001002Z")
	f("cloudflare", "2020-09-17T18:49:46Z", "2020-09-17T18:49:46Z")
	f("cloudflare", "1600365601", "2020-09-17T18:00:01Z")
	f("cloudflare", "1600365601123", "2020-09-17T18:00:01.123Z")
	f("cloudflare", "1600365601123456", "2020-09-17T18:00:01.123456Z")
	f("cloudflare", "1600368586194526741", "2020-09-17T18:49:46.194526741Z")
	f("%Y-%m-%d %H:%M:%S.%f", "2022-04-28 15:30:22.42", "2022-04-28T15:30:22.42Z")
	f("%Y-%m-%d %H:%M:%S.%f", "2023-02-09 21:45:59.352910070", "2023-02-09T21:45:59.35291007Z")
	f("%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36Z")
	f("%a, %d %b %Y %H:%M:%S %z", "Tue, 10 Oct 2000 13:55:36 +0000", "2000-10-10T13:55:36Z")
	f("%Y%m%d%H%M%S.%f", "20201012101112.123", "2020-10-12T10:11:12.123Z")
	f("%b %e %T", "Jun  9 06:06:20", "1970-06-09T06:06:20Z")
	f("%m/%d/%Y %I:%M:%S %p", "04/28/2022 03:30:22 PM", "2022-04-28T15:30:22Z")
	f("%m/%d/%Y %I:%M:%S %p", "04/28/2022 12:05:00 AM", "2022-04-28T00:05:00Z")
	f("%Y-%m-%d %H:%M:%S %Z", "2022-04-28 10:30:22 EST", "2022-04-28T15:30:22Z")
	f("%s", "1651159822", "2022-04-28T15:30:22Z")
	f("%F %T", "2022-04-28 15:30:22", "2022-04-28T15:30:22Z")
	f("layout=01/02/2006 15:04:05.999", "04/28/2022 15:30:22.42", "2022-04-28T15:30:22.42Z")
	f("layout=Mon, 02 Jan 2006 15:04:05 MST", "Thu, 28 Apr 2022 15:30:22 UTC", "2022-04-28T15:30:22Z")
}

func TestParseErrors(t *testing.T) {
	f := func(format, in string) {
		t.Helper()
		p, err := Compile(format)
		if err != nil {
			t.Fatalf("Compile(%q): %v", format, err)
		}
		if got, err := p.Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse(%q) = %v, want an error", format, in, got)
		}
	}
	f("rfc3339", "")
	f("rfc3339", "2022-04-28T15:30:22")       // no zone
	f("rfc3339", "2022-04-28T15:30:22.Z")     // empty fraction
	f("rfc3339", "2022-02-30T15:30:22Z")      // no such day
	f("rfc3339", "2022-04-28T24:30:22Z")      // hour
	f("rfc3339", "2022-04-28T15:30:22Z junk") // trailing text
	f("rfc3339", "2022-04-28X15:30:22Z")      // separator
	f("rfc3339", "20220428T153022Z")          // basic format
	f("unix", "12a")
	f("unix", "")
	f("unix", "99999999999999999999999") // overflow
	f("unix_ms", "1e30")                 // out of range
	f("%Y-%m-%d %H:%M:%S.%f", "2022-04-28 15:30:22")
	f("%Y-%m-%d", "2022-13-01")
	f("%m/%d/%Y %I:%M:%S %p", "04/28/2022 13:30:22 PM")
	f("%Y-%m-%d %Z", "2022-04-28 XYZ")
}

func TestCompileErrors(t *testing.T) {
	for _, format := range []string{"", "iso8601", "%Y-%Q", "%Y%", "layout="} {
		if _, err := Compile(format); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", format)
		}
	}
}

func TestMulti(t *testing.T) {
	var m Multi
	for _, f := range []string{"rfc3339", "%Y-%m-%d %H:%M:%S.%f"} {
		p, err := Compile(f)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, p)
	}
	for _, in := range []string{"2022-04-28T15:30:22.42Z", "2022-04-28 15:30:22.42"} {
		got, err := m.Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if want := time.Date(2022, 4, 28, 15, 30, 22, 420000000, time.UTC); !got.Equal(want) {
			t.Errorf("Parse(%q) = %v, want %v", in, got, want)
		}
	}
	if _, err := m.Parse([]byte("yesterday")); err == nil {
		t.Error("Parse(yesterday) succeeded")
	}
}

func BenchmarkRFC3339(b *testing.B) {
	in := []byte("2026-11-15T12:50:32.055967336Z")
	p, _ := Compile("rfc3339")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStrftime(b *testing.B) {
	in := []byte("2026-11-15 12:50:12.778478316")
	p, _ := Compile("%Y-%m-%d %H:%M:%S.%f")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUTCDate checks the civil date arithmetic against time.Date over every day of years
// around the leap-year rules and random times, leap seconds included.
func TestUTCDate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, year := range []int{0, 1, 4, 100, 399, 400, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999} {
		for m := time.January; m <= time.December; m++ {
			want := time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if got := daysIn(m, year); got != want {
				t.Fatalf("daysIn(%s %d) = %d, want %d", m, year, got, want)
			}
			for d := 1; d <= want; d++ {
				h, mi, s, ns := rng.IntN(24), rng.IntN(60), rng.IntN(61), rng.IntN(1e9)
				got := utcDate(year, int(m), d, h, mi, s, ns)
				if want := time.Date(year, m, d, h, mi, s, ns, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
					t.Fatalf("utcDate(%d-%02d-%02d %02d:%02d:%02d.%09d) = %s, want %s", year, m, d, h, mi, s, ns, got, want)
				}
			}
		}
	}
}

// TestOrRow checks that a timestamp field also reads Panther's row form, and only it, when its
// own format refuses a value.
func TestOrRow(t *testing.T) {
	for _, format := range []string{"rfc3339", "unix", "%d/%b/%Y:%H:%M:%S %z", "%a %b %d %H:%M:%S %Y %Z"} {
		p, err := Compile(format)
		if err != nil {
			t.Fatal(err)
		}
		r := OrRow(p)
		for in, want := range map[string]string{
			"2025-02-25 20:40:06.721":       "2025-02-25T20:40:06.721Z",
			"2020-06-21 20:41:25.000000000": "2020-06-21T20:41:25Z",
			"2020-06-21 20:41:25":           "2020-06-21T20:41:25Z",
			"2021-10-08 19:55:04.448Z":      "2021-10-08T19:55:04.448Z", // as panther-analysis writes some
		} {
			got, err := r.Parse([]byte(in))
			if err != nil {
				t.Errorf("%s: %q: %v", format, in, err)
				continue
			}
			if got.Format(time.RFC3339Nano) != want {
				t.Errorf("%s: %q: got %s, want %s", format, in, got.Format(time.RFC3339Nano), want)
			}
		}
		for _, in := range []string{"2025-02-25T20:40:06.721", "2025-02-25 20:40:06.721 junk", "2025-02-30 20:40:06", "yesterday"} {
			if got, err := r.Parse([]byte(in)); err == nil {
				t.Errorf("%s: %q: got %s, want an error", format, in, got)
			}
		}
	}
	// The format's own reading comes first: a zone is applied, not dropped.
	p, _ := Compile("rfc3339")
	got, err := OrRow(p).Parse([]byte("2025-02-25 20:40:06+02:00"))
	if err != nil || !got.Equal(time.Date(2025, 2, 25, 18, 40, 6, 0, time.UTC)) {
		t.Errorf("rfc3339 with a zone: got %s, %v", got, err)
	}
}

// TestCompleteYear checks that a format without a year is known as one, and that its
// timestamps take the year that puts them closest before the parse time.
func TestCompleteYear(t *testing.T) {
	p, err := Compile("%b %e %H:%M:%S")
	if err != nil {
		t.Fatal(err)
	}
	if !YearLess(OrRow(p)) || !YearLess(Multi{p, rfc3339{}}) {
		t.Fatal("a format of month, day and time: not year-less")
	}
	for _, f := range []string{"%Y-%m-%d %H:%M:%S", "rfc3339", "unix", "%d/%b/%Y:%H:%M:%S %z"} {
		q, err := Compile(f)
		if err != nil {
			t.Fatal(err)
		}
		if YearLess(q) {
			t.Errorf("%s: year-less", f)
		}
	}
	got, err := p.Parse([]byte("Dec  4 08:01:17"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{now, "2026-12-04T08:01:17Z"},
		{time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), "2026-12-04T08:01:17Z"},  // last December
		{time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), "2026-12-04T08:01:17Z"}, // a clock ahead
		{time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "2025-12-04T08:01:17Z"},
	} {
		if g := CompleteYear(got, c.now).Format(time.RFC3339); g != c.want {
			t.Errorf("at %s: got %s, want %s", c.now, g, c.want)
		}
	}
	// A value that held a year keeps it.
	if g := CompleteYear(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), now); g.Year() != 2024 {
		t.Errorf("got %s, want 2024", g)
	}
}
