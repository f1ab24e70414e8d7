package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Job is a named function run on a schedule.
type Job struct {
	Name     string
	Schedule Schedule
	Timeout  time.Duration // 0: none
	// Run does the job's work for the run due at scheduled. It may report the number of rows
	// it produced with SetRows(ctx, n).
	Run func(ctx context.Context, scheduled time.Time) error
}

// Options configure a Scheduler.
type Options struct {
	Logger        *slog.Logger     // default: discard
	Now           func() time.Time // when runs start and end; default: time.Now
	MaxConcurrent int              // runs executing at once; default 4
	// LockDir holds a lock file per job so that runs of a job never overlap across processes.
	// It is created if needed. Empty: runs are only kept from overlapping within a Scheduler.
	LockDir string
}

// ErrRunning means a run was skipped because the job's previous run is still in progress.
var ErrRunning = errors.New("already running")

// errDone means a run was skipped because a run at the same (or a later) time was recorded.
var errDone = errors.New("already run")

// Scheduler runs jobs on their schedules and records their runs in a Store.
type Scheduler struct {
	store   Store
	log     *slog.Logger
	now     func() time.Time
	lockDir string
	sem     chan struct{}
	added   chan struct{} // wakes Run after Add

	mu   sync.Mutex
	jobs map[string]*entry
}

type entry struct {
	job     Job
	running atomic.Bool // in this Scheduler
}

// New returns a Scheduler that records runs in store (a MemStore if nil).
func New(store Store, opts Options) *Scheduler {
	if store == nil {
		store = &MemStore{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 4
	}
	return &Scheduler{
		store: store, log: opts.Logger, now: opts.Now, lockDir: opts.LockDir,
		sem: make(chan struct{}, opts.MaxConcurrent), added: make(chan struct{}, 1),
		jobs: make(map[string]*entry),
	}
}

// Add adds a job. Names are unique. A job may be added while Run is running.
func (s *Scheduler) Add(job Job) error {
	switch {
	case job.Name == "":
		return errors.New("add job: empty name")
	case job.Run == nil:
		return fmt.Errorf("add job %s: no run function", job.Name)
	case job.Timeout < 0:
		return fmt.Errorf("add job %s: negative timeout", job.Name)
	}
	if err := job.Schedule.validate(); err != nil {
		return fmt.Errorf("add job %s: %w", job.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[job.Name]; ok {
		return fmt.Errorf("add job %s: duplicate name", job.Name)
	}
	s.jobs[job.Name] = &entry{job: job}
	select {
	case s.added <- struct{}{}:
	default:
	}
	return nil
}

// entries returns the jobs sorted by name.
func (s *Scheduler) entries() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := make([]*entry, 0, len(s.jobs))
	for _, e := range s.jobs {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.job.Name, b.job.Name) })
	return es
}

// Run runs the jobs as they fall due until ctx is done, then cancels the runs in progress,
// waits for them and returns nil. A job's first run follows its last recorded run or, if it
// has none, is its first due time after Run started (or after the job was added). Run sleeps
// on timers (real time, or a testing/synctest bubble's), whatever Options.Now is. It returns
// early with an error if the store cannot be read.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := make(map[string]time.Time) // when each job is due
	for {
		now := s.now()
		var wake time.Time
		for _, e := range s.entries() {
			sched := e.job.Schedule
			at, ok := next[e.job.Name]
			if !ok {
				last, found, err := s.store.Last(e.job.Name)
				if err != nil {
					return fmt.Errorf("job %s: %w", e.job.Name, err)
				}
				at = sched.Next(now)
				if found {
					at = sched.Next(last.Scheduled)
				}
			}
			if !at.IsZero() && !at.After(now) {
				scheduled := sched.prev(now) // missed runs collapse into the latest
				wg.Go(func() { s.execute(ctx, e, scheduled, true) })
				at = sched.Next(scheduled)
			}
			next[e.job.Name] = at
			if !at.IsZero() && (wake.IsZero() || at.Before(wake)) {
				wake = at
			}
		}
		var tick <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(wake.Sub(now))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		case <-s.added:
		}
	}
}

