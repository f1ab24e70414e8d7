// Package ruletest runs the unit tests of rules (their Tests key), the way
// panther_analysis_tool test does, with SQL: each test's Log is parsed as an event of the
// rule's log type by the log type's real parser (the one ingest uses), bound as the rule's
// table panther_logs.<table> in a BatchDB, and the rule's Query runs over it. The rule matches
// when the query returns a row; the test passes when that is its ExpectedResult.
//
// A Log that the parser rejects (a missing required field, a value of the wrong type) fails its
// test with the parser's reason: rules are tested on the events they will see. For a rule of
// several log types, the Log's p_log_type picks the log type when it names one of them;
// otherwise the first log type whose parser takes the Log is used. Log types whose records are
// text (Linux.Auditd, syslog) take the raw line in the Log's "log" key, as ingest does for
// JSON lines of a log shipper.
package ruletest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
	"github.com/ospreyhq/osprey/query"
)

// Options select and configure the tests to run.
type Options struct {
	// RuleID runs only the tests of this rule; "" runs every rule's.
	RuleID string
	// Now is the time Panther's macros count back from, and the events' p_parse_time;
	// default time.Now.
	Now time.Time
}

// Result is the outcome of one test.
type Result struct {
	RuleID   string
	Test     string
	File     string // the rule's spec file
	Line     int    // the line where the test starts
	Expected bool   // the test's ExpectedResult
	Matched  bool   // whether the rule returned a row for the event
	// Err is why the test could not run: the Log does not parse as the log type, the log type
	// is unknown, or the query failed. A test with an error fails.
	Err error
}

// Passed reports whether the test passed: it ran and the rule matched as expected.
func (r *Result) Passed() bool { return r.Err == nil && r.Matched == r.Expected }

// Reason says why a failed test failed; it is "" for a test that passed.
func (r *Result) Reason() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Matched && !r.Expected:
		return "the rule matched; the test expects no match"
	case !r.Matched && r.Expected:
		return "the rule did not match; the test expects a match"
	}
	return ""
}

// ErrNoRule is returned by Run when Options.RuleID names no rule of the set.
var ErrNoRule = errors.New("no such rule")

// Run runs the tests of the set's rules (enabled or not), in order of RuleID and then of the
// tests in each rule. The log types of the rules are looked up in reg. A test's failure is in
// its Result; the error is for what stops the run (DuckDB could not start, ctx was cancelled,
// Options.RuleID names no rule). Scheduled rules are not run: their tests read the results of
// scheduled queries, not events.
func Run(ctx context.Context, set *detections.Set, reg *logtypes.Registry, opts Options) ([]Result, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	ids := make([]string, 0, len(set.Rules))
	for id := range set.Rules {
		if opts.RuleID == "" || id == opts.RuleID {
			ids = append(ids, id)
		}
	}
	if opts.RuleID != "" && len(ids) == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoRule, opts.RuleID)
	}
	sort.Strings(ids)
	db, err := query.OpenBatchDB(ctx, query.BatchOptions{MemoryLimit: "256MB"})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	r := &runner{db: db, reg: reg, now: opts.Now, bound: map[string]*arrow.Schema{}}
	var results []Result
	for _, id := range ids {
		rule := set.Rules[id]
		for _, t := range rule.Tests {
			res := Result{RuleID: id, Test: t.Name, File: rule.File, Line: t.Line, Expected: t.ExpectedResult}
			res.Matched, res.Err = r.run(ctx, rule, &t)
			if ctx.Err() != nil {
				return results, ctx.Err()
			}
			results = append(results, res)
		}
	}
	return results, nil
}

// runner runs tests in one BatchDB.
type runner struct {
	db    *query.BatchDB
	reg   *logtypes.Registry
	now   time.Time
	bound map[string]*arrow.Schema // the tables bound so far, by name in panther_logs
}

// run runs one test and returns whether the rule matched its event.
func (r *runner) run(ctx context.Context, rule *detections.Rule, t *detections.RuleTest) (bool, error) {
	lt, rec, err := r.parse(rule, t)
	if err != nil {
		return false, err
	}
	defer rec.Release()
	table := detections.TableName(lt.Name)
	// The event is the only row of its table; every other table is empty, so that a query
	// reading another log type's table binds and sees nothing.
	if err := r.db.Bind(ctx, dbLogs, table, rec); err != nil {
		return false, err
	}
	r.bound[table] = rec.Schema()
	for _, name := range rule.LogTypes {
		if other, err := r.reg.Lookup(name); err == nil {
			r.bound[detections.TableName(name)] = other.Table.Arrow
		}
	}
	for name, s := range r.bound {
		if name == table {
			continue
		}
		if err := r.db.BindSchema(ctx, dbLogs, name, s); err != nil {
			return false, err
		}
	}
	rows, err := r.db.Query(ctx, rule.Query, r.now)
	if err != nil {
		return false, fmt.Errorf("query: %w", err)
	}
	matched, err := anyRow(rows)
	if err != nil {
		return false, fmt.Errorf("query: %w", err)
	}
	return matched, nil
}

// parse parses the test's Log as an event of one of the rule's log types.
func (r *runner) parse(rule *detections.Rule, t *detections.RuleTest) (*logtypes.LogType, arrow.RecordBatch, error) {
	names := rule.LogTypes
	if p, ok := t.Log["p_log_type"].(string); ok && slices.Contains(names, p) {
		names = []string{p}
	}
	var errs []error
	for _, name := range names {
		lt, err := r.reg.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec, err := schematest.Record(lt, []byte(t.LogJSON), r.now)
		if err != nil {
			errs = append(errs, fmt.Errorf("the Log does not parse as %s: %w", name, err))
			continue
		}
		if rec.NumRows() == 0 {
			rec.Release()
			errs = append(errs, fmt.Errorf("the Log does not parse as %s: it holds no event", name))
			continue
		}
		return lt, rec, nil
	}
	return nil, nil, errors.Join(errs...)
}

func anyRow(rows *sql.Rows) (bool, error) {
	defer rows.Close()
	matched := rows.Next()
	return matched, errors.Join(rows.Err(), rows.Close())
}

// dbLogs is the database of the log types' tables.
const dbLogs = "panther_logs"
