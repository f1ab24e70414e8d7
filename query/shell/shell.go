// Package shell is the interactive SQL shell of `osprey sql`: go-prompt line editing with
// multi-line statements, history kept across sessions, completion of keywords, schemas, tables,
// columns (struct fields too), Panther's macros and the project's functions, highlighting, and
// the dot commands of the DuckDB and SQLite shells. Ctrl-C cancels the running statement and
// keeps the shell; Ctrl-D on an empty line leaves it. The terminal is restored when it ends,
// by a return or a panic.
package shell

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ospreyhq/osprey/query"
)

// Options configure a Shell.
type Options struct {
	// Out receives results, Err messages.
	Out, Err io.Writer
	// Params are the values of $name parameters.
	Params map[string]any
	// HistoryFile keeps the statements entered, one JSON string a line; empty: no history.
	HistoryFile string
	// Timeout bounds each statement; 0: no limit.
	Timeout time.Duration
	// Width returns the terminal's width, to fit tables in; nil or 0: no limit.
	Width func() int
}

// Shell runs statements and dot commands typed by a user.
type Shell struct {
	db   *query.DB
	opts Options

	mode   string
	timer  bool
	output *os.File // .output FILE; nil: Out
	quit   bool

	catMu    sync.Mutex // the completer reads the catalog while it loads in the background
	catalog  []query.Column
	catStale bool
}

// New returns a shell over a session.
func New(db *query.DB, opts Options) *Shell {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Err == nil {
		opts.Err = os.Stderr
	}
	return &Shell{db: db, opts: opts, mode: "table", timer: true, catStale: true}
}

const help = `Statements end with ; and may span lines. Ctrl-C cancels a running statement, Ctrl-D leaves.
Panther's macros (p_occurs_since('1 day') and friends) and $name parameters work as in osprey sql.

.tables                  list the tables and views
.schema TABLE            show a table's columns (struct fields too)
.mode MODE               output: table, csv, json, jsonl, markdown, line (parquet with .output)
.timer on|off            print how long each statement took (on)
.output [FILE]           send results to FILE; without FILE, back to the terminal
.read FILE               run the statements and dot commands of a file
.functions               list osprey's SQL functions
.help                    this text
.quit, .exit             leave
`

// Exec runs one input: a dot command, or one or more statements. It reports errors to Err and
// returns whether the shell should end.
func (s *Shell) Exec(ctx context.Context, input string) (quit bool) {
	in := strings.TrimSpace(input)
	if strings.HasPrefix(in, ".") {
		if err := s.dot(ctx, in); err != nil {
			fmt.Fprintln(s.opts.Err, "Error:", err)
		}
		return s.quit
	}
	for _, stmt := range query.SplitStatements(input) {
		if err := s.run(ctx, stmt); err != nil {
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(s.opts.Err, "Cancelled.")
				return s.quit
			}
			fmt.Fprintln(s.opts.Err, "Error:", err)
			return s.quit
		}
	}
	return s.quit
}

func (s *Shell) out() io.Writer {
	if s.output != nil {
		return s.output
	}
	return s.opts.Out
}

// run runs a statement and prints its result; Ctrl-C (SIGINT) cancels it.
func (s *Shell) run(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case v := <-sig:
			if v != os.Interrupt {
				s.quit = true
			}
			cancel()
		case <-done:
		}
	}()
	start := time.Now()
	rows, err := s.db.Run(ctx, query.Request{SQL: stmt, Params: s.opts.Params, Timeout: s.opts.Timeout})
	if err != nil {
		return err
	}
	defer rows.Close()
	opts := query.WriteOptions{Format: s.mode}
	if s.output == nil && s.opts.Width != nil {
		opts.TermWidth = s.opts.Width()
	}
	if s.timer {
		opts.Elapsed = func() time.Duration { return time.Since(start) }
	}
	if s.mode == "parquet" && s.output == nil {
		return errors.New("parquet is binary: give a file with .output FILE first")
	}
	_, err = query.Write(s.out(), rows, opts)
	if err == nil {
		err = rows.Err()
	}
	if ctx.Err() != nil {
		return context.Canceled
	}
	if err == nil && s.timer && s.mode != "table" && s.output == nil {
		fmt.Fprintf(s.opts.Err, "Run Time: %s\n", time.Since(start).Round(time.Millisecond))
	}
	s.catMu.Lock()
	if s.catalog == nil {
		s.catStale = true
	}
	s.catMu.Unlock()
	return err
}

