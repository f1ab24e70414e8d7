package shell

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	prompt "github.com/elk-language/go-prompt"
	pstrings "github.com/elk-language/go-prompt/strings"
	"golang.org/x/term"

	"github.com/ospreyhq/osprey/query"
)

// Run reads and runs statements from the terminal until Ctrl-D, .quit or SIGTERM. Stdin must be a
// terminal (go-prompt panics without one). The terminal's state is saved first and restored when
// Run returns or panics.
func (s *Shell) Run(ctx context.Context) error {
	fd := int(os.Stdin.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return fmt.Errorf("interactive shell needs a terminal: %w", err)
	}
	defer func() {
		term.Restore(fd, state)
		fmt.Fprint(os.Stdout, "\x1b[?25h") // show the cursor
	}()
	// A SIGINT reaches the process while a statement runs (the terminal is then in cooked mode):
	// the statement is cancelled, not the shell, so the shell does not use the caller's context,
	// which the same signal may cancel.
	ctx = context.WithoutCancel(ctx)
	// The views and the catalog (for completion) load while the user types; the first statement
	// waits for the views.
	go s.columns(ctx, true)

	fmt.Fprintln(s.opts.Out, "osprey SQL shell: statements end with ;  .help for commands, Ctrl-D to leave")
	p := prompt.New(
		func(in string) {
			if strings.TrimSpace(in) == "" {
				return
			}
			appendHistory(s.opts.HistoryFile, in)
			s.Exec(ctx, in)
		},
		prompt.WithPrefixCallback(func() string { return "osprey> " }),
		prompt.WithHistory(History(s.opts.HistoryFile)),
		prompt.WithCompleter(func(d prompt.Document) ([]prompt.Suggest, pstrings.RuneNumber, pstrings.RuneNumber) {
			return s.complete(ctx, d)
		}),
		prompt.WithCompletionWordSeparator(wordSeparators),
		prompt.WithLexer(&lexer{}),
		prompt.WithExecuteOnEnterCallback(func(p *prompt.Prompt, indent int) (int, bool) {
			text := p.Buffer().Text()
			t := strings.TrimSpace(text)
			return 0, t == "" || strings.HasPrefix(t, ".") || query.Complete(text)
		}),
		prompt.WithExitChecker(func(in string, breakline bool) bool { return breakline && s.quit }),
		prompt.WithInterruptCallback(func(*prompt.Prompt, os.Signal) {}),
		prompt.WithMaxSuggestion(8),
	)
	p.Run()
	return s.Close()
}

const wordSeparators = " \t\n(),;=<>+-*/|'\"[]"

// complete suggests what may follow the word before the cursor: keywords, schemas, tables
// (schema.table), columns of the tables the statement names (struct fields as col.field),
// Panther's macros and the project's functions.
func (s *Shell) complete(ctx context.Context, d prompt.Document) ([]prompt.Suggest, pstrings.RuneNumber, pstrings.RuneNumber) {
	end := d.CurrentRuneIndex()
	word := d.GetWordBeforeCursorUntilSeparator(wordSeparators)
	start := end - pstrings.RuneNumber(utf8.RuneCountInString(word))
	if word == "" {
		return nil, start, end
	}
	s.catMu.Lock()
	catalog := s.catalog
	s.catMu.Unlock()
	if catalog == nil { // still loading: wait for it once
		catalog, _ = s.columns(ctx, false)
	}
	return Suggestions(catalog, d.Text, word), start, end
}

