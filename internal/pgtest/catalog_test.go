package pgtest_test

// iceberg-go's SQL catalog on PostgreSQL, and the statements osprey's own catalog code
// (lake/iceberg) runs next to it, with what changes from SQLite: $n placeholders, BIGINT for
// int64 columns, and what concurrent compare-and-swap commits see.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ospreyhq/osprey/internal/pgtest"
)

// TestCatalog runs the catalog's cases on one server, each in a database of its own.
func TestCatalog(t *testing.T) {
	s := pgtest.Start(t)
	t.Run("iceberg_sql_catalog", func(t *testing.T) { testIcebergSQLCatalog(t, s) })
	t.Run("statements", func(t *testing.T) { testStatements(t, s) })
	t.Run("swap_read_committed", func(t *testing.T) { testSwapConcurrentReadCommitted(t, s) })
	t.Run("swap_repeatable_read", func(t *testing.T) { testSwapConcurrentRepeatableRead(t, s) })
	t.Run("swap_race", func(t *testing.T) { testSwapRace(t, s) })
	t.Run("swap_opposite_orders_deadlock", func(t *testing.T) { testSwapOppositeOrdersDeadlock(t, s) })
}

// newCatalog opens iceberg-go's SQL catalog "osprey" on the database of dsn, with a
// connection pool of its own.
func newCatalog(t *testing.T, dsn, warehouse string) (*sqlcat.Catalog, *sql.DB) {
	t.Helper()
	db := open(t, dsn)
	cat, err := sqlcat.NewCatalog("osprey", db, sqlcat.Postgres, iceberg.Properties{
		"init_catalog_tables": "true",
		"warehouse":           warehouse,
	})
	if err != nil {
		t.Fatalf("new catalog: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat, db
}

func testIcebergSQLCatalog(t *testing.T, s *pgtest.Server) {
	dsn, warehouse := s.NewDatabase(t), t.TempDir()
	ctx := t.Context()
	cat, _ := newCatalog(t, dsn, warehouse)
	ns, ident := table.Identifier{"logs"}, table.Identifier{"logs", "events"}
	if err := cat.CreateNamespace(ctx, ns, iceberg.Properties{"owner": "osprey"}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "p_event_time", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 2, Name: "message", Type: iceberg.PrimitiveTypes.String})
	created, err := cat.CreateTable(ctx, ident, sc)
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	// A commit through the first catalog: iceberg-go's compare-and-swap UPDATE, written by bun.
	tx := created.NewTransaction()
	if err := tx.SetProperties(iceberg.Properties{"osprey.test": "1"}); err != nil {
		t.Fatal(err)
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if committed.MetadataLocation() == created.MetadataLocation() {
		t.Fatalf("commit kept metadata location %s", created.MetadataLocation())
	}

	// A second catalog, as another process would open it, sees the table as committed.
	other, _ := newCatalog(t, dsn, warehouse)
	props, err := other.LoadNamespaceProperties(ctx, ns)
	if err != nil || props["owner"] != "osprey" {
		t.Errorf("namespace properties = %v, %v; want owner=osprey", props, err)
	}
	loaded, err := other.LoadTable(ctx, ident)
	if err != nil {
		t.Fatalf("load table from a second catalog: %v", err)
	}
	if got, want := loaded.MetadataLocation(), committed.MetadataLocation(); got != want {
		t.Errorf("metadata location = %s, want %s", got, want)
	}
	if !loaded.Schema().Equals(sc) {
		t.Errorf("schema = %v, want %v", loaded.Schema(), sc)
	}
	if got := loaded.Properties()["osprey.test"]; got != "1" {
		t.Errorf("property osprey.test = %q, want 1", got)
	}
}

// The statements of lake/iceberg's swap, as PostgreSQL takes them.
const (
	swapSQL = `UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2
		WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 AND metadata_location = $6`
	recordSQL = `INSERT INTO osprey_commits (writer, meta) VALUES ($1, $2)
		ON CONFLICT (writer) DO UPDATE SET meta = excluded.meta`
	// lake/iceberg's schema, in one Exec as lake/iceberg runs it; flush is BIGINT here (see
	// TestStatements).
	ospreySchema = `
CREATE TABLE IF NOT EXISTS osprey_commits (writer TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS osprey_flushes (instance TEXT PRIMARY KEY, flush BIGINT NOT NULL);`
)

// catalogDB is a database with iceberg-go's catalog tables and osprey's, and the row of the
// table logs.events at metadata location m0.
func catalogDB(t *testing.T, s *pgtest.Server) *sql.DB {
	t.Helper()
	_, db := newCatalog(t, s.NewDatabase(t), t.TempDir())
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, ospreySchema); err != nil {
		t.Fatalf("create osprey's tables: %v", err)
	}
	for _, tbl := range []string{"events", "alerts"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name,
			iceberg_type, metadata_location) VALUES ('osprey', 'logs', $1, 'TABLE', 'm0')`, tbl); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// swap runs the compare-and-swap of logs.tbl from old to loc and returns the rows it changed.
func swap(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, tbl, old, loc string) (int64, error) {
	res, err := ex.ExecContext(ctx, swapSQL, loc, old, "osprey", "logs", tbl, old)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func location(t *testing.T, db *sql.DB, tbl string) (string, string) {
	t.Helper()
	var loc, prev sql.NullString
	err := db.QueryRowContext(t.Context(), `SELECT metadata_location, previous_metadata_location FROM iceberg_tables
		WHERE catalog_name = 'osprey' AND table_namespace = 'logs' AND table_name = $1`, tbl).Scan(&loc, &prev)
	if err != nil {
		t.Fatal(err)
	}
	return loc.String, prev.String
}

func testStatements(t *testing.T, s *pgtest.Server) {
	db := catalogDB(t, s)
	ctx := t.Context()

	// SQLite's ? placeholders are not PostgreSQL's: the statement must say $1...
	_, err := db.ExecContext(ctx, `UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ?
		WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?`,
		"m1", "m0", "osprey", "logs", "events", "m0")
	if err == nil {
		t.Error("a statement with ? placeholders ran on PostgreSQL")
	}
	t.Logf("? placeholders: %v", err)

	for _, c := range []struct {
		old, loc string
		want     int64
	}{{"m0", "m1", 1}, {"m0", "m2", 0}, {"m1", "m2", 1}} {
		if n, err := swap(ctx, db, "events", c.old, c.loc); err != nil || n != c.want {
			t.Errorf("swap %s to %s: %d rows, %v; want %d", c.old, c.loc, n, err, c.want)
		}
	}
	if loc, prev := location(t, db, "events"); loc != "m2" || prev != "m1" {
		t.Errorf("after swaps: location %s, previous %s; want m2, m1", loc, prev)
	}

	for _, meta := range []string{`{"a":"1"}`, `{"a":"2"}`} {
		if _, err := db.ExecContext(ctx, recordSQL, "w1", meta); err != nil {
			t.Fatalf("record %s: %v", meta, err)
		}
		var got string
		if err := db.QueryRowContext(ctx, `SELECT meta FROM osprey_commits WHERE writer = $1`, "w1").Scan(&got); err != nil || got != meta {
			t.Errorf("meta = %s, %v; want %s", got, err, meta)
		}
	}

	// SQLite's INTEGER holds an int64; PostgreSQL's holds 32 bits: Record.Flush needs BIGINT.
	const flush = int64(1) << 40
	if _, err := db.ExecContext(ctx, `CREATE TABLE flushes_int (instance TEXT PRIMARY KEY, flush INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO flushes_int VALUES ($1, $2)`, "i", flush); err == nil {
		t.Error("an INTEGER column of PostgreSQL took 1<<40")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO osprey_flushes (instance, flush) VALUES ($1, $2)
		ON CONFLICT (instance) DO UPDATE SET flush = excluded.flush`, "i", flush); err != nil {
		t.Errorf("a BIGINT column: %v", err)
	}
}

// waitBlocked returns once the backend pid waits for a lock held by another. Each round of
// the loop is one query; a minute bounds it.
func waitBlocked(t *testing.T, db *sql.DB, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		var blocked bool
		if err := db.QueryRowContext(ctx, `SELECT cardinality(pg_blocking_pids($1)) > 0`, pid).Scan(&blocked); err != nil {
			t.Fatalf("is backend %d blocked: %v", pid, err)
		}
		if blocked {
			return
		}
	}
}

