// Package validate checks a loaded set of detections against what they will run on, before
// anything runs: each rule's log types must be known, its query must read only the tables of
// its log types and bind against their columns (DuckDB's binder, on empty tables of the log
// types' schemas), scheduled queries' cron expressions must parse, and, when a lake is given,
// scheduled queries must bind against the lake's tables. Every mistake is reported as a
// *detections.Error "file:line: message" at the line of the key it is about.
//
// The loader (detections.Load) checks the specs themselves: keys, types, required values.
package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/scheduler"
)

// Options say what the detections are checked against.
type Options struct {
	// Registry holds the known log types (required).
	Registry *logtypes.Registry
	// Lake, when set, is a session over the lake that scheduled queries read: they must bind
	// against its tables. When nil, scheduled queries' SQL is not checked.
	Lake *query.DB
	// Now is the time Panther's macros count back from; default time.Now.
	Now time.Time
}

// dbLogs is the database of the log types' tables.
const dbLogs = "panther_logs"

// Set checks the set's rules and scheduled queries and returns their mistakes, sorted by file
// and line. The error is for what stops the check itself (DuckDB could not start, ctx was
// cancelled).
func Set(ctx context.Context, set *detections.Set, opts Options) ([]*detections.Error, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	v := &validator{opts: opts, dbs: map[string]*query.BatchDB{}}
	defer v.close()
	for _, id := range sortedKeys(set.Rules) {
		if err := v.rule(ctx, set.Rules[id]); err != nil {
			return nil, err
		}
	}
	for _, name := range sortedKeys(set.ScheduledQueries) {
		if err := v.scheduledQuery(ctx, set.ScheduledQueries[name]); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(v.errs, func(i, j int) bool {
		a, b := v.errs[i], v.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return v.errs, nil
}

type validator struct {
	opts Options
	errs []*detections.Error
	// dbs holds a BatchDB for each set of tables rules read (by the sorted names joined with
	// commas): a rule sees only its own log types' tables.
	dbs map[string]*query.BatchDB
}

func (v *validator) errorf(file string, line int, format string, args ...any) {
	v.errs = append(v.errs, &detections.Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) close() {
	for _, db := range v.dbs {
		db.Close()
	}
}

func (v *validator) rule(ctx context.Context, r *detections.Rule) error {
	var types []*logtypes.LogType
	for i, name := range r.LogTypes {
		lt, err := v.opts.Registry.Lookup(name)
		if err != nil {
			line := r.Line
			if i < len(r.LogTypeLines) {
				line = r.LogTypeLines[i]
			}
			v.errorf(r.File, line, "LogTypes: %v", err)
			continue
		}
		types = append(types, lt)
	}
	if len(types) < len(r.LogTypes) {
		return nil // the query cannot be bound without its tables
	}
	own := detections.LogTypeTables(r)
	db, err := v.db(ctx, own, types)
	if err != nil {
		return err
	}
	line := r.QueryLine
	if line == 0 {
		line = r.Line
	}
	tables, err := db.Tables(ctx, r.Query, v.opts.Now)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.errorf(r.File, line, "Query: %v", err)
		return nil
	}
	want := make([]string, len(own))
	for i, t := range own {
		want[i] = dbLogs + "." + t
	}
	bad := false
	for _, t := range tables {
		if !strings.Contains(t, ".") || slices.Contains(want, t) {
			continue // a common table expression, or one of the rule's tables
		}
		bad = true
		v.errorf(r.File, line, "Query reads %s, which is not the table of its LogTypes (%s)", t, strings.Join(want, ", "))
	}
	if bad {
		return nil
	}
	pits, err := db.Pitfalls(ctx, r.Query, v.opts.Now)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.errorf(r.File, line, "Query: %v", err)
		return nil
	}
	for _, p := range pits {
		v.errorf(r.File, line, "Query: %s", p.Msg)
	}
	if len(pits) > 0 {
		return nil
	}
	cols, err := db.Check(ctx, r.Query, v.opts.Now)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.errorf(r.File, line, "Query: %v", err)
		return nil
	}
	if !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, "p_row_id") }) {
		v.errorf(r.File, line, "Query: the result has no p_row_id column: a rule returns events (SELECT * or SELECT p_row_id, ...)")
	}
	return nil
}

// db returns a BatchDB where exactly the given tables are bound, empty, with the columns of
// their log types.
func (v *validator) db(ctx context.Context, tables []string, types []*logtypes.LogType) (*query.BatchDB, error) {
	key := append([]string(nil), tables...)
	sort.Strings(key)
	k := strings.Join(key, ",")
	if db := v.dbs[k]; db != nil {
		return db, nil
	}
	db, err := query.OpenBatchDB(ctx, query.BatchOptions{MemoryLimit: "256MB"})
	if err != nil {
		return nil, err
	}
	for _, lt := range types {
		if err := db.BindSchema(ctx, dbLogs, detections.TableName(lt.Name), lt.Table.Arrow); err != nil {
			db.Close()
			return nil, fmt.Errorf("bind %s: %w", lt.Name, err)
		}
	}
	v.dbs[k] = db
	return db, nil
}

func (v *validator) scheduledQuery(ctx context.Context, q *detections.ScheduledQuery) error {
	if c := q.Schedule.CronExpression; c != "" {
		if _, err := scheduler.ParseCron(c); err != nil {
			v.errorf(q.File, q.Schedule.Line, "Schedule: CronExpression: %v", err)
		}
	}
	if v.opts.Lake == nil {
		return nil
	}
	line := q.QueryLine
	if line == 0 {
		line = q.Line
	}
	rows, err := v.opts.Lake.Run(ctx, query.Request{SQL: "EXPLAIN " + q.Query})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.errorf(q.File, line, "Query: %v", err)
		return nil
	}
	return errors.Join(rows.Err(), rows.Close())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
