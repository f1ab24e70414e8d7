package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a job's Run function that records the times it is scheduled for and reports
// how many runs it has seen as its rows.
type recorder struct {
	mu  sync.Mutex
	got []time.Time
}

func (r *recorder) run(ctx context.Context, scheduled time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, scheduled)
	SetRows(ctx, int64(len(r.got)))
	return nil
}

func (r *recorder) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// start runs s in the background; stop cancels it and waits for Run to return.
func start(t *testing.T, s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func mustAdd(t *testing.T, s *Scheduler, j Job) {
	t.Helper()
	if err := s.Add(j); err != nil {
		t.Fatal(err)
	}
}

func checkTimes(t *testing.T, got []time.Time, want ...time.Time) {
	t.Helper()
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("runs scheduled at %v, want %v", got, want)
	}
}

func TestAdd(t *testing.T) {
	s := New(nil, Options{})
	nop := func(context.Context, time.Time) error { return nil }
	mustAdd(t, s, Job{Name: "a", Schedule: Rate(time.Minute), Run: nop})
	tests := []struct {
		job  Job
		want string
	}{
		{Job{Name: "a", Schedule: Rate(time.Hour), Run: nop}, "add job a: duplicate name"},
		{Job{Schedule: Rate(time.Hour), Run: nop}, "empty name"},
		{Job{Name: "b", Schedule: Rate(time.Hour)}, "no run function"},
		{Job{Name: "b", Schedule: Rate(30 * time.Second), Run: nop}, "at least 1m"},
		{Job{Name: "b", Schedule: Rate(90*time.Second + 1), Run: nop}, "whole seconds"},
		{Job{Name: "b", Run: nop}, "no schedule"},
		{Job{Name: "b", Schedule: Rate(time.Hour), Timeout: -1, Run: nop}, "negative timeout"},
	}
	for _, tt := range tests {
		if err := s.Add(tt.job); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add(%+v) = %v, want error containing %q", tt.job, err, tt.want)
		}
	}
}

// A job that has never run first runs at its first due time after Run starts, and is given
// its scheduled time; the rows it reports are recorded.
func TestRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now() // 2000-01-01 00:00 UTC: a due time, but not after the start
		store := &MemStore{}
		s := New(store, Options{})
		var rec recorder
		mustAdd(t, s, Job{Name: "a", Schedule: Rate(10 * time.Minute), Run: rec.run})
		stop := start(t, s)
		time.Sleep(35 * time.Minute)
		synctest.Wait()
		stop()
		checkTimes(t, rec.times(), t0.Add(10*time.Minute), t0.Add(20*time.Minute), t0.Add(30*time.Minute))
		last, _, _ := store.Last("a")
		if !last.Scheduled.Equal(t0.Add(30*time.Minute)) || last.Rows != 3 || last.Err != "" {
			t.Errorf("last run %+v, want scheduled at 00:30 with 3 rows", last)
		}
	})
}

// Last run 19:00, hourly, started at 00:30: one run for 00:00 at once, then 01:00.
func TestRunMissedRunsCollapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		time.Sleep(30 * time.Minute)
		store := &MemStore{}
		store.Record(Run{Name: "a", Scheduled: t0.Add(-5 * time.Hour)})
		var log bytes.Buffer
		s := New(store, Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		var rec recorder
		mustAdd(t, s, Job{Name: "a", Schedule: mustCron(t, "@hourly"), Run: rec.run})
		stop := start(t, s)
		synctest.Wait()
		checkTimes(t, rec.times(), t0)
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		stop()
		checkTimes(t, rec.times(), t0, t0.Add(time.Hour))
		if strings.Contains(log.String(), "skipped") {
			t.Errorf("runs were attempted for missed times:\n%s", log.String())
		}
	})
}

// Jobs may be added while Run is running.
func TestRunAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := New(nil, Options{})
		stop := start(t, s)
		synctest.Wait()
		var rec recorder
		mustAdd(t, s, Job{Name: "a", Schedule: Rate(time.Minute), Run: rec.run})
		time.Sleep(90 * time.Second)
		stop()
		checkTimes(t, rec.times(), t0.Add(time.Minute))
	})
}

// A run that another Scheduler on the same store (say, system cron calling RunDue) has
// already recorded is not run again.
func TestRunSkipsRunsRecordedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		store := &MemStore{}
		var daemon, cron recorder
		s1, s2 := New(store, Options{}), New(store, Options{})
		mustAdd(t, s1, Job{Name: "a", Schedule: Rate(time.Minute), Run: daemon.run})
		mustAdd(t, s2, Job{Name: "a", Schedule: Rate(time.Minute), Run: cron.run})
		stop := start(t, s1)
		time.Sleep(30 * time.Second)
		if _, err := s2.RunDue(context.Background(), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		stop()
		checkTimes(t, cron.times(), t0.Add(time.Minute))
		checkTimes(t, daemon.times(), t0.Add(2*time.Minute))
	})
}

