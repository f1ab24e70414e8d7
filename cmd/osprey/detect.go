package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/builtin"
	"github.com/ospreyhq/osprey/detections/ruletest"
	"github.com/ospreyhq/osprey/detections/validate"
	"github.com/ospreyhq/osprey/query"
)

func newDetect(g *globals) *cobra.Command {
	var schemas string
	cmd := &cobra.Command{
		Use:   "detect",
		Short: "Validate, test, list and replay detections",
		Long: `Detections are rules, scheduled queries and scheduled rules in Panther's YAML format, with SQL
where Panther uses Python (see README.md, "Detections"). Osprey has a built-in pack of rules for
Panther.Audit, Linux.Auditd and Rapid7.AuditLog; directories of your own specs are given as
arguments (validate, test) or with --detections (list, run).

  osprey detect validate ./detections           check specs, log types, SQL and schedules
  osprey detect test ./detections               run the rules' Tests
  osprey detect test --rule My.Rule ./detections
  osprey detect list --detections ./detections  the built-in rules and yours
  osprey detect run Osprey.PantherAudit.SAMLModified --since '30 days'

With no directory, validate and test check the built-in pack.`,
	}
	cmd.PersistentFlags().StringVar(&schemas, "schemas", "", "directory of custom log schemas (*.yml) to add to the built-in log types")
	cmd.AddCommand(newDetectValidate(g, &schemas), newDetectTest(&schemas), newDetectList(), newDetectRun(g))
	return cmd
}

// loadSpecs loads the specs of dirs, or the built-in pack when dirs is empty; withBuiltin adds
// the pack to dirs.
func loadSpecs(dirs []string, withBuiltin bool) (*detections.Set, error) {
	return builtin.LoadWith(dirs, withBuiltin || len(dirs) == 0)
}

// printSpecErrors prints the loader's errors, one "file:line: message" a line, and returns the
// exit error; other errors are returned as they are.
func printSpecErrors(w io.Writer, err error) error {
	var joined interface{ Unwrap() []error }
	var one *detections.Error
	switch {
	case errors.As(err, &joined):
		for _, e := range joined.Unwrap() {
			fmt.Fprintln(w, e)
		}
	case errors.As(err, &one):
		fmt.Fprintln(w, err)
	default:
		return err
	}
	return exitError{1}
}

func newDetectValidate(g *globals, schemas *string) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR...]",
		Short: "Check detection specs before they run: keys, log types, SQL, schedules",
		Long: `Validate loads the specs of the directories (the built-in pack when none is given) and reports
every mistake, each as file:line: message, without running anything:

  - the loader's: unknown keys, missing or malformed values, repeated RuleIDs and QueryNames;
  - a rule's LogTypes that is not a known log type (built-in, or from --schemas DIR);
  - a rule's Query that reads a table other than its log types' (panther_logs.<table>), or
    that does not bind against their columns (DuckDB's binder: a misspelt column, a wrong type);
  - a rule whose result has no p_row_id (a rule returns events: SELECT * or SELECT p_row_id, ...);
  - a scheduled query's CronExpression that does not parse;
  - when the lake (--lake) exists, a scheduled query that does not bind against its tables.

It prints "N rules, M scheduled queries, K scheduled rules: ok" and exits 0 when all is well,
and exits 1 otherwise.`,
		RunE: func(cmd *cobra.Command, dirs []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			set, err := loadSpecs(dirs, false)
			if err != nil {
				return printSpecErrors(stderr, err)
			}
			reg, err := loadRegistry(*schemas)
			if err != nil {
				return err
			}
			opts := validate.Options{Registry: reg}
			if len(set.ScheduledQueries) > 0 {
				if l, err := g.readLake(); err == nil {
					db, err := query.Open(ctx, l, query.Options{})
					if err != nil {
						return err
					}
					defer db.Close()
					opts.Lake = db
				} else {
					fmt.Fprintf(stderr, "no lake at %s: the scheduled queries' SQL is not checked\n", g.lakeDir)
				}
			}
			errs, err := validate.Set(ctx, set, opts)
			if err != nil {
				return err
			}
			for _, e := range errs {
				fmt.Fprintln(stderr, e)
			}
			if len(errs) > 0 {
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d rules, %d scheduled queries, %d scheduled rules: ok\n",
				len(set.Rules), len(set.ScheduledQueries), len(set.ScheduledRules))
			return nil
		},
	}
}

