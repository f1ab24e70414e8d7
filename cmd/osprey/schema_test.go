package main

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/internal/readmetest"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite README.md's table of log types")

// TestReadmeLogTypes checks that README.md's table of log types is what osprey schema list
// --markdown prints for the built-in types: every type, by vendor, with its table.
// go test ./cmd/osprey -run TestReadmeLogTypes -update-readme rewrites it.
func TestReadmeLogTypes(t *testing.T) {
	const begin, end = "<!-- log types: osprey schema list --markdown -->\n", "<!-- end of log types -->\n"
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := listMarkdown(&want, reg.All()); err != nil {
		t.Fatal(err)
	}
	got := readmetest.Section(t, filepath.Join("..", "..", "README.md"), begin, end, want.String(), *updateReadme)
	if got != want.String() {
		t.Errorf("README.md's table of log types is not osprey schema list --markdown's (run with -update-readme):\n%s", want.String())
	}
	for _, lt := range reg.All() {
		if !strings.Contains(got, "`"+lt.Name+"` (`"+lt.Table.Table+"`)") {
			t.Errorf("README.md's table lacks %s", lt.Name)
		}
	}
}
