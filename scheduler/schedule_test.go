package scheduler

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without the system's zoneinfo
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustCron(t *testing.T, expr string) Schedule {
	t.Helper()
	s, err := ParseCron(expr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseCronNext(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr  string
		after time.Time
		want  string
	}{
		{"*/15 * * * *", utc("2024-05-06 10:07:30"), "2024-05-06 10:15:00"},
		{"*/15 * * * *", utc("2024-05-06 10:15:00"), "2024-05-06 10:30:00"}, // strictly after
		{"0 9 * * 1-5", utc("2024-05-10 09:00:00"), "2024-05-13 09:00:00"},  // Friday to Monday
		{"0 9 * * MON", utc("2024-05-10 09:00:00"), "2024-05-13 09:00:00"},
		{"@hourly", utc("2024-05-06 10:00:00"), "2024-05-06 11:00:00"},
		{"@hourly", utc("2024-05-06 10:59:59"), "2024-05-06 11:00:00"},
		{"@daily", utc("2024-05-06 10:00:00"), "2024-05-07 00:00:00"},
		{"  @Daily ", utc("2024-05-06 10:00:00"), "2024-05-07 00:00:00"},
		{"0 0 1 * *", utc("2024-01-31 12:00:00"), "2024-02-01 00:00:00"},  // month boundary
		{"0 0 31 * *", utc("2024-04-01 00:00:00"), "2024-05-31 00:00:00"}, // skips 30-day April
		{"0 0 29 2 *", utc("2024-03-01 00:00:00"), "2028-02-29 00:00:00"}, // next leap day
		{"59 23 31 12 *", utc("2024-12-31 23:59:00"), "2025-12-31 23:59:00"},
		{"* * * * *", utc("2024-12-31 23:59:30"), "2025-01-01 00:00:00"}, // year boundary
		{"@yearly", utc("2024-06-01 00:00:00"), "2025-01-01 00:00:00"},
		// In UTC whatever the input's location: 02:30 exists (once) on every UTC day, including
		// the nights New York springs forward (22:00 EST = 03:00 UTC) and falls back (22:00 EDT
		// = 02:00 UTC).
		{"30 2 * * *", time.Date(2024, 3, 9, 22, 0, 0, 0, ny), "2024-03-11 02:30:00"},
		{"30 2 * * *", time.Date(2024, 11, 2, 22, 0, 0, 0, ny), "2024-11-03 02:30:00"},
		{"30 2 * * *", time.Date(2024, 11, 3, 1, 30, 0, 0, ny), "2024-11-04 02:30:00"}, // 05:30 UTC
	}
	for _, tt := range tests {
		got := mustCron(t, tt.expr).Next(tt.after)
		if want := utc(tt.want); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseCron(%q).Next(%v) = %v, want %v UTC", tt.expr, tt.after, got, want)
		}
	}
}

func TestParseCronInvalid(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "want 5 fields, got 0"},
		{"* * * *", "want 5 fields, got 4"},
		{"0 * * * * *", "want 5 fields, got 6"},
		{"61 * * * *", `minute field "61": '61' out of bounds(0, 59)`},
		{"* 24 * * *", `hour field "24"`},
		{"0,61 * * * *", `minute field "0,61"`},
		{"* * 0 * *", "day of month field"},
		{"* * * 13 *", "month field"},
		{"* * * * 9", "day of week field"},
		{"*/0 * * * *", "step can't be 0"},
		{"x * * * *", `minute field "X"`},
		{"@fortnightly", "unknown macro"},
		{"@everysecond", "unknown macro"},
		{"0 0 30 2 *", "never due"},
	}
	for _, tt := range tests {
		_, err := ParseCron(tt.expr)
		if err == nil {
			t.Errorf("ParseCron(%q): no error", tt.expr)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+strings.TrimSpace(tt.expr)+`"`) || !strings.Contains(msg, tt.want) {
			t.Errorf("ParseCron(%q) error %q, want it to name the expression and contain %q", tt.expr, msg, tt.want)
		}
	}
}

func TestRate(t *testing.T) {
	s := Rate(15 * time.Minute)
	if got, want := s.Next(utc("2024-05-06 10:07:00")), utc("2024-05-06 10:15:00"); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if got, want := s.Next(utc("2024-05-06 10:15:00")), utc("2024-05-06 10:30:00"); !got.Equal(want) {
		t.Errorf("Next at a due time = %v, want %v", got, want)
	}
	// A rate that does not divide an hour is still aligned to the epoch, from any start.
	for _, d := range []time.Duration{7 * time.Minute, 90 * time.Second, 5 * time.Hour} {
		for _, start := range []time.Time{utc("2024-05-06 10:07:13"), utc("1969-12-31 23:00:01"), time.Unix(0, 1)} {
			at := start
			for range 5 {
				next := Rate(d).Next(at)
				if !next.After(at) || next.Sub(at) > d || next.Unix()%int64(d/time.Second) != 0 {
					t.Fatalf("Rate(%v).Next(%v) = %v: not the first aligned time after", d, at, next)
				}
				at = next
			}
		}
	}
}

func TestPrev(t *testing.T) {
	tests := []struct {
		s        Schedule
		at, want string
	}{
		{mustCron(t, "@hourly"), "2024-05-06 15:30:00", "2024-05-06 15:00:00"},
		{mustCron(t, "@hourly"), "2024-05-06 15:00:00", "2024-05-06 15:00:00"}, // not after: may equal
		{mustCron(t, "0 0 1 * *"), "2024-03-01 00:00:30", "2024-03-01 00:00:00"},
		{mustCron(t, "0 0 1 * *"), "2024-01-15 00:00:00", "2024-01-01 00:00:00"},
		{Rate(10 * time.Minute), "2024-05-06 15:39:59", "2024-05-06 15:30:00"},
		{Rate(10 * time.Minute), "2024-05-06 15:40:00", "2024-05-06 15:40:00"},
	}
	for _, tt := range tests {
		if got := tt.s.prev(utc(tt.at)); !got.Equal(utc(tt.want)) {
			t.Errorf("%v.prev(%s) = %v, want %s", tt.s, tt.at, got, tt.want)
		}
	}
}

func TestScheduleString(t *testing.T) {
	tests := []struct {
		s    Schedule
		want string
	}{
		{mustCron(t, " 0 9 * * 1-5 "), "0 9 * * 1-5"},
		{mustCron(t, "@hourly"), "@hourly"},
		{Rate(15 * time.Minute), "every 15m"},
		{Rate(2 * time.Hour), "every 2h"},
		{Rate(90 * time.Minute), "every 1h30m"},
		{Rate(90 * time.Second), "every 1m30s"},
		{Schedule{}, "never"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
