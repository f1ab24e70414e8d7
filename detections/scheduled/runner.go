package scheduled

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/scheduler"
)

// Commit metadata a run's flush records.
const (
	MetaScheduled = "schedule.time" // the run's scheduled time, RFC 3339
	MetaRows      = "schedule.rows" // the rows of the query's result
)

// FieldScheduledTime is the column that holds a run's scheduled time.
const FieldScheduledTime = "p_scheduled_time"

// Options configure a Runner.
type Options struct {
	// Alerts is the lake's alert store, shared with a streaming engine (see the package
	// comment). Nil: the Runner opens the store in <lake>/_osprey/alerts when a scheduled rule
	// first needs it, and fails with alert.ErrLocked while another process holds it.
	Alerts *alert.Store
	// Notify hands a raised alert to its destinations; it must be durable when it returns.
	// Nil: alerts are only stored.
	Notify func(*alert.Alert) error
	Logger *slog.Logger
	// Now is the scheduler's clock (when runs are due, start and end); default time.Now.
	Now func() time.Time
	// MaxConcurrent is the number of runs at once; default 2.
	MaxConcurrent int
	// Query configures the DuckDB the queries run in.
	Query query.Options
}

// Runner runs the scheduled queries and rules of a set. It is safe for concurrent use.
type Runner struct {
	lake  *lake.Lake
	opts  Options
	sched *scheduler.Scheduler
	store *scheduler.FileStore
	jobs  []*job // every scheduled query, enabled or not, by name
	log   *slog.Logger

	mu     sync.Mutex // guards db and alerts
	db     *query.DB
	alerts *alert.Store
	own    bool // the Runner opened alerts

	commitMu sync.Mutex // one run at a time counts matches and commits
}

// job is a scheduled query and the rules over its results.
type job struct {
	q        *detections.ScheduledQuery
	schedule scheduler.Schedule
	table    string   // of panther_rule_matches and panther_rule_errors
	bound    []string // the tables of panther_views the results are bound as for rules
	writer   string   // the lake writer's name
	rules    []*rule
}

type rule struct {
	spec *detections.ScheduledRule
	info *alert.Rule
}

// New returns a Runner of the scheduled queries of set over the lake l. Runs are recorded,
// and locked, under <lake>/_osprey/schedules. It opens nothing else until a run needs it.
func New(l *lake.Lake, set *detections.Set, opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2
	}
	dir := lake.SchedulesDir(l.Dir())
	store, err := scheduler.OpenFileStore(filepath.Join(dir, "runs.json"))
	if err != nil {
		return nil, err
	}
	r := &Runner{lake: l, opts: opts, store: store, log: opts.Logger, alerts: opts.Alerts}
	r.sched = scheduler.New(store, scheduler.Options{
		Logger: opts.Logger, Now: opts.Now, MaxConcurrent: opts.MaxConcurrent, LockDir: filepath.Join(dir, "locks"),
	})
	byName := map[string]*job{}
	for _, q := range set.ScheduledQueries {
		j, err := newJob(q)
		if err != nil {
			return nil, err
		}
		byName[q.QueryName] = j
		r.jobs = append(r.jobs, j)
	}
	slices.SortFunc(r.jobs, func(a, b *job) int { return cmp.Compare(a.q.QueryName, b.q.QueryName) })
	ids := slices.Sorted(maps.Keys(set.ScheduledRules))
	for _, id := range ids {
		spec := set.ScheduledRules[id]
		if !spec.Enabled {
			continue
		}
		info := matches.AlertRule(&spec.Detection, alert.TypeScheduledRule, nil)
		for _, name := range spec.ScheduledQueries {
			j := byName[name]
			if j == nil {
				return nil, fmt.Errorf("%s:%d: scheduled rule %s: no scheduled query %q", spec.File, spec.Line, id, name)
			}
			j.rules = append(j.rules, &rule{spec: spec, info: info})
		}
	}
	for _, j := range r.jobs {
		if !j.q.Enabled {
			continue
		}
		err := r.sched.Add(scheduler.Job{
			Name: j.q.QueryName, Schedule: j.schedule,
			Timeout: time.Duration(j.q.Schedule.TimeoutMinutes) * time.Minute,
			Run:     func(ctx context.Context, at time.Time) error { return r.run(ctx, j, at) },
		})
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func newJob(q *detections.ScheduledQuery) (*job, error) {
	j := &job{q: q}
	switch {
	case q.Schedule.CronExpression != "":
		s, err := scheduler.ParseCron(q.Schedule.CronExpression)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: scheduled query %s: %w", q.File, q.Schedule.Line, q.QueryName, err)
		}
		j.schedule = s
	default:
		j.schedule = scheduler.Rate(time.Duration(q.Schedule.RateMinutes) * time.Minute)
	}
	name := TableName(q.QueryName)
	j.table = cmp.Or(q.ResultTable, name)
	j.bound = []string{j.table}
	if name != j.table {
		j.bound = append(j.bound, name)
	}
	h := fnv.New32a()
	h.Write([]byte(q.QueryName))
	j.writer = fmt.Sprintf("schedule-%s-%08x", name, h.Sum32())
	return j, nil
}

// TableName returns a scheduled query's name as a table name: lowercase, with every character
// that is not a letter, digit or _ as _, and q_ in front of one that does not start with a
// letter ("Deleted detections" is deleted_detections).
func TableName(queryName string) string {
	t := detections.TableName(queryName)
	if t == "" || t[0] < 'a' || t[0] > 'z' {
		t = "q_" + t
	}
	return t
}

