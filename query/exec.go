package query

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// Rows is the result of a statement. Close it when done.
type Rows struct {
	*sql.Rows
	conn *sql.Conn
	// SQL is the statement as it ran: macros expanded and tables narrowed.
	SQL string
}

// Close releases the result and its connection.
func (r *Rows) Close() error {
	return errors.Join(r.Rows.Close(), r.conn.Close())
}

// Query runs one statement. Panther's macros are expanded and tables narrowed first; views of
// tables that appeared since the last statement are created.
func (d *DB) Query(ctx context.Context, stmt string, args ...any) (*Rows, error) {
	if err := d.Refresh(ctx); err != nil {
		return nil, err
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	run, err := d.prepare(ctx, conn, stmt)
	if err != nil {
		conn.Close()
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, run, args...)
	if err != nil {
		conn.Close()
		return nil, d.explainError(err)
	}
	return &Rows{Rows: rows, conn: conn, SQL: run}, nil
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
