package query

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestLikeAgreesWithDuckDB compares the prefilter's LIKE with DuckDB's on patterns and values
// chosen to trip it: equal for patterns of % only, never false where DuckDB says true for
// patterns with _ (which the prefilter reads by their prefix).
func TestLikeAgreesWithDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	patterns := []string{"abc", "a%", "%c", "%b%", "a%c", "a%b%c", "%%", "%", "ab%bc", "a_c", "a%_", "é%", "%é", "a%a%a", "DELETE_%", "%@evil.example"}
	values := []string{"", "a", "abc", "abbc", "abcbc", "ac", "aXc", "abcabc", "aaa", "aa", "éa", "aé", "DELETE_USER", "DELETEXUSER", "x@evil.example", "ABC", "a%c"}
	for _, p := range patterns {
		lp, ok := parseLike(p)
		if !ok {
			continue
		}
		for _, v := range values {
			var want bool
			if err := db.QueryRowContext(context.Background(), "SELECT ? LIKE ?", v, p).Scan(&want); err != nil {
				t.Fatal(err)
			}
			got := lp.match(v)
			exact := true
			for _, r := range p {
				exact = exact && r != '_'
			}
			switch {
			case exact && got != want:
				t.Errorf("%q LIKE %q: prefilter %v, DuckDB %v", v, p, got, want)
			case !exact && want && !got:
				t.Errorf("%q LIKE %q: the prefilter rules out a row DuckDB matches", v, p)
			}
		}
	}
}
