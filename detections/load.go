package detections

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

var (
	detectionKeys = []string{
		"AnalysisType", "RuleID", "DisplayName", "Enabled", "Severity", "DedupPeriodMinutes",
		"Threshold", "Description", "Runbook", "Reference", "Tags", "Reports", "OutputIds",
		"Query", "Tests",
	}
	ruleKeys           = append(detectionKeys[:len(detectionKeys):len(detectionKeys)], "LogTypes")
	scheduledRuleKeys  = append(detectionKeys[:len(detectionKeys):len(detectionKeys)], "ScheduledQueries")
	scheduledQueryKeys = []string{
		"AnalysisType", "QueryName", "Enabled", "Description", "Query", "Schedule", "Tags",
		"ResultTable",
	}
	scheduleKeys = []string{"CronExpression", "RateMinutes", "TimeoutMinutes"}
	testKeys     = []string{"Name", "ExpectedResult", "Log"}

	// logTypeRE is the form of a log type name (logschema's schema names).
	logTypeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$`)
	// tableRE is the form of a lake table name (lake.CheckName).
	tableRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Load reads every spec file (*.yml and *.yaml, one spec each) under dir and its
// subdirectories, in the order of their sorted paths, skipping files and directories whose
// names start with a dot. It checks each spec and the specs together (unique RuleID and
// QueryName, scheduled queries named by scheduled rules) and returns every problem found,
// joined with errors.Join, each as an *Error with its file and line, sorted by file and line.
// On error the Set is nil.
func Load(dir string) (*Set, error) {
	files, err := specFiles(dir, filepath.WalkDir)
	if err != nil {
		return nil, err
	}
	return LoadFiles(files...)
}

// LoadDirs loads the specs of several directories into one set. A rule id defined twice is an
// error.
func LoadDirs(dirs []string) (*Set, error) {
	set := &Set{Rules: map[string]*Rule{}, ScheduledQueries: map[string]*ScheduledQuery{}, ScheduledRules: map[string]*ScheduledRule{}}
	for _, dir := range dirs {
		s, err := Load(dir)
		if err != nil {
			return nil, err
		}
		if had, r := set.Merge(s); r != nil {
			return nil, fmt.Errorf("%s:%d: rule %s is also defined in %s:%d", r.File, r.Line, r.RuleID, had.File, had.Line)
		}
	}
	return set, nil
}

// Merge adds the specs of o to s. A rule of o whose id s has already stops it: it returns s's
// rule and o's (nil, nil when every rule was added).
func (s *Set) Merge(o *Set) (had, dup *Rule) {
	for id, r := range o.Rules {
		if prev, ok := s.Rules[id]; ok {
			return prev, r
		}
		s.Rules[id] = r
	}
	maps.Copy(s.ScheduledQueries, o.ScheduledQueries)
	maps.Copy(s.ScheduledRules, o.ScheduledRules)
	return nil, nil
}

// specFiles lists the spec files under root with walk (filepath.WalkDir, or fs.WalkDir of a
// file system), skipping names that start with a dot.
func specFiles(root string, walk func(string, fs.WalkDirFunc) error) ([]string, error) {
	var files []string
	err := walk(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() && isSpecFile(path) {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

func isSpecFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yml" || ext == ".yaml"
}

// LoadFS is Load for a directory of a file system (an embedded pack of detections): it reads
// every spec file under root, skipping names that start with a dot. Errors name the files by
// their paths in fsys.
func LoadFS(fsys fs.FS, root string) (*Set, error) {
	files, err := specFiles(root, func(root string, fn fs.WalkDirFunc) error { return fs.WalkDir(fsys, root, fn) })
	if err != nil {
		return nil, err
	}
	return load(files, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
}

// LoadFiles is Load for a list of files: it reads them in sorted order, checks them, and
// returns the Set or every problem found.
func LoadFiles(files ...string) (*Set, error) {
	return load(files, os.ReadFile)
}

func load(files []string, read func(string) ([]byte, error)) (*Set, error) {
	files = append([]string(nil), files...)
	sort.Strings(files)
	l := loader{set: &Set{
		Rules:            map[string]*Rule{},
		ScheduledQueries: map[string]*ScheduledQuery{},
		ScheduledRules:   map[string]*ScheduledRule{},
	}}
	for _, f := range files {
		data, err := read(f)
		if err != nil {
			return nil, err
		}
		spec, errs := parseSpec(data, f)
		l.add(spec, len(errs) > 0)
		l.errs = append(l.errs, errs...)
	}
	l.crossCheck()
	if len(l.errs) > 0 {
		sortErrors(l.errs)
		errs := make([]error, len(l.errs))
		for i, e := range l.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return l.set, nil
}

// loader gathers the specs of several files and checks them together. It keeps the specs that
// have mistakes of their own too, so that they still count for the checks across files (a
// scheduled rule naming a scheduled query with a bad schedule is not told the query is unknown).
type loader struct {
	set        *Set
	errs       []*Error
	detections map[string]*Detection // by RuleID, rules and scheduled rules
	queries    map[string]*ScheduledQuery
	results    map[string]*ScheduledQuery // by ResultTable
	schedRules []*ScheduledRule
}

func (l *loader) errorf(file string, line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) add(spec any, bad bool) {
	if l.detections == nil {
		l.detections = map[string]*Detection{}
		l.queries = map[string]*ScheduledQuery{}
		l.results = map[string]*ScheduledQuery{}
	}
	switch s := spec.(type) {
	case *Rule:
		if l.addDetection(&s.Detection) && !bad {
			l.set.Rules[s.RuleID] = s
		}
	case *ScheduledRule:
		l.schedRules = append(l.schedRules, s)
		if l.addDetection(&s.Detection) && !bad {
			l.set.ScheduledRules[s.RuleID] = s
		}
	case *ScheduledQuery:
		if s.QueryName == "" {
			return
		}
		if first, dup := l.queries[s.QueryName]; dup {
			l.errorf(s.File, s.Line, "duplicate QueryName %q (also defined at %s:%d)", s.QueryName, first.File, first.Line)
			return
		}
		l.queries[s.QueryName] = s
		if s.ResultTable != "" {
			if first, dup := l.results[s.ResultTable]; dup {
				l.errorf(s.File, s.Line, "ResultTable %q is also written by scheduled query %q (%s:%d)",
					s.ResultTable, first.QueryName, first.File, first.Line)
			} else {
				l.results[s.ResultTable] = s
			}
		}
		if !bad {
			l.set.ScheduledQueries[s.QueryName] = s
		}
	}
}

// addDetection records a RuleID, reporting a repeat. It returns false for a repeat.
func (l *loader) addDetection(d *Detection) bool {
	if d.RuleID == "" {
		return false
	}
	if first, dup := l.detections[d.RuleID]; dup {
		l.errorf(d.File, d.Line, "duplicate RuleID %q (also defined at %s:%d)", d.RuleID, first.File, first.Line)
		return false
	}
	l.detections[d.RuleID] = d
	return true
}

func (l *loader) crossCheck() {
	for _, sr := range l.schedRules {
		for i, name := range sr.ScheduledQueries {
			if _, ok := l.queries[name]; !ok {
				l.errorf(sr.File, sr.queryLines[i], "ScheduledQueries: unknown scheduled query %q", name)
			}
		}
	}
}

// parseSpec reads the spec in one file. It returns the spec (*Rule, *ScheduledQuery or
// *ScheduledRule, filled as far as it could be read; nil if its type is unknown) and its
// mistakes.
func parseSpec(data []byte, file string) (any, []*Error) {
	r := &reader{file: file}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, []*Error{yamlError(file, err)}
	}
	var docs []ast.Node
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d.Body)
		}
	}
	switch {
	case len(docs) == 0:
		r.errorf(1, "no spec in file (want a mapping with AnalysisType: %s, %s or %s)", TypeRule, TypeScheduledQuery, TypeScheduledRule)
		return nil, r.errs
	case len(docs) > 1:
		r.errorf(line(docs[1]), "a second YAML document: put one spec in each file")
		return nil, r.errs
	}
	r.collectAnchors(docs[0])
	m := r.mapping(docs[0], "")
	if m == nil {
		body, _ := r.resolve(docs[0])
		r.errorf(line(body), "a spec must be a mapping, not %s", kind(body))
		return nil, r.errs
	}
	at, _, ok := m.str("AnalysisType")
	if !ok {
		if _, present := m.get("AnalysisType"); !present {
			r.errorf(m.line, "missing required key AnalysisType (want %s, %s or %s)", TypeRule, TypeScheduledQuery, TypeScheduledRule)
		}
		return nil, r.errs
	}
	var spec any
	switch at {
	case TypeRule:
		m.checkKeys(ruleKeys, map[string]string{"ScheduledQueries": "only a scheduled_rule reads scheduled queries"})
		rule := &Rule{}
		r.detection(m, &rule.Detection)
		rule.LogTypes, rule.LogTypeLines = r.logTypes(m)
		spec = rule
	case TypeScheduledRule:
		m.checkKeys(scheduledRuleKeys, map[string]string{"LogTypes": "a scheduled_rule reads ScheduledQueries, not LogTypes"})
		sr := &ScheduledRule{}
		r.detection(m, &sr.Detection)
		sr.ScheduledQueries, sr.queryLines = r.queryNames(m)
		spec = sr
	case TypeScheduledQuery:
		m.checkKeys(scheduledQueryKeys, nil)
		spec = r.scheduledQuery(m)
	default:
		e := m.entries["AnalysisType"]
		r.errorf(line(e.value), "unknown AnalysisType %q (want %s, %s or %s)", at, TypeRule, TypeScheduledQuery, TypeScheduledRule)
		return nil, r.errs
	}
	return spec, r.errs
}

// id reads the required key that names a spec (RuleID, QueryName) and returns its line.
func (r *reader) id(m *mapNode, key string) (string, int) {
	s, e, ok := m.reqStr(key)
	if !ok {
		return "", m.line
	}
	if strings.TrimSpace(s) == "" {
		r.errorf(e.keyLine, "%s is empty", key)
		return "", e.keyLine
	}
	return s, e.keyLine
}

// query reads the required Query and returns the line of its key.
func (r *reader) query(m *mapNode) (string, int) {
	q, e, ok := m.reqStr("Query")
	if !ok {
		return "", 0
	}
	q = strings.TrimSpace(q)
	if q == "" {
		r.errorf(e.keyLine, "Query is empty")
	}
	return q, e.keyLine
}

func (r *reader) detection(m *mapNode, d *Detection) {
	d.File = r.file
	d.RuleID, d.Line = r.id(m, "RuleID")
	d.DisplayName, _, _ = m.str("DisplayName")
	d.Enabled, _, _ = m.boolean("Enabled", true)
	if s, e, ok := m.reqStr("Severity"); ok {
		if sev, ok := ParseSeverity(s); ok {
			d.Severity = sev
		} else {
			r.errorf(line(e.value), "unknown Severity %q (want Info, Low, Medium, High or Critical)", s)
		}
	}
	var e entry
	d.DedupPeriodMinutes, e, _ = m.integer("DedupPeriodMinutes", DefaultDedupPeriodMinutes)
	if d.DedupPeriodMinutes < 1 || d.DedupPeriodMinutes > MaxDedupPeriodMinutes {
		r.errorf(line(e.value), "DedupPeriodMinutes: %d is out of range (want 1 to %d)", d.DedupPeriodMinutes, MaxDedupPeriodMinutes)
	}
	d.Threshold, e, _ = m.integer("Threshold", DefaultThreshold)
	if d.Threshold < 1 {
		r.errorf(line(e.value), "Threshold: %d is out of range (want at least 1)", d.Threshold)
	}
	d.Description, _, _ = m.str("Description")
	d.Runbook, _, _ = m.str("Runbook")
	d.Reference, _, _ = m.str("Reference")
	d.Tags, _, _ = m.strList("Tags")
	d.Reports = m.stringLists("Reports")
	d.OutputIds, _, _ = m.strList("OutputIds")
	d.Query, d.QueryLine = r.query(m)
	d.Tests = r.tests(m)
}

func (r *reader) logTypes(m *mapNode) ([]string, []int) {
	if _, ok := m.get("LogTypes"); !ok {
		m.missing("LogTypes")
		return nil, nil
	}
	list, lines, ok := m.strList("LogTypes")
	if ok && len(list) == 0 {
		r.errorf(m.entries["LogTypes"].keyLine, "LogTypes: want at least one log type")
	}
	for i, lt := range list {
		if !logTypeRE.MatchString(lt) {
			r.errorf(lines[i], "LogTypes: invalid log type %q (want a name such as AWS.CloudTrail)", lt)
		}
	}
	return list, lines
}

func (r *reader) queryNames(m *mapNode) ([]string, []int) {
	if _, ok := m.get("ScheduledQueries"); !ok {
		m.missing("ScheduledQueries")
		return nil, nil
	}
	list, lines, ok := m.strList("ScheduledQueries")
	if ok && len(list) == 0 {
		r.errorf(m.entries["ScheduledQueries"].keyLine, "ScheduledQueries: want at least one scheduled query")
	}
	return list, lines
}

func (r *reader) tests(m *mapNode) []RuleTest {
	e, ok := m.get("Tests")
	if !ok {
		return nil
	}
	v, _ := r.resolve(e.value)
	seq, ok := v.(*ast.SequenceNode)
	if !ok {
		m.wrongType("Tests", e, "a list of tests")
		return nil
	}
	var tests []RuleTest
	names := map[string]int{}
	for i, item := range seq.Values {
		prefix := fmt.Sprintf("Tests[%d]: ", i)
		tm := r.mapping(item, prefix)
		if tm == nil {
			it, _ := r.resolve(item)
			r.errorf(line(item), "%swant a mapping with Name, ExpectedResult and Log, got %s", prefix, kind(it))
			continue
		}
		tm.checkKeys(testKeys, nil)
		t := RuleTest{Line: tm.line}
		if name, ne, ok := tm.reqStr("Name"); ok {
			t.Name = name
			if first, dup := names[name]; dup {
				r.errorf(ne.keyLine, "%sName %q repeats the test on line %d", prefix, name, first)
			} else {
				names[name] = ne.keyLine
			}
		}
		if _, ok := tm.get("ExpectedResult"); !ok {
			tm.missing("ExpectedResult")
		} else {
			t.ExpectedResult, _, _ = tm.boolean("ExpectedResult", false)
		}
		t.Log, t.LogJSON = r.testLog(tm)
		tests = append(tests, t)
	}
	return tests
}

func (r *reader) testLog(tm *mapNode) (map[string]any, string) {
	e, ok := tm.get("Log")
	if !ok {
		tm.missing("Log")
		return nil, ""
	}
	if v, _ := r.resolve(e.value); kind(v) != "a mapping" {
		tm.wrongType("Log", e, "a mapping (a JSON object)")
		return nil, ""
	}
	x, err := r.value(e.value, 0)
	if err != nil {
		r.errorf(line(e.value), "%sLog: %v", tm.prefix, err)
		return nil, ""
	}
	obj, _ := x.(map[string]any)
	b, err := json.Marshal(obj)
	if err != nil {
		r.errorf(line(e.value), "%sLog: cannot be written as JSON: %v", tm.prefix, err)
		return obj, ""
	}
	return obj, string(b)
}

func (r *reader) scheduledQuery(m *mapNode) *ScheduledQuery {
	q := &ScheduledQuery{File: r.file}
	q.QueryName, q.Line = r.id(m, "QueryName")
	q.Enabled, _, _ = m.boolean("Enabled", true)
	q.Description, _, _ = m.str("Description")
	q.Query, q.QueryLine = r.query(m)
	q.Tags, _, _ = m.strList("Tags")
	if s, e, ok := m.str("ResultTable"); ok {
		if tableRE.MatchString(s) {
			q.ResultTable = s
		} else {
			r.errorf(line(e.value), "ResultTable: invalid table name %q (want lowercase letters, digits and _, starting with a letter)", s)
		}
	}
	e, ok := m.get("Schedule")
	if !ok {
		m.missing("Schedule")
		return q
	}
	sm := r.mapping(e.value, "Schedule: ")
	if sm == nil {
		m.wrongType("Schedule", e, "a mapping with CronExpression or RateMinutes")
		return q
	}
	sm.checkKeys(scheduleKeys, nil)
	s := &q.Schedule
	s.Line = sm.line
	cron, ce, hasCron := sm.str("CronExpression")
	if hasCron {
		s.CronExpression = strings.TrimSpace(cron)
		if s.CronExpression == "" {
			r.errorf(ce.keyLine, "Schedule: CronExpression is empty")
		}
	}
	rate, re, hasRate := sm.integer("RateMinutes", 0)
	if hasRate {
		s.RateMinutes = rate
		if rate < 1 {
			r.errorf(line(re.value), "Schedule: RateMinutes: %d is out of range (want at least 1)", rate)
		}
	}
	_, cronPresent := sm.get("CronExpression")
	_, ratePresent := sm.get("RateMinutes")
	switch {
	case cronPresent && ratePresent:
		r.errorf(sm.line, "Schedule: set one of CronExpression and RateMinutes, not both")
	case !cronPresent && !ratePresent:
		r.errorf(sm.line, "Schedule: missing CronExpression or RateMinutes (set exactly one)")
	}
	var te entry
	s.TimeoutMinutes, te, _ = sm.integer("TimeoutMinutes", DefaultTimeoutMinutes)
	if s.TimeoutMinutes < 1 || s.TimeoutMinutes > MaxTimeoutMinutes {
		r.errorf(line(te.value), "Schedule: TimeoutMinutes: %d is out of range (want 1 to %d)", s.TimeoutMinutes, MaxTimeoutMinutes)
	}
	return q
}