// A run due while the previous one still runs is skipped and logged, not queued.
func TestRunSkipsOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var log bytes.Buffer
		s := New(nil, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
		release := make(chan struct{})
		var rec recorder
		mustAdd(t, s, Job{Name: "a", Schedule: Rate(time.Minute), Run: func(ctx context.Context, at time.Time) error {
			rec.run(ctx, at)
			if at.Equal(t0.Add(time.Minute)) {
				<-release
			}
			return nil
		}})
		stop := start(t, s)
		time.Sleep(3*time.Minute + 30*time.Second) // the runs at 00:02 and 00:03 overlap the first
		synctest.Wait()
		checkTimes(t, rec.times(), t0.Add(time.Minute))
		close(release)
		time.Sleep(time.Minute) // 00:04 runs
		synctest.Wait()
		stop()
		checkTimes(t, rec.times(), t0.Add(time.Minute), t0.Add(4*time.Minute))
		if n := strings.Count(log.String(), "previous run still in progress"); n != 2 {
			t.Errorf("%d skips logged, want 2; log:\n%s", n, log.String())
		}
	})
}

// A run's context is cancelled at its timeout and the run records the error.
func TestRunTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &MemStore{}
		s := New(store, Options{})
		mustAdd(t, s, Job{Name: "slow", Schedule: Rate(time.Hour), Timeout: 5 * time.Second, Run: func(ctx context.Context, _ time.Time) error {
			<-ctx.Done()
			return ctx.Err()
		}})
		run, err := s.RunNow(context.Background(), "slow", time.Now())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RunNow error %v, want deadline exceeded", err)
		}
		want := "timed out after 5s: context deadline exceeded"
		if run.Err != want || run.Duration != 5*time.Second {
			t.Errorf("run %+v, want Err %q after 5s", run, want)
		}
		if last, _, _ := store.Last("slow"); last.Err != want {
			t.Errorf("recorded run %+v, want Err %q", last, want)
		}
	})
}

func TestRunMaxConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(nil, Options{MaxConcurrent: 2})
		release := make(chan struct{})
		var active, most, runs atomic.Int32
		for _, name := range []string{"a", "b", "c", "d", "e"} {
			mustAdd(t, s, Job{Name: name, Schedule: Rate(time.Minute), Run: func(context.Context, time.Time) error {
				n := active.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				active.Add(-1)
				runs.Add(1)
				return nil
			}})
		}
		stop := start(t, s)
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if n := active.Load(); n != 2 {
			t.Errorf("%d runs at once, want 2", n)
		}
		close(release)
		synctest.Wait()
		stop()
		if runs.Load() != 5 || most.Load() != 2 {
			t.Errorf("%d runs, at most %d at once; want 5, 2", runs.Load(), most.Load())
		}
	})
}

// On cancellation Run cancels the runs in progress and waits for them.
func TestRunCancelWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &MemStore{}
		s := New(store, Options{})
		var finished atomic.Bool
		mustAdd(t, s, Job{Name: "a", Schedule: Rate(time.Minute), Run: func(ctx context.Context, _ time.Time) error {
			<-ctx.Done()
			time.Sleep(time.Second) // cleaning up
			finished.Store(true)
			return ctx.Err()
		}})
		stop := start(t, s)
		time.Sleep(90 * time.Second)
		stop()
		if !finished.Load() {
			t.Error("Run returned before the run in progress finished")
		}
		if last, _, _ := store.Last("a"); last.Err != "context canceled" {
			t.Errorf("recorded run %+v, want Err context canceled", last)
		}
	})
}

