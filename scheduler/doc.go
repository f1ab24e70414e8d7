// Package scheduler runs named jobs on cron or rate schedules: scheduled searches and
// scheduled detection rules. It knows nothing about what a job does.
//
// # Schedules
//
// A Schedule is a standard 5-field cron expression (or a macro such as @hourly) or a rate
// ("every 15m"). Both are evaluated in UTC, so daylight saving time never shifts or repeats a
// run. Cron schedules have minute granularity and rates are at least a minute. Rates are
// aligned to the Unix epoch: a rate of d is due at the times t with t.Unix() % d == 0, so
// restarts do not shift them.
//
// # Guarantees
//
//   - A job is given the time its run was due ("scheduled"), not the time it started; a
//     scheduled query uses it as its "now".
//   - A run is recorded in the Store after it finishes. The next run of a job follows its last
//     recorded run, so runs missed while nothing was running are known after a restart.
//   - Missed runs are run once, not once each: the single catch-up run is scheduled at the
//     latest due time. A run interrupted by a crash is not recorded and is run again.
//   - A job never overlaps itself in a Scheduler: a run that is due while the previous one is
//     still running is skipped (and logged), not queued. With Options.LockDir this holds across
//     Schedulers and processes too (flock on a per-job lock file).
//   - A due run is not repeated if a run at the same or a later time is already recorded, e.g.
//     by RunDue in another process sharing the store.
//   - At most Options.MaxConcurrent runs execute at once in a Scheduler.
//   - A run with a Timeout has its context cancelled when the timeout expires; a job must
//     return soon after its context is done. A panicking job is recorded as failed.
//
// The Scheduler either runs as a loop (Run) or is driven from outside, e.g. by system cron
// (RunDue) or by hand (RunNow). FileStore keeps the runs in one JSON file that several
// processes may share; MemStore keeps them in memory.
package scheduler
