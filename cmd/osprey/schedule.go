package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/scheduled"
	"github.com/ospreyhq/osprey/scheduler"
)

// scheduleOptions are the flags the schedule commands share.
type scheduleOptions struct {
	detections []string
	format     string
}

func newSchedule(g *globals) *cobra.Command {
	o := &scheduleOptions{}
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "List and run scheduled queries and the scheduled rules over their results",
		Long: `Scheduled queries (AnalysisType: scheduled_query) run on a cron expression or every RateMinutes,
with the time each run was due as "now" for Panther's macros. With ResultTable, the results are
kept in panther_views.<ResultTable>; the scheduled rules that name a query run over its results
and raise alerts like streaming rules, their matches in panther_rule_matches.

osprey serve runs the schedules itself. Without serve, run them from the system's cron:

  */5 * * * * osprey schedule run --due --lake /var/lib/osprey --detections /etc/osprey/detections

Runs are recorded in the lake (_osprey/schedules/runs.json); a lock per query keeps two runs of it
from overlapping, and runs missed while nothing ran are run once.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringArrayVar(&o.detections, "detections", nil, "a directory of detection specs (repeatable)")
	pf.StringVar(&o.format, "format", "text", "output format: text or json")
	cmd.AddCommand(newScheduleList(g, o), newScheduleRun(g, o))
	return cmd
}

// open loads the specs and returns a runner of their scheduled queries over the lake.
func (o *scheduleOptions) open(g *globals) (*scheduled.Runner, error) {
	if o.format != "text" && o.format != "json" {
		return nil, fmt.Errorf("--format %q: want text or json", o.format)
	}
	if len(o.detections) == 0 {
		return nil, errors.New("no --detections directory given")
	}
	set, err := detections.LoadDirs(o.detections)
	if err != nil {
		return nil, err
	}
	l, err := g.openLake()
	if err != nil {
		return nil, err
	}
	return scheduled.New(l, set, scheduled.Options{Logger: g.logger()})
}

func newScheduleList(g *globals, o *scheduleOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the scheduled queries with their last and next runs",
		Long: `List every scheduled query of the --detections directories: its schedule, timeout, whether it is
enabled, the rules over its results, its last run (scheduled time, status, duration, rows of the
result, error) and when it is next due ("now" when it is due).`,
		Example: `  osprey schedule list --detections ./detections
  osprey schedule list --detections ./detections --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.open(g)
			if err != nil {
				return err
			}
			defer r.Close()
			now := time.Now()
			sts, err := r.Status(now)
			if err != nil {
				return err
			}
			if o.format == "json" {
				return writeJSON(cmd.OutOrStdout(), sts)
			}
			return writeStatus(cmd.OutOrStdout(), sts, now)
		},
	}
}