// Run runs the queries as they fall due until ctx is done (see scheduler.Scheduler.Run).
func (r *Runner) Run(ctx context.Context) error {
	if err := r.OpenAlerts(); err != nil {
		return err
	}
	return r.sched.Run(ctx)
}

// RunDue runs, once, every query that is due at now: missed runs collapse into one, and a
// query that has never run is due at once. Queries running elsewhere are skipped and reported
// in the error with failed runs.
func (r *Runner) RunDue(ctx context.Context, now time.Time) ([]scheduler.Run, error) {
	if err := r.OpenAlerts(); err != nil {
		return nil, err
	}
	return r.sched.RunDue(ctx, now)
}

// RunNow runs the query name for the time at, due or not, enabled or not.
func (r *Runner) RunNow(ctx context.Context, name string, at time.Time) (scheduler.Run, error) {
	j := r.job(name)
	if j == nil {
		return scheduler.Run{}, fmt.Errorf("no scheduled query %q", name)
	}
	if err := r.OpenAlerts(); err != nil {
		return scheduler.Run{}, err
	}
	if !j.q.Enabled {
		// The scheduler holds enabled queries only: run this one in a scheduler of its own,
		// with the same store and locks.
		s := scheduler.New(r.store, scheduler.Options{Logger: r.log, Now: r.opts.Now,
			LockDir: filepath.Join(lake.SchedulesDir(r.lake.Dir()), "locks")})
		err := s.Add(scheduler.Job{Name: name, Schedule: j.schedule,
			Timeout: time.Duration(j.q.Schedule.TimeoutMinutes) * time.Minute,
			Run:     func(ctx context.Context, at time.Time) error { return r.run(ctx, j, at) }})
		if err != nil {
			return scheduler.Run{}, err
		}
		return s.RunNow(ctx, name, at)
	}
	return r.sched.RunNow(ctx, name, at)
}

func (r *Runner) job(name string) *job {
	i, ok := slices.BinarySearchFunc(r.jobs, name, func(j *job, n string) int { return cmp.Compare(j.q.QueryName, n) })
	if !ok {
		return nil
	}
	return r.jobs[i]
}

// Status is a scheduled query as osprey schedule list shows it.
type Status struct {
	Name        string         `json:"name"`
	Schedule    string         `json:"schedule"`
	Timeout     time.Duration  `json:"timeout_ns"`
	Enabled     bool           `json:"enabled"`
	ResultTable string         `json:"result_table,omitempty"`
	Rules       []string       `json:"rules,omitempty"` // the enabled scheduled rules over its results
	Last        *scheduler.Run `json:"last,omitempty"`
	Next        time.Time      `json:"next,omitzero"` // zero when disabled
}

// Status returns every scheduled query's status at now, sorted by name.
func (r *Runner) Status(now time.Time) ([]Status, error) {
	sts, err := r.sched.Status(now)
	if err != nil {
		return nil, err
	}
	byName := map[string]scheduler.JobStatus{}
	for _, st := range sts {
		byName[st.Name] = st
	}
	out := make([]Status, 0, len(r.jobs))
	for _, j := range r.jobs {
		s := Status{Name: j.q.QueryName, Schedule: j.schedule.String(), Enabled: j.q.Enabled,
			Timeout: time.Duration(j.q.Schedule.TimeoutMinutes) * time.Minute, ResultTable: j.q.ResultTable}
		for _, ru := range j.rules {
			s.Rules = append(s.Rules, ru.spec.RuleID)
		}
		if st, ok := byName[s.Name]; ok {
			s.Last, s.Next = st.Last, st.Next
		} else {
			last, found, err := r.store.Last(s.Name)
			if err != nil {
				return nil, err
			}
			if found {
				s.Last = &last
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// OpenAlerts opens the lake's alert store now if a scheduled rule is enabled and none was
// given; Run, RunDue and RunNow call it. The error wraps alert.ErrLocked when another process
// (osprey serve) holds the store.
func (r *Runner) OpenAlerts() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.alerts != nil || !slices.ContainsFunc(r.jobs, func(j *job) bool { return len(j.rules) > 0 }) {
		return nil
	}
	s, err := alert.Open(lake.AlertsDir(r.lake.Dir()), matches.CommittedEpoch(r.lake))
	if err != nil {
		return fmt.Errorf("scheduled rules: %w", err)
	}
	r.alerts, r.own = s, true
	return nil
}

// Close releases the DuckDB of the queries and the alert store if the Runner opened it.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.db != nil {
		errs = append(errs, r.db.Close())
		r.db = nil
	}
	if r.own && r.alerts != nil {
		errs = append(errs, r.alerts.Close())
		r.alerts = nil
	}
	return errors.Join(errs...)
}

// queryDB returns the DuckDB over the lake, opening it on first use.
func (r *Runner) queryDB(ctx context.Context) (*query.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		db, err := query.Open(ctx, r.lake, r.opts.Query)
		if err != nil {
			return nil, err
		}
		r.db = db
	}
	return r.db, nil
}

// committed returns the scheduled time and rows of the last run of j whose flush committed.
func (r *Runner) committed(j *job) (time.Time, int64, error) {
	meta, err := r.lake.CommitMeta(j.writer)
	if err != nil || meta == nil {
		return time.Time{}, 0, err
	}
	t, err := time.Parse(time.RFC3339Nano, meta[MetaScheduled])
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("commit metadata of %s: %w", j.writer, err)
	}
	n, _ := strconv.ParseInt(meta[MetaRows], 10, 64)
	return t, n, nil
}
