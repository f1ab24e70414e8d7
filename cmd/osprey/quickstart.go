package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/query"
)

// samples maps the bundled sample files to their log types.
var samples = []struct{ file, logType string }{
	{"panther_audit.jsonl", "Panther.Audit"},
	{"rapid7_auditlog.jsonl", "Rapid7.AuditLog"},
	{"linux_auditd.log", "Linux.Auditd"},
	{"linux_auditd_fluentbit.jsonl", "Linux.Auditd"},
}

// quickstartQueries show what the lake answers once the samples are in.
// quickstartWriter names the lake writer of quickstart (its commit metadata holds the alert
// store's epoch).
const quickstartWriter = "quickstart"

var quickstartQueries = []struct{ title, sql string }{
	{"Events per log type", `SELECT p_log_type, count(*) AS events, min(p_event_time) AS first, max(p_event_time) AS last
FROM (SELECT p_log_type, p_event_time FROM panther_logs.panther_audit
      UNION ALL SELECT p_log_type, p_event_time FROM panther_logs.rapid7_auditlog
      UNION ALL SELECT p_log_type, p_event_time FROM panther_logs.linux_auditd)
GROUP BY ALL ORDER BY 1`},
	{"Destructive Panther actions", `SELECT p_event_time, actionName, actor.name AS actor, sourceIP, actionResult
FROM panther_logs.panther_audit
WHERE actionName LIKE 'DELETE_%' AND p_occurs_between('2026-11-20', '2026-11-23')
ORDER BY p_event_time`},
	{"Failed logins on Linux hosts", `SELECT p_event_time, acct, addr, exe, res, p_any_ip_addresses
FROM panther_logs.linux_auditd
WHERE type = 'USER_LOGIN' AND res = 'failed'
ORDER BY p_event_time`},
	{"Alerts of the built-in detections (osprey alerts list)", `SELECT severity, rule_id, title, event_count
FROM panther_monitor.alerts WHERE status = 'OPEN'
ORDER BY list_position(['Critical', 'High', 'Medium', 'Low', 'Info'], severity), rule_id, title`},
}

func newQuickstart(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Ingest the bundled sample logs into the lake and show a few queries",
		Long: `Quickstart ingests the sample logs in testdata/samples (Panther.Audit, Rapid7.AuditLog and
Linux.Auditd, written for this project) into the lake (./osprey-data unless --lake says otherwise),
runs the built-in detection pack on them as streaming rules, and prints the results of a few
queries and the alerts raised. Run it again and the samples are ingested again.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQuickstart(cmd.Context(), g, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "samples", "testdata/samples", "directory of the sample logs")
	return cmd
}

func runQuickstart(ctx context.Context, g *globals, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, samples[0].file)); err != nil {
		return fmt.Errorf("sample logs not found in %s (run quickstart from the repository root, or give --samples): %w", dir, err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		return err
	}
	l, err := g.openLake()
	if err != nil {
		return err
	}
	wopts := defaultWriterOptions(g)
	wopts.Name = quickstartWriter
	w, err := l.NewWriter(wopts)
	if err != nil {
		return err
	}
	det, err := openDetector(ctx, l, config.Detections{Builtin: true}, w, 0, nil, g.logger())
	if err != nil {
		w.Abort()
		return err
	}
	defer det.Close()
	for _, s := range samples {
		lt, err := reg.Lookup(s.logType)
		if err != nil {
			return err
		}
		in, err := ingest.New(ctx, det.engine, ingest.Options{LogTypes: []*logtypes.LogType{lt}, Source: batch.Source{ID: "quickstart", Label: "osprey quickstart"}})
		if err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, s.file))
		if err != nil {
			return err
		}
		ierr := in.Ingest(ctx, f.Name(), f)
		f.Close()
		summary, cerr := in.Close()
		if err := errors.Join(ierr, cerr); err != nil {
			w.Abort()
			return err
		}
		if summary.Failures > 0 || len(summary.Errors) > 0 {
			w.Abort()
			return fmt.Errorf("%s: %d records failed to parse: %v", s.file, summary.Failures, summary.Errors)
		}
		fmt.Printf("ingested %3d %-16s events from %s\n", summary.Total(), s.logType, s.file)
	}
	if err := det.flush(ctx, w, quickstartWriter); err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Printf("built-in detections: %d rules, %d alerts raised\n", det.rules, det.engine.Stats().Raised)
	fmt.Printf("lake: %s\n", l.Dir())
	db, err := query.Open(ctx, l, query.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range quickstartQueries {
		fmt.Printf("\n%s:\n%s\n", q.title, q.sql)
		start := time.Now()
		rows, err := db.Query(ctx, q.sql)
		if err != nil {
			return err
		}
		_, err = query.Write(os.Stdout, rows, query.WriteOptions{Format: "table"})
		rows.Close()
		if err != nil {
			return err
		}
		fmt.Printf("(%s)\n", time.Since(start).Round(time.Millisecond))
	}
	fmt.Printf("\nTry your own: go run ./cmd/osprey sql --lake %s -c \"SELECT * FROM panther_logs.panther_audit LIMIT 5\"\n", g.lakeDir)
	return nil
}
