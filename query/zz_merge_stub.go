package query

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
)

// Temporary until the query branch (functions.go, lockdown) is merged.
func registerFunctions(ctx context.Context, db *sql.DB) error { return nil }

func lockdown(dir string) []string {
	return []string{
		fmt.Sprintf("SET allowed_directories = [%s]", quote(strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))),
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	}
}
