package detections

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzLoadFS reads arbitrary bytes as a detection spec file of an in-memory file system, and
// as a file on disk. Loading never panics; it either refuses the file with errors that are
// all *Error naming it, or returns a Set whose every spec comes from it; Load and LoadFS agree.
func FuzzLoadFS(f *testing.F) {
	for _, dir := range []string{"testdata/good/*", "testdata/bad"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "rules/a.yml"
		set, err := LoadFS(fstest.MapFS{name: {Data: data}}, "rules")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.yml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		set2, err2 := Load(dir)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("LoadFS: %v; Load: %v", err, err2)
		}
		if err != nil {
			if set != nil {
				t.Error("a Set with an error")
			}
			checkErrors(t, err, name)
			return
		}
		if n, n2 := count(set), count(set2); n != 1 || n2 != 1 {
			t.Fatalf("one file loaded as %d specs (Load: %d)", n, n2)
		}
		for id, r := range set.Rules {
			if id == "" || r.RuleID != id {
				t.Errorf("rule %q has RuleID %q", id, r.RuleID)
			}
		}
	})
}

func count(s *Set) int { return len(s.Rules) + len(s.ScheduledQueries) + len(s.ScheduledRules) }

// checkErrors checks that every error joined in err is an *Error of file.
func checkErrors(t *testing.T, err error, file string) {
	t.Helper()
	if errs, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range errs.Unwrap() {
			checkErrors(t, e, file)
		}
		return
	}
	var de *Error
	if !errors.As(err, &de) || de.File != file || de.Msg == "" {
		t.Fatalf("error %T %q is not an Error of %s", err, err, file)
	}
}
