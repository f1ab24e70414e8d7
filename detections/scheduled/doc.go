// Package scheduled runs scheduled queries and scheduled rules over a lake: each enabled
// scheduled query of a detections.Set is a job of package scheduler, named by its QueryName.
//
// # A run
//
// A run of a scheduled query, due at the time T:
//
//  1. runs the query over the lake (query.DB) with T as "now": p_occurs_since('1 hour') means
//     the hour before T, whenever the run actually starts. TimeoutMinutes bounds the run.
//  2. adds two columns to the result rows: p_scheduled_time = T and p_event_time = T (a
//     p_event_time the query returns is replaced: alias it to keep it), so that a table of
//     results is partitioned by the hour of T and each run's rows are told apart.
//  3. with ResultTable set, writes the rows to panther_views.<ResultTable> in the lake.
//  4. runs each enabled scheduled rule that names the query over the rows, in a DuckDB of its
//     own (query.BatchDB) where the rows are bound as panther_views.<ResultTable> and as
//     panther_views.<the QueryName as a table name> (lowercase, other characters as _: "Deleted
//     detections" is panther_views.deleted_detections). Tables of other queries are not bound.
//     Each row a rule returns is a match: it is counted into alerts by the alert store (dedup
//     and threshold as for streaming rules, alert_title, alert_dedup, alert_severity and
//     alert_context as output columns) and written with the p_alert_* and p_rule_* columns
//     (matches.Rows) to panther_rule_matches.<table>, where <table> is ResultTable or else the
//     QueryName as a table name. A rule whose query fails has the result rows written, with
//     p_rule_error, to panther_rule_errors.<table> (matches.ErrorRows); the other rules still
//     run, and the run records the error.
//  5. commits everything it wrote in one flush of a lake writer of its own, named
//     "schedule-<query>-<hash>", whose commit metadata records T. A run whose flush committed
//     but which was not recorded (a crash in between) is not run again for the same T.
//
// The scheduler records each run (scheduled time, start, duration, rows of the query's result,
// error) in <lake>/_osprey/schedules/runs.json and keeps runs of a query from overlapping,
// across processes too, with lock files in <lake>/_osprey/schedules/locks.
//
// # Alerts
//
// Matches are counted exactly as the streaming engine counts them: pending in the alert store,
// in a lane of the query's own (alert.Store.AddTo, named after the run's lake writer),
// journaled as an epoch (matches.PrepareAlertsLane) whose number the run's flush commits, and
// applied after it (matches.CommitAlerts); a crash in between is settled when the store is next
// opened. Runs take turns for this step. The store may be the Runner's own (Options.Alerts
// nil) or one handed in and shared with a streaming engine (osprey serve's): the engine counts
// in its own lane, so neither flush commits the other's matches.
package scheduled
