package query

import (
	"context"
	"database/sql"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
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

// TestJSONFieldAgreesWithDuckDB reads fields of JSON texts the way the prefilter does and
// compares them with DuckDB's ->>: a string the prefilter reads is DuckDB's value, a NULL is
// DuckDB's NULL; what it leaves to DuckDB (numbers, objects, text that is not JSON) rules
// nothing out.
func TestJSONFieldAgreesWithDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	texts := []string{
		`{"email":"a@b.example"}`, `{"email":null}`, `{}`, `[1]`, `"email"`, `{"Email":"x"}`,
		`{"email":"caf\u00e9 \"q\" \\ \/"}`, `{"email":"x","email":"y"}`, `{"email":1.50}`, `{"email":true}`,
		`{"email":{"x":1}}`, `{"a":{"b":"c"}}`, `{"a":{"b":null}}`, `{"a":["b"]}`, `{"a":{"0":"z"}}`, `{"a":[{"b":"c"}]}`,
		`{"a.b":"dotted"}`, ` {"email" : "spaced" } `, `{"email":"\ud83d\ude00"}`, `{"email":"lone \ud83d"}`, `{x`, `{"email":""}`,
		`{"\u0065mail":"escaped key"}`,
	}
	paths := []string{"email", "$.email", "a", "$.a.b", "$.a.0", "a.b", "$.a"}
	seen := map[int]int{}
	for _, path := range paths {
		keys, ok := jsonKeys(path)
		if !ok {
			t.Fatalf("jsonKeys(%q) not understood", path)
		}
		for _, text := range texts {
			var want sql.NullString
			duckErr := db.QueryRowContext(context.Background(), "SELECT ?::VARCHAR->>?", text, path).Scan(&want)
			src := array.NewStringBuilder(memory.DefaultAllocator)
			src.Append(text)
			col := src.NewStringArray()
			j := &jsonField{src: col, keys: keys, row: -1}
			got, state := j.lookup(0)
			seen[state]++
			col.Release()
			src.Release()
			switch {
			case state == jsonOther:
				// Left to DuckDB.
			case duckErr != nil:
				t.Errorf("%s ->> %q: DuckDB fails (%v), the prefilter reads state %d", text, path, duckErr, state)
			case state == jsonNull && want.Valid:
				t.Errorf("%s ->> %q: prefilter NULL, DuckDB %q", text, path, want.String)
			case state == jsonString && (!want.Valid || want.String != got):
				t.Errorf("%s ->> %q: prefilter %q, DuckDB %v", text, path, got, want)
			}
		}
	}
	if seen[jsonString] == 0 || seen[jsonNull] == 0 || seen[jsonOther] == 0 {
		t.Errorf("states read %v: the texts do not cover a string, a NULL and a value left to DuckDB", seen)
	}
	for _, path := range []string{"", "$", "$.a[0]", "$.*", `$."a"`, "/a", "$..a", "$.a-b"} {
		if _, ok := jsonKeys(path); ok {
			t.Errorf("jsonKeys(%q) understood: the prefilter reads only keys", path)
		}
	}
}