func TestRunDue(t *testing.T) {
	now := utc("2024-05-06 10:05:00")
	store := &MemStore{}
	for name, last := range map[string]string{
		"due":    "2024-05-06 09:00:00", // due at 10:00
		"missed": "2024-05-06 05:00:00", // missed 06:00 to 10:00: runs once, for 10:00
		"done":   "2024-05-06 10:00:00", // next at 11:00
		"rate":   "2024-05-06 10:00:00", // next at 10:15
	} {
		store.Record(Run{Name: name, Scheduled: utc(last)})
	}
	s := New(store, Options{Now: func() time.Time { return now }})
	recs := map[string]*recorder{}
	for _, name := range []string{"due", "missed", "done", "rate", "new"} {
		sched := mustCron(t, "@hourly")
		switch name {
		case "rate":
			sched = Rate(15 * time.Minute)
		case "new":
			sched = mustCron(t, "@daily") // never run: due at once, for its latest due time
		}
		recs[name] = &recorder{}
		mustAdd(t, s, Job{Name: name, Schedule: sched, Run: recs[name].run})
	}
	runs, err := s.RunDue(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Run{
		{Name: "due", Scheduled: utc("2024-05-06 10:00:00"), Started: now, Rows: 1},
		{Name: "missed", Scheduled: utc("2024-05-06 10:00:00"), Started: now, Rows: 1},
		{Name: "new", Scheduled: utc("2024-05-06 00:00:00"), Started: now, Rows: 1},
	}
	if !slices.EqualFunc(runs, want, sameRun) {
		t.Errorf("RunDue runs\n%+v\nwant\n%+v", runs, want)
	}
	for _, name := range []string{"done", "rate"} {
		checkTimes(t, recs[name].times())
	}
	if runs, err := s.RunDue(context.Background(), now); len(runs) != 0 || err != nil {
		t.Errorf("second RunDue = %+v, %v; want nothing", runs, err)
	}
}

func TestRunNow(t *testing.T) {
	s := New(nil, Options{})
	mustAdd(t, s, Job{Name: "quiet", Schedule: Rate(time.Hour), Run: func(context.Context, time.Time) error { return nil }})
	mustAdd(t, s, Job{Name: "panics", Schedule: Rate(time.Hour), Run: func(context.Context, time.Time) error { panic("oops") }})
	at := utc("2024-05-06 10:00:00")
	run, err := s.RunNow(context.Background(), "quiet", at)
	if err != nil || !run.Scheduled.Equal(at) || run.Rows != -1 || run.Err != "" {
		t.Errorf("RunNow(quiet) = %+v, %v; want scheduled at %v, rows -1", run, err, at)
	}
	run, err = s.RunNow(context.Background(), "panics", at)
	if err == nil || run.Err != "panic: oops" {
		t.Errorf("RunNow(panics) = %+v, %v; want Err panic: oops", run, err)
	}
	if _, err := s.RunNow(context.Background(), "nope", at); err == nil {
		t.Error("RunNow of an unknown job: no error")
	}
}

// Two Schedulers with one LockDir stand for two processes: each locks through its own file
// descriptor, so one cannot run a job the other is running.
func TestLockDirAcrossSchedulers(t *testing.T) {
	dir := t.TempDir()
	started, release := make(chan struct{}), make(chan struct{})
	s1, s2 := New(nil, Options{LockDir: dir}), New(nil, Options{LockDir: dir})
	mustAdd(t, s1, Job{Name: "x", Schedule: Rate(time.Hour), Run: func(context.Context, time.Time) error {
		close(started)
		<-release
		return nil
	}})
	var rec recorder
	mustAdd(t, s2, Job{Name: "x", Schedule: Rate(time.Hour), Run: rec.run})
	done := make(chan error)
	go func() {
		_, err := s1.RunNow(context.Background(), "x", time.Now())
		done <- err
	}()
	<-started
	_, err := s2.RunNow(context.Background(), "x", time.Now())
	if !errors.Is(err, ErrRunning) || err.Error() != "job x is already running" {
		t.Errorf("RunNow while running elsewhere: %v, want job x is already running", err)
	}
	if runs, err := s2.RunDue(context.Background(), time.Now()); len(runs) != 0 || !errors.Is(err, ErrRunning) {
		t.Errorf("RunDue while running elsewhere = %+v, %v; want no runs, ErrRunning", runs, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s2.RunNow(context.Background(), "x", time.Now()); err != nil || len(rec.times()) != 1 {
		t.Errorf("RunNow after the other finished: %v, %d runs", err, len(rec.times()))
	}
}

func TestStatus(t *testing.T) {
	now := utc("2024-05-06 15:30:00")
	store := &MemStore{}
	last := Run{Name: "b", Scheduled: utc("2024-05-06 15:00:00"), Started: utc("2024-05-06 15:00:01"), Duration: time.Second, Rows: 12, Err: "boom"}
	store.Record(last)
	store.Record(Run{Name: "c", Scheduled: utc("2024-05-06 10:00:00")})
	s := New(store, Options{})
	nop := func(context.Context, time.Time) error { return nil }
	for _, name := range []string{"c", "a", "b"} {
		mustAdd(t, s, Job{Name: name, Schedule: mustCron(t, "@hourly"), Run: nop})
	}
	got, err := s.Status(now)
	if err != nil {
		t.Fatal(err)
	}
	want := []JobStatus{
		{Name: "a", Schedule: "@hourly", Next: utc("2024-05-06 16:00:00")},
		{Name: "b", Schedule: "@hourly", Last: &last, Next: utc("2024-05-06 16:00:00")},
		{Name: "c", Schedule: "@hourly", Last: &Run{Name: "c", Scheduled: utc("2024-05-06 10:00:00")}, Next: utc("2024-05-06 15:00:00")}, // overdue
	}
	if !slices.EqualFunc(got, want, func(a, b JobStatus) bool {
		return a.Name == b.Name && a.Schedule == b.Schedule && a.Next.Equal(b.Next) && a.Running == b.Running &&
			(a.Last == nil) == (b.Last == nil) && (a.Last == nil || sameRun(*a.Last, *b.Last))
	}) {
		t.Errorf("Status =\n%+v\nwant\n%+v", got, want)
	}
}
