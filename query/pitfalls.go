package query

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Pitfall is a construct DuckDB accepts in a statement that almost surely does not mean what
// it says.
type Pitfall struct {
	Offset int    // byte offset in the statement; -1 when unknown (the statement has macros)
	Msg    string // what is wrong, with the line of the statement where it is when known
}

// Pitfalls finds the pitfalls of a statement. One so far: DuckDB's JSON arrows bind more
// loosely than AND, OR and IS NULL, so `a = 'x' AND col->>'k' = 'v'` reads as
// `((a = 'x') AND col)->>'k' = 'v'`, which fails at run time or matches nothing, and
// `col->'k' IS NULL` as `col->('k' IS NULL)`. An arrow with a condition on either side is
// reported.
func (b *BatchDB) Pitfalls(ctx context.Context, stmt string, now time.Time) ([]Pitfall, error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, err
	}
	tree, err := b.syntaxTree(ctx, run)
	if err != nil {
		return nil, err
	}
	var out []Pitfall
	// Lambdas that are arguments of a function (list_filter(l, x -> ...)) are marked (the tree
	// is this call's own).
	walk(tree, func(m map[string]any) {
		if m["class"] != "FUNCTION" {
			return
		}
		children, _ := m["children"].([]any)
		for _, c := range children {
			if cm, ok := c.(map[string]any); ok && cm["class"] == "LAMBDA" {
				cm["osprey_argument"] = true
			}
		}
	})
	walk(tree, func(m map[string]any) {
		// col->>'k' is a function; col->'k' parses as a lambda (DuckDB's old lambda syntax),
		// which DuckDB reads as json_extract where no function takes it as an argument.
		name, _ := m["function_name"].(string)
		switch {
		case m["class"] == "FUNCTION" && m["is_operator"] == true && (name == "->>" || name == "->"):
			children, _ := m["children"].([]any)
			if len(children) != 2 || !isCondition(children[0]) && !isCondition(children[1]) {
				return
			}
		case m["class"] == "LAMBDA" && m["osprey_argument"] != true:
			name = "->"
			if !isCondition(m["lhs"]) && !isCondition(m["expr"]) {
				return
			}
		default:
			return
		}
		off := -1
		if run == stmt {
			if n, ok := m["query_location"].(json.Number); ok {
				if v, err := n.Int64(); err == nil && v >= 0 && int(v) < len(stmt) {
					off = int(v)
				}
			}
		}
		msg := fmt.Sprintf("%s binds more loosely than AND, OR and comparisons: here it applies to a condition "+
			"(`a AND col%s'key' = 'v'` reads as `(a AND col)%s'key' = 'v'`); put the extraction in parentheses: (col%s'key')",
			name, name, name, name)
		if off >= 0 {
			start := strings.LastIndexByte(stmt[:off], '\n') + 1
			end := strings.IndexByte(stmt[off:], '\n')
			if end < 0 {
				end = len(stmt) - off
			}
			msg += fmt.Sprintf(", in: %s", strings.TrimSpace(stmt[start:off+end]))
		}
		out = append(out, Pitfall{Offset: off, Msg: msg})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset }) // walk's order is not fixed
	return out, nil
}

// isCondition reports whether a syntax-tree node is a condition: a conjunction, a comparison,
// NOT, IN, IS NULL or LIKE.
func isCondition(v any) bool {
	m, _ := v.(map[string]any)
	switch m["class"] {
	case "CONJUNCTION", "COMPARISON", "OPERATOR":
		return true
	case "FUNCTION":
		name, _ := m["function_name"].(string)
		return m["is_operator"] == true && strings.Contains(name, "~~")
	}
	return false
}
