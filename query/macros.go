package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/units"
)

// Panther's time macros and their arguments before the optional alias and column.
var macros = map[string]int{
	"p_occurs_since":   1, // offset
	"p_occurs_between": 2, // start, end
	"p_occurs_around":  2, // timestamp, offset
	"p_occurs_after":   1, // timestamp
	"p_occurs_before":  1, // timestamp
}

// MacroError is a malformed macro call.
type MacroError struct {
	Macro string
	Pos   string // line and column of the call
	Msg   string
}

func (e *MacroError) Error() string { return fmt.Sprintf("%s at %s: %s", e.Macro, e.Pos, e.Msg) }

// evaluator turns a constant SQL expression into a timestamp; it reports ok=false for an
// expression that is not constant (it names a column).
type evaluator func(expr string) (t time.Time, ok bool, err error)

// ExpandMacros replaces Panther's macros in a statement with the predicates they stand for.
// Offsets count back from now; timestamp arguments that are constant expressions are evaluated
// to literals (so the expansion can prune partitions), others are kept as expressions. Macros
// inside strings and comments are left alone.
//
// A macro argument that is a parameter ($name) is replaced by the parameter's value first (a
// string is quoted): p_occurs_since($window) with window = '6 h'.
func expandMacros(stmt string, now time.Time, eval evaluator, params map[string]any) (string, error) {
	toks := lex(stmt)
	var out strings.Builder
	last := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tokIdent {
			continue
		}
		name := strings.ToLower(stmt[t.start:t.end])
		nargs, ok := macros[name]
		if !ok {
			continue
		}
		// A macro name must be followed by '(' (after optional space) and not be qualified.
		j := i + 1
		for j < len(toks) && (toks[j].kind == tokSpace || toks[j].kind == tokComment) {
			j++
		}
		if j >= len(toks) || stmt[toks[j].start:toks[j].end] != "(" {
			continue
		}
		if i > 0 && stmt[toks[i-1].start:toks[i-1].end] == "." {
			continue
		}
		args, end, err := macroArgs(stmt, toks, j)
		merr := func(format string, a ...any) error {
			return &MacroError{Macro: name, Pos: position(stmt, t.start), Msg: fmt.Sprintf(format, a...)}
		}
		if err != nil {
			return "", merr("%v", err)
		}
		for k, a := range args {
			if v, ok := paramArg(a, params); ok {
				args[k] = v
			}
		}
		if len(args) < nargs || len(args) > nargs+2 {
			return "", merr("takes %d to %d arguments, got %d", nargs, nargs+2, len(args))
		}
		col, err := column(args[nargs:])
		if err != nil {
			return "", merr("%v", err)
		}
		exp, err := expand(name, args[:nargs], col, now, eval)
		if err != nil {
			return "", merr("%v", err)
		}
		out.WriteString(stmt[last:t.start])
		out.WriteString(exp)
		last = toks[end].end
		i = end
	}
	out.WriteString(stmt[last:])
	return out.String(), nil
}

// paramArg returns the SQL text of a macro argument that is a parameter ($name).
func paramArg(arg string, params map[string]any) (string, bool) {
	if len(arg) < 2 || arg[0] != '$' || !isReference(arg[1:]) {
		return "", false
	}
	v, ok := params[arg[1:]]
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return quote(v), true
	case time.Time:
		return quote(v.UTC().Format(tsLayout)), true
	case int, int32, int64, float64:
		return fmt.Sprint(v), true
	}
	return "", false
}

// macroArgs splits the arguments of a call whose '(' is toks[open]; it returns them trimmed,
// their comments replaced by a space (a line comment at the end of an argument would otherwise
// swallow what the expansion writes after it), and the index of the closing ')'.
func macroArgs(s string, toks []token, open int) ([]string, int, error) {
	depth := 0
	var args []string
	var arg strings.Builder
	for k := open + 1; k < len(toks); k++ {
		t := toks[k]
		text := s[t.start:t.end]
		if t.kind == tokComment {
			text = " "
		}
		if t.kind == tokPunct {
			switch s[t.start] {
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				if depth == 0 {
					args = append(args, strings.TrimSpace(arg.String()))
					if len(args) == 1 && args[0] == "" {
						args = nil
					}
					return args, k, nil
				}
				depth--
			case ',':
				if depth == 0 {
					args = append(args, strings.TrimSpace(arg.String()))
					arg.Reset()
					continue
				}
			}
		}
		arg.WriteString(text)
	}
	return nil, 0, errors.New("missing closing parenthesis")
}