// RunDue runs, once, every job that is due at now and returns the runs, sorted by name. A job
// is due if a due time not after now follows its last recorded run; missed runs collapse into
// one at the latest due time. A job that has never run is due at once (at its latest due time
// not after now). Jobs skipped because they are running elsewhere are reported in the error
// along with failed runs.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) ([]Run, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		runs []Run
		errs []error
	)
	for _, e := range s.entries() {
		last, found, err := s.store.Last(e.job.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", e.job.Name, err))
			continue
		}
		at := e.job.Schedule.prev(now)
		if found {
			at = due(e.job.Schedule, last.Scheduled, now)
		}
		if at.IsZero() || at.After(now) {
			continue
		}
		wg.Go(func() {
			run, err := s.execute(ctx, e, at, true)
			mu.Lock()
			defer mu.Unlock()
			if run.Name != "" {
				runs = append(runs, run)
			}
			if err != nil && !errors.Is(err, errDone) {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	slices.SortFunc(runs, func(a, b Run) int { return cmp.Compare(a.Name, b.Name) })
	return runs, errors.Join(errs...)
}

// RunNow runs the job name once for the time scheduled, whether or not it is due, and records
// the run. The error is non-nil if the run was skipped, failed or could not be recorded.
func (s *Scheduler) RunNow(ctx context.Context, name string, scheduled time.Time) (Run, error) {
	s.mu.Lock()
	e, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return Run{}, fmt.Errorf("run job %s: no such job", name)
	}
	return s.execute(ctx, e, scheduled, false)
}

// execute runs e for scheduled unless it is already running (here or, with a LockDir,
// elsewhere) or, if onlyIfDue, a run at scheduled or later is recorded. It records the run.
func (s *Scheduler) execute(ctx context.Context, e *entry, scheduled time.Time, onlyIfDue bool) (Run, error) {
	name := e.job.Name
	log := s.log.With("job", name, "scheduled", scheduled)
	if !e.running.CompareAndSwap(false, true) {
		log.Warn("run skipped: previous run still in progress")
		return Run{}, fmt.Errorf("job %s is %w", name, ErrRunning)
	}
	defer e.running.Store(false)
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return Run{}, fmt.Errorf("job %s: %w", name, ctx.Err())
	}
	if s.lockDir != "" {
		if err := os.MkdirAll(s.lockDir, 0o755); err != nil {
			return Run{}, fmt.Errorf("job %s: %w", name, err)
		}
		unlock, err := lockFile(filepath.Join(s.lockDir, url.PathEscape(name)+".lock"), false)
		if errors.Is(err, errLocked) {
			log.Warn("run skipped: job is running in another process")
			return Run{}, fmt.Errorf("job %s is %w", name, ErrRunning)
		}
		if err != nil {
			return Run{}, fmt.Errorf("job %s: %w", name, err)
		}
		defer unlock()
	}
	if onlyIfDue {
		last, found, err := s.store.Last(name)
		if err != nil {
			return Run{}, fmt.Errorf("job %s: %w", name, err)
		}
		if found && !last.Scheduled.Before(scheduled) {
			log.Debug("run skipped: already run")
			return Run{}, errDone
		}
	}
	run, err := s.call(ctx, e.job, scheduled)
	if err != nil {
		log.Error("run failed", "duration", run.Duration, "err", err)
		err = fmt.Errorf("job %s: %w", name, err)
	} else {
		log.Info("run done", "duration", run.Duration, "rows", run.Rows)
	}
	if rerr := s.store.Record(run); rerr != nil {
		log.Error("cannot record run", "err", rerr)
		err = errors.Join(err, fmt.Errorf("job %s: %w", name, rerr))
	}
	return run, err
}

// call calls job.Run with the job's timeout and a rows holder in its context.
func (s *Scheduler) call(ctx context.Context, job Job, scheduled time.Time) (run Run, err error) {
	if job.Timeout > 0 {
		timeout := fmt.Errorf("timed out after %v", job.Timeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, job.Timeout, timeout)
		defer cancel()
		defer func() {
			if err != nil && context.Cause(ctx) == timeout {
				err = fmt.Errorf("%w: %w", timeout, err)
				run.Err = err.Error()
			}
		}()
	}
	rows := new(atomic.Int64)
	rows.Store(-1)
	start := s.now()
	run = Run{Name: job.Name, Scheduled: scheduled, Started: start.UTC()}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("job panicked", "job", job.Name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
		run.Duration = s.now().Sub(start)
		run.Rows = rows.Load()
		if err != nil {
			run.Err = err.Error()
		}
	}()
	return run, job.Run(context.WithValue(ctx, rowsKey{}, rows), scheduled)
}

type rowsKey struct{}

// SetRows reports, from a job's Run function, how many rows the run produced. It does nothing
// if ctx is not a run's context.
func SetRows(ctx context.Context, n int64) {
	if p, ok := ctx.Value(rowsKey{}).(*atomic.Int64); ok {
		p.Store(n)
	}
}

// JobStatus describes a job for listing.
type JobStatus struct {
	Name     string
	Schedule string
	Last     *Run      // the last recorded run; nil if none
	Next     time.Time // when the next run is due; not after now if it is due now
	Running  bool      // a run is in progress in this Scheduler
}

// Status returns the status of each job at now, sorted by name. For a job that has run, Next
// follows the last run (missed runs collapse into the latest); otherwise it is the first due
// time after now.
func (s *Scheduler) Status(now time.Time) ([]JobStatus, error) {
	var out []JobStatus
	for _, e := range s.entries() {
		st := JobStatus{Name: e.job.Name, Schedule: e.job.Schedule.String(), Running: e.running.Load()}
		last, found, err := s.store.Last(e.job.Name)
		if err != nil {
			return nil, fmt.Errorf("status of job %s: %w", e.job.Name, err)
		}
		st.Next = e.job.Schedule.Next(now)
		if found {
			st.Last, st.Next = &last, due(e.job.Schedule, last.Scheduled, now)
		}
		out = append(out, st)
	}
	return out, nil
}
