package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/adhocore/gronx"
)

// Schedule says when a job is due. Create one with ParseCron or Rate; the zero Schedule is
// never due.
type Schedule struct {
	cron  string        // cron expression or macro; "" for a rate
	every time.Duration // the rate; 0 for a cron schedule
}

var cronFields = [...]string{"minute", "hour", "day of month", "month", "day of week"}

// cronRef is the fixed time at which cron fields are checked (some checks depend on a date).
var cronRef = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseCron parses a standard 5-field cron expression (minute hour day-of-month month
// day-of-week) or a macro such as @hourly, @daily, @weekly, @monthly or @yearly. It is
// evaluated in UTC.
func ParseCron(expr string) (Schedule, error) {
	expr = strings.TrimSpace(expr)
	if !strings.HasPrefix(expr, "@") {
		if n := len(strings.Fields(expr)); n != 5 {
			return Schedule{}, fmt.Errorf("cron %q: want 5 fields, got %d", expr, n)
		}
	}
	segs, err := gronx.Segments(expr) // seconds first, then the 5 fields
	if err != nil || len(segs) != 6 || segs[0] != "0" {
		return Schedule{}, fmt.Errorf("cron %q: unknown macro", expr)
	}
	var c gronx.SegmentChecker
	c.SetRef(cronRef)
	for i, seg := range segs[1:] {
		for _, part := range strings.Split(seg, ",") {
			if _, err := c.CheckDue(part, i+1); err != nil {
				msg := err.Error()
				if strings.HasPrefix(msg, "segment#") {
					_, msg, _ = strings.Cut(msg, ": ")
				}
				return Schedule{}, fmt.Errorf("cron %q: %s field %q: %s", expr, cronFields[i], seg, msg)
			}
		}
	}
	if !gronx.IsValid(expr) {
		return Schedule{}, fmt.Errorf("cron %q: invalid syntax", expr)
	}
	s := Schedule{cron: expr}
	if s.Next(cronRef).IsZero() {
		return Schedule{}, fmt.Errorf("cron %q: never due", expr)
	}
	return s, nil
}

// Rate returns a schedule that is due every d, at the times t with t.Unix() % d == 0. d must
// be a whole number of seconds and at least one minute; Scheduler.Add rejects other rates.
func Rate(d time.Duration) Schedule { return Schedule{every: d} }

func (s Schedule) validate() error {
	switch {
	case s.cron != "":
		return nil
	case s.every == 0:
		return errors.New("no schedule")
	case s.every < time.Minute || s.every%time.Second != 0:
		return fmt.Errorf("rate %v: must be at least 1m and whole seconds", s.every)
	}
	return nil
}

// Next returns the first time after after (strictly) at which s is due, in UTC, or the zero
// time if there is none.
func (s Schedule) Next(after time.Time) time.Time {
	if s.cron != "" {
		t, err := gronx.NextTickAfter(s.cron, after.UTC().Truncate(time.Minute), false)
		if err != nil {
			return time.Time{}
		}
		return t
	}
	if s.validate() != nil {
		return time.Time{}
	}
	d := int64(s.every / time.Second)
	return time.Unix((floorDiv(after.Unix(), d)+1)*d, 0).UTC()
}

// prev returns the last time not after at at which s is due, or the zero time if there is none.
func (s Schedule) prev(at time.Time) time.Time {
	if s.cron != "" {
		t, err := gronx.PrevTickBefore(s.cron, at.UTC().Truncate(time.Minute), true)
		if err != nil {
			return time.Time{}
		}
		return t
	}
	if s.validate() != nil {
		return time.Time{}
	}
	d := int64(s.every / time.Second)
	return time.Unix(floorDiv(at.Unix(), d)*d, 0).UTC()
}

// String returns the cron expression, or "every <d>" for a rate.
func (s Schedule) String() string {
	switch {
	case s.cron != "":
		return s.cron
	case s.every == 0:
		return "never"
	}
	d := s.every.String()
	if s.every%time.Minute == 0 {
		d = strings.TrimSuffix(d, "0s")
		if s.every%time.Hour == 0 {
			d = strings.TrimSuffix(d, "0m")
		}
	}
	return "every " + d
}

// due returns when a job with schedule s whose last run was scheduled at last is next due.
// If that is not after now, missed runs collapse into one: it returns the latest due time.
func due(s Schedule, last, now time.Time) time.Time {
	next := s.Next(last)
	if !next.IsZero() && !next.After(now) {
		return s.prev(now)
	}
	return next
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
