package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// osprey-bench detect measures what streaming rules cost ingest: it runs osprey ingest on the
// same input with no rule and with --rules rules, alternately, and prints the median events/s
// of both and their ratio.
//
// The rules are written for the generated Panther.Audit events in the shapes detection rules
// take: a sensitive action and its outcome, an action by a kind of actor, addresses from a
// range, an indicator, a user agent, a name pattern. Most match rarely, as rules do.
func benchDetect(args []string) error {
	fs := flag.NewFlagSet("detect", flag.ExitOnError)
	size := fs.String("size", "1GiB", "size of the generated input")
	runs := fs.Int("runs", 3, "runs of each side (the median is reported)")
	rules := fs.Int("rules", 50, "streaming rules to run")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "osprey-bench"), "working directory (input, lakes, rules)")
	osprey := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	if _, err := os.Stat(*osprey); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", *osprey, err)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	input := filepath.Join(*dir, "panther_audit.jsonl")
	events, err := generate(input, n)
	if err != nil {
		return err
	}
	if err := warm(input); err != nil {
		return err
	}
	ruleDir := filepath.Join(*dir, fmt.Sprintf("rules-%d", *rules))
	if err := writeBenchRules(ruleDir, *rules); err != nil {
		return err
	}
	fmt.Printf("input: %s, %d events; %d rules in %s\n", input, events, *rules, ruleDir)
	lakeDir := filepath.Join(*dir, "lake")
	base := []string{"ingest", "--lake", lakeDir, "--log-type", "Panther.Audit", "--progress", "never", "--quiet"}
	var none, with []result
	for i := range *runs {
		os.RemoveAll(lakeDir)
		r, err := measure(*osprey, append(base, "--no-detections", input)...)
		if err != nil {
			return fmt.Errorf("osprey ingest: %w", err)
		}
		none = append(none, r)
		os.RemoveAll(lakeDir)
		d, err := measure(*osprey, append(base, "--detections", ruleDir, input)...)
		if err != nil {
			return fmt.Errorf("osprey ingest --detections: %w", err)
		}
		with = append(with, d)
		fmt.Printf("run %d: no rules %6.2fs  %d rules %6.2fs\n", i+1, r.elapsed.Seconds(), *rules, d.elapsed.Seconds())
	}
	a, b := median(none), median(with)
	ar, br := float64(events)/a.elapsed.Seconds(), float64(events)/b.elapsed.Seconds()
	fmt.Printf("\n%-28s %12s %10s %12s\n", "", "events/s", "seconds", "peak RSS")
	fmt.Printf("%-28s %12.0f %10.2f %12s\n", "osprey ingest, no rules", ar, a.elapsed.Seconds(), human(a.maxRSS))
	fmt.Printf("%-28s %12.0f %10.2f %12s\n", fmt.Sprintf("osprey ingest, %d rules", *rules), br, b.elapsed.Seconds(), human(b.maxRSS))
	fmt.Printf("\nthroughput with %d rules: %.0f%% of throughput with none (median of %d runs each)\n", *rules, 100*br/ar, *runs)
	return nil
}

// writeBenchRules writes n rule specs for the generated Panther.Audit events into dir.
func writeBenchRules(dir string, n int) error {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	actions := []string{"DELETE_SAVED_QUERY", "DELETE_DETECTION", "DELETE_API_TOKEN", "DELETE_LOG_SOURCE",
		"DELETE_DESTINATION", "DELETE_USER_ROLE", "DELETE_USER", "CREATE_USER", "UPDATE_SAML_SETTINGS",
		"CREATE_API_TOKEN", "UPDATE_USER_ROLE", "CREATE_USER_ROLE", "ROTATE_API_TOKEN", "UPDATE_LOG_SOURCE",
		"UPDATE_DESTINATION", "UPDATE_GENERAL_SETTINGS", "CREATE_DESTINATION", "UPLOAD_DETECTIONS",
		"CREATE_DETECTION", "UPDATE_DETECTION"}
	var queries []string
	for i := 0; len(queries) < n; i++ {
		a := actions[(i+i/len(actions))%len(actions)] // no two rules alike
		var q string
		switch i % 10 {
		case 0, 1, 2, 3:
			q = fmt.Sprintf("SELECT *, actor.name || ' failed to %s' AS alert_title, actor.id AS alert_dedup\n"+
				"FROM panther_logs.panther_audit WHERE actionName = '%s' AND actionResult = 'FAILED'", strings.ToLower(a), a)
		case 4, 5:
			q = fmt.Sprintf("SELECT *, 'Token ' || actor.name || ': %s' AS alert_title\n"+
				"FROM panther_logs.panther_audit WHERE actionName IN ('%s', '%s') AND actor.type = 'TOKEN' AND actionResult <> 'SUCCEEDED'",
				a, a, actions[(i+7)%len(actions)])
		case 6:
			q = fmt.Sprintf("SELECT * FROM panther_logs.panther_audit\nWHERE starts_with(sourceIP, '10.%d.') AND actionName LIKE 'DELETE_%%'", i%256)
		case 7:
			q = fmt.Sprintf("SELECT * FROM panther_logs.panther_audit\nWHERE list_contains(p_any_ip_addresses, '203.0.113.%d')", i%256)
		case 8:
			q = fmt.Sprintf("SELECT *, {'agent': userAgent, 'action': actionName} AS alert_context\n"+
				"FROM panther_logs.panther_audit WHERE actionName = '%s' AND userAgent LIKE '%%curl%%'", a)
		case 9:
			// ->> reads the JSON field as text (.email would be JSON, quotes and all, which
			// no LIKE pattern without quotes matches); it binds more loosely than AND.
			q = fmt.Sprintf("SELECT * FROM panther_logs.panther_audit\nWHERE actionName = '%s' AND (actor.attributes->>'email') LIKE '%%@evil%d.example'", a, i)
		}
		queries = append(queries, q)
	}
	for i, q := range queries {
		spec := fmt.Sprintf("AnalysisType: rule\nRuleID: Bench.Rule%02d\nLogTypes: [Panther.Audit]\nSeverity: Medium\nQuery: |\n  %s\n",
			i, strings.ReplaceAll(q, "\n", "\n  "))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("rule%02d.yml", i)), []byte(spec), 0o644); err != nil {
			return err
		}
	}
	return nil
}
