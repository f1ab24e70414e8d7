package logtypes_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestClassifySamples checks that every sample record, in a stream that mixes the samples of
// every built-in type, is classified to its own log type: with every built-in type as a
// candidate (osprey ingest without --log-type), records land in the right table.
func TestClassifySamples(t *testing.T) {
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	all := reg.All()
	cls, err := schematest.NewClassifier(all)
	if err != nil {
		t.Fatal(err)
	}
	type sample struct {
		lt *logtypes.LogType
		c  schematest.Case
	}
	var stream []sample
	for _, lt := range all {
		for _, c := range dataRecords(t, lt, sampleRecords(t, lt)) {
			stream = append(stream, sample{lt, c})
		}
	}
	// Interleave the types: record k of every type, then record k+1...
	slices.SortStableFunc(stream, func(a, b sample) int { return strings.Compare(recordNumber(a.c.Name), recordNumber(b.c.Name)) })
	classified := 0
	for _, s := range stream {
		rec := []byte(s.c.Input)
		winner := cls.Type(rec)
		switch {
		case winner == s.lt.Name || logtypes.SameShapeAs(winner, s.lt.Name):
			classified++
		case winner == "":
			t.Errorf("%s (%s): no log type takes it", s.c.Name, s.lt.Name)
		default:
			t.Errorf("%s (%s): classified as %s", s.c.Name, s.lt.Name, winner)
		}
	}
	t.Logf("%d of %d sample records of %d log types classified to their own type", classified, len(stream), len(all))
}

// recordNumber is the number of a sample case's record, zero-padded for sorting.
func recordNumber(name string) string {
	_, n, _ := strings.Cut(name, " record ")
	return fmt.Sprintf("%06s", n)
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
