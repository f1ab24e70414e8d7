package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/units"
)

type sqlOptions struct {
	command     string
	file        string
	format      string
	output      string
	memoryLimit string
	explain     bool
	params      []string
	timeout     time.Duration
	history     string
}

func newSQL(g *globals) *cobra.Command {
	o := &sqlOptions{}
	cmd := &cobra.Command{
		Use:   "sql [flags]",
		Short: "Query the lake with SQL",
		Long: `Sql runs SQL over the lake with DuckDB. Each table is a view: panther_logs.<table> for log types
(Panther.Audit is panther_logs.panther_audit), panther_monitor.classification_failures for records
that did not parse. Tables have the columns of their log schema, Panther's p_ standard fields and the
partition columns year, month, day and hour.

Panther's time macros are expanded before the query runs, and a query restricted to a time range
reads only that range's partitions:
  p_occurs_since(offset [, alias [, column]])         offset: seconds, '1 day', '6 h', '30m', '2 weeks'
  p_occurs_between(start, end [, alias [, column]])
  p_occurs_around(timestamp, offset [, alias [, column]])
  p_occurs_after(timestamp [, alias [, column]])
  p_occurs_before(timestamp [, alias [, column]])

Statements come from -c, from -f, or from stdin when it is not a terminal; with none of these on
a terminal, sql opens an interactive shell (type .help there). Only queries run: the lake is read
and nothing else (no COPY, ATTACH, INSTALL or SET, no file outside the lake). Named parameters
($name) take their values from --param name=VALUE. An error prints one line and exits with
status 1.`,
		Example: `  osprey sql -c "SELECT actionName, count(*) FROM panther_logs.panther_audit WHERE p_occurs_since('1 day') GROUP BY 1"
  osprey sql -c "SELECT * FROM panther_logs.linux_auditd WHERE type = 'USER_LOGIN' AND res = 'failed'" --format json
  osprey sql -c "SELECT * FROM panther_logs.panther_audit WHERE actor.name = $who AND p_occurs_since($window)" --param who=alice --param window='6 h'
  osprey sql -c "SELECT * FROM panther_views.all_logs WHERE p_occurs_since('1 day')" --format parquet -o day.parquet
  osprey sql < hunt.sql
  osprey sql                          # the interactive shell`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q (give SQL with -c)", args[0])
			}
			return runSQL(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.command, "command", "c", "", "SQL to run (several statements separated by ;)")
	f.StringVarP(&o.file, "file", "f", "", "file of SQL statements to run")
	f.StringVar(&o.format, "format", "table", "output format: "+strings.Join(query.Formats, ", "))
	f.StringVarP(&o.output, "output", "o", "", "write results to a file instead of stdout")
	f.StringVar(&o.memoryLimit, "memory-limit", "", "DuckDB memory limit, such as 4GB (default: a quarter of RAM)")
	f.BoolVar(&o.explain, "explain", false, "print each statement as it would run (macros expanded, files chosen) and the files it reads of each table, instead of running it")
	f.StringArrayVarP(&o.params, "param", "p", nil, "a named parameter: name=VALUE, used as $name (repeatable)")
	f.Var((*units.Duration)(&o.timeout), "timeout", "cancel a statement that runs longer than this (such as 30s; default no limit)")
	f.StringVar(&o.history, "history", "", "history file of the interactive shell (default ~/.osprey_history)")
	return cmd
}

func runSQL(ctx context.Context, g *globals, o *sqlOptions) error {
	params, err := parseParams(o.params)
	if err != nil {
		return err
	}
	if !query.ValidFormat(o.format) {
		return fmt.Errorf("unknown format %q (want %s)", o.format, strings.Join(query.Formats, ", "))
	}
	var text string
	switch {
	case o.command != "" && o.file != "":
		return errors.New("give -c or -f, not both")
	case o.command != "":
		text = o.command
	case o.file != "":
		data, err := os.ReadFile(o.file)
		if err != nil {
			return err
		}
		text = string(data)
	case !term.IsTerminal(int(os.Stdin.Fd())):
		data, err := io.ReadAll(bufio.NewReader(os.Stdin))
		if err != nil {
			return err
		}
		text = string(data)
	default:
		return runREPL(ctx, g, o, params)
	}
	stmts := query.SplitStatements(text)
	if len(stmts) == 0 {
		return errors.New("no SQL statement given")
	}
	if o.format == "parquet" && len(stmts) > 1 && !o.explain {
		return fmt.Errorf("--format parquet writes one result: give one statement, not %d", len(stmts))
	}
	if o.format == "parquet" && o.output == "" && term.IsTerminal(int(os.Stdout.Fd())) {
		return errors.New("--format parquet writes binary data: give --output FILE or redirect stdout")
	}
	l, err := g.readLake()
	if err != nil {
		return err
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: o.memoryLimit})
	if err != nil {
		return err
	}
	defer db.Close()
	out := io.Writer(os.Stdout)
	if o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	for _, stmt := range stmts {
		if o.explain {
			run, plans, err := db.Explain(ctx, stmt)
			if err != nil {
				return err
			}
			for _, p := range plans {
				fmt.Fprintln(out, planLine(p))
			}
			fmt.Fprintln(out, run+";")
			continue
		}
		rows, err := db.Run(ctx, query.Request{SQL: stmt, Params: params, Timeout: o.timeout})
		if err != nil {
			return err
		}
		_, err = query.Write(out, rows, query.WriteOptions{Format: o.format})
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if o.output != "" {
				os.Remove(o.output)
			}
			return err
		}
	}
	if f, ok := out.(*os.File); ok && o.output != "" {
		return f.Close()
	}
	return nil
}

// parseParams reads --param name=VALUE flags. Values are text; DuckDB casts a parameter to the
// type its use needs ($n in LIMIT $n is read as an integer).
func parseParams(flags []string) (map[string]any, error) {
	params := map[string]any{}
	for _, p := range flags {
		name, value, ok := strings.Cut(p, "=")
		name = strings.TrimPrefix(strings.TrimSpace(name), "$")
		if !ok || name == "" || strings.ContainsAny(name, " \t$") {
			return nil, fmt.Errorf("--param %q: want name=VALUE", p)
		}
		params[name] = value
	}
	return params, nil
}

// planLine describes what a statement reads of a table, as an SQL comment.
func planLine(p query.Plan) string {
	if p.From.IsZero() && p.To.IsZero() && len(p.Columns) == 0 {
		return fmt.Sprintf("-- %s: all %d files (no p_event_time range or column value to prune by)", p.Table, p.Total)
	}
	bound := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	var by []string
	if !p.From.IsZero() || !p.To.IsZero() {
		by = append(by, fmt.Sprintf("p_event_time from %s to %s", bound(p.From), bound(p.To)))
	}
	for _, c := range p.Columns {
		by = append(by, c+" values")
	}
	return fmt.Sprintf("-- %s: %d of %d files planned, %d pruned by their bounds (%s)",
		p.Table, p.Files, p.Total, p.Total-p.Files, strings.Join(by, ", "))
}