// begin begins a transaction on a connection of its own and returns its backend's pid.
func begin(t *testing.T, db *sql.DB, opts *sql.TxOptions) (*sql.Tx, int) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return tx, pid
}

type result struct {
	n   int64
	err error
}

// swapBlocked swaps table from one metadata location to another on tx in a goroutine, and
// returns once tx's backend (pid) waits for a lock another transaction holds; the swap's
// result comes on the channel.
func swapBlocked(t *testing.T, db *sql.DB, tx *sql.Tx, pid int, table, from, to string) <-chan result {
	t.Helper()
	done := make(chan result, 1)
	go func() {
		n, err := swap(t.Context(), tx, table, from, to)
		done <- result{n, err}
	}()
	waitBlocked(t, db, pid)
	return done
}

// firstSwapBlocksSecond begins two transactions with opts: the first swaps events from m0 to
// m1, then the second's swap from m0 to m2 waits for the first's row lock.
func firstSwapBlocksSecond(t *testing.T, db *sql.DB, opts *sql.TxOptions) (first, second *sql.Tx, done <-chan result) {
	t.Helper()
	first, _ = begin(t, db, opts)
	second, pid := begin(t, db, opts)
	if n, err := swap(t.Context(), first, "events", "m0", "m1"); err != nil || n != 1 {
		t.Fatalf("first swap: %d rows, %v; want 1", n, err)
	}
	return first, second, swapBlocked(t, db, second, pid, "events", "m0", "m2")
}