func (s *Shell) dot(ctx context.Context, in string) error {
	fields := strings.Fields(in)
	cmd, args := fields[0], fields[1:]
	arg := strings.TrimSpace(strings.TrimPrefix(in, cmd))
	switch cmd {
	case ".quit", ".exit", ".q":
		s.quit = true
	case ".help":
		fmt.Fprint(s.opts.Out, help)
	case ".tables":
		cols, err := s.columns(ctx, true)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		var names []string
		for _, c := range cols {
			if n := c.Schema + "." + c.Table; !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			fmt.Fprintln(s.out(), "no tables: ingest some logs first")
		}
		for _, n := range names {
			fmt.Fprintln(s.out(), n)
		}
	case ".schema":
		if len(args) != 1 {
			return errors.New("usage: .schema TABLE (such as panther_logs.panther_audit)")
		}
		cols, err := s.columns(ctx, true)
		if err != nil {
			return err
		}
		want := strings.ToLower(args[0])
		found := false
		for _, c := range cols {
			if strings.ToLower(c.Schema+"."+c.Table) != want && !(strings.ToLower(c.Table) == want) {
				continue
			}
			found = true
			depth := strings.Count(c.Name, ".")
			typ := c.Type
			if strings.HasPrefix(typ, "STRUCT(") {
				typ = "STRUCT"
			}
			fmt.Fprintf(s.out(), "%s%-*s %s\n", strings.Repeat("  ", depth), 32-2*depth, c.Name, typ)
		}
		if !found {
			return fmt.Errorf("no table %s (see .tables)", args[0])
		}
	case ".mode":
		if len(args) != 1 || !query.ValidFormat(args[0]) {
			return fmt.Errorf("usage: .mode %s", strings.Join(query.Formats, "|"))
		}
		s.mode = args[0]
	case ".timer":
		switch arg {
		case "on":
			s.timer = true
		case "off":
			s.timer = false
		default:
			return errors.New("usage: .timer on|off")
		}
	case ".output", ".once":
		if s.output != nil {
			if err := s.output.Close(); err != nil {
				fmt.Fprintln(s.opts.Err, "Error:", err)
			}
			s.output = nil
		}
		if arg == "" || arg == "stdout" {
			return nil
		}
		f, err := os.Create(arg)
		if err != nil {
			return err
		}
		s.output = f
	case ".read":
		if arg == "" {
			return errors.New("usage: .read FILE")
		}
		f, err := os.Open(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		return s.Feed(ctx, f)
	case ".functions":
		for _, f := range query.Functions {
			fmt.Fprintf(s.out(), "%s\n    %s\n", f.Signature, f.Doc)
		}
	default:
		return fmt.Errorf("unknown command %s (see .help)", cmd)
	}
	return nil
}

// Feed runs the statements and dot commands of a script: a line starting with . outside a
// statement is a dot command; statements end with ;.
func (s *Shell) Feed(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var pending strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if pending.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), ".") {
			if s.Exec(ctx, line) {
				return nil
			}
			continue
		}
		pending.WriteString(line)
		pending.WriteByte('\n')
		if query.Complete(pending.String()) {
			if s.Exec(ctx, pending.String()) {
				return nil
			}
			pending.Reset()
		}
	}
	if strings.TrimSpace(pending.String()) != "" {
		s.Exec(ctx, pending.String())
	}
	return sc.Err()
}

// Close closes the .output file, if any.
func (s *Shell) Close() error {
	if s.output != nil {
		return s.output.Close()
	}
	return nil
}

// columns returns the session's catalog, reloaded when a statement may have changed it.
func (s *Shell) columns(ctx context.Context, reload bool) ([]query.Column, error) {
	s.catMu.Lock()
	stale := reload || s.catStale
	s.catMu.Unlock()
	if stale {
		cols, err := s.db.Catalog(ctx)
		s.catMu.Lock()
		defer s.catMu.Unlock()
		if err != nil {
			return s.catalog, err
		}
		s.catalog, s.catStale = cols, false
		return cols, nil
	}
	s.catMu.Lock()
	defer s.catMu.Unlock()
	return s.catalog, nil
}

// History reads a history file: one JSON string per line (statements keep their lines).
func History(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var s string
		if json.Unmarshal(sc.Bytes(), &s) == nil && s != "" {
			out = append(out, s)
		}
	}
	if len(out) > maxHistory {
		out = out[len(out)-maxHistory:]
	}
	return out
}

const maxHistory = 5000

// appendHistory adds an entry to the history file at once, so that a crash keeps it.
func appendHistory(path, entry string) error {
	if path == "" || strings.TrimSpace(entry) == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(strings.TrimSpace(entry))
	_, err = f.Write(append(b, '\n'))
	return errors.Join(err, f.Close())
}

// DefaultHistoryFile is ~/.osprey_history.
func DefaultHistoryFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".osprey_history")
}

func sortedUnique(xs []string) []string {
	sort.Strings(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}
