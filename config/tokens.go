package config

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/lake"
)

// API tokens authorize requests to osprey serve's query API (POST /v1/query). A lake keeps them
// in _osprey/tokens.json (mode 0600): each token's id, name, role and the SHA-256 of its
// secret; the secret itself is shown once, when the token is created. The file is replaced
// whole and durably (package durable), and creating or revoking a token reads and rewrites it
// holding the lock _osprey/tokens.json.lock, so concurrent changes are never lost.

// Token roles.
const (
	RoleRead = "read" // may run queries
)

// Roles lists the roles a token may have.
var Roles = []string{RoleRead}

// tokenPrefix starts every token's secret, so that leaked secrets are easy to find.
const tokenPrefix = "osp_"

// Token is an API token as stored (without its secret).
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Hash    string    `json:"sha256"` // hex SHA-256 of the secret
	Created time.Time `json:"created"`
}

// TokensPath is the tokens file of the lake in lakeDir.
func TokensPath(lakeDir string) string { return lake.TokensFile(lakeDir) }

// LoadTokens reads the lake's tokens (none when the file does not exist).
func LoadTokens(lakeDir string) ([]Token, error) {
	data, err := os.ReadFile(TokensPath(lakeDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ts []Token
	if err := json.Unmarshal(data, &ts); err != nil {
		return nil, fmt.Errorf("%s: %w", TokensPath(lakeDir), err)
	}
	return ts, nil
}

// updateTokens replaces the lake's tokens by what update makes of them, holding the tokens
// file's lock from the read to the write.
func updateTokens(lakeDir string, update func([]Token) ([]Token, error)) error {
	path := TokensPath(lakeDir)
	return locked(path, func() error {
		ts, err := LoadTokens(lakeDir)
		if err != nil {
			return err
		}
		if ts, err = update(ts); err != nil {
			return err
		}
		data, err := json.MarshalIndent(ts, "", "  ")
		if err != nil {
			return err
		}
		if err := durable.WriteFile(path, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("save tokens: %w", err)
		}
		return nil
	})
}

// CreateToken adds a token to the lake and returns it with its secret, which is not stored.
func CreateToken(lakeDir, name, role string) (Token, string, error) {
	if !slices.Contains(Roles, role) {
		return Token{}, "", fmt.Errorf("role %q: want %s", role, strings.Join(Roles, ", "))
	}
	if !idPattern.MatchString(name) {
		return Token{}, "", fmt.Errorf("token name %q: want 1 to 64 letters, digits, '_', '.' or '-'", name)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", err
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	t := Token{ID: hex.EncodeToString(sum[:4]), Name: name, Role: role, Hash: hex.EncodeToString(sum[:]), Created: time.Now().UTC()}
	err := updateTokens(lakeDir, func(ts []Token) ([]Token, error) {
		for _, o := range ts {
			if o.Name == name {
				return nil, fmt.Errorf("a token named %s exists (id %s): revoke it first", name, o.ID)
			}
		}
		return append(ts, t), nil
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// RevokeToken removes a token, by id or name.
func RevokeToken(lakeDir, idOrName string) (Token, error) {
	var revoked Token
	err := updateTokens(lakeDir, func(ts []Token) ([]Token, error) {
		for i, t := range ts {
			if t.ID == idOrName || t.Name == idOrName {
				revoked = t
				return slices.Delete(ts, i, i+1), nil
			}
		}
		return nil, fmt.Errorf("no token %s", idOrName)
	})
	return revoked, err
}

// CheckToken returns the token whose secret is secret, comparing hashes in constant time.
func CheckToken(ts []Token, secret string) (Token, bool) {
	sum := sha256.Sum256([]byte(secret))
	want := hex.EncodeToString(sum[:])
	for _, t := range ts {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(want)) == 1 {
			return t, true
		}
	}
	return Token{}, false
}