// column builds the column a macro tests from its optional alias and column arguments:
// (alias) -> alias.p_event_time, (alias, col) -> alias.col, (, col) -> col.
func column(args []string) (string, error) {
	alias, col := "", "p_event_time"
	if len(args) > 0 {
		alias = args[0]
	}
	if len(args) > 1 {
		if args[1] == "" {
			return "", errors.New("empty column argument")
		}
		col = args[1]
	}
	for _, part := range []string{alias, col} {
		if part != "" && !isReference(part) {
			return "", fmt.Errorf("%q is not a table alias or column name", part)
		}
	}
	if alias != "" {
		return alias + "." + col, nil
	}
	return col, nil
}

// isReference reports whether s is a plain or quoted identifier, possibly dotted.
func isReference(s string) bool {
	toks := lex(s)
	want := true // an identifier is expected next
	for _, t := range toks {
		switch {
		case want && (t.kind == tokIdent || t.kind == tokQuoted):
			want = false
		case !want && t.kind == tokPunct && s[t.start] == '.':
			want = true
		default:
			return false
		}
	}
	return !want
}

const tsLayout = "2006-01-02 15:04:05.999999Z07:00"

func tsLiteral(t time.Time) string { return "TIMESTAMPTZ '" + t.UTC().Format(tsLayout) + "'" }

// expand writes a macro's predicate.
func expand(name string, args []string, col string, now time.Time, eval evaluator) (string, error) {
	switch name {
	case "p_occurs_since":
		d, err := parseOffset(args[0])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s >= %s)", col, tsLiteral(now.Add(-d))), nil
	case "p_occurs_between":
		lo, err := timestampArg(args[0], eval)
		if err != nil {
			return "", err
		}
		hi, err := timestampArg(args[1], eval)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s BETWEEN %s AND %s)", col, lo, hi), nil
	case "p_occurs_around":
		d, err := parseOffset(args[1])
		if err != nil {
			return "", err
		}
		if t, ok, err := eval(args[0]); err != nil {
			return "", fmt.Errorf("timestamp %s: %v", args[0], err)
		} else if ok {
			return fmt.Sprintf("(%s BETWEEN %s AND %s)", col, tsLiteral(t.Add(-d)), tsLiteral(t.Add(d))), nil
		}
		ts := "CAST((" + args[0] + ") AS TIMESTAMPTZ)"
		iv := fmt.Sprintf("INTERVAL '%d microseconds'", d.Microseconds())
		return fmt.Sprintf("(%s BETWEEN %s - %s AND %s + %s)", col, ts, iv, ts, iv), nil
	case "p_occurs_after":
		t, err := timestampArg(args[0], eval)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s > %s)", col, t), nil
	case "p_occurs_before":
		t, err := timestampArg(args[0], eval)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s < %s)", col, t), nil
	}
	panic("BUG: unknown macro " + name)
}

// timestampArg returns a timestamp argument as a literal when it is constant, else as a cast.
func timestampArg(arg string, eval evaluator) (string, error) {
	if arg == "" {
		return "", errors.New("empty timestamp argument")
	}
	t, ok, err := eval(arg)
	if err != nil {
		return "", fmt.Errorf("timestamp %s: %v", arg, err)
	}
	if ok {
		return tsLiteral(t), nil
	}
	return "CAST((" + arg + ") AS TIMESTAMPTZ)", nil
}

// parseOffset reads an offset: a number of seconds, or a string such as '1 day', '6h' or
// '1h30m' (units.ParseDuration, the grammar of durations everywhere in osprey).
func parseOffset(arg string) (time.Duration, error) {
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		s := strings.ReplaceAll(arg[1:len(arg)-1], "''", "'")
		if n, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && n >= 0 && n < 1e12 {
			return time.Duration(n * float64(time.Second)), nil // '3600'
		}
		d, err := units.ParseDuration(s)
		if err != nil {
			_, why, _ := strings.Cut(err.Error(), ": ") // without units' "duration %q: "
			return 0, fmt.Errorf("offset %s: %s", arg, why)
		}
		return d, nil
	}
	n, err := strconv.ParseFloat(arg, 64)
	if err != nil || n < 0 || n >= 1e12 {
		return 0, fmt.Errorf("offset %s: want seconds or a string such as '1 day'", arg)
	}
	return time.Duration(n * float64(time.Second)), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}