func newDetectTest(schemas *string) *cobra.Command {
	var ruleID string
	cmd := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "Run the rules' unit tests (their Tests key)",
		Long: `Test runs each test of each rule (enabled or not) of the directories, or of the built-in pack
when none is given, like panther_analysis_tool test: the test's Log is parsed as an event of
the rule's log type by the log type's own parser (a Log that does not parse fails the test,
with the parser's reason), bound as the rule's table, and the rule's Query runs over it. The
rule matches when the query returns a row; the test passes when that is its ExpectedResult.

Log types whose records are text lines (Linux.Auditd, syslog) take the raw line in the Log's
"log" key:

  Log: {"log": "type=ADD_USER msg=audit(1715000000.123:42): pid=7 uid=0 ..."}

It prints PASS or FAIL and the rule/test name for each test, the reason of each failure, and
"N passed, M failed"; it exits 1 when a test fails.`,
		RunE: func(cmd *cobra.Command, dirs []string) error {
			set, err := loadSpecs(dirs, false)
			if err != nil {
				return printSpecErrors(cmd.ErrOrStderr(), err)
			}
			reg, err := loadRegistry(*schemas)
			if err != nil {
				return err
			}
			results, err := ruletest.Run(cmd.Context(), set, reg, ruletest.Options{RuleID: ruleID})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, r := range results {
				if r.Passed() {
					passed++
					fmt.Fprintf(out, "PASS %s/%s\n", r.RuleID, r.Test)
					continue
				}
				failed++
				fmt.Fprintf(out, "FAIL %s/%s (%s:%d): %s\n", r.RuleID, r.Test, r.File, r.Line, r.Reason())
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ruleID, "rule", "", "run only the tests of this RuleID")
	return cmd
}

func newDetectList() *cobra.Command {
	var dirs []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rules: the built-in pack and those of --detections",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := loadSpecs(dirs, true)
			if err != nil {
				return printSpecErrors(cmd.ErrOrStderr(), err)
			}
			ids := make([]string, 0, len(set.Rules))
			for id := range set.Rules {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "RULE\tSEVERITY\tLOG TYPES\tENABLED\tFILE")
			for _, id := range ids {
				r := set.Rules[id]
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", id, r.Severity, strings.Join(r.LogTypes, ","), r.Enabled, r.File)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&dirs, "detections", nil, "a directory of detection specs to list with the built-in pack (repeatable)")
	return cmd
}

func newDetectRun(g *globals) *cobra.Command {
	var (
		dirs   []string
		since  string
		format string
	)
	cmd := &cobra.Command{
		Use:   "run RULE_ID",
		Short: "Run one rule over the lake's history and show the alerts it would have raised",
		Long: `Run runs a rule's Query over the lake's history (its panther_logs.<table> is the lake's table
here), keeps the matches whose p_event_time is within --since, and groups them as alerts the
way streaming detection does: by dedup string (the alert_dedup column, or
defaultDedupString:<RuleID>), an alert's window starting at its first match and lasting
DedupPeriodMinutes, raised once its matches reach Threshold. It writes nothing to the lake and
raises nothing: use it to try a rule before enabling it, or to hunt with it.

  osprey detect run Osprey.PantherAudit.DetectionDeleted --since '30 days'
  osprey detect run My.Rule --detections ./detections --since '1 day' --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown format %q (want table or json)", format)
			}
			set, err := loadSpecs(dirs, true)
			if err != nil {
				return printSpecErrors(cmd.ErrOrStderr(), err)
			}
			r := set.Rules[args[0]]
			if r == nil {
				return fmt.Errorf("no rule %q (osprey detect list shows them)", args[0])
			}
			l, err := g.readLake()
			if err != nil {
				return err
			}
			db, err := query.Open(cmd.Context(), l, query.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			matches, err := ruleMatches(cmd, db, r, since)
			if err != nil {
				return err
			}
			alerts := groupAlerts(r, matches)
			return writeAlerts(cmd.OutOrStdout(), r, alerts, len(matches), format)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&dirs, "detections", nil, "a directory of detection specs to find the rule in, besides the built-in pack (repeatable)")
	f.StringVar(&since, "since", "7 days", "how far back to look, as p_occurs_since takes it: '7 days', '12 hours', '90 d'")
	f.StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// match is one row a rule returned over the lake.
type match struct {
	time     time.Time
	dedup    string
	title    string
	severity string
}

// ruleMatches runs the rule over the lake's events of the window.
func ruleMatches(cmd *cobra.Command, db *query.DB, r *detections.Rule, since string) ([]match, error) {
	stmt := "SELECT * FROM (\n" + strings.TrimRight(strings.TrimSpace(r.Query), ";") + "\n) AS rule_matches WHERE p_occurs_since($since)"
	rows, err := db.Run(cmd.Context(), query.Request{SQL: stmt, Params: map[string]any{"since": since}})
	var me *query.MacroError
	if errors.As(err, &me) && strings.Contains(me.Msg, since) {
		return nil, fmt.Errorf("--since %q: %s", since, me.Msg)
	}
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %s: %w", r.File, r.QueryLine, r.RuleID, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, c := range cols {
		if _, ok := idx[strings.ToLower(c)]; !ok {
			idx[strings.ToLower(c)] = i
		}
	}
	if _, ok := idx["p_event_time"]; !ok {
		return nil, fmt.Errorf("%s: the rule's result has no p_event_time column", r.RuleID)
	}
	str := func(vals []any, name string) string {
		i, ok := idx[name]
		if !ok || vals[i] == nil {
			return ""
		}
		return fmt.Sprint(query.Plain(vals[i]))
	}
	var ms []match
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		t, _ := vals[idx["p_event_time"]].(time.Time)
		ms = append(ms, match{time: t.UTC(), dedup: str(vals, "alert_dedup"), title: str(vals, "alert_title"), severity: str(vals, "alert_severity")})
	}
	return ms, rows.Err()
}

// simAlert is an alert that the matches would have raised.
type simAlert struct {
	Dedup     string    `json:"dedup"`
	Title     string    `json:"title"`
	Severity  string    `json:"severity"`
	Count     int       `json:"count"`
	FirstTime time.Time `json:"first_event_time"`
	LastTime  time.Time `json:"last_event_time"`
}

// groupAlerts groups matches into alerts as the alert store does: by dedup string, a window
// of DedupPeriodMinutes from the first match of an alert; the alerts whose matches reach
// Threshold are returned, in order of their first match.
func groupAlerts(r *detections.Rule, ms []match) []*simAlert {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].time.Before(ms[j].time) })
	period := time.Duration(r.DedupPeriodMinutes) * time.Minute
	open := map[string]*simAlert{}
	var all []*simAlert
	for _, m := range ms {
		key := m.dedup
		if key == "" {
			key = alert.DefaultDedup(r.RuleID)
		}
		a := open[key]
		if a == nil || !m.time.Before(a.FirstTime.Add(period)) {
			title := m.title
			if title == "" {
				title = r.DisplayName
			}
			if title == "" {
				title = r.RuleID
			}
			sev := string(r.Severity)
			if s, ok := detections.ParseSeverity(m.severity); ok {
				sev = string(s)
			}
			a = &simAlert{Dedup: key, Title: title, Severity: sev, FirstTime: m.time}
			open[key] = a
			all = append(all, a)
		}
		a.Count++
		a.LastTime = m.time
	}
	var raised []*simAlert
	for _, a := range all {
		if a.Count >= r.Threshold {
			raised = append(raised, a)
		}
	}
	return raised
}

func writeAlerts(w io.Writer, r *detections.Rule, alerts []*simAlert, matches int, format string) error {
	if format == "json" {
		if alerts == nil {
			alerts = []*simAlert{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(alerts)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEDUP\tTITLE\tSEVERITY\tCOUNT\tFIRST EVENT\tLAST EVENT")
	const layout = "2006-01-02 15:04:05Z07:00"
	for _, a := range alerts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", a.Dedup, a.Title, a.Severity, a.Count, a.FirstTime.Format(layout), a.LastTime.Format(layout))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %d matches, %d alerts (dedup period %d min, threshold %d)\n", r.RuleID, matches, len(alerts), r.DedupPeriodMinutes, r.Threshold)
	return err
}
