package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// newLake makes an empty lake directory with its _osprey directory.
func newLake(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "_osprey"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ospreyDir lists the _osprey directory of a lake.
func ospreyDir(t *testing.T, lake string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(lake, "_osprey"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Concurrent token creations all end up in the file.
func TestCreateTokenConcurrent(t *testing.T) {
	lake := newLake(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	secrets := make([]string, n)
	for i := range n {
		wg.Go(func() {
			_, secrets[i], errs[i] = CreateToken(lake, fmt.Sprintf("t%02d", i), RoleRead)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ts, err := LoadTokens(lake)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n {
		t.Fatalf("%d tokens in the file, want %d", len(ts), n)
	}
	for i, s := range secrets {
		if tok, ok := CheckToken(ts, s); !ok || tok.Name != fmt.Sprintf("t%02d", i) {
			t.Errorf("secret of t%02d: got %+v, %v", i, tok, ok)
		}
	}
	info, err := os.Stat(TokensPath(lake))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("tokens file: %v, %v; want mode 0600", info, err)
	}
	if names := ospreyDir(t, lake); !slices.Equal(names, []string{"tokens.json", "tokens.json.lock"}) {
		t.Errorf("_osprey holds %q", names)
	}
}

func TestRevokeToken(t *testing.T) {
	lake := newLake(t)
	a, secret, err := CreateToken(lake, "a", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateToken(lake, "a", RoleRead); err == nil {
		t.Error("a second token named a: no error")
	}
	if _, _, err := CreateToken(lake, "b", RoleRead); err != nil {
		t.Fatal(err)
	}
	got, err := RevokeToken(lake, a.ID)
	if err != nil || got.Name != "a" {
		t.Fatalf("revoke: %+v, %v", got, err)
	}
	if _, err := RevokeToken(lake, "a"); err == nil {
		t.Error("revoke a revoked token: no error")
	}
	ts, err := LoadTokens(lake)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := CheckToken(ts, secret); ok || len(ts) != 1 || ts[0].Name != "b" {
		t.Errorf("after revoking a: %+v", ts)
	}
}