func newScheduleRun(g *globals, o *scheduleOptions) *cobra.Command {
	var (
		at  string
		due bool
	)
	cmd := &cobra.Command{
		Use:   "run [NAME] [--at TIME] | run --due",
		Short: "Run one scheduled query now, or every query that is due",
		Long: `Run the scheduled query NAME (its QueryName) once, now or as if it had been due at --at, and the
scheduled rules over its results; or, with --due, run every enabled query that is due once (for the
system's cron). A query that never ran is due at once; runs missed since its last run are run once,
at the latest time due. A query running in another process is skipped.

Alerts go to the lake's alert store. While osprey serve holds it, serve runs the schedules itself
and this command refuses to run scheduled rules.`,
		Example: `  osprey schedule run "Deletions per actor" --detections ./detections
  osprey schedule run "Deletions per actor" --at 2026-11-22T13:00:00Z --detections ./detections
  osprey schedule run --due --lake /var/lib/osprey --detections /etc/osprey/detections`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case due && len(args) > 0:
				return errors.New("give a query NAME or --due, not both")
			case due && at != "":
				return errors.New("--at runs one query: give its NAME, not --due")
			case !due && len(args) == 0:
				return errors.New("give a query NAME, or --due")
			}
			when := time.Now().UTC().Truncate(time.Second)
			if at != "" {
				t, err := parseAt(at)
				if err != nil {
					return err
				}
				when = t
			}
			r, err := o.open(g)
			if err != nil {
				return err
			}
			defer r.Close()
			if err := r.OpenAlerts(); errors.Is(err, alert.ErrLocked) {
				return fmt.Errorf("%w: osprey serve holds it and runs the schedules itself (or another osprey schedule run is running)", err)
			} else if err != nil {
				return err
			}
			var (
				runs   []scheduler.Run
				runErr error
			)
			if due {
				runs, runErr = r.RunDue(cmd.Context(), when)
			} else {
				var run scheduler.Run
				run, runErr = r.RunNow(cmd.Context(), args[0], when)
				if run.Name != "" {
					runs = append(runs, run)
				}
			}
			if o.format == "json" {
				if runs == nil {
					runs = []scheduler.Run{}
				}
				if err := writeJSON(cmd.OutOrStdout(), runs); err != nil {
					return err
				}
			} else {
				writeRuns(cmd.OutOrStdout(), runs, due)
			}
			if runErr != nil && onlyRunning(runErr) {
				// Another process runs them: not a failure of this one.
				fmt.Fprintln(os.Stderr, "skipped:", runErr)
				return nil
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&at, "at", "", "run as if due at this time (RFC 3339, or 2006-01-02 15:04[:05] in UTC)")
	f.BoolVar(&due, "due", false, "run every enabled query that is due")
	return cmd
}

// onlyRunning reports whether err (joined errors) only says that queries were skipped because
// they are running elsewhere.
func onlyRunning(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyRunning(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, scheduler.ErrRunning)
}

// parseAt reads the time of --at.
func parseAt(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--at %q: want a time such as 2026-11-22T13:00:00Z or 2026-11-22 13:00", s)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeStatus(w io.Writer, sts []scheduled.Status, now time.Time) error {
	if len(sts) == 0 {
		fmt.Fprintln(w, "no scheduled queries")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tTIMEOUT\tENABLED\tRULES\tLAST RUN\tSTATUS\tDURATION\tROWS\tNEXT RUN")
	var errs []string
	for _, s := range sts {
		last, status, dur, rows := "never", "-", "-", "-"
		if s.Last != nil {
			last = s.Last.Scheduled.UTC().Format(time.RFC3339)
			status = "ok"
			if s.Last.Err != "" {
				status = "failed"
				errs = append(errs, fmt.Sprintf("%s: %s", s.Name, s.Last.Err))
			}
			dur = s.Last.Duration.Round(time.Millisecond).String()
			if s.Last.Rows >= 0 {
				rows = fmt.Sprint(s.Last.Rows)
			}
		}
		next := "-"
		switch {
		case !s.Enabled:
			next = "disabled"
		case !s.Next.IsZero() && !s.Next.After(now):
			next = "now"
		case !s.Next.IsZero():
			next = s.Next.UTC().Format(time.RFC3339)
		}
		rules := "-"
		if len(s.Rules) > 0 {
			rules = strings.Join(s.Rules, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Schedule, s.Timeout, s.Enabled, rules, last, status, dur, rows, next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range errs {
		fmt.Fprintln(w, "error of", e)
	}
	return nil
}

func writeRuns(w io.Writer, runs []scheduler.Run, due bool) {
	if len(runs) == 0 && due {
		fmt.Fprintln(os.Stderr, "nothing due")
	}
	for _, r := range runs {
		status := "ok"
		if r.Err != "" {
			status = "failed: " + r.Err
		}
		fmt.Fprintf(w, "%s: scheduled %s, rows %d, took %s: %s\n", r.Name, r.Scheduled.UTC().Format(time.RFC3339), r.Rows, r.Duration.Round(time.Millisecond), status)
	}
}
