package logtypes_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/ingest/schema/schematest"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from the samples")

// samples holds the sample logs of every built-in log type, written for this project:
// <table>.<ext>, one file or more per log type.
const samples = "../../../testdata/samples"

// goldenTime is the parse time of golden rows (and the year of syslog RFC 3164 timestamps).
var goldenTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// sampleRecords returns the records of a log type's sample files, as cases without results.
func sampleRecords(t *testing.T, lt *logtypes.LogType) []schematest.Case {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(samples, lt.Table.Table+".*"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []schematest.Case
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var envelopes []string
		if lt.Envelope != "" {
			envelopes = []string{lt.Envelope}
		}
		recs, err := schematest.Records(data, envelopes)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, r := range recs {
			cases = append(cases, schematest.Case{
				Name:    fmt.Sprintf("%s record %d", filepath.Base(f), i+1),
				LogType: lt.Name,
				Input:   string(r),
			})
		}
	}
	return cases
}

// dataRecords leaves out the records that hold no data (a CSV header).
func dataRecords(t *testing.T, lt *logtypes.LogType, cases []schematest.Case) []schematest.Case {
	t.Helper()
	out := cases[:0]
	for _, c := range cases {
		rows, err := schematest.Rows(lt, []byte(c.Input), goldenTime)
		if err != nil || len(rows) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// TestGolden parses the sample logs of every built-in log type and compares each row with the
// golden file testdata/<table>_tests.yml (Panther's test format: osprey schema test runs it
// too). go test -run TestGolden -update rewrites the golden files.
func TestGolden(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range reg.All() {
		t.Run(lt.Name, func(t *testing.T) {
			cases := dataRecords(t, lt, sampleRecords(t, lt))
			if len(cases) < 3 {
				t.Fatalf("%d sample records in %s/%s.*, want at least 3", len(cases), samples, lt.Table.Table)
			}
			golden := filepath.Join("testdata", lt.Table.Table+"_tests.yml")
			if *update {
				for i := range cases {
					rows, err := schematest.Rows(lt, []byte(cases[i].Input), goldenTime)
					if err != nil {
						t.Fatalf("%s: %v", cases[i].Name, err)
					}
					for _, r := range rows {
						cases[i].Results = append(cases[i].Results, string(trimRun(r)))
					}
				}
				if err := os.WriteFile(golden, schematest.Format(cases), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := schematest.LoadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update writes it)", err)
			}
			if len(want) != len(cases) {
				t.Fatalf("%s has %d cases for %d sample records: run with -update", golden, len(want), len(cases))
			}
			for i := range want {
				if want[i].Input != cases[i].Input {
					t.Errorf("%s: the input of %q is not the sample's: run with -update", golden, want[i].Name)
					continue
				}
				if err := schematest.Run(reg, &want[i], goldenTime); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// trimRun drops the fields that change from run to run from a row's JSON.
func trimRun(row []byte) []byte {
	for _, f := range schematest.Ignored {
		i := bytes.Index(row, []byte(`,"`+f+`":"`))
		if i < 0 {
			continue
		}
		end := bytes.IndexByte(row[i+len(f)+5:], '"')
		row = append(row[:i:i], row[i+len(f)+5+end+1:]...)
	}
	return row
}

// ambiguous are log types whose formats overlap: a record may be of either (nginx's combined
// log format is Apache's).
var ambiguous = [][2]string{{"Apache.AccessCombined", "Nginx.Access"}}

// TestClassifySamples checks that every sample record is accepted by its own log type and by no
// other built-in one: with every built-in type as a candidate (osprey ingest without
// --log-type), records land in the right table.
func TestClassifySamples(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	all := reg.All()
	parsers := make([]logtypes.Parser, len(all))
	builders := make([]*batch.Builder, len(all))
	for i, lt := range all {
		if parsers[i], err = lt.NewParser(); err != nil {
			t.Fatal(err)
		}
		builders[i] = batch.NewBuilder(lt.Table, batch.NewRowIDs())
	}
	for _, lt := range all {
		for _, c := range sampleRecords(t, lt) {
			var accepted []string
			for i, other := range all {
				if other.Check([]byte(c.Input)) != nil {
					continue
				}
				b := builders[i]
				b.Begin()
				err := parsers[i].Parse([]byte(c.Input), b)
				b.Rollback()
				if err == nil || errors.Is(err, logtypes.ErrSkip) {
					accepted = append(accepted, other.Name)
				}
			}
			if !slices.Contains(accepted, lt.Name) {
				t.Errorf("%s (%s): not accepted by its own log type (accepted by %v)", c.Name, lt.Name, accepted)
			}
			for _, other := range accepted {
				if other != lt.Name && !isAmbiguous(lt.Name, other) {
					t.Errorf("%s (%s): also accepted by %s", c.Name, lt.Name, other)
				}
			}
		}
	}
}

func isAmbiguous(a, b string) bool {
	for _, p := range ambiguous {
		if p == [2]string{a, b} || p == [2]string{b, a} {
			return true
		}
	}
	return false
}

// TestSampleNames checks that every sample file belongs to a built-in log type.
func TestSampleNames(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, lt := range reg.All() {
		tables[lt.Table.Table] = true
	}
	entries, err := os.ReadDir(samples)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		table, _, _ := strings.Cut(e.Name(), ".")
		if !tables[table] && !strings.HasPrefix(table, "linux_auditd") {
			t.Errorf("sample %s is of no built-in log type", e.Name())
		}
	}
}
