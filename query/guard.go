package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"
)

// The guard: what a user wrote reaches DuckDB only as a value to parse (json_serialize_sql) until
// the whole statement, macros expanded, is accepted as one query; then it runs only through a
// statement that DuckDB's own parser split into exactly one statement of type SELECT.
//
// Two facts of duckdb-go make the second half necessary. QueryContext and PrepareContext run
// every statement of a text but the last before they prepare the last, so text that osprey's
// lexer takes for one statement and DuckDB's parser for several would run the others unchecked.
// Prepare (without a context) refuses a text of several statements. So the guard prepares with
// Prepare, checks the statement's type, and only then lets the same text run.

var (
	// ErrNotQuery is the error of a statement that is not a query.
	ErrNotQuery = errors.New("only queries run here (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN): osprey reads the lake and changes nothing")
	// errNUL is the error of a statement holding a NUL byte: DuckDB's C interface would read
	// the text only up to it.
	errNUL = errors.New("the statement holds a NUL byte")
	// errUTF8 is the error of a statement that is not UTF-8, which DuckDB's strings must be.
	errUTF8 = errors.New("the statement is not valid UTF-8")
)

// checkText refuses text DuckDB would not read as it is.
func checkText(text string) error {
	if strings.IndexByte(text, 0) >= 0 {
		return errNUL
	}
	if !utf8.ValidString(text) {
		return errUTF8
	}
	return nil
}

// parseQuery asks DuckDB's parser whether text is exactly one query. json_serialize_sql parses
// its argument, a string value, without binding or running it, and serializes SELECT
// statements only: anything else is ErrNotQuery, a syntax error is DuckDB's message. It returns
// the parse tree in JSON.
func parseQuery(ctx context.Context, conn *sql.Conn, text string) (string, error) {
	if err := checkText(text); err != nil {
		return "", err
	}
	var js string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", text).Scan(&js); err != nil {
		return "", err
	}
	var res struct {
		Error      bool   `json:"error"`
		ErrorType  string `json:"error_type"`
		Message    string `json:"error_message"`
		Statements []any  `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		return "", fmt.Errorf("read statement: %w", err)
	}
	switch {
	case res.Error && res.ErrorType == "not implemented":
		return "", ErrNotQuery
	case res.Error && res.ErrorType == "parser":
		return "", &Error{Msg: "Parser Error: " + res.Message}
	case res.Error:
		return "", &Error{Msg: res.ErrorType + " error: " + res.Message}
	case len(res.Statements) != 1:
		return "", fmt.Errorf("%d statements given: run one at a time", len(res.Statements))
	}
	return js, nil
}

// withPrepared prepares text as one statement, checks that DuckDB types it as a query (a
// SELECT, or an EXPLAIN when explain is true), and calls f with the prepared statement.
// Preparing binds the statement (names resolve, files are listed) but runs nothing.
func withPrepared(conn *sql.Conn, text string, explain bool, f func(*duckdb.Stmt) error) error {
	if err := checkText(text); err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			panic(fmt.Sprintf("BUG: a DuckDB connection is a %T", dc))
		}
		// Prepare, not PrepareContext: it refuses a text of several statements.
		ds, err := c.Prepare(text)
		if err != nil {
			return err
		}
		st := ds.(*duckdb.Stmt)
		defer st.Close()
		typ, err := st.StatementType()
		if err != nil {
			return err
		}
		if typ != duckdb.STATEMENT_TYPE_SELECT && !(explain && typ == duckdb.STATEMENT_TYPE_EXPLAIN) {
			return ErrNotQuery
		}
		if f == nil {
			return nil
		}
		return f(st)
	})
}

// checkPrepared reports whether text is one statement of type SELECT (or EXPLAIN, when
// explain is true) to DuckDB.
func checkPrepared(conn *sql.Conn, text string, explain bool) error {
	return withPrepared(conn, text, explain, nil)
}

// duckEval evaluates a macro's timestamp argument with DuckDB, in a statement of its own that
// the guard accepted: SELECT CAST((expr) AS TIMESTAMPTZ), one SELECT of one column. An
// argument that names a column is not constant (ok = false): it stays in the query, which the
// guard checks whole.
func duckEval(ctx context.Context, conn *sql.Conn) evaluator {
	return func(expr string) (time.Time, bool, error) {
		if isReference(expr) && !strings.HasPrefix(strings.ToLower(expr), "current_") {
			return time.Time{}, false, nil // a column
		}
		var (
			t     time.Time
			valid bool
		)
		err := withPrepared(conn, "SELECT CAST(("+expr+") AS TIMESTAMPTZ)", false, func(st *duckdb.Stmt) error {
			if n, err := st.ColumnCount(); err != nil || n != 1 {
				return fmt.Errorf("is not one expression")
			}
			rows, err := st.QueryContext(ctx, nil)
			if err != nil {
				return err
			}
			defer rows.Close()
			v := make([]driver.Value, 1)
			if err := rows.Next(v); err != nil {
				if err == io.EOF {
					return errors.New("has no value")
				}
				return err
			}
			t, valid = v[0].(time.Time)
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrNotQuery) {
				return time.Time{}, false, errors.New("is not an expression")
			}
			msg := err.Error()
			if strings.Contains(msg, "Binder Error") && strings.Contains(msg, "not found") {
				return time.Time{}, false, nil // it names a column of the query
			}
			return time.Time{}, false, errors.New(firstLine(msg))
		}
		if !valid {
			return time.Time{}, false, errors.New("is NULL")
		}
		return t, true, nil
	}
}

// deferEval leaves every timestamp argument an expression of the query, evaluating nothing:
// the expansion the guard checks before any argument is evaluated.
func deferEval(string) (time.Time, bool, error) { return time.Time{}, false, nil }

// explainPrefix reports whether the text splitExplain cut before a statement is only EXPLAIN,
// ANALYZE and a parenthesized list of options (words and commas): nothing that could reach
// into the statement it explains.
func explainPrefix(prefix string) bool {
	toks := lex(prefix)
	depth := 0
	for _, t := range toks {
		switch {
		case t.kind == tokSpace, t.kind == tokIdent:
		case t.kind == tokPunct && prefix[t.start] == '(' && depth == 0:
			depth++
		case t.kind == tokPunct && prefix[t.start] == ')' && depth == 1:
			depth--
		case t.kind == tokPunct && prefix[t.start] == ',' && depth == 1:
		default:
			return false
		}
	}
	return depth == 0
}
