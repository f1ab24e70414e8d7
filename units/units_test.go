package units

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	ok := func(in string, want time.Duration) {
		t.Helper()
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := func(in string) {
		t.Helper()
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	ok("0", 0)
	ok("90s", 90*time.Second)
	ok("1h30m", 90*time.Minute)
	ok("250ms", 250*time.Millisecond)
	ok("7d", 7*24*time.Hour)
	ok("7 days", 7*24*time.Hour)
	ok("'7 days'"[1:7], 7*24*time.Hour)
	ok("6 h", 6*time.Hour)
	ok("1.5 hours", 90*time.Minute)
	ok("2w", 14*24*time.Hour)
	ok("1 WEEK", 7*24*time.Hour)
	ok(" 15 min ", 15*time.Minute)
	bad("")
	bad("60")
	bad("7 fortnights")
	bad("-1h")
	bad("-2 days")
	bad("h")
	bad("1e400 s")
	bad("999999999999 weeks")
}

func TestParseSize(t *testing.T) {
	ok := func(in string, want int64) {
		t.Helper()
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := func(in string) {
		t.Helper()
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %v, want an error", in, got)
		}
	}
	ok("4096", 4096)
	ok("10MiB", 10<<20)
	ok("10 MiB", 10<<20)
	ok("1.5 GB", 1_500_000_000)
	ok("1GiB", 1<<30)
	ok("512k", 512<<10)
	ok("64kb", 64_000)
	ok("0", 0)
	bad("")
	bad("MiB")
	bad("10 furlongs")
	bad("-5MB")
	bad("1e30 TB")
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "7 days", "1h30m", "0", "1.5 hours", "-1h", "9e18 s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4096", "10MiB", "1.5 GB", "-1", "1e30 TB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
	})
}
