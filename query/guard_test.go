package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/lake"
)

// lakeSnapshot lists every file of a directory tree with its size and modification time, to
// show that a statement changed nothing.
func lakeSnapshot(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == filepath.Join(dir, "_spill") {
			return fs.SkipDir // DuckDB's own scratch space
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", path, info.ModTime(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGuardPayloads holds the statements an adversarial test of osprey serve ran with a read
// token: each must be refused, and the lake must not change.
func TestGuardPayloads(t *testing.T) {
	ctx := context.Background()
	lakeDir := filepath.Join(t.TempDir(), "lake")
	l := ingestAudit(t, lakeDir, []auditEvent{
		{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)},
		{Action: "B", Time: time.Date(2026, 3, 1, 1, 5, 0, 0, time.UTC)},
	})
	db := openDB(t, l, Options{})
	files, err := filepath.Glob(filepath.Join(l.TableDir("panther_logs", "panther_audit"), "*", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no data file: %v", err)
	}
	tokens := filepath.Join(lakeDir, "_osprey", "tokens.json")
	sources := filepath.Join(lakeDir, "_osprey", "sources.yml")
	q := quote
	copyTo := func(path string) string { return "COPY (SELECT 42 AS x) TO " + q(path) }
	for _, tc := range []struct{ name, stmt string }{
		{"hidden after a comment ended by CR", "SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_after(now() --\r) AS TIMESTAMPTZ); " +
			copyTo(filepath.Join(lakeDir, "x.csv")) + "; SELECT CAST((now()\n)"},
		{"a token added", "SELECT 1 WHERE p_occurs_after(now() --\r) AS TIMESTAMPTZ); " +
			"COPY (SELECT '[{\"id\":\"x\",\"name\":\"evil\",\"role\":\"read\",\"sha256\":\"00\"}]' AS j) TO " + q(tokens) + " (FORMAT csv, HEADER false, QUOTE ''); SELECT CAST((now()\n)"},
		{"a source added", "SELECT 1 WHERE p_occurs_before(now() --\r) AS TIMESTAMPTZ); " +
			"COPY (SELECT 'sources: [{id: open, type: http}]' AS y) TO " + q(sources) + " (FORMAT csv, HEADER false, QUOTE ''); SELECT CAST((now()\n)"},
		{"a data file rewritten", "SELECT 1 WHERE p_occurs_between(now() --\r, now()) AS TIMESTAMPTZ); " +
			"COPY (SELECT * FROM read_parquet(" + q(files[0]) + ") LIMIT 1) TO " + q(files[0]) + " (FORMAT parquet); SELECT CAST((now()\n, now())"},
		{"in p_occurs_around", "SELECT 1 WHERE p_occurs_around(now() --\r) AS TIMESTAMPTZ); " + copyTo(filepath.Join(lakeDir, "y.csv")) + "; SELECT CAST((now()\n, '1h')"},
		{"as the whole argument", "SELECT 1 WHERE p_occurs_after(" + q("x") + "::VARCHAR || (SELECT 1); " + copyTo(filepath.Join(lakeDir, "z.csv")) + "))"},
		{"a dollar tag starting with a digit", "SELECT $1$; " + copyTo(filepath.Join(lakeDir, "d.csv")) + "; SELECT $1$"},
		{"an identifier with a dollar", "SELECT a$b$c; " + copyTo(filepath.Join(lakeDir, "i.csv")) + "; SELECT $b$"},
		{"a NUL byte", "SELECT 1 /* \x00 */; " + copyTo(filepath.Join(lakeDir, "n.csv"))},
		{"EXPLAIN with a comment in its options", "EXPLAIN (--\r) COPY (SELECT 1) TO " + q(filepath.Join(lakeDir, "e.csv")) + ";\n) SELECT 1"},
		{"read the tokens", "SELECT * FROM read_text(" + q(tokens) + ")"},
		{"read the sources", "SELECT * FROM read_text(" + q(sources) + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := lakeSnapshot(t, lakeDir)
			rows, err := db.Run(ctx, Request{SQL: tc.stmt, Params: map[string]any{}})
			if err == nil {
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				t.Fatalf("ran (%d rows), want it refused", n)
			}
			t.Logf("refused: %v", err)
			if after := lakeSnapshot(t, lakeDir); !slices.Equal(before, after) {
				t.Fatalf("the lake changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
	// The same macros with honest arguments still run.
	for _, stmt := range []string{
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_after(now() - INTERVAL 1 DAY --\r\n)",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_around(p_parse_time, '2 hours')",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_between('2026-03-01', (SELECT max(p_event_time) FROM panther_logs.panther_audit))",
		"EXPLAIN (FORMAT json) SELECT count(*) FROM panther_logs.panther_audit",
	} {
		rows, err := db.Run(ctx, Request{SQL: stmt})
		if err != nil {
			t.Errorf("Run(%q): %v", stmt, err)
			continue
		}
		rows.Close()
	}
}

// TestReadsOnlyData tries every file of the lake that is not a table's: a query may read the
// tables' files and nothing else of the lake.
func TestReadsOnlyData(t *testing.T) {
	ctx := context.Background()
	lakeDir := filepath.Join(t.TempDir(), "lake")
	l := ingestAudit(t, lakeDir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	db := openDB(t, l, Options{})
	internal := map[string]string{
		"tokens":          "_osprey/tokens.json",
		"sources":         "_osprey/sources.yml",
		"write-ahead log": "_osprey/wal/00000000000000000001.wal",
		"alert journal":   "_osprey/alerts/journal",
		"alert snapshot":  "_osprey/alerts/snapshot.json",
		"outbox":          "_osprey/outbox/0001.json",
		"commit records":  "_osprey/commits/serve.json",
		"health":          "_osprey/health.json",
		"catalog":         "_osprey/catalog.db",
		"schedules":       "_osprey/schedules/state.json",
		"writer tmp":      "_osprey/tmp/w1/x.parquet",
	}
	for _, rel := range internal {
		path := filepath.Join(lakeDir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := os.WriteFile(path, []byte("secret,osp_s3cr3t\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(name, stmt string) {
		t.Helper()
		rows, err := db.Query(ctx, stmt)
		if err == nil {
			var got []string
			for rows.Next() {
				var v any
				rows.Scan(&v)
				got = append(got, fmt.Sprint(v))
			}
			rows.Close()
			t.Errorf("%s: %s read %q, want it refused", name, stmt, got)
			return
		}
		if !strings.Contains(err.Error(), "Permission Error") && !strings.Contains(err.Error(), "disabled by configuration") {
			t.Errorf("%s: %s: %v, want a permission error", name, stmt, err)
		}
	}
	for name, rel := range internal {
		path := filepath.Join(lakeDir, rel)
		refused(name, "SELECT content FROM read_text("+quote(path)+")")
		refused(name+" as a blob", "SELECT content FROM read_blob("+quote(path)+")")
		refused(name+" through a table's directory", "SELECT content FROM read_text("+
			quote(filepath.Join(l.TableDir("panther_logs", "panther_audit"), "..", "..", rel))+")")
	}
	refused("glob of _osprey", "SELECT file FROM glob("+quote(filepath.Join(lakeDir, "_osprey", "*"))+")")
	refused("glob of the lake", "SELECT file FROM glob("+quote(filepath.Join(lakeDir, "*"))+")")
	refused("csv of the write-ahead log", "SELECT * FROM read_csv("+quote(filepath.Join(lakeDir, "_osprey", "wal", "*"))+")")

	// What a query may read: the tables and their files.
	for _, stmt := range []string{
		"SELECT count(*) FROM panther_logs.panther_audit",
		"SELECT count(*) FROM read_parquet(" + quote(dataGlob(l, "panther_logs", "panther_audit")) + ")",
		"SELECT count(*) FROM read_parquet(" + quote(l.SchemaFile("panther_logs", "panther_audit")) + ")",
	} {
		rows, err := db.Query(ctx, stmt)
		if err != nil {
			t.Errorf("%s: %v", stmt, err)
			continue
		}
		rows.Close()
	}
}

// duckStatements returns the statements DuckDB's parser finds in s, as parse trees without
// positions, or ok = false when it cannot parse s.
func duckStatements(t testing.TB, db *sql.DB, s string) (stmts []string, ok bool) {
	t.Helper()
	var js string
	if err := db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", s).Scan(&js); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Error      bool              `json:"error"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	if res.Error {
		return nil, false
	}
	for _, st := range res.Statements {
		stmts = append(stmts, locationRE.ReplaceAllString(string(st), ""))
	}
	return stmts, true
}

var locationRE = regexp.MustCompile(`"query_location":\d+,?`)

// FuzzLexAgreesWithDuckDB checks osprey's lexer against DuckDB's parser. For text that DuckDB
// parses:
//   - SplitStatements cuts it into as many statements as DuckDB finds, and DuckDB reads each
//     piece as the statement it found there;
//   - removing what osprey takes for comments leaves the statements DuckDB finds unchanged
//     (osprey never takes code for a comment).
//
// A semicolon or macro that osprey's lexer hides in a comment or string and DuckDB does not
// (as '--' ended by '\r' once did) fails one of the two.
func FuzzLexAgreesWithDuckDB(f *testing.F) {
	for _, s := range []string{
		"SELECT 1 --\r; SELECT 2",
		"SELECT 1 --\f; SELECT 2",
		"SELECT 1 --\n; SELECT 2",
		"SELECT 1 /* /* */ ; SELECT 2 */ ; SELECT 3",
		"SELECT $$a;b$$; SELECT 2",
		"SELECT $a$x;$a$; SELECT 2",
		"SELECT $_1$x;$_1$; SELECT 2",
		"SELECT $tag$ a $TAG$ ; $tag$; SELECT 2",
		"SELECT e'a\\';'; SELECT 2",
		"SELECT E'a\\\\'; SELECT 2",
		"SELECT 'a\\'; SELECT 2",
		"SELECT 'it''s;' AS \"a;\"\"\"; SELECT 2",
		"SELECT x'ab;'; SELECT 2",
		"SELECT a$b$c; SELECT 2",
		"SELECT 1//2; SELECT 1 -- x\r\n; SELECT 3",
		"SELECT 1+--x\n2; SELECT 2",
		"SELECT 1 /*/ ; */; SELECT 2",
		"SELECT 'a'\n'b;'; SELECT 2",
		"SELECT 1e5; SELECT .5e-3;",
		"SELECT 0E--;0", // an exponent without digits: 0, then a comment
		"SELECT 2.e-1, 1E+2; SELECT 1e",
		"SELECT {'a;': 1}['a;']; SELECT [1, 2][1]",
	} {
		f.Add(s)
	}
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		f.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	f.Fuzz(func(t *testing.T, s string) {
		if checkText(s) != nil {
			return // refused before DuckDB (errNUL, errUTF8)
		}
		want, ok := duckStatements(t, db, s)
		if !ok {
			return
		}
		got := SplitStatements(s)
		if len(got) != len(want) {
			t.Fatalf("SplitStatements(%q) = %d statements %q, DuckDB finds %d", s, len(got), got, len(want))
		}
		for i, piece := range got {
			one, ok := duckStatements(t, db, piece)
			if !ok || len(one) != 1 || one[0] != want[i] {
				t.Fatalf("statement %d of %q: osprey cuts %q, which DuckDB reads as %q, not as %q", i, s, piece, one, want[i])
			}
		}
		var b strings.Builder
		last := 0
		for _, tok := range lex(s) {
			if tok.kind == tokComment {
				b.WriteString(s[last:tok.start])
				b.WriteByte(' ')
				last = tok.end
			}
		}
		b.WriteString(s[last:])
		stripped, ok := duckStatements(t, db, b.String())
		if !ok || !slices.Equal(stripped, want) {
			t.Fatalf("without the comments osprey sees, %q reads as %q, not %q", b.String(), stripped, want)
		}
	})
}

// FuzzMacroArgs runs statements whose macro arguments are arbitrary text through Run: none may
// change the lake, whatever it runs or refuses.
func FuzzMacroArgs(f *testing.F) {
	lakeDir := filepath.Join(f.TempDir(), "lake")
	l := ingestAudit(f, lakeDir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	db := openDB(f, l, Options{})
	canary := filepath.Join(lakeDir, "canary.csv")
	for _, s := range []string{
		"now()",
		"'2026-03-01'",
		"now() --\r) AS TIMESTAMPTZ); COPY (SELECT 1) TO '" + canary + "'; SELECT CAST((now()\n",
		"now() /* ) */",
		"$$ ) $$::TIMESTAMPTZ",
		"(SELECT max(p_event_time) FROM panther_logs.panther_audit)",
		"p_parse_time",
		"a$b$c",
		"now()); COPY (SELECT 1) TO '" + canary + "'; SELECT (now()",
	} {
		f.Add(s, uint8(0))
	}
	before := lakeSnapshot(f, lakeDir)
	forms := []string{
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_after(%s)",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_before(%s)",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_between(%s, now())",
		"SELECT count(*) FROM panther_logs.panther_audit WHERE p_occurs_around(%s, '1 hour')",
		"EXPLAIN SELECT 1 WHERE p_occurs_after(%s)",
	}
	f.Fuzz(func(t *testing.T, arg string, form uint8) {
		stmt := strings.Replace(forms[int(form)%len(forms)], "%s", arg, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, err := db.Run(ctx, Request{SQL: stmt, MaxRows: 10})
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
		}
		if after := lakeSnapshot(t, lakeDir); !slices.Equal(before, after) {
			t.Fatalf("%q changed the lake (err %v):\nbefore %q\nafter  %q", stmt, err, before, after)
		}
	})
}

// TestLakeReadDirs checks that the directories a session may read hold the tables' files and
// nothing of _osprey but the schema files.
func TestLakeReadDirs(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.ReadDirs() {
		rel, err := filepath.Rel(l.Dir(), d)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(rel, "_osprey") && rel != filepath.Join("_osprey", "schemas") {
			t.Errorf("a query may read %s", rel)
		}
	}
	if !strings.HasPrefix(l.SchemaFile("panther_logs", "x"), filepath.Join(l.Dir(), "_osprey", "schemas")+string(filepath.Separator)) {
		t.Errorf("schema files moved: update ReadDirs")
	}
}
