package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Request is one statement to run, with its parameters and limits. `osprey sql`, the REPL and
// the HTTP API hand their statements to DB.Run in this form.
type Request struct {
	// SQL is one statement: a query (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE,
	// EXPLAIN). Panther's macros are expanded before it runs.
	SQL string
	// Params are the values of named parameters: $name in SQL. A macro argument that is a
	// parameter ($since in p_occurs_since($since)) takes its value before expansion.
	Params map[string]any
	// Args are positional parameters (? or $1).
	Args []any
	// Timeout cancels the statement after this long; 0 means no limit.
	Timeout time.Duration
	// MaxRows stops the result after this many rows (Rows.Truncated tells); 0 means no limit.
	// A query with a limit runs as SELECT * FROM (query) LIMIT MaxRows+1, so DuckDB does not
	// build rows that will not be read; columns of the same name are then numbered (a, a_1).
	MaxRows int64
	// Now is the time Panther's macros count back from; zero means Options.Now. A scheduled
	// query sets the time its run was due.
	Now time.Time
}

// Rows is the result of a statement. Close it when done.
type Rows struct {
	*sql.Rows
	conn   *sql.Conn
	cancel context.CancelFunc
	// release unpins the cached files of a lake in an object store that the statement reads.
	release func()
	// SQL is the statement as it ran: macros expanded and tables narrowed.
	SQL string

	max       int64
	n         int64
	truncated bool

	maxBytes int64
	written  func() int64
}

// LimitBytes makes Next stop, as at MaxRows, once written reports max bytes or more: a
// writer of the result (see Write) counts what it wrote, so the output stays near max,
// whatever the size of the rows.
func (r *Rows) LimitBytes(max int64, written func() int64) {
	r.maxBytes, r.written = max, written
}

// Next advances to the next row; it stops at the request's MaxRows, or at the bytes of
// LimitBytes.
func (r *Rows) Next() bool {
	if r.max > 0 && r.n >= r.max || r.written != nil && r.written() >= r.maxBytes {
		if !r.truncated && r.Rows.Next() {
			r.truncated = true
		}
		return false
	}
	if !r.Rows.Next() {
		return false
	}
	r.n++
	return true
}

// Truncated reports whether rows past MaxRows or LimitBytes were left out (known once Next
// returned false).
func (r *Rows) Truncated() bool { return r.truncated }

// Close releases the result and its connection.
func (r *Rows) Close() error {
	err := errors.Join(r.Rows.Close(), r.conn.Close())
	if r.cancel != nil {
		r.cancel()
	}
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return err
}

// Query runs one statement with positional arguments; see Run.
func (d *DB) Query(ctx context.Context, stmt string, args ...any) (*Rows, error) {
	return d.Run(ctx, Request{SQL: stmt, Args: args})
}

// Run runs one statement. It must be a query: DuckDB is locked to reading the lake (see
// lockdown), and anything else (COPY, ATTACH, CREATE, SET, INSTALL, ...) is refused before it
// runs with ErrNotQuery. Panther's macros are expanded and tables narrowed first; views of
// tables that appeared since the last statement are created.
func (d *DB) Run(ctx context.Context, req Request) (*Rows, error) {
	stmts := SplitStatements(req.SQL)
	switch {
	case len(stmts) == 0:
		return nil, errors.New("no SQL statement given")
	case len(stmts) > 1:
		return nil, fmt.Errorf("%d statements given: run one at a time", len(stmts))
	}
	if err := checkParams(stmts[0], req.Params); err != nil {
		return nil, err
	}
	snap, err := d.refresh(ctx)
	if err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	if req.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
	}
	fail := func(err error) (*Rows, error) {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	now := req.Now
	if now.IsZero() {
		now = d.opts.Now()
	}
	ctx, rd := withReads(ctx)
	run, explain, err := d.prepare(ctx, conn, snap, stmts[0], now, req.Params, nil)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	release, err := d.fetch(ctx, rd)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	fail = func(err error) (*Rows, error) {
		release()
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	args := append([]any(nil), req.Args...)
	for _, name := range sortedNames(req.Params) {
		args = append(args, sql.Named(name, req.Params[name]))
	}
	if req.MaxRows > 0 && !explain {
		// DuckDB materializes a result whole before its first row can be read: stop it at the
		// rows Next reads (one past MaxRows tells that more were left out).
		run = fmt.Sprintf("SELECT * FROM (\n%s\n) LIMIT %d", run, req.MaxRows+1)
	}
	// The text that runs is the text the guard prepared: one statement, a query.
	if err := checkPrepared(conn, run, explain); err != nil {
		conn.Close()
		if errors.Is(err, ErrNotQuery) {
			return fail(err)
		}
		return fail(d.explainError(err))
	}
	rows, err := conn.QueryContext(ctx, run, args...)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(d.explainError(err))
	}
	return &Rows{Rows: rows, conn: conn, cancel: cancel, release: release, SQL: run, max: req.MaxRows}, nil
}

func sortedNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// paramRefs returns the names of the $name parameters of a statement, outside strings and
// comments.
func paramRefs(stmt string) []string {
	toks := lex(stmt)
	var names []string
	for i, t := range toks {
		if t.kind == tokPunct && stmt[t.start] == '$' && i+1 < len(toks) && toks[i+1].start == t.end && toks[i+1].kind == tokIdent {
			names = append(names, stmt[toks[i+1].start:toks[i+1].end])
		}
	}
	return names
}

// checkParams reports a $name parameter without a value (DuckDB would bind another parameter's
// value to it by position).
func checkParams(stmt string, params map[string]any) error {
	for _, name := range paramRefs(stmt) {
		if _, ok := params[name]; !ok {
			return fmt.Errorf("parameter $%s has no value (give it with --param %s=VALUE)", name, name)
		}
	}
	return nil
}

// Error is a DuckDB error reduced to one line.
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// explainError turns a DuckDB error into one clear line: the message and DuckDB's hint, without
// the excerpt of the statement (which may be the rewritten one).
func (d *DB) explainError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "LINE ") || strings.Trim(line, "^ ") == "" {
			continue
		}
		parts = append(parts, line)
		if len(parts) == 2 {
			break
		}
	}
	msg := strings.Join(parts, " ")
	for _, db := range []string{"panther_logs", "panther_rule_matches", "panther_rule_errors", "panther_monitor", "panther_views"} {
		if strings.Contains(msg, "Schema with name "+db+" does not exist") || strings.Contains(msg, "schema \""+db+"\"") {
			msg += " (no table of " + db + " is in the lake at " + d.lake.Dir() + " yet: ingest some logs first)"
			break
		}
	}
	return &Error{Msg: msg, Err: err}
}

// splitExplain splits EXPLAIN [ANALYZE] from the statement it explains; prefix is "" when stmt
// is not an EXPLAIN.
func splitExplain(stmt string) (prefix, inner string) {
	toks := lex(stmt)
	i := 0
	skip := func() {
		for i < len(toks) && (toks[i].kind == tokSpace || toks[i].kind == tokComment) {
			i++
		}
	}
	word := func(w string) bool {
		skip()
		if i < len(toks) && toks[i].kind == tokIdent && strings.EqualFold(stmt[toks[i].start:toks[i].end], w) {
			i++
			return true
		}
		return false
	}
	if !word("explain") {
		return "", stmt
	}
	if !word("analyze") {
		word("analyse")
	}
	skip()
	if i < len(toks) && stmt[toks[i].start:toks[i].end] == "(" { // EXPLAIN (FORMAT json) ...
		depth := 0
		for ; i < len(toks); i++ {
			if toks[i].kind != tokPunct {
				continue
			}
			switch stmt[toks[i].start] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				i++
				break
			}
		}
		skip()
	}
	if i >= len(toks) {
		return stmt, ""
	}
	return stmt[:toks[i].start], stmt[toks[i].start:]
}
