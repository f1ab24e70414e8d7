package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/detections"
	"github.com/ospreyhq/osprey/detections/alert"
	"github.com/ospreyhq/osprey/detections/matches"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
	"github.com/ospreyhq/osprey/units"
)

// alertsWriter names the lake writer of osprey alerts resolve (alert history rows).
const alertsWriter = "alerts"

func newAlerts(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List, show and resolve the alerts of the lake's detections",
		Long: `Alerts are raised by detections: streaming rules (osprey serve, osprey ingest --detections)
and scheduled rules. An alert holds the matches of one rule that share a dedup string
(alert_dedup, or the rule id) within the rule's DedupPeriodMinutes from the alert's creation;
the rule's Threshold counts matches before the alert is raised. A match after the window, or
after the alert was resolved, starts a new alert.

The alerts are kept in the lake (_osprey/alerts). SQL sees them too: panther_monitor.alerts
has each alert's latest state, panther_monitor.alert_history every change, and
panther_rule_matches.<table> each matched event with its p_alert_id.`,
	}
	cmd.AddCommand(newAlertsList(g), newAlertsShow(g), newAlertsResolve(g))
	return cmd
}

type alertsListOptions struct {
	status   string
	rule     string
	severity string
	since    string
	limit    int
	format   string
}

func newAlertsList(g *globals) *cobra.Command {
	o := &alertsListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List alerts, newest first",
		Example: `  osprey alerts list
  osprey alerts list --status all --since 7d --severity High
  osprey alerts list --rule Osprey.PantherAudit.DetectionDeleted --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAlertsList(g, o, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.status, "status", "open", "open, resolved or all")
	f.StringVar(&o.rule, "rule", "", "only the alerts of this rule id")
	f.StringVar(&o.severity, "severity", "", "only alerts at or above this severity (Info, Low, Medium, High, Critical)")
	f.StringVar(&o.since, "since", "", "only alerts created within this long (30m, 12h, 7d) or since this time (RFC 3339)")
	f.IntVar(&o.limit, "limit", 100, "at most this many alerts (0: all)")
	f.StringVar(&o.format, "format", "table", "table, json or jsonl")
	return cmd
}

// readAlerts returns the lake's alerts (none when no detection ever ran).
func readAlerts(g *globals) (*lake.Lake, []alert.Alert, error) {
	l, err := g.readLake()
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(alertDir(l)); errors.Is(err, os.ErrNotExist) {
		return l, nil, nil
	}
	alerts, err := alert.ReadAlerts(alertDir(l))
	return l, alerts, err
}

func runAlertsList(g *globals, o *alertsListOptions, out io.Writer) error {
	if !slices.Contains([]string{"table", "json", "jsonl"}, o.format) {
		return fmt.Errorf("unknown format %q (want table, json or jsonl)", o.format)
	}
	var status string
	switch strings.ToLower(o.status) {
	case "open":
		status = alert.StatusOpen
	case "resolved":
		status = alert.StatusResolved
	case "all", "":
	default:
		return fmt.Errorf("unknown status %q (want open, resolved or all)", o.status)
	}
	minRank := -1
	if o.severity != "" {
		sev, ok := detections.ParseSeverity(o.severity)
		if !ok {
			return fmt.Errorf("unknown severity %q (want Info, Low, Medium, High or Critical)", o.severity)
		}
		minRank = slices.Index(detections.Severities, sev)
	}
	var since time.Time
	if o.since != "" {
		t, err := parseSince(o.since, time.Now())
		if err != nil {
			return err
		}
		since = t
	}
	_, alerts, err := readAlerts(g)
	if err != nil {
		return err
	}
	var shown []alert.Alert
	for _, a := range alerts {
		switch {
		case status != "" && a.Status != status,
			o.rule != "" && a.RuleID != o.rule,
			minRank >= 0 && slices.Index(detections.Severities, detections.Severity(a.Severity)) < minRank,
			!since.IsZero() && a.CreatedAt.Before(since):
			continue
		}
		shown = append(shown, a)
	}
	more := 0
	if o.limit > 0 && len(shown) > o.limit {
		more = len(shown) - o.limit
		shown = shown[:o.limit]
	}
	switch o.format {
	case "json":
		if shown == nil {
			shown = []alert.Alert{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(shown)
	case "jsonl":
		enc := json.NewEncoder(out)
		for _, a := range shown {
			if err := enc.Encode(a); err != nil {
				return err
			}
		}
		return nil
	}
	if len(shown) == 0 {
		fmt.Fprintln(out, "no alerts")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT ID\tCREATED\tSEVERITY\tSTATUS\tEVENTS\tLAST EVENT\tRULE\tTITLE")
	for _, a := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.AlertID, a.CreatedAt.UTC().Format(time.DateTime), a.Severity,
			a.Status, a.Events, timeText(a.LastEvent), a.RuleID, cut(a.Title, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(out, "(%d more: --limit 0 shows all)\n", more)
	}
	return nil
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime)
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// parseSince reads a duration back from now (30m, 12h, 7d, '7 days': units.ParseDuration) or a
// time (RFC 3339, or a date).
// Empty is the zero time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := units.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateTime, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (30m, 12h, 7d) or a time (2026-11-22 or RFC 3339)", s)
}

// findAlert returns the alert whose id is id or starts with it (unambiguously).
func findAlert(alerts []alert.Alert, id string) (alert.Alert, error) {
	var found []alert.Alert
	for _, a := range alerts {
		if a.AlertID == id {
			return a, nil
		}
		if len(id) >= 4 && strings.HasPrefix(a.AlertID, id) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return alert.Alert{}, fmt.Errorf("no alert %s (osprey alerts list --status all lists them)", id)
	case 1:
		return found[0], nil
	}
	return alert.Alert{}, fmt.Errorf("%d alerts start with %s: give more of the id", len(found), id)
}

func newAlertsShow(g *globals) *cobra.Command {
	var events int
	var format string
	cmd := &cobra.Command{
		Use:   "show ALERT_ID",
		Short: "Show an alert and the events it matched",
		Long: `Show prints an alert (its id, or the first characters of it) and the first events it matched,
read from panther_rule_matches.<table>.`,
		Example: `  osprey alerts show 3f2a9c
  osprey alerts show 3f2a9c0d41b7e6a8 --events 20 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAlertsShow(cmd.Context(), g, args[0], events, format, os.Stdout)
		},
	}
	cmd.Flags().IntVar(&events, "events", 5, "how many matched events to show")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func runAlertsShow(ctx context.Context, g *globals, id string, events int, format string, out io.Writer) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("unknown format %q (want text or json)", format)
	}
	l, alerts, err := readAlerts(g)
	if err != nil {
		return err
	}
	a, err := findAlert(alerts, id)
	if err != nil {
		return err
	}
	matched, err := alertEvents(ctx, l, &a, events)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			alert.Alert
			Events []json.RawMessage `json:"events"`
		}{a, matched})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("Alert", a.AlertID)
	row("Title", a.Title)
	row("Severity", a.Severity)
	row("Status", a.Status)
	if a.Status == alert.StatusResolved {
		row("Resolved", timeText(a.ResolvedAt)+" by "+a.ResolvedBy)
	}
	row("Rule", a.RuleID+" ("+a.Type+")")
	row("Rule name", a.RuleName)
	row("Log types", strings.Join(a.LogTypes, ", "))
	row("Dedup", a.Dedup)
	row("Created", timeText(a.CreatedAt))
	row("Updated", timeText(a.UpdatedAt))
	row("Events", fmt.Sprint(a.Events))
	row("First event", timeText(a.FirstEvent))
	row("Last event", timeText(a.LastEvent))
	row("Tags", strings.Join(a.Tags, ", "))
	row("Description", a.Description)
	row("Runbook", a.Runbook)
	row("Reference", a.Reference)
	row("Destinations", strings.Join(a.OutputIDs, ", "))
	if len(a.Context) > 0 {
		row("Context", string(a.Context))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(matched) > 0 {
		fmt.Fprintf(out, "\nFirst %d matched events (panther_rule_matches):\n", len(matched))
		for _, e := range matched {
			fmt.Fprintln(out, string(e))
		}
	}
	return nil
}

