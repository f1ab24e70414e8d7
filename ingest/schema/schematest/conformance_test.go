package schematest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
)

// corpus is Panther's schemas and their tests, kept beside the project (never copied into it).
const corpus = "../../../../shared/corpora/panther-schemas"

// minPassRate is the share of Panther's test cases osprey must reproduce.
const minPassRate = 0.95

// TestPantherConformance loads every schema of Panther's corpus, runs every test case and
// compares each row, p_any_* fields included, with Panther's expected result. Every failing
// case is listed with its reason.
func TestPantherConformance(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Panther's schemas are not at %s: %v", corpus, err)
	}
	reg := logtypes.New()
	added, err := reg.LoadDir(corpus)
	if err != nil {
		t.Errorf("loading Panther's schemas: %v", err)
	}
	if len(added) != 90 {
		t.Errorf("loaded %d schemas, want all 90", len(added))
	}
	cases, files := pantherCases(t)
	if len(cases) < 150 {
		t.Fatalf("read %d test cases from %d files, want about 199", len(cases), files)
	}
	parseTime := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var failures []string
	for i := range cases {
		c := &cases[i]
		if err := schematest.Run(reg, c, parseTime); err != nil {
			rel, _ := filepath.Rel(corpus, c.File)
			failures = append(failures, strings.Replace(err.Error(), c.File, rel, 1))
		}
	}
	passed := len(cases) - len(failures)
	rate := float64(passed) / float64(len(cases))
	t.Logf("Panther conformance: %d of %d cases pass (%.1f%%), %d files", passed, len(cases), 100*rate, files)
	for _, f := range failures {
		t.Logf("FAIL %s", f)
	}
	if rate < minPassRate {
		t.Errorf("pass rate %.1f%% is below %.0f%%", 100*rate, 100*minPassRate)
	}

	// Panther v1's parser tests, run with the same schemas.
	v1, _ := filepath.Glob(filepath.Join(corpus, "..", "panther-v1-parser-tests", "*_tests.yml"))
	var v1Cases, v1Failed int
	for _, f := range v1 {
		cs, err := schematest.LoadFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for i := range cs {
			v1Cases++
			if err := schematest.Run(reg, &cs[i], parseTime); err != nil {
				v1Failed++
				t.Logf("FAIL %v", err)
			}
		}
	}
	if len(v1) > 0 {
		t.Logf("Panther v1 parser tests: %d of %d cases pass, %d files", v1Cases-v1Failed, v1Cases, len(v1))
		if v1Failed > 0 {
			t.Errorf("%d of Panther v1's parser tests fail", v1Failed)
		}
	}
}
