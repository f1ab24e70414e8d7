package query

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockdown tries each way out of the lake: a statement may read the lake and nothing else.
func TestLockdown(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	lakeDir := filepath.Join(root, "lake")
	l := ingestAudit(t, lakeDir, []auditEvent{{Action: "A", Time: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}})
	db := openDB(t, l, Options{})

	// Files outside the lake: a secret, and a Parquet file (a copy of one of the lake's).
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret.csv")
	if err := os.WriteFile(secret, []byte("user,password\nroot,hunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lakeFiles, err := filepath.Glob(filepath.Join(l.TableDir("panther_logs", "panther_audit"), "*", "*", "*", "*.parquet"))
	if err != nil || len(lakeFiles) == 0 {
		t.Fatalf("no data file in the lake: %v", err)
	}
	data, err := os.ReadFile(lakeFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "copy.parquet"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := quote

	refused := func(name, stmt string, notCreated ...string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			rows, err := db.Query(ctx, stmt)
			if err == nil {
				var n int
				for rows.Next() {
					n++
				}
				rows.Close()
				t.Fatalf("Query(%q) ran (%d rows), want it refused", stmt, n)
			}
			t.Logf("%s: %v", stmt, err)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			for _, f := range notCreated {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s was created", f)
				}
			}
		})
	}
	refused("COPY TO a file in the lake", "COPY (SELECT 1) TO "+q(filepath.Join(lakeDir, "x.csv")), filepath.Join(lakeDir, "x.csv"))
	refused("COPY TO a file outside", "COPY (SELECT 1) TO "+q(filepath.Join(outside, "x.csv")), filepath.Join(outside, "x.csv"))
	refused("COPY a table TO", "COPY panther_logs.panther_audit TO "+q(filepath.Join(lakeDir, "t.parquet")), filepath.Join(lakeDir, "t.parquet"))
	refused("EXPLAIN ANALYZE COPY", "EXPLAIN ANALYZE COPY (SELECT 1) TO "+q(filepath.Join(lakeDir, "e.csv")), filepath.Join(lakeDir, "e.csv"))
	refused("EXPORT DATABASE", "EXPORT DATABASE "+q(filepath.Join(lakeDir, "exp")), filepath.Join(lakeDir, "exp"))
	refused("COPY after a query", "SELECT 1; COPY (SELECT 1) TO "+q(filepath.Join(lakeDir, "m.csv")), filepath.Join(lakeDir, "m.csv"))
	refused("COPY inside query()", "SELECT * FROM query('COPY (SELECT 1) TO ''"+filepath.Join(lakeDir, "qf.csv")+"''')", filepath.Join(lakeDir, "qf.csv"))
	refused("read_csv of /etc/passwd", "SELECT * FROM read_csv('/etc/passwd')")
	refused("read_text of a file outside", "SELECT * FROM read_text("+q(secret)+")")
	refused("read_csv through ..", "SELECT * FROM read_csv("+q(filepath.Join(lakeDir, "..", "outside", "secret.csv"))+")")
	refused("read_parquet of a glob outside", "SELECT count(*) FROM read_parquet("+q(filepath.Join(outside, "*.parquet"))+")")
	refused("glob outside", "SELECT * FROM glob("+q(filepath.Join(root, "*"))+")")
	refused("glob of the file system", "SELECT * FROM glob('/*')")
	refused("ATTACH a file", "ATTACH "+q(filepath.Join(outside, "x.db")), filepath.Join(outside, "x.db"))
	refused("ATTACH in memory", "ATTACH ':memory:' AS m")
	refused("INSTALL", "INSTALL httpfs")
	refused("LOAD", "LOAD httpfs")
	refused("SET", "SET threads = 1")
	refused("SET enable_external_access", "SET enable_external_access = true")
	refused("RESET", "RESET allowed_directories")
	refused("PRAGMA that sets", "PRAGMA threads = 1")
	refused("SET VARIABLE", "SET VARIABLE x = 1")
	refused("CREATE TABLE", "CREATE TABLE t AS SELECT 1")
	refused("CREATE VIEW over a lake table", "CREATE OR REPLACE VIEW panther_logs.panther_audit AS SELECT 1 AS x")
	refused("DROP VIEW", "DROP VIEW panther_logs.panther_audit")
	refused("CALL", "CALL pragma_version()")

	// DuckDB holds the line by itself too, for statements that do not go through Run.
	for _, stmt := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"COPY (SELECT 1) TO " + q(filepath.Join(outside, "direct.csv")),
		"SET enable_external_access = true",
		"SET allowed_directories = ['/']",
		"SET lock_configuration = false",
		"LOAD httpfs",
	} {
		if _, err := db.SQL().ExecContext(ctx, stmt); err == nil {
			t.Errorf("DuckDB ran %q", stmt)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "direct.csv")); err == nil {
		t.Errorf("COPY TO outside the lake wrote a file")
	}

	// What is allowed: reading the lake, in every query form.
	for _, stmt := range []string{
		"SELECT actionName FROM panther_logs.panther_audit",
		"SELECT count(*) FROM read_parquet(" + q(lakeFiles[0]) + ")",
		"WITH x AS (SELECT 1 AS a) SELECT a FROM x",
		"FROM panther_logs.panther_audit SELECT actionName",
		"VALUES (1)",
		"DESCRIBE panther_logs.panther_audit",
		"SHOW TABLES",
		"SUMMARIZE SELECT 1 AS a",
		"EXPLAIN SELECT 1",
		"EXPLAIN ANALYZE SELECT count(*) FROM panther_logs.panther_audit",
		"SELECT current_setting('threads')",
	} {
		rows, err := db.Query(ctx, stmt)
		if err != nil {
			t.Errorf("Query(%q): %v", stmt, err)
			continue
		}
		rows.Close()
	}
	if _, err := db.Query(ctx, "COPY (SELECT 1) TO 'x.csv'"); !errors.Is(err, ErrNotQuery) {
		t.Errorf("COPY: error %v, want ErrNotQuery", err)
	}
}