// Two transactions swap one table from the same metadata at once (the default isolation,
// READ COMMITTED): the second waits for the first's row lock, then reads the committed row
// again, finds the metadata moved and changes nothing.
func testSwapConcurrentReadCommitted(t *testing.T, s *pgtest.Server) {
	db := catalogDB(t, s)
	first, second, done := firstSwapBlocksSecond(t, db, nil)
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.n != 0 {
		t.Errorf("second swap after the first committed: %d rows, %v; want 0", r.n, r.err)
	}
	if err := second.Commit(); err != nil {
		t.Fatal(err)
	}
	if loc, prev := location(t, db, "events"); loc != "m1" || prev != "m0" {
		t.Errorf("location %s, previous %s; want the first swap's m1, m0", loc, prev)
	}
}

// Under REPEATABLE READ (or SERIALIZABLE) the second swap fails instead, with a
// serialization failure (SQLSTATE 40001): a lost race too, but an error, not 0 rows.
func testSwapConcurrentRepeatableRead(t *testing.T, s *pgtest.Server) {
	db := catalogDB(t, s)
	first, _, done := firstSwapBlocksSecond(t, db, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if pgErr := (*pgconn.PgError)(nil); !errors.As(r.err, &pgErr) || pgErr.Code != "40001" {
		t.Errorf("second swap: %d rows, %v; want SQLSTATE 40001", r.n, r.err)
	}
	if loc, _ := location(t, db, "events"); loc != "m1" {
		t.Errorf("location %s, want the first swap's m1", loc)
	}
}

// Many writers swap from the same metadata at once, each on a connection of its own: one
// wins, the others change nothing.
func testSwapRace(t *testing.T, s *pgtest.Server) {
	db := catalogDB(t, s)
	ctx := t.Context()
	const writers = 8
	var wg sync.WaitGroup
	results := make([]result, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				results[i].err = err
				return
			}
			defer tx.Rollback()
			<-start
			results[i].n, results[i].err = swap(ctx, tx, "events", "m0", fmt.Sprintf("w%d", i))
			if results[i].err == nil {
				results[i].err = tx.Commit()
			}
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i, r := range results {
		if r.err != nil {
			t.Errorf("writer %d: %v", i, r.err)
		}
		if r.n == 1 {
			if winner != "" {
				t.Errorf("writers %s and w%d both swapped from m0", winner, i)
				continue
			}
			winner = fmt.Sprintf("w%d", i)
		}
	}
	if loc, _ := location(t, db, "events"); loc != winner || winner == "" {
		t.Errorf("location %s, want the one winner's (%q)", loc, winner)
	}
}

// Two commits that swap the same two tables in opposite orders deadlock: PostgreSQL ends
// one of them (SQLSTATE 40P01) after deadlock_timeout. A commit of several tables should
// swap them in one order (sorted), as SQLite's single writer never needed.
func testSwapOppositeOrdersDeadlock(t *testing.T, s *pgtest.Server) {
	db := catalogDB(t, s)
	ctx := t.Context()
	first, _ := begin(t, db, nil)
	second, pid := begin(t, db, nil)
	// Find the deadlock sooner than the default second.
	for _, tx := range []*sql.Tx{first, second} {
		if _, err := tx.ExecContext(ctx, "SET LOCAL deadlock_timeout = '50ms'"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := swap(ctx, first, "events", "m0", "a1"); err != nil || n != 1 {
		t.Fatalf("first swap of events: %d, %v", n, err)
	}
	if n, err := swap(ctx, second, "alerts", "m0", "b1"); err != nil || n != 1 {
		t.Fatalf("second swap of alerts: %d, %v", n, err)
	}
	done := swapBlocked(t, db, second, pid, "events", "m0", "b1")
	_, errFirst := swap(ctx, first, "alerts", "m0", "a1")
	r := <-done
	var pgErr *pgconn.PgError
	deadlocked := 0
	for _, err := range []error{errFirst, r.err} {
		if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
			deadlocked++
		} else if err != nil {
			t.Errorf("swap: %v, want no error or a deadlock", err)
		}
	}
	if deadlocked != 1 {
		t.Errorf("%d swaps ended as deadlocked, want 1 (first: %v; second: %v)", deadlocked, errFirst, r.err)
	}
}
