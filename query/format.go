package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"
)

// Formats are the output formats of query results.
var Formats = []string{"table", "csv", "json", "jsonl", "markdown", "line", "parquet"}

// ValidFormat reports whether f is one of Formats.
func ValidFormat(f string) bool { return slices.Contains(Formats, f) }

// WriteOptions configure Write.
type WriteOptions struct {
	Format string
	// MaxRows bounds the rows a table shows (the count of the rest is printed); 0 means 1000.
	MaxRows int
	// MaxWidth bounds a table cell's width; longer values are cut with "…". 0 means 60.
	MaxWidth int
	// TermWidth, if set, narrows a table's widest columns until a line fits in it.
	TermWidth int
	// Elapsed, if set, returns the time the statement took, printed after the row count.
	Elapsed func() time.Duration
}

// Write prints rows in a format and returns the number of rows.
func Write(w io.Writer, rows *Rows, opts WriteOptions) (int64, error) {
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	n, err := write(bw, rows, cols, opts)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

func write(bw *bufio.Writer, rows *Rows, cols []string, opts WriteOptions) (int64, error) {
	next := func() ([]any, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = Plain(v)
		}
		return vals, nil
	}
	switch opts.Format {
	case "parquet":
		return writeParquet(bw, rows, cols)
	case "", "table":
		return writeTable(bw, cols, next, opts)
	case "markdown":
		return writeMarkdown(bw, cols, next)
	case "line":
		return writeLines(bw, cols, next)
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(cols); err != nil {
			return 0, err
		}
		var n int64
		rec := make([]string, len(cols))
		for {
			vals, err := next()
			if err != nil || vals == nil {
				cw.Flush()
				return n, firstErr(err, cw.Error())
			}
			for i, v := range vals {
				rec[i] = text(v)
			}
			if err := cw.Write(rec); err != nil {
				return n, err
			}
			n++
		}
	case "json", "jsonl":
		var n int64
		if opts.Format == "json" {
			bw.WriteString("[")
		}
		for {
			vals, err := next()
			if err != nil || vals == nil {
				if opts.Format == "json" {
					if n > 0 {
						bw.WriteString("\n")
					}
					bw.WriteString("]\n")
				}
				return n, err
			}
			obj, err := orderedObject(cols, vals)
			if err != nil {
				return n, err
			}
			if opts.Format == "json" {
				if n > 0 {
					bw.WriteString(",")
				}
				bw.WriteString("\n")
			}
			bw.Write(obj)
			if opts.Format == "jsonl" {
				bw.WriteString("\n")
			}
			n++
		}
	}
	return 0, fmt.Errorf("unknown format %q (want %s)", opts.Format, strings.Join(Formats, ", "))
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// orderedObject writes a JSON object with the columns in result order.
func orderedObject(cols []string, vals []any) ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(vals[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// Plain converts a value scanned from DuckDB to plain Go values that encode to JSON naturally:
// timestamps become RFC 3339 strings, maps and structs map[string]any, big numbers strings.
func Plain(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return fmt.Sprintf("\\x%x", v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = Plain(x)
		}
		return out
	case duckdb.OrderedMap:
		return Plain(&v)
	case *duckdb.OrderedMap:
		keys, vals := v.Keys(), v.Values()
		out := make(map[string]any, len(keys))
		for i, k := range keys {
			out[fmt.Sprint(Plain(k))] = Plain(vals[i])
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(Plain(k))] = Plain(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = Plain(x)
		}
		return out
	case *big.Int:
		return v.String()
	case duckdb.Interval:
		return fmt.Sprintf("%d months %d days %d us", v.Months, v.Days, v.Micros)
	case duckdb.UUID:
		return v.String()
	case duckdb.Decimal:
		return v.Float64()
	}
	return v
}

// text renders a plain value for a table cell or CSV field: nested values as JSON.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

func writeTable(w *bufio.Writer, cols []string, next func() ([]any, error), opts WriteOptions) (int64, error) {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 1000
	}
	if opts.MaxWidth <= 0 {
		opts.MaxWidth = 60
	}
	var cells [][]string
	var n int64
	for {
		vals, err := next()
		if err != nil {
			return n, err
		}
		if vals == nil {
			break
		}
		n++
		if len(cells) < opts.MaxRows {
			row := make([]string, len(vals))
			for i, v := range vals {
				if v == nil {
					row[i] = "NULL"
				} else {
					row[i] = cut(strings.ReplaceAll(text(v), "\n", "\\n"), opts.MaxWidth)
				}
			}
			cells = append(cells, row)
		}
	}
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c)
	}
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	fitWidths(widths, opts.TermWidth)
	for _, row := range cells {
		for i, c := range row {
			row[i] = cut(c, widths[i])
		}
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = cut(c, widths[i])
	}
	line := func(fill string, l, m, r string) {
		w.WriteString(l)
		for i, wd := range widths {
			if i > 0 {
				w.WriteString(m)
			}
			w.WriteString(strings.Repeat(fill, wd+2))
		}
		w.WriteString(r + "\n")
	}
	row := func(vals []string) {
		w.WriteString("│")
		for i, v := range vals {
			if i > 0 {
				w.WriteString("│")
			}
			w.WriteString(" " + v + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(v)) + " ")
		}
		w.WriteString("│\n")
	}
	line("─", "┌", "┬", "┐")
	row(header)
	line("─", "├", "┼", "┤")
	for _, r := range cells {
		row(r)
	}
	line("─", "└", "┴", "┘")
	switch {
	case n > int64(len(cells)):
		fmt.Fprintf(w, "%d rows (%d shown)", n, len(cells))
	case n == 1:
		fmt.Fprint(w, "1 row")
	default:
		fmt.Fprintf(w, "%d rows", n)
	}
	if opts.Elapsed != nil {
		fmt.Fprintf(w, " in %s", opts.Elapsed().Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	return n, nil
}

// fitWidths narrows the widest columns until a table line (borders and padding included) fits
// in width; a column keeps at least 3 characters.
func fitWidths(widths []int, width int) {
	if width <= 0 {
		return
	}
	total := func() int {
		t := 1
		for _, w := range widths {
			t += w + 3
		}
		return t
	}
	for total() > width {
		widest := 0
		for i, w := range widths {
			if w > widths[widest] {
				widest = i
			}
		}
		if widths[widest] <= 3 {
			return
		}
		widths[widest]--
	}
}

// writeMarkdown writes a GitHub-flavoured Markdown table.
func writeMarkdown(w *bufio.Writer, cols []string, next func() ([]any, error)) (int64, error) {
	esc := func(s string) string {
		return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
	}
	w.WriteString("|")
	for _, c := range cols {
		w.WriteString(" " + esc(c) + " |")
	}
	w.WriteString("\n|")
	for range cols {
		w.WriteString("---|")
	}
	w.WriteString("\n")
	var n int64
	for {
		vals, err := next()
		if err != nil || vals == nil {
			return n, err
		}
		w.WriteString("|")
		for _, v := range vals {
			s := "NULL"
			if v != nil {
				s = text(v)
			}
			w.WriteString(" " + esc(s) + " |")
		}
		w.WriteString("\n")
		n++
	}
}

// writeLines writes each row as "column = value" lines, rows separated by a blank line.
func writeLines(w *bufio.Writer, cols []string, next func() ([]any, error)) (int64, error) {
	width := 0
	for _, c := range cols {
		width = max(width, utf8.RuneCountInString(c))
	}
	var n int64
	for {
		vals, err := next()
		if err != nil || vals == nil {
			return n, err
		}
		if n > 0 {
			w.WriteString("\n")
		}
		for i, v := range vals {
			s := "NULL"
			if v != nil {
				s = text(v)
			}
			fmt.Fprintf(w, "%*s = %s\n", width, cols[i], s)
		}
		n++
	}
}

func cut(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// SortedKeys returns a map's keys in order (for stable output in tests and tools).
func SortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
