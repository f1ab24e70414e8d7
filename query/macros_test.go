package query

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeEval evaluates a quoted timestamp literal ('2026-01-01', '2026-01-01 12:00:00', RFC 3339) and
// reports any other expression (a bare identifier, a function call) as not constant.
func fakeEval(expr string) (time.Time, bool, error) {
	if len(expr) < 2 || expr[0] != '\'' || expr[len(expr)-1] != '\'' {
		return time.Time{}, false, nil
	}
	s := expr[1 : len(expr)-1]
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("cannot parse %s as a timestamp", expr)
}

var macroNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestExpandMacros(t *testing.T) {
	check := func(name, stmt, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, err := expandMacros(stmt, macroNow, fakeEval, nil)
			if err != nil {
				t.Fatalf("expandMacros(%q): %v", stmt, err)
			}
			if got != want {
				t.Errorf("expandMacros(%q)\n got %s\nwant %s", stmt, got, want)
			}
		})
	}
	const pre = "SELECT * FROM panther_logs.panther_audit WHERE "

	// Offsets count back from now.
	check("since 1 day", pre+"p_occurs_since('1 day')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("since 6 h", pre+"p_occurs_since('6 h')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 06:00:00Z')")
	check("since 30m", pre+"p_occurs_since('30m')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 11:30:00Z')")
	check("since 2 weeks", pre+"p_occurs_since('2 weeks')", pre+"(p_event_time >= TIMESTAMPTZ '2026-02-24 12:00:00Z')")
	check("since 1d", pre+"p_occurs_since('1d')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("since seconds", pre+"p_occurs_since(86400)", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("since 90 seconds", pre+"p_occurs_since('90 seconds')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 11:58:30Z')")
	check("since fractional", pre+"p_occurs_since('1.5 hours')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 10:30:00Z')")
	check("since unit case and space", pre+"p_occurs_since(' 3 MINS ')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 11:57:00Z')")
	check("since string of seconds", pre+"p_occurs_since('60')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-10 11:59:00Z')")

	// Alias and column arguments.
	check("column only", pre+"p_occurs_since('1h', , p_parse_time)", pre+"(p_parse_time >= TIMESTAMPTZ '2026-03-10 11:00:00Z')")
	check("alias", pre+"p_occurs_since('1 day', ct2)", pre+"(ct2.p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("alias and column", pre+"p_occurs_since('1 day', ct2, p_parse_time)", pre+"(ct2.p_parse_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("quoted alias", pre+`p_occurs_since('1 day', "My Alias")`, pre+`("My Alias".p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')`)

	// Timestamp macros.
	check("between", pre+"p_occurs_between('2026-01-01', '2026-01-02')",
		pre+"(p_event_time BETWEEN TIMESTAMPTZ '2026-01-01 00:00:00Z' AND TIMESTAMPTZ '2026-01-02 00:00:00Z')")
	check("between alias", pre+"p_occurs_between('2026-01-01', '2026-01-02', a)",
		pre+"(a.p_event_time BETWEEN TIMESTAMPTZ '2026-01-01 00:00:00Z' AND TIMESTAMPTZ '2026-01-02 00:00:00Z')")
	check("between column", pre+"p_occurs_between(p_parse_time, '2026-01-02 10:20:30.25')",
		pre+"(p_event_time BETWEEN CAST((p_parse_time) AS TIMESTAMPTZ) AND TIMESTAMPTZ '2026-01-02 10:20:30.25Z')")
	check("around", pre+"p_occurs_around('2026-01-01 12:00:00', '10m')",
		pre+"(p_event_time BETWEEN TIMESTAMPTZ '2026-01-01 11:50:00Z' AND TIMESTAMPTZ '2026-01-01 12:10:00Z')")
	check("around column", pre+"p_occurs_around(p_parse_time, '10m')",
		pre+"(p_event_time BETWEEN CAST((p_parse_time) AS TIMESTAMPTZ) - INTERVAL '600000000 microseconds' AND CAST((p_parse_time) AS TIMESTAMPTZ) + INTERVAL '600000000 microseconds')")
	check("after", pre+"p_occurs_after('2026-01-01 00:00:00')", pre+"(p_event_time > TIMESTAMPTZ '2026-01-01 00:00:00Z')")
	check("after RFC 3339 with offset", pre+"p_occurs_after('2026-01-01T05:00:00+05:00')", pre+"(p_event_time > TIMESTAMPTZ '2026-01-01 00:00:00Z')")
	check("before", pre+"p_occurs_before('2026-01-01', t, p_parse_time)", pre+"(t.p_parse_time < TIMESTAMPTZ '2026-01-01 00:00:00Z')")

	// Spelling of the call.
	check("case-insensitive", pre+"P_Occurs_Since('1 day') AND p_OCCURS_before('2026-03-10')",
		pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z') AND (p_event_time < TIMESTAMPTZ '2026-03-10 00:00:00Z')")
	check("space before parenthesis", pre+"p_occurs_since ('1 day')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("comment before parenthesis", pre+"p_occurs_since /* c */ ('1 day')", pre+"(p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")
	check("multi-line arguments", pre+"p_occurs_between(\n  '2026-01-01',\n  '2026-01-02'\n)",
		pre+"(p_event_time BETWEEN TIMESTAMPTZ '2026-01-01 00:00:00Z' AND TIMESTAMPTZ '2026-01-02 00:00:00Z')")
	check("several macros and text around", "SELECT 1 FROM t WHERE x = 'a' AND p_occurs_since(3600) OR p_occurs_after('2026-01-01', t) -- end",
		"SELECT 1 FROM t WHERE x = 'a' AND (p_event_time >= TIMESTAMPTZ '2026-03-10 11:00:00Z') OR (t.p_event_time > TIMESTAMPTZ '2026-01-01 00:00:00Z') -- end")

	// Nested parentheses, brackets and strings in arguments: only top-level commas separate.
	check("nested parentheses", pre+"p_occurs_between(coalesce(p_parse_time, (p_event_time)), '2026-01-02')",
		pre+"(p_event_time BETWEEN CAST((coalesce(p_parse_time, (p_event_time))) AS TIMESTAMPTZ) AND TIMESTAMPTZ '2026-01-02 00:00:00Z')")
	check("brackets", pre+"p_occurs_after(list_max([p_parse_time, p_event_time]))",
		pre+"(p_event_time > CAST((list_max([p_parse_time, p_event_time])) AS TIMESTAMPTZ))")
	check("comma and parenthesis in a string", pre+"p_occurs_after(concat(x, ',)'), a)",
		pre+"(a.p_event_time > CAST((concat(x, ',)')) AS TIMESTAMPTZ))")

	// Left alone.
	unchanged := []struct{ name, stmt string }{
		{"in a string", "SELECT 'p_occurs_since(1)' FROM t"},
		{"in an escape string", "SELECT E'p_occurs_since(1)' FROM t"},
		{"in a dollar string", "SELECT $$p_occurs_since(1)$$, $x$p_occurs_since(1)$x$ FROM t"},
		{"in a line comment", "SELECT 1 -- p_occurs_since(1)\nFROM t"},
		{"in a block comment", "SELECT 1 /* p_occurs_since(1) */ FROM t"},
		{"qualified", "SELECT x.p_occurs_since('1 day') FROM t"},
		{"not a call", "SELECT p_occurs_since FROM t WHERE p_occurs_since > 1"},
		{"not a call at the end", "SELECT a AS p_occurs_since"},
		{"quoted identifier", `SELECT "p_occurs_since"('1 day') FROM t`},
		{"longer name", "SELECT p_occurs_since_x('1 day'), my_p_occurs_since('1 day') FROM t"},
		{"no macro", "SELECT 1"},
		{"empty", ""},
	}
	for _, c := range unchanged {
		check(c.name, c.stmt, c.stmt)
	}
}

func TestExpandMacrosErrors(t *testing.T) {
	check := func(name, stmt, macro, pos, msg string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, err := expandMacros(stmt, macroNow, fakeEval, nil)
			if err == nil {
				t.Fatalf("expandMacros(%q) = %q, want an error", stmt, got)
			}
			s := err.Error()
			for _, want := range []string{macro, pos, msg} {
				if !strings.Contains(s, want) {
					t.Errorf("error %q does not contain %q", s, want)
				}
			}
			if strings.Contains(s, "\n") {
				t.Errorf("error %q has several lines", s)
			}
			var me *MacroError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *MacroError", err)
			}
			if me.Macro != macro || me.Pos != pos {
				t.Errorf("MacroError{Macro: %q, Pos: %q}, want {%q, %q}", me.Macro, me.Pos, macro, pos)
			}
		})
	}
	check("unknown unit", "SELECT * FROM t WHERE p_occurs_since('1 fortnight')",
		"p_occurs_since", "line 1, column 23", `unknown unit "fortnight"`)
	check("unknown unit on a later line", "SELECT *\nFROM t\nWHERE x AND p_occurs_since('1 fortnight')",
		"p_occurs_since", "line 3, column 13", "unknown unit")
	check("no number", "SELECT * FROM t WHERE p_occurs_since('day')", "p_occurs_since", "line 1, column 23", "offset 'day'")
	check("bare word offset", "SELECT * FROM t WHERE p_occurs_since(yesterday)", "p_occurs_since", "line 1, column 23", "want seconds")
	check("negative offset", "SELECT * FROM t WHERE p_occurs_since('-1 day')", "p_occurs_since", "line 1, column 23", "offset")
	check("around unknown unit", "SELECT 1\n  WHERE p_occurs_around('2026-01-01', '5 parsecs')", "p_occurs_around", "line 2, column 9", "unknown unit")
	check("missing closing parenthesis", "SELECT * FROM t WHERE p_occurs_since('1 day'",
		"p_occurs_since", "line 1, column 23", "missing closing parenthesis")
	check("missing closing parenthesis of a nested call", "SELECT * FROM t WHERE\n p_occurs_after(coalesce(a, b)",
		"p_occurs_after", "line 2, column 2", "missing closing parenthesis")
	check("no arguments", "SELECT * FROM t WHERE p_occurs_since()", "p_occurs_since", "line 1, column 23", "takes 1 to 3 arguments, got 0")
	check("too few arguments", "SELECT * FROM t WHERE p_occurs_between('2026-01-01')",
		"p_occurs_between", "line 1, column 23", "takes 2 to 4 arguments, got 1")
	check("too many arguments", "SELECT * FROM t WHERE p_occurs_since('1d', a, p_event_time, x)",
		"p_occurs_since", "line 1, column 23", "takes 1 to 3 arguments, got 4")
	check("too many arguments, around", "SELECT * FROM t WHERE p_occurs_around('2026-01-01', '1m', a, b, c)",
		"p_occurs_around", "line 1, column 23", "got 5")
	check("empty column argument", "SELECT * FROM t WHERE p_occurs_since('1d', a, )",
		"p_occurs_since", "line 1, column 23", "empty column argument")
	check("empty column argument without alias", "SELECT * FROM t WHERE p_occurs_before('2026-01-01', , )",
		"p_occurs_before", "line 1, column 23", "empty column argument")
	check("alias is an expression", "SELECT * FROM t WHERE p_occurs_since('1d', 1 + 2)",
		"p_occurs_since", "line 1, column 23", "is not a table alias or column name")
	check("column is a string", "SELECT * FROM t WHERE p_occurs_since('1d', a, 'p_parse_time')",
		"p_occurs_since", "line 1, column 23", "is not a table alias or column name")
	check("empty timestamp argument", "SELECT * FROM t WHERE p_occurs_between(, '2026-01-01')",
		"p_occurs_between", "line 1, column 23", "empty timestamp argument")
	check("timestamp that does not evaluate", "SELECT * FROM t WHERE p_occurs_after('yesterday-ish')",
		"p_occurs_after", "line 1, column 23", "cannot parse")
	check("upper-case name is reported in lower case", "SELECT * FROM t WHERE P_OCCURS_SINCE('1 lightyear')",
		"p_occurs_since", "line 1, column 23", "unknown unit")
	check("second macro is the bad one", "SELECT * FROM t WHERE p_occurs_since('1d') AND\n\tp_occurs_before()",
		"p_occurs_before", "line 2, column 2", "got 0")
}

func TestParseOffset(t *testing.T) {
	cases := []struct {
		arg  string
		want time.Duration
	}{
		{"0", 0},
		{"3600", time.Hour},
		{"1.5", 1500 * time.Millisecond},
		{"'10 s'", 10 * time.Second},
		{"'10 sec'", 10 * time.Second},
		{"'1 second'", time.Second},
		{"'2 min'", 2 * time.Minute},
		{"'1 minute'", time.Minute},
		{"'3 hr'", 3 * time.Hour},
		{"'3 hrs'", 3 * time.Hour},
		{"'1 hour'", time.Hour},
		{"'1 day'", 24 * time.Hour},
		{"'7 days'", 7 * 24 * time.Hour},
		{"'1w'", 7 * 24 * time.Hour},
		{"'1 wk'", 7 * 24 * time.Hour},
		{"'1 week'", 7 * 24 * time.Hour},
		{"'0.5d'", 12 * time.Hour},
	}
	for _, c := range cases {
		got, err := parseOffset(c.arg)
		if err != nil || got != c.want {
			t.Errorf("parseOffset(%s) = %v, %v; want %v", c.arg, got, err, c.want)
		}
	}
	for _, arg := range []string{"", "''", "'1 fortnight'", "'d'", "x", "'1 day", "'-1 day'", "'1 2 days'"} {
		if got, err := parseOffset(arg); err == nil {
			t.Errorf("parseOffset(%s) = %v, want an error", arg, got)
		}
	}
}

func TestColumnAndReference(t *testing.T) {
	cases := []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{nil, "p_event_time", false},
		{[]string{""}, "p_event_time", false},
		{[]string{"a"}, "a.p_event_time", false},
		{[]string{"a", "p_parse_time"}, "a.p_parse_time", false},
		{[]string{"", "p_parse_time"}, "p_parse_time", false},
		{[]string{`"A b"`, `"c d"`}, `"A b"."c d"`, false},
		{[]string{"s.t"}, "s.t.p_event_time", false},
		{[]string{"a", ""}, "", true},
		{[]string{"a.", ""}, "", true},
		{[]string{"a b"}, "", true},
		{[]string{"a", "f(x)"}, "", true},
	}
	for _, c := range cases {
		got, err := column(c.args)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("column(%q) = %q, %v; want %q (error: %v)", c.args, got, err, c.want, c.wantErr)
		}
	}
	for s, want := range map[string]bool{
		"a": true, "a.b": true, `"x y".z`: true, "a.b.c": true, "": false, "a.": false, ".a": false,
		"a b": false, "'a'": false, "f(x)": false, "1": false, "a..b": false,
	} {
		if got := isReference(s); got != want {
			t.Errorf("isReference(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestPosition(t *testing.T) {
	s := "ab\ncd\n\nefg"
	for off, want := range map[int]string{
		0: "line 1, column 1", 1: "line 1, column 2", 3: "line 2, column 1", 4: "line 2, column 2",
		6: "line 3, column 1", 7: "line 4, column 1", 9: "line 4, column 3",
	} {
		if got := position(s, off); got != want {
			t.Errorf("position(%q, %d) = %q, want %q", s, off, got, want)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"  SELECT 1 ;\n\n SELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT ';'; SELECT 2", []string{"SELECT ';'", "SELECT 2"}},
		{"SELECT 'it''s; fine'; SELECT 2", []string{"SELECT 'it''s; fine'", "SELECT 2"}},
		{`SELECT "a;b" FROM t; SELECT "x""; y"`, []string{`SELECT "a;b" FROM t`, `SELECT "x""; y"`}},
		{"SELECT 1 -- not; a split\n; SELECT 2", []string{"SELECT 1 -- not; a split", "SELECT 2"}},
		{"SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
		{"SELECT $$a;b$$; SELECT $tag$x;$y$ z$tag$", []string{"SELECT $$a;b$$", "SELECT $tag$x;$y$ z$tag$"}},
		{"SELECT $1; SELECT 2", []string{"SELECT $1", "SELECT 2"}},
		{"SELECT 1;;; ;\n-- only a comment\n; /* c */ ;", []string{"SELECT 1"}},
		{"SELECT 1;\n-- trailing comment", []string{"SELECT 1"}},
		{"-- leading comment\nSELECT 1", []string{"-- leading comment\nSELECT 1"}},
		{"SELECT 'unterminated; string", []string{"SELECT 'unterminated; string"}},
		{"SELECT 1 /* unterminated; comment", []string{"SELECT 1 /* unterminated; comment"}},
		{"", nil},
		{" ; ; ", nil},
		{"-- c", nil},
	}
	for _, c := range cases {
		if got := SplitStatements(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitStatements(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestSplitStatementsEscapeString(t *testing.T) {
	in := `SELECT E'it\'s; x'; SELECT 2`
	want := []string{`SELECT E'it\'s; x'`, "SELECT 2"}
	if got := SplitStatements(in); !reflect.DeepEqual(got, want) {
		t.Errorf("SplitStatements(%q)\n got %q\nwant %q", in, got, want)
	}
	// The semicolon is inside the unterminated string: the statement goes on.
	if in := `SELECT E'it\'s;`; Complete(in) {
		t.Errorf("Complete(%q) = true, want false (the string is not terminated)", in)
	}
}

func TestSplitStatementsNestedComment(t *testing.T) {
	in := "SELECT 1 /* a /* b */ ; */; SELECT 2"
	want := []string{"SELECT 1 /* a /* b */ ; */", "SELECT 2"}
	if got := SplitStatements(in); !reflect.DeepEqual(got, want) {
		t.Errorf("SplitStatements(%q)\n got %q\nwant %q", in, got, want)
	}
}

func TestComplete(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"SELECT 1;", true},
		{"SELECT 1 ;  \n", true},
		{"SELECT 1; -- done", true},
		{"SELECT 1;\n/* note */\n", true},
		{"SELECT 1", false},
		{"SELECT 1; SELECT 2", false},
		{"SELECT ';'", false},
		{"SELECT 'a;", false},
		{"SELECT 1 -- ;", false},
		{"SELECT 1 /* ; */", false},
		{"SELECT 1 /* ;", false},
		{"SELECT $$;$$", false},
		{"SELECT $t$ ; $t$", false},
		{`SELECT ";"`, false},
		{"SELECT 1 +", false},
		{"", false},
		{"   ", false},
		{";", true},
	}
	for _, c := range cases {
		if got := Complete(c.in); got != c.want {
			t.Errorf("Complete(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestDuckEval runs the evaluator Query uses (DuckDB): constant expressions become literals that
// can prune partitions, column references stay expressions.
func TestDuckEval(t *testing.T) {
	l := ingestAudit(t, t.TempDir(), []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	db := openDB(t, l, Options{Now: func() time.Time { return macroNow }})
	ctx := context.Background()
	check := func(stmt, want string) {
		t.Helper()
		got, _, err := db.Explain(ctx, stmt)
		if err != nil {
			t.Fatalf("Explain(%q): %v", stmt, err)
		}
		// Only the macro expansion is checked here: cut what narrowing may have done to FROM.
		if i := strings.Index(got, " WHERE "); i >= 0 {
			got = got[i:]
		}
		if got != want {
			t.Errorf("Explain(%q)\n got %s\nwant %s", stmt, got, want)
		}
	}
	const q = "SELECT count(*) FROM panther_logs.panther_audit"
	check(q+" WHERE p_occurs_between('2026-03-01', TIMESTAMPTZ '2026-03-01 05:00:00+05' + INTERVAL 1 DAY)",
		" WHERE (p_event_time BETWEEN TIMESTAMPTZ '2026-03-01 00:00:00Z' AND TIMESTAMPTZ '2026-03-02 00:00:00Z')")
	check(q+" WHERE p_occurs_after(p_parse_time)", " WHERE (p_event_time > CAST((p_parse_time) AS TIMESTAMPTZ))")
	check(q+" WHERE p_occurs_after(p_parse_time - INTERVAL 1 HOUR)",
		" WHERE (p_event_time > CAST((p_parse_time - INTERVAL 1 HOUR) AS TIMESTAMPTZ))")
	check(q+" a WHERE p_occurs_before(a.p_parse_time, a)", " WHERE (a.p_event_time < CAST((a.p_parse_time) AS TIMESTAMPTZ))")
	check(q+" WHERE p_occurs_since('1 day')", " WHERE (p_event_time >= TIMESTAMPTZ '2026-03-09 12:00:00Z')")

	// A timestamp DuckDB cannot read is a one-line error naming the macro.
	_, _, err := db.Explain(ctx, q+" WHERE p_occurs_after('not a time')")
	if err == nil || !strings.Contains(err.Error(), "p_occurs_after") || !strings.Contains(err.Error(), "line 1, column") || strings.Contains(err.Error(), "\n") {
		t.Errorf("p_occurs_after('not a time'): error %v, want a one-line error naming the macro and its position", err)
	}
	_, _, err = db.Explain(ctx, q+" WHERE p_occurs_after(CAST(NULL AS TIMESTAMPTZ))")
	if err == nil || !strings.Contains(err.Error(), "is NULL") {
		t.Errorf("p_occurs_after(CAST(NULL AS TIMESTAMPTZ)): error %v, want one saying it is NULL", err)
	}

	// The macros run: the expanded predicates are valid SQL.
	for _, stmt := range []string{
		q + " WHERE p_occurs_around(p_parse_time, '10m')",
		q + " a WHERE p_occurs_since('100 weeks', a, p_parse_time)",
		q + " WHERE p_occurs_between(p_parse_time - INTERVAL 1 DAY, p_parse_time)",
	} {
		rows, err := db.Query(ctx, stmt)
		if err != nil {
			t.Errorf("Query(%q): %v", stmt, err)
			continue
		}
		rows.Close()
	}
}