// Suggestions returns the completions of word in the statement text, given the catalog.
func Suggestions(catalog []query.Column, text, word string) []prompt.Suggest {
	lw := strings.ToLower(word)
	var out []prompt.Suggest
	seen := map[string]bool{}
	add := func(text, desc string) {
		if strings.HasPrefix(strings.ToLower(text), lw) && !strings.EqualFold(text, word) && !seen[text] {
			seen[text] = true
			out = append(out, prompt.Suggest{Text: text, Description: desc})
		}
	}
	if strings.HasPrefix(word, ".") && strings.TrimSpace(text) == word {
		for _, c := range []string{".tables", ".schema", ".mode", ".timer", ".output", ".read", ".functions", ".help", ".quit"} {
			add(c, "")
		}
		return out
	}
	// Tables the statement names: their columns come first.
	lt := strings.ToLower(text)
	named := map[string]bool{}
	for _, c := range catalog {
		if strings.Contains(lt, strings.ToLower(c.Schema+"."+c.Table)) {
			named[c.Schema+"."+c.Table] = true
		}
	}
	for _, c := range catalog {
		if named[c.Schema+"."+c.Table] {
			add(c.Name, c.Type)
		}
	}
	for _, m := range macros {
		add(m.name, m.doc)
	}
	for _, f := range query.Functions {
		add(f.Name, f.Signature)
	}
	schemas := map[string]bool{}
	for _, c := range catalog {
		if !schemas[c.Schema] {
			schemas[c.Schema] = true
			add(c.Schema, "schema")
		}
		add(c.Schema+"."+c.Table, "table")
	}
	for _, k := range keywords {
		add(k, "")
	}
	if len(named) == 0 { // no table yet: columns of every table
		for _, c := range catalog {
			add(c.Name, c.Type+" ("+c.Table+")")
		}
	}
	return out
}

var macros = []struct{ name, doc string }{
	{"p_occurs_since", "p_occurs_since(offset [, alias [, column]])"},
	{"p_occurs_between", "p_occurs_between(start, end [, alias [, column]])"},
	{"p_occurs_around", "p_occurs_around(timestamp, offset [, alias [, column]])"},
	{"p_occurs_after", "p_occurs_after(timestamp [, alias [, column]])"},
	{"p_occurs_before", "p_occurs_before(timestamp [, alias [, column]])"},
}

var keywords = sortedUnique(strings.Fields(`SELECT FROM WHERE GROUP BY ORDER HAVING LIMIT OFFSET JOIN LEFT RIGHT
	INNER OUTER FULL CROSS ON USING AS AND OR NOT IN IS NULL LIKE ILIKE BETWEEN CASE WHEN THEN ELSE END
	DISTINCT UNION ALL EXCEPT INTERSECT WITH ASC DESC QUALIFY WINDOW OVER PARTITION EXISTS CAST TRY_CAST
	INTERVAL TIMESTAMP TIMESTAMPTZ DATE VARCHAR BIGINT DOUBLE BOOLEAN TRUE FALSE DESCRIBE SHOW SUMMARIZE
	EXPLAIN ANALYZE VALUES unnest count sum avg min max list string_agg regexp_matches regexp_extract
	lower upper length strftime date_trunc current_timestamp current_date now json_extract
	json_extract_string list_contains array_contains coalesce approx_count_distinct`))

// lexer colours SQL as it is typed: keywords, strings, numbers, comments, macros.
type lexer struct {
	text string
	toks []query.Token
	i    int
}

var _ prompt.Lexer = (*lexer)(nil)

var keywordSet = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range keywords {
		if strings.ToUpper(k) == k {
			m[k] = true
		}
	}
	return m
}()

func (l *lexer) Init(text string) {
	l.text, l.toks, l.i = text, query.Tokens(text), 0
}

func (l *lexer) Next() (prompt.Token, bool) {
	if l.i >= len(l.toks) {
		return nil, false
	}
	t := l.toks[l.i]
	l.i++
	color := prompt.DefaultColor
	switch t.Kind {
	case query.TokenComment:
		color = prompt.DarkGray
	case query.TokenString:
		color = prompt.Green
	case query.TokenNumber:
		color = prompt.Purple
	case query.TokenWord:
		w := l.text[t.Start:t.End]
		switch {
		case keywordSet[strings.ToUpper(w)]:
			color = prompt.Blue
		case strings.HasPrefix(strings.ToLower(w), "p_occurs_"):
			color = prompt.Cyan
		}
	}
	return prompt.NewSimpleToken(pstrings.ByteNumber(t.Start), pstrings.ByteNumber(t.End-1), prompt.SimpleTokenWithColor(color)), true
}
