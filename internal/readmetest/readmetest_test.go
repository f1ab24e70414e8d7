package readmetest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("a\n<!-- b -->\nold\n<!-- e -->\nz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Section(t, path, "<!-- b -->\n", "<!-- e -->\n", "new\n", false); got != "old\n" {
		t.Errorf("got %q, want old", got)
	}
	Section(t, path, "<!-- b -->\n", "<!-- e -->\n", "new\n", true)
	data, _ := os.ReadFile(path)
	if string(data) != "a\n<!-- b -->\nnew\n<!-- e -->\nz\n" {
		t.Errorf("rewritten: %q", data)
	}
}
