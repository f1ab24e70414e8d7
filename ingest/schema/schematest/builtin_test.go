package schematest_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/ospreyhq/osprey/ingest/schema/logschema"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
	"github.com/ospreyhq/osprey/internal/readmetest"
)

// analysis is panther-analysis, Panther's detection library, kept beside the project.
const analysis = "../../../../shared/corpora/panther-analysis"

// minBuiltinRate is the share of Panther's test cases whose log type is built in that the
// built-in types must reproduce.
const minBuiltinRate = 0.98

// pantherCases returns every case of Panther's schema tests, and the number of their files; a
// file that does not load is an error of the test.
func pantherCases(t *testing.T) ([]schematest.Case, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpus, "*", "tests", "*_tests.yml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var cases []schematest.Case
	for _, f := range files {
		cs, err := schematest.LoadFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		cases = append(cases, cs...)
	}
	return cases, len(files)
}

// TestBuiltinPantherRows runs Panther's own test cases with osprey's built-in log types (not
// Panther's schema files): a Panther user's saved queries and rules read these rows. Every
// field and value of Panther's expected row must be in osprey's; osprey's may hold more (fields
// Panther's schema drops, more p_any_* values). Cases of log types that are not built in are counted apart.
func TestBuiltinPantherRows(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Panther's schemas are not at %s: %v", corpus, err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cases, _ := pantherCases(t)
	parseTime := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var failures []string
	run, notBuiltin := 0, map[string]int{}
	for i := range cases {
		c := &cases[i]
		if _, err := reg.Lookup(c.LogType); err != nil {
			notBuiltin[c.LogType]++
			continue
		}
		run++
		if err := schematest.RunMatch(reg, c, parseTime, schematest.Contains); err != nil {
			rel, _ := filepath.Rel(corpus, c.File)
			failures = append(failures, strings.Replace(err.Error(), c.File, rel, 1))
		}
	}
	if run == 0 {
		t.Fatal("no case of Panther's is of a built-in log type")
	}
	rate := float64(run-len(failures)) / float64(run)
	t.Logf("built-in log types: %d of %d of Panther's cases give Panther's rows (%.1f%%); %d cases of %d log types not built in %v",
		run-len(failures), run, 100*rate, len(cases)-run, len(notBuiltin), sortedKeys(notBuiltin))
	for _, f := range failures {
		t.Logf("FAIL %s", f)
	}
	if rate < minBuiltinRate {
		t.Errorf("%.1f%% of Panther's cases give Panther's rows, want at least %.0f%%", 100*rate, 100*minBuiltinRate)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// analysisLog is one Log of a panther-analysis rule's tests.
type analysisLog struct {
	file, test string
	types      []string // the rule's LogTypes
	log        map[string]any
}

// analysisLogs reads the Logs of every rule test of panther-analysis.
func analysisLogs(t *testing.T) []analysisLog {
	t.Helper()
	var logs []analysisLog
	err := filepath.WalkDir(analysis, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var spec struct {
			LogTypes []string `yaml:"LogTypes"`
			Tests    []struct {
				Name string `yaml:"Name"`
				Log  any    `yaml:"Log"`
			} `yaml:"Tests"`
		}
		if yaml.Unmarshal(data, &spec) != nil || len(spec.LogTypes) == 0 {
			return nil // not a rule, or not one this test reads
		}
		for _, tc := range spec.Tests {
			m, ok := plain(tc.Log).(map[string]any)
			if !ok {
				continue
			}
			logs = append(logs, analysisLog{file: path, test: tc.Name, types: spec.LogTypes, log: m})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

// plain turns what the YAML decoder made of a Log into what a JSON decoder would have made:
// maps with string keys, times as RFC 3339 text.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = plain(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// requiredMissing returns the top-level required fields of a log type that a Log lacks, as
// the parser reads keys: without regard to case, and @x from Panther's at_sign_x.
func requiredMissing(lt *logtypes.LogType, log map[string]any) []string {
	var missing []string
	for _, f := range lt.Schema.Fields {
		if !f.Required {
			continue
		}
		found := false
		for k, v := range log {
			if v != nil && logschema.ReadsKey(f.Name, k) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, f.Name)
		}
	}
	return missing
}

// differentLogs are the Logs of panther-analysis' rule tests whose rows do not hold them, by
// file and test, each with the reason: errors in the Log (a typo, a malformed time), or fields
// a test writer placed where no event of the type has them.
var differentLogs = map[string]string{
	"rules/azure_activity_rules/azure_alert_rules_deleted.yml: Different Operation":                                                                `a typo in the Log: a key tenantId" (with the quote)`,
	"rules/azure_activity_rules/azure_role_assignment_privileged_or_elevated.yml: Elevate Access to All Azure Subscriptions":                       "operationName as an object {value, localizedValue}, a form of the Azure REST API, not of diagnostic logs",
	"rules/crowdstrike_rules/crowdstrike_base64_encoded_args.yml: Windows Centennial App - NewUpdatesReadyToApply (Negative - False Positive Fix)": "an FDR event field (platform) at the top level, where a row of Crowdstrike.FDREvent holds it under event",
	"rules/crowdstrike_rules/crowdstrike_detection_passthrough.yml: Low Severity Finding (FDREvent)":                                               "an FDR event field (Hostname) at the top level, not under event",
	"rules/crowdstrike_rules/crowdstrike_dns_request.yml: Denylisted Domain (but Non-DNS type) (FDREvent)":                                         "FDR event fields (RequestType, EffectiveTransmissionClass) at the top level, not under event",
	"rules/standard_rules/malicious_sso_dns_lookup.yml: Known good and malicious domain with Crowdstrike.FDREvent":                                 "FDR event fields at the top level, not under event",
	"rules/standard_rules/malicious_sso_dns_lookup.yml: non DnsRequest Crowdstrike.FDREvent event":                                                 "FDR event fields at the top level, not under event",
	"rules/gcp_audit_rules/gcp_access_attempts_violating_vpc_service_controls.yml: VPC control violation":                                          "protoPayload lacks @type, which every audit log entry has and Panther's schema requires",
	"rules/gcp_audit_rules/gcp_serviceusage_apikeys_create_privilege_escalation.yml: Log Without authorizationInfo":                                "resource lacks type, which Panther's schema requires",
	"rules/gcp_audit_rules/gcp_cloud_run_service_created.yml: GCP Run Service Not Created":                                                         "protoPayload.requestMetadata is a string; audit logs write an object",
	"rules/gcp_audit_rules/gcp_cloud_run_set_iam_policy.yml: GCP Run IAM Policy Not Set":                                                           "protoPayload.requestMetadata is a string; audit logs write an object",
	"rules/gcp_audit_rules/gcp_cloud_run_set_iam_policy.yml: No method provided":                                                                   "protoPayload.requestMetadata is a string; audit logs write an object",
	"rules/gcp_k8s_rules/gcp_k8s_service_type_node_port_deployed.yml: No Permission Granted":                                                       "a Kubernetes object's spec directly in protoPayload, where audit logs hold it in request or response",
	"rules/appomni_rules/appomni_alert_passthrough.yml: External App Install - Severity 3":                                                         "the record's @timestamp, which rows (Panther's and osprey's) hold as timestamp",
	"rules/intune_rules/intune_create_modify_client_app.yml: Add Mobile App":                                                                       "a malformed time in the Log: 2025-04-11:21:02.3387000Z",
}

// TestBuiltinPantherAnalysisLogs runs the Logs of panther-analysis' rule tests through the
// built-in log types that have no case in Panther's schema tests: every Log that holds its log
// type's required fields must parse, and the row must hold the Log's fields with their values
// (timestamps as instants, numbers as numbers). A Log of a text format is Panther's row of it,
// read by the JSON decoder of the same schema. The Logs that lack required fields are counted
// per type: panther_analysis_tool hands them to the rule as they are, and osprey detect test
// does too, but a source would not send them.
func TestBuiltinPantherAnalysisLogs(t *testing.T) {
	if _, err := os.Stat(analysis); err != nil {
		t.Skipf("panther-analysis is not at %s: %v", analysis, err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	withCases := map[string]bool{}
	if _, err := os.Stat(corpus); err == nil {
		cases, _ := pantherCases(t)
		for _, c := range cases {
			withCases[c.LogType] = true
		}
	}
	// A Log of a log type whose records are text (or a native format) is Panther's row, not a
	// record: it is read by the JSON decoder of the same schema.
	rows := logtypes.New()
	for _, lt := range reg.All() {
		if !lt.ReadsJSON() {
			s := *lt.Schema
			s.Parser = nil
			if err := rows.Add(&s, true); err != nil {
				t.Fatalf("%s read as JSON: %v", lt.Name, err)
			}
		}
	}
	parseTime := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	type tally struct{ logs, lacking, failed int }
	per := map[string]*tally{}
	var failures []string
	checked, failed := 0, 0
	explained := map[string]bool{}
	for _, l := range analysisLogs(t) {
		// The Log's own p_log_type names its type when the rule has several.
		name, _ := l.log["p_log_type"].(string)
		if name == "" || !slices.Contains(l.types, name) {
			if len(l.types) != 1 {
				continue
			}
			name = l.types[0]
		}
		if withCases[name] {
			continue
		}
		lt, err := reg.Lookup(name)
		if err != nil {
			continue // not built in: counted by TestBuiltinPantherRows' list
		}
		tl := per[name]
		if tl == nil {
			tl = &tally{}
			per[name] = tl
		}
		tl.logs++
		if missing := requiredMissing(lt, l.log); len(missing) > 0 {
			tl.lacking++
			continue
		}
		checked++
		input, err := json.Marshal(l.log)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(analysis, l.file)
		c := schematest.Case{Name: l.test, LogType: name, Input: string(input), Result: string(input), File: rel}
		with := reg
		if !lt.ReadsJSON() {
			with = rows
		}
		key := rel + ": " + l.test
		err = schematest.RunMatch(with, &c, parseTime, schematest.Holds)
		if reason, known := differentLogs[key]; known {
			explained[key] = true
			if err == nil {
				t.Errorf("%s: gives a row that holds it now; drop it from differentLogs (%s)", key, reason)
			} else {
				t.Logf("DIFFERENT %s: %s", key, reason)
			}
			continue
		}
		if err != nil {
			failed++
			tl.failed++
			var fe *schematest.Failure
			if errors.As(err, &fe) {
				fe.Case.Input = ""
			}
			failures = append(failures, err.Error())
		}
	}
	if len(per) == 0 {
		t.Fatal("no Log of panther-analysis is of a built-in log type without Panther cases")
	}
	t.Logf("panther-analysis Logs of %d built-in log types without Panther cases: %d hold their type's required fields, %d of them give rows that hold them, %d do not for the reasons given",
		len(per), checked, checked-failed-len(explained), len(explained))
	for _, name := range sortedKeys(per) {
		tl := per[name]
		t.Logf("%-40s %4d Logs, %4d lack required fields, %4d of the rest fail", name, tl.logs, tl.lacking, tl.failed)
	}
	for _, f := range failures {
		t.Logf("FAIL %s", f)
	}
	for key := range differentLogs {
		if !explained[key] {
			t.Errorf("%s: in differentLogs, but no such Log was checked", key)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d Logs that hold their type's required fields do not give rows that hold them (and are not among the %d explained)", failed, checked, len(differentLogs))
	}
}

var updateIndicators = flag.Bool("update-indicators", false, "rewrite README.md's list of the indicators osprey adds to Panther's schemas")

// indicatorPairs returns a schema's fields with indicators, as "path: indicator".
func indicatorPairs(fields []logschema.Field, prefix string, out map[string]bool) {
	for i := range fields {
		f := &fields[i]
		path := prefix + f.Name
		for v := &f.Value; v != nil; v = v.Element {
			for _, ind := range v.Indicators {
				out[path+": "+ind] = true
			}
			if len(v.Fields) > 0 {
				indicatorPairs(v.Fields, path+".", out)
			}
		}
	}
}

// TestExtraIndicatorsDocumented checks that README.md lists every indicator a built-in type
// has beyond those of Panther's schema file of the type (many are those Panther's parsers add
// in code, which its schema files do not show). -update-indicators rewrites the list.
func TestExtraIndicatorsDocumented(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Panther's schemas are not at %s: %v", corpus, err)
	}
	panther := logtypes.New()
	if _, err := panther.LoadDir(corpus); err != nil {
		t.Fatal(err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, lt := range reg.All() {
		p, err := panther.Lookup(lt.Name)
		if err != nil {
			continue
		}
		ours, theirs := map[string]bool{}, map[string]bool{}
		indicatorPairs(lt.Schema.Fields, "", ours)
		indicatorPairs(p.Schema.Fields, "", theirs)
		var extra []string
		for k := range ours {
			if !theirs[k] {
				extra = append(extra, "`"+strings.Replace(k, ": ", "` ", 1))
			}
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			fmt.Fprintf(&b, "- `%s`: %s\n", lt.Name, strings.Join(extra, ", "))
		}
	}
	const begin, end = "<!-- extra indicators: go test ./ingest/schema/schematest -run TestExtraIndicatorsDocumented -update-indicators -->\n", "<!-- end of extra indicators -->\n"
	got := readmetest.Section(t, filepath.Join("..", "..", "..", "README.md"), begin, end, b.String(), *updateIndicators)
	if got != b.String() {
		t.Errorf("README.md's list of extra indicators is out of date (run with -update-indicators); it should be:\n%s", b.String())
	}
}

// TestClassifyPantherInputs classifies the inputs of Panther's schema test cases, one stream
// of them all, among every built-in log type (osprey ingest without --log-type): each must be
// taken by the log type of its case (or one of the same shape: logtypes.SameShape).
func TestClassifyPantherInputs(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Panther's schemas are not at %s: %v", corpus, err)
	}
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	all := reg.All()
	cls, err := schematest.NewClassifier(all)
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	cases, _ := pantherCases(t)
	for _, c := range cases {
		var envelopes []string
		if lt, err := reg.Lookup(c.LogType); err == nil && lt.Envelope != "" {
			envelopes = []string{lt.Envelope}
		}
		recs, err := schematest.Records([]byte(c.Input), envelopes)
		if err != nil || len(recs) == 0 {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		rec := recs[0]
		winner := cls.Type(rec)
		if winner == c.LogType || logtypes.SameShapeAs(winner, c.LogType) {
			right++
		} else {
			t.Errorf("%s:%d: %s: a %s record is classified as %q", filepath.Base(c.File), c.Line, c.Name, c.LogType, winner)
		}
	}
	t.Logf("%d of %d inputs of Panther's cases classified to their case's log type among %d", right, len(cases), len(all))
}
