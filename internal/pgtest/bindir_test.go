package pgtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBinDir(t *testing.T) {
	root := t.TempDir()
	mk := func(version string, names ...string) string {
		dir := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mk("9.6", "initdb", "postgres")
	v15 := mk("15", "initdb", "postgres")
	mk("16", "initdb") // the client of 16 without its server
	other := mk("other", "initdb", "postgres")
	pattern := filepath.Join(root, "*", "bin")

	f := func(preferred, want string) {
		t.Helper()
		got, err := binDir(preferred, pattern)
		if err != nil || got != want {
			t.Errorf("binDir(%q) = %q, %v; want %q", preferred, got, err, want)
		}
	}
	f("", v15)                               // 15 is newer than 9.6, and 16 has no server
	f(other, other)                          // pg_config's directory first
	f(filepath.Join(root, "16", "bin"), v15) // unless it has no server
	if _, err := binDir("", filepath.Join(root, "none", "*")); err == nil {
		t.Error("binDir found binaries where there are none")
	}
}
