// Package readmetest is for tests that keep a generated part of README.md true: the text between
// two marker lines, which a test compares with what the code prints, or rewrites.
package readmetest

import (
	"os"
	"strings"
	"testing"
)

// Section returns the text of the file at path between the lines begin and end (each given with
// its newline). With update, it first replaces that text with want, and returns want.
func Section(t testing.TB, path, begin, end, want string, update bool) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(data), begin)
	got, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", path, begin, end)
	}
	if update {
		if err := os.WriteFile(path, []byte(before+begin+want+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return want
	}
	return got
}