// alertEvents returns up to n events an alert matched, oldest first, as JSON objects without
// the p_alert_ and p_rule_ columns.
func alertEvents(ctx context.Context, l *lake.Lake, a *alert.Alert, n int) ([]json.RawMessage, error) {
	if n <= 0 {
		return nil, nil
	}
	tables, err := l.Tables(lake.DBRuleMatches)
	if err != nil {
		return nil, err
	}
	var want []string
	for _, lt := range a.LogTypes {
		t := detections.TableName(lt)
		if slices.ContainsFunc(tables, func(x lake.Table) bool { return x.Name == t }) && !slices.Contains(want, t) {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	db, err := query.Open(ctx, l, query.Options{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []json.RawMessage
	for _, t := range want {
		stmt := fmt.Sprintf(`SELECT to_json(m)::VARCHAR FROM (SELECT COLUMNS(c -> NOT regexp_matches(c, '^p_(alert|rule)_'))
			FROM panther_rule_matches.%q WHERE p_alert_id = ? ORDER BY p_event_time LIMIT %d) m`, t, n-len(out))
		rows, err := db.SQL().QueryContext(ctx, stmt, a.AlertID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, json.RawMessage(s))
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		if len(out) >= n {
			break
		}
	}
	return out, nil
}

func newAlertsResolve(g *globals) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "resolve ALERT_ID...",
		Short: "Resolve alerts: later matches of their rule and dedup string raise a new alert",
		Long: `Resolve marks alerts resolved (an id, or the first characters of one). A match of the same rule
and dedup string after that raises a new alert, even within the dedup window.

When osprey serve (or another command running detections) holds the alert store, the
resolution is handed to it and applied at its next flush; osprey alerts list shows it at once.`,
		Example: `  osprey alerts resolve 3f2a9c0d41b7e6a8
  osprey alerts resolve 3f2a9c 81be07 --by alice`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAlertsResolve(cmd.Context(), g, args, by, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who resolves (default the user name)")
	return cmd
}

func runAlertsResolve(ctx context.Context, g *globals, ids []string, by string, out io.Writer) error {
	if by == "" {
		by = "osprey"
		if u, err := user.Current(); err == nil && u.Username != "" {
			by = u.Username
		}
	}
	l, alerts, err := readAlerts(g)
	if err != nil {
		return err
	}
	var full []string
	for _, id := range ids {
		a, err := findAlert(alerts, id)
		if err != nil {
			return err
		}
		if a.Status == alert.StatusResolved {
			fmt.Fprintf(out, "%s was resolved already (%s by %s)\n", a.AlertID, timeText(a.ResolvedAt), a.ResolvedBy)
			continue
		}
		full = append(full, a.AlertID)
	}
	if len(full) == 0 {
		return nil
	}
	store, err := alert.Open(alertDir(l), matches.CommittedEpoch(l))
	if errors.Is(err, alert.ErrLocked) {
		for _, id := range full {
			if err := alert.RequestResolve(alertDir(l), id, by); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s resolved (osprey serve applies it at its next flush)\n", id)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer store.Close()
	for _, id := range full {
		if err := store.Resolve(id, by); err != nil {
			return err
		}
	}
	// The change goes to panther_monitor.alert_history, committed with the store's epoch.
	w, err := l.NewWriter(lake.WriterOptions{Name: alertsWriter, Logger: g.logger()})
	if err != nil {
		return err
	}
	meta, err := matches.PrepareAlerts(ctx, store, w, alertsWriter)
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.FlushWith(ctx, meta); err != nil {
		matches.AbortAlerts(store, meta)
		w.Abort()
		return err
	}
	if err := matches.CommitAlerts(store, meta); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	for _, id := range full {
		fmt.Fprintf(out, "%s resolved\n", id)
	}
	return nil
}
