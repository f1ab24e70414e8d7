package iceberg

import (
	"context"
	"database/sql"
	"fmt"

	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// setupLock is the PostgreSQL advisory lock key held while a process creates the catalog's
// tables: CREATE TABLE IF NOT EXISTS is not safe against itself in another session.
const setupLock = 0x6f73707265790001 // "osprey", 1

// openPostgres opens the catalog in a PostgreSQL database, which several processes and
// machines may share: a commit is a transaction of that database (see swap).
func (c *Catalog) openPostgres(ctx context.Context, dsn string) error {
	if dsn == "" {
		return fmt.Errorf("the postgres catalog needs a database: set its dsn (postgres://user@host:5432/db)")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open postgres catalog: %w", err)
	}
	if err := c.setUpPostgres(ctx, db); err != nil {
		db.Close()
		return fmt.Errorf("open postgres catalog: %w", err)
	}
	return nil
}

func (c *Catalog) setUpPostgres(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(setupLock)); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(setupLock))
	var have int
	err = conn.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()
		AND table_name IN ('iceberg_tables', 'iceberg_namespace_properties', 'osprey_commits', 'osprey_flushes')`).Scan(&have)
	if err != nil {
		return err
	}
	return c.setUp(ctx, db, sqlcat.Postgres, have < 4)
}
