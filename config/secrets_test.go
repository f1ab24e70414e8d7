package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func httpSource(id string, auth Auth) Source {
	return Source{ID: id, Type: SourceHTTP, Label: id, LogTypes: []string{"Panther.Audit"}, Auth: auth}
}

// The lake's sources file keeps no secret in plain text: header, bearer and basic secrets are
// hashed, and an hmac key is refused.
func TestLakeSourcesSecretsHashed(t *testing.T) {
	lake := newLake(t)
	secrets := map[string]Auth{
		"hdr":    {Type: "header", Header: "x-secret", Secret: "header-s3cret"},
		"bearer": {Type: "bearer", Secret: "bearer-t0ken"},
		"basic":  {Type: "basic", Username: "fluent", Secret: "basic-passw0rd"},
	}
	err := UpdateLakeSources(lake, func(ss []Source) ([]Source, error) {
		for _, id := range []string{"basic", "bearer", "hdr"} {
			ss = append(ss, httpSource(id, secrets[id]))
		}
		return ss, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(LakeSourcesFile(lake))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range secrets {
		if bytes.Contains(data, []byte(a.Secret)) {
			t.Errorf("sources file holds the secret %q:\n%s", a.Secret, data)
		}
	}
	got, err := LoadLakeSources(lake)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		a := secrets[s.ID]
		if s.Auth.Secret != "" || s.Auth.SecretHash() != sha256.Sum256([]byte(a.Secret)) {
			t.Errorf("source %s: auth %+v, want the SHA-256 of %q", s.ID, s.Auth, a.Secret)
		}
		if v, err := s.Auth.SecretValue(); v != "" || err != nil {
			t.Errorf("source %s: SecretValue %q, %v; want none", s.ID, v, err)
		}
	}

	// An hmac key is not written in the lake, and nothing changes.
	err = UpdateLakeSources(lake, func(ss []Source) ([]Source, error) {
		return append(ss, httpSource("signed", Auth{Type: "hmac", Header: "x-sig", Secret: "hmac-k3y"})), nil
	})
	if !errors.Is(err, ErrHMACKeyInLake) {
		t.Errorf("hmac key inline: got %v, want ErrHMACKeyInLake", err)
	}
	if after, _ := os.ReadFile(LakeSourcesFile(lake)); !bytes.Equal(after, data) {
		t.Errorf("a refused update changed the file:\n%s", after)
	}
	// Named by an environment variable or a file, it is.
	err = UpdateLakeSources(lake, func(ss []Source) ([]Source, error) {
		return append(ss, httpSource("signed", Auth{Type: "hmac", Header: "x-sig", SecretEnv: "HMAC_KEY"})), nil
	})
	if err != nil {
		t.Error(err)
	}
	if info, err := os.Stat(LakeSourcesFile(lake)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("sources file: %v, %v; want mode 0600", info, err)
	}
}

// A sources file of an older osprey, with plain secrets, still loads; the next write hashes
// them, and refuses while an hmac key is inline.
func TestLakeSourcesPlainSecretsMigrate(t *testing.T) {
	lake := newLake(t)
	old := `sources:
  - id: bearer
    type: http
    logTypes: [Panther.Audit]
    auth: {type: bearer, secret: old-t0ken}
  - id: signed
    type: http
    logTypes: [Panther.Audit]
    auth: {type: hmac, header: x-sig, secret: old-hmac-k3y}
`
	if err := os.WriteFile(LakeSourcesFile(lake), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLakeSources(lake)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Auth.Secret != "old-t0ken" || got[1].Auth.Secret != "old-hmac-k3y" {
		t.Fatalf("loaded %+v", got)
	}
	keep := func(ss []Source) ([]Source, error) { return ss, nil }
	if err := UpdateLakeSources(lake, keep); !errors.Is(err, ErrHMACKeyInLake) || !strings.Contains(err.Error(), "source signed") {
		t.Errorf("rewrite with an inline hmac key: got %v, want ErrHMACKeyInLake naming the source", err)
	}
	err = UpdateLakeSources(lake, func(ss []Source) ([]Source, error) {
		return slices.DeleteFunc(ss, func(s Source) bool { return s.ID == "signed" }), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(LakeSourcesFile(lake))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("old-")) {
		t.Errorf("rewritten file holds a plain secret:\n%s", data)
	}
	got, err = LoadLakeSources(lake)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Auth.SecretHash() != sha256.Sum256([]byte("old-t0ken")) {
		t.Errorf("after the rewrite: %+v", got)
	}
	if info, err := os.Stat(LakeSourcesFile(lake)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("sources file: %v, %v; want mode 0600", info, err)
	}
}

func TestSecretSHA256Validate(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := Parse([]byte(yml), "bad.yml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yml, err, want)
		}
	}
	src := "sources:\n  - id: a\n    type: http\n    logTypes: [X]\n    auth:\n"
	f(src+"      type: bearer\n      secretSHA256: abc", "want 64 hex digits")
	f(src+"      type: hmac\n      header: x\n      secretSHA256: "+strings.Repeat("ab", 32), "cannot check a secret's hash")
	f(src+"      type: bearer\n      secret: x\n      secretSHA256: "+strings.Repeat("ab", 32), "one of secret")
	if _, err := Parse([]byte(src+"      type: bearer\n      secretSHA256: "+strings.Repeat("AB", 32)), "good.yml"); err != nil {
		t.Error(err)
	}
}

// Concurrent read-modify-writes of the sources file lose none of them.
func TestUpdateLakeSourcesConcurrent(t *testing.T) {
	lake := newLake(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = UpdateLakeSources(lake, func(ss []Source) ([]Source, error) {
				return append(ss, httpSource(fmt.Sprintf("s%02d", i), Auth{Type: "bearer", Secret: "t"})), nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLakeSources(lake)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("%d sources in the file, want %d", len(got), n)
	}
	if names := ospreyDir(t, lake); !slices.Equal(names, []string{"sources.yml", "sources.yml.lock"}) {
		t.Errorf("_osprey holds %q", names)
	}
}

// A save that fails leaves no temporary file behind.
func TestSaveLakeSourcesErrorLeavesNoTemp(t *testing.T) {
	lake := newLake(t)
	// A non-empty directory where the file goes: the rename fails.
	if err := os.MkdirAll(filepath.Join(LakeSourcesFile(lake), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveLakeSources(lake, []Source{httpSource("a", Auth{})}); err == nil {
		t.Fatal("no error")
	}
	if names := ospreyDir(t, lake); !slices.Equal(names, []string{"sources.yml"}) {
		t.Errorf("_osprey holds %q, want only sources.yml", names)
	}
}
