package detections

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadGood(t *testing.T) {
	set, err := Load("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(set.Rules), 2; got != want {
		t.Errorf("%d rules, want %d", got, want)
	}
	if got, want := len(set.ScheduledQueries), 2; got != want {
		t.Errorf("%d scheduled queries, want %d", got, want)
	}
	if got, want := len(set.ScheduledRules), 1; got != want {
		t.Errorf("%d scheduled rules, want %d", got, want)
	}

	r := set.Rules["Panther.Detection.Deleted"]
	if r == nil {
		t.Fatal("rule Panther.Detection.Deleted not loaded")
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("File", r.File, filepath.Join("testdata", "good", "rules", "panther_detection_deleted.yml"))
	check("Line", r.Line, 3)
	check("DisplayName", r.DisplayName, "Panther detection deleted")
	check("Enabled", r.Enabled, true)
	check("LogTypes", r.LogTypes, []string{"Panther.Audit"})
	check("Severity", r.Severity, SeverityMedium) // written "medium"
	check("DedupPeriodMinutes", r.DedupPeriodMinutes, 60)
	check("Threshold", r.Threshold, 1)
	check("Description", r.Description, "Someone deleted a detection. Deleting detections is a way to blind the security team.\n")
	check("Runbook", r.Runbook, "Confirm with the actor that the deletion was planned; restore the detection if not.")
	check("Reference", r.Reference, "https://docs.panther.com/system-configuration/panther-audit-logs")
	check("Tags", r.Tags, []string{"Panther", "Defense Evasion"})
	check("Reports", r.Reports, map[string][]string{"MITRE ATT&CK": {"TA0005:T1562.001"}})
	check("OutputIds", r.OutputIds, []string{"secops-slack"})
	check("Query", r.Query, "SELECT *, 'Detection deleted by ' || actor.name AS alert_title, actor.id AS alert_dedup\n"+
		"FROM panther_logs.panther_audit\n"+
		"WHERE actionName = 'DELETE_DETECTION' AND actionResult = 'SUCCEEDED'")
	if len(r.Tests) != 2 {
		t.Fatalf("%d tests, want 2", len(r.Tests))
	}
	t0, t1 := r.Tests[0], r.Tests[1]
	check("Tests[0].Name", t0.Name, "Deleting a detection alerts")
	check("Tests[0].Line", t0.Line, 23)
	check("Tests[0].ExpectedResult", t0.ExpectedResult, true)
	check("Tests[0].Log.actor", t0.Log["actor"], map[string]any{"id": "OrgSSO_carol@example.org", "name": "carol@example.org", "type": "USER"})
	check("Tests[0].Log.errors", t0.Log["errors"], nil)
	check("Tests[0].LogJSON", t0.LogJSON, `{"actionName":"DELETE_DETECTION","actionParams":{"input":{"detections":[{"id":"Okta.Admin.Role.Assigned"}]}},`+
		`"actionResult":"SUCCEEDED","actor":{"id":"OrgSSO_carol@example.org","name":"carol@example.org","type":"USER"},`+
		`"errors":null,"sourceIP":"198.51.100.23","timestamp":"2024-03-14 09:26:53.589"}`)
	check("Tests[1].Name", t1.Name, "A failed deletion does not alert")
	check("Tests[1].Line", t1.Line, 39)
	check("Tests[1].ExpectedResult", t1.ExpectedResult, false)
	check("Tests[1].LogJSON", t1.LogJSON, `{"XForwardedFor":["203.0.113.9"],"actionName":"DELETE_DETECTION","actionResult":"FAILED",`+
		`"actor":{"id":"OrgSSO_dave@example.org","name":"dave@example.org","type":"USER"},"pantherVersion":"1.98.2"}`)
	check("LogTypeTables", LogTypeTables(r), []string{"panther_audit"})

	// Defaults and normalisation.
	a := set.Rules["AWS.Root.ConsoleLogin"]
	if a == nil {
		t.Fatal("rule AWS.Root.ConsoleLogin not loaded")
	}
	check("AWS File", a.File, filepath.Join("testdata", "good", "rules", "root_console_login.yaml"))
	check("AWS Enabled", a.Enabled, false)
	check("AWS Severity", a.Severity, SeverityHigh) // written "HIGH"
	check("AWS Query", a.Query, "SELECT * FROM panther_logs.aws_cloudtrail WHERE eventName = 'ConsoleLogin' AND userIdentity.type = 'Root'")
	check("AWS Tests", len(a.Tests), 0)
	check("AWS LogTypeTables", LogTypeTables(a), []string{"aws_cloudtrail"}) // listed twice, once here

	q := set.ScheduledQueries["Detections deleted per actor"]
	if q == nil {
		t.Fatal("scheduled query not loaded")
	}
	check("query Line", q.Line, 2)
	check("query Enabled", q.Enabled, true)
	check("query Schedule", q.Schedule, Schedule{Line: 5, CronExpression: "15 * * * *", TimeoutMinutes: 5})
	check("query ResultTable", q.ResultTable, "deleted_detections_by_actor")
	check("query Tags", q.Tags, []string{"Panther"})
	check("query Query prefix", strings.HasPrefix(q.Query, "SELECT actor.name AS actor, count(*) AS deletions\nFROM panther_logs.panther_audit"), true)

	h := set.ScheduledQueries["Console logins"]
	if h == nil {
		t.Fatal("scheduled query Console logins not loaded")
	}
	check("rate Schedule", h.Schedule, Schedule{Line: 3, RateMinutes: 60, TimeoutMinutes: 30})
	check("rate ResultTable", h.ResultTable, "")

	sr := set.ScheduledRules["Panther.Detection.MassDeletion"]
	if sr == nil {
		t.Fatal("scheduled rule not loaded")
	}
	check("sched ScheduledQueries", sr.ScheduledQueries, []string{"Detections deleted per actor"})
	check("sched Severity", sr.Severity, SeverityHigh)
	check("sched DedupPeriodMinutes", sr.DedupPeriodMinutes, 1440)
	check("sched Threshold", sr.Threshold, 2)
	check("sched Line", sr.Line, 2)
	check("sched tests", len(sr.Tests), 2)
	if len(sr.Tests) == 2 {
		check("sched Tests[0].LogJSON", sr.Tests[0].LogJSON, `{"actor":"carol@example.org","deletions":12}`)
		check("sched Tests[1].ExpectedResult", sr.Tests[1].ExpectedResult, false)
	}
}

// badSpecs lists every error that testdata/bad must give: each file's errors, by line, each
// with a substring of its message. The test fails on a missing error and on an extra one.
var badSpecs = []struct {
	file string
	errs []lineMsg
}{
	{"bad_log_types.yml", []lineMsg{{3, `LogTypes: invalid log type "PantherAudit" (want a name such as AWS.CloudTrail)`}}},
	{"bad_names.yml", []lineMsg{{4, `ResultTable: invalid table name "Deleted-Detections"`}}},
	{"bad_severity.yml", []lineMsg{{4, `unknown Severity "Urgent" (want Info, Low, Medium, High or Critical)`}}},
	{"dup_a_query.yml", nil},
	{"dup_a_rule.yml", nil},
	{"dup_b_query.yml", []lineMsg{{3, `duplicate QueryName "Shared query" (also defined at testdata/bad/dup_a_query.yml:2)`}}},
	{"dup_b_rule.yml", []lineMsg{{3, `duplicate RuleID "Shared.RuleID" (also defined at testdata/bad/dup_a_rule.yml:2)`}}},
	{"dup_c_result_table.yml", []lineMsg{{2, `ResultTable "shared" is also written by scheduled query "Shared query" (testdata/bad/dup_a_query.yml:2)`}}},
	{"dup_key.yml", []lineMsg{{6, `mapping key "Severity" already defined at [4:1]`}}},
	{"empty.yml", []lineMsg{{1, "no spec in file"}}},
	{"empty_lists.yml", []lineMsg{{3, "ScheduledQueries: want at least one scheduled query"}}},
	{"empty_query.yml", []lineMsg{{4, "Query is empty"}}},
	{"missing_analysis_type.yml", []lineMsg{{1, "missing required key AnalysisType (want rule, scheduled_query or scheduled_rule)"}}},
	{"missing_keys.yml", []lineMsg{
		{2, "missing required key RuleID"},
		{2, "missing required key Severity"},
		{2, "missing required key Query"},
		{2, "missing required key LogTypes"},
	}},
	{"missing_query.yml", []lineMsg{{1, "missing required key Query"}}},
	{"not_a_mapping.yml", []lineMsg{{1, "a spec must be a mapping, not a list"}}},
	{"out_of_range.yml", []lineMsg{
		{5, "DedupPeriodMinutes: 2880 is out of range (want 1 to 1440)"},
		{6, "Threshold: 0 is out of range (want at least 1)"},
	}},
	{"schedule_both.yml", []lineMsg{
		{5, "Schedule: set one of CronExpression and RateMinutes, not both"},
		{7, "Schedule: TimeoutMinutes: 0 is out of range (want 1 to 1440)"},
	}},
	{"schedule_neither.yml", []lineMsg{
		{5, "Schedule: missing CronExpression or RateMinutes (set exactly one)"},
		{6, `Schedule: unknown key "Timezone"`},
	}},
	{"schedule_rate_zero.yml", []lineMsg{
		{4, "Schedule: RateMinutes: 0 is out of range (want at least 1)"},
		{4, "Schedule: TimeoutMinutes: 1441 is out of range (want 1 to 1440)"},
	}},
	{"syntax_error.yml", []lineMsg{{4, "']' must be specified"}}},
	{"test_problems.yml", []lineMsg{
		{7, "Tests[0]: missing required key Name"},
		{9, "Tests[1]: missing required key ExpectedResult"},
		{9, "Tests[1]: missing required key Log"},
		{12, "Tests[2]: Log: want a mapping (a JSON object), got a string"},
		{13, `Tests[3]: Name "no result and no log" repeats the test on line 9`},
		{14, "Tests[3]: ExpectedResult: want a boolean (true or false), got a string"},
		{16, "Tests[4]: want a mapping with Name, ExpectedResult and Log, got a string"},
	}},
	{"two_documents.yml", []lineMsg{{6, "a second YAML document: put one spec in each file"}}},
	{"unknown_analysis_type.yml", []lineMsg{{1, `unknown AnalysisType "policy" (want rule, scheduled_query or scheduled_rule)`}}},
	{"unknown_keys.yml", []lineMsg{
		{3, `unknown key "Filename" (Osprey detections are SQL: put the query in Query)`},
		{6, `unknown key "severity" (did you mean Severity?)`},
		{7, `unknown key "Owner"`},
		{12, `Tests[0]: unknown key "Mocks"`},
	}},
	// "Both schedules" exists, though with mistakes of its own, so it is not reported unknown.
	{"unknown_scheduled_query.yml", []lineMsg{{5, `ScheduledQueries: unknown scheduled query "No such query"`}}},
	{"wrong_types.yml", []lineMsg{
		{3, "Enabled: want a boolean (true or false), got a string"},
		{4, "LogTypes[1]: want a string, got an integer"},
		{6, "DedupPeriodMinutes: want an integer, got a string"},
		{7, "Tags: want a list of strings, got a string"},
		{9, "Reports: MITRE ATT&CK: want a list of strings, got a string"},
		{10, "Query: want a string, got a list"},
	}},
	{"wrong_list_key.yml", []lineMsg{
		{1, "missing required key ScheduledQueries"},
		{3, `unknown key "LogTypes" (a scheduled_rule reads ScheduledQueries, not LogTypes)`},
	}},
}

type lineMsg struct {
	line int
	msg  string
}

func TestLoadBad(t *testing.T) {
	dir := filepath.Join("testdata", "bad")
	set, err := Load(dir)
	if set != nil {
		t.Errorf("Load returned a set with its errors")
	}
	if err == nil {
		t.Fatal("no error")
	}
	byFile := map[string][]*Error{}
	for _, e := range unjoin(err) {
		var serr *Error
		if !errors.As(e, &serr) {
			t.Errorf("error %q is a %T, not an *Error", e, e)
			continue
		}
		byFile[serr.File] = append(byFile[serr.File], serr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	if len(files) != len(badSpecs) {
		t.Errorf("testdata/bad has %d files, the table %d", len(files), len(badSpecs))
	}
	for _, tc := range badSpecs {
		file := filepath.Join(dir, tc.file)
		t.Run(strings.TrimSuffix(tc.file, ".yml"), func(t *testing.T) {
			if _, err := os.Stat(file); err != nil {
				t.Fatal(err)
			}
			got := byFile[file]
			delete(byFile, file)
			used := make([]bool, len(got))
		want:
			for _, w := range tc.errs {
				prefix := file + ":" + strconv.Itoa(w.line) + ": "
				for i, g := range got {
					if !used[i] && strings.HasPrefix(g.Error(), prefix) && strings.Contains(g.Msg, w.msg) {
						used[i] = true
						continue want
					}
				}
				t.Errorf("missing error %s%s", prefix, w.msg)
			}
			for i, g := range got {
				if !used[i] {
					t.Errorf("unexpected error %s", g)
				}
			}
		})
	}
	for file, errs := range byFile {
		for _, e := range errs {
			t.Errorf("error in %s, a file the table does not list: %s", file, e)
		}
	}
}

// unjoin returns the errors joined in err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadErrorsSorted(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad"))
	errs := unjoin(err)
	for i := 1; i < len(errs); i++ {
		a, b := errs[i-1].(*Error), errs[i].(*Error)
		if a.File > b.File || (a.File == b.File && a.Line > b.Line) {
			t.Errorf("error %q comes before %q", a, b)
		}
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadAnchorsAndMergeKeys(t *testing.T) {
	dir := writeFiles(t, map[string]string{"r.yml": `AnalysisType: rule
RuleID: Anchors
LogTypes: &types [Okta.SystemLog]
Severity: Low
Query: SELECT * FROM panther_logs.okta_systemlog
Tags: *types
Tests:
  - &base
    Name: base
    ExpectedResult: true
    Log: &log {eventType: user.session.start, actor: {alternateId: erin@example.org}, n: !!str 42}
  - <<: *base
    Name: same log, other name
    Log:
      <<: *log
      eventType: user.session.end
`})
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules["Anchors"]
	if got, want := r.Tags, []string{"Okta.SystemLog"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tags = %v, want %v", got, want)
	}
	if len(r.Tests) != 2 {
		t.Fatalf("%d tests, want 2", len(r.Tests))
	}
	if got, want := r.Tests[0].LogJSON, `{"actor":{"alternateId":"erin@example.org"},"eventType":"user.session.start","n":"42"}`; got != want {
		t.Errorf("Tests[0].LogJSON = %s, want %s", got, want)
	}
	t1 := r.Tests[1]
	if got, want := t1.LogJSON, `{"actor":{"alternateId":"erin@example.org"},"eventType":"user.session.end","n":"42"}`; got != want {
		t.Errorf("Tests[1].LogJSON = %s, want %s", got, want)
	}
	if t1.Name != "same log, other name" || !t1.ExpectedResult {
		t.Errorf("Tests[1] = %q, %v; want the merged ExpectedResult true", t1.Name, t1.ExpectedResult)
	}
}

func TestLoadNumbersInLogs(t *testing.T) {
	dir := writeFiles(t, map[string]string{"r.yml": `AnalysisType: rule
RuleID: Numbers
LogTypes: [Custom.App]
Severity: Info
Query: SELECT 1
Tests:
  - Name: numbers
    ExpectedResult: false
    Log: {"int": -3, "big": 18446744073709551615, "float": 1.5, "bool": true, "list": [1, "a", null]}
`})
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := set.Rules["Numbers"].Tests[0].LogJSON
	want := `{"big":18446744073709551615,"bool":true,"float":1.5,"int":-3,"list":[1,"a",null]}`
	if got != want {
		t.Errorf("LogJSON = %s, want %s", got, want)
	}
}

func TestLoadFiles(t *testing.T) {
	files := []string{
		filepath.Join("testdata", "good", "rules", "mass_deletion.yml"),
		filepath.Join("testdata", "good", "queries", "deleted_per_actor.yml"),
	}
	set, err := LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.ScheduledRules) != 1 || len(set.ScheduledQueries) != 1 || len(set.Rules) != 0 {
		t.Errorf("LoadFiles = %+v", set)
	}
	// Without its scheduled query, the scheduled rule names an unknown query.
	_, err = LoadFiles(files[0])
	want := files[0] + ":5: ScheduledQueries: unknown scheduled query \"Detections deleted per actor\""
	if err == nil || err.Error() != want {
		t.Errorf("LoadFiles(%s) error = %v, want %s", files[0], err, want)
	}
}

func TestLoadEmptyAndMissingDir(t *testing.T) {
	set, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules)+len(set.ScheduledQueries)+len(set.ScheduledRules) != 0 {
		t.Errorf("specs from an empty directory: %+v", set)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("no error for a missing directory")
	}
}

// TestDocExamples loads the examples of the package comment.
func TestDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	var block []string
	flush := func() {
		if len(block) > 0 {
			files["spec"+strconv.Itoa(len(files)+1)+".yml"] = strings.Join(block, "\n") + "\n"
			block = nil
		}
	}
	for _, l := range strings.Split(string(src), "\n") {
		if text, ok := strings.CutPrefix(l, "//\t"); ok {
			block = append(block, text)
		} else {
			flush()
		}
	}
	flush()
	if len(files) != 3 {
		t.Fatalf("%d examples in doc.go, want 3", len(files))
	}
	set, err := Load(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules["Panther.Detection.Deleted"]
	if r == nil || len(r.Tests) != 2 || !strings.Contains(r.Query, "DELETE_DETECTION") {
		t.Fatalf("doc rule = %+v", r)
	}
	if len(set.ScheduledQueries) != 1 || len(set.ScheduledRules) != 1 {
		t.Errorf("doc examples: %d scheduled queries and %d scheduled rules, want 1 and 1",
			len(set.ScheduledQueries), len(set.ScheduledRules))
	}
}

func TestTableName(t *testing.T) {
	for in, want := range map[string]string{
		"Panther.Audit":  "panther_audit",
		"AWS.CloudTrail": "aws_cloudtrail",
		"Microsoft365.Audit.AzureActiveDirectory": "microsoft365_audit_azureactivedirectory",
		"Custom.My-App": "custom_my_app",
	} {
		if got := TableName(in); got != want {
			t.Errorf("TableName(%q) = %q, want %q", in, got, want)
		}
	}
	r := &Rule{LogTypes: []string{"AWS.CloudTrail", "Panther.Audit", "aws.cloudtrail"}}
	if got, want := LogTypeTables(r), []string{"aws_cloudtrail", "panther_audit"}; !reflect.DeepEqual(got, want) {
		t.Errorf("LogTypeTables = %v, want %v", got, want)
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{
		"info": SeverityInfo, "LOW": SeverityLow, "Medium": SeverityMedium, "hIgH": SeverityHigh,
		"critical": SeverityCritical, "urgent": "", "": "",
	} {
		got, ok := ParseSeverity(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yml", Line: 3, Msg: "bad"}, "a.yml:3: bad"},
		{Error{File: "a.yml", Msg: "bad"}, "a.yml: bad"},
		{Error{Line: 3, Msg: "bad"}, "line 3: bad"},
		{Error{Msg: "bad"}, "bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestLoadFSAndQueryLine(t *testing.T) {
	fsys := fstest.MapFS{
		"pack/rule.yml": {Data: []byte(`AnalysisType: rule
RuleID: Test.Rule
LogTypes: [Panther.Audit]
Severity: Low
Query: |
  SELECT * FROM panther_logs.panther_audit
`)},
		"pack/.hidden.yml": {Data: []byte("not: a spec")},
		"pack/query.yml": {Data: []byte(`AnalysisType: scheduled_query
QueryName: Q
Schedule: {RateMinutes: 5}
Description: x
Query: SELECT 1
`)},
	}
	set, err := LoadFS(fsys, "pack")
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules["Test.Rule"]
	if r == nil || r.File != "pack/rule.yml" || r.QueryLine != 5 {
		t.Fatalf("rule = %+v, want file pack/rule.yml and QueryLine 5", r)
	}
	if q := set.ScheduledQueries["Q"]; q == nil || q.QueryLine != 5 {
		t.Fatalf("scheduled query = %+v, want QueryLine 5", q)
	}
	fsys["pack/bad.yml"] = &fstest.MapFile{Data: []byte("AnalysisType: rule\nRuleID: X\nBogus: 1\n")}
	if _, err := LoadFS(fsys, "pack"); err == nil || !strings.Contains(err.Error(), "pack/bad.yml:3:") {
		t.Fatalf("err = %v, want an error at pack/bad.yml:3", err)
	}
}

// LoadDirs merges directories, and refuses a rule id defined in two of them.
func TestLoadDirs(t *testing.T) {
	other := t.TempDir()
	spec := "AnalysisType: rule\nRuleID: Other.Rule\nLogTypes: [Panther.Audit]\nSeverity: Low\nQuery: SELECT * FROM panther_logs.panther_audit\n"
	if err := os.WriteFile(filepath.Join(other, "other.yml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := Load("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	set, err := LoadDirs([]string{"testdata/good", other})
	if err != nil {
		t.Fatal(err)
	}
	if set.Rules["Other.Rule"] == nil || len(set.Rules) != len(good.Rules)+1 || len(set.ScheduledQueries) != len(good.ScheduledQueries) || len(set.ScheduledRules) != len(good.ScheduledRules) {
		t.Errorf("merged %d rules, %d queries, %d scheduled rules; want testdata/good's (%d, %d, %d) and Other.Rule",
			len(set.Rules), len(set.ScheduledQueries), len(set.ScheduledRules), len(good.Rules), len(good.ScheduledQueries), len(good.ScheduledRules))
	}
	if _, err := LoadDirs([]string{other, other}); err == nil || !strings.Contains(err.Error(), "is also defined in") {
		t.Errorf("a directory loaded twice: got %v, want a rule defined twice", err)
	}
}
