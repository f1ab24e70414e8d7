package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/ospreyhq/osprey/lake"
)

// A BatchDB runs statements over record batches bound as tables, not over the lake: streaming
// detections bind each new batch of a table as panther_logs.<table> and run their rules on it.
//
// A batch reaches DuckDB as a Parquet file written by the lake's own encoder (lake.WriteFile)
// and copied into an in-memory table, so its columns have exactly the types they have in the
// lake (JSON columns are JSON, p_event_time is TIMESTAMPTZ): a rule binds the same way on a
// batch as over the lake. The file lives in a temporary directory (on tmpfs when there is one)
// only until the copy is made. DuckDB's Arrow scan would skip the file but needs the
// duckdb_arrow build tag, and its registered views are unsafe under projections (DESIGN.md).
//
// A table keeps its identity while the batches bound to it have the same columns (its rows are
// replaced, not the table), so that statements prepared over it stay valid: QueryPrepared
// parses and plans a statement once, not for every batch.
type BatchDB struct {
	db     *sql.DB
	conn   *sql.Conn
	dir    string
	lock   *os.File // flock held while the directory is in use
	seq    int
	dbs    map[string]bool   // schemas created
	tables map[string]string // "db.table" -> the signature of its columns
	stmts  map[string]*sql.Stmt
	aggs   map[string]bool   // names of aggregate functions
	trees  map[string]string // statement -> its syntax tree as JSON text (see syntaxTree)
}

// BatchOptions configure a BatchDB.
type BatchOptions struct {
	// Dir is where batch files are written for the moment of the copy; default /dev/shm when
	// it exists, else the system's temporary directory.
	Dir string
	// MemoryLimit is DuckDB's memory_limit; default 1GB. A batch and the results of the
	// statements over it must fit.
	MemoryLimit string
}

// OpenBatchDB starts an empty in-memory DuckDB with one thread: batches are small, and
// detections run one BatchDB per ingest worker. Like Open, it never reaches the network and
// reads no file but its own batches.
func OpenBatchDB(ctx context.Context, opts BatchOptions) (*BatchDB, error) {
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = "1GB"
	}
	base := opts.Dir
	if base == "" {
		base = os.TempDir()
		if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() && writable("/dev/shm") {
			base = "/dev/shm"
		}
	}
	removeStaleBatchDirs(base)
	dir, err := os.MkdirTemp(base, batchDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("batch directory: %w", err)
	}
	// The lock tells other processes the directory is in use; a killed process's lock goes
	// with it, and the next BatchDB removes the directory.
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("batch directory: %w", err)
	}
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET memory_limit = " + quote(opts.MemoryLimit),
		"SET threads = 1",
		"SET TimeZone = 'UTC'",
	}
	settings = append(settings, lockdown(dir)...)
	connector, err := duckdb.NewConnector("?autoinstall_known_extensions=false&autoload_known_extensions=false", func(ex driver.ExecerContext) error {
		return nil
	})
	if err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	b := &BatchDB{db: sql.OpenDB(connector), dir: dir, lock: lock, dbs: map[string]bool{}, tables: map[string]string{}, stmts: map[string]*sql.Stmt{}, trees: map[string]string{}}
	b.db.SetMaxOpenConns(1)
	// Before b.conn holds the only connection: registering takes one from the pool.
	if err := registerFunctions(ctx, b.db); err != nil {
		b.Close()
		return nil, err
	}
	if b.conn, err = b.db.Conn(ctx); err != nil {
		b.Close()
		return nil, err
	}
	for _, s := range settings {
		if _, err := b.conn.ExecContext(ctx, s); err != nil {
			b.Close()
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	return b, nil
}

// batchDirPrefix starts the names of BatchDB directories.
const batchDirPrefix = "osprey-batch-"

// removeStaleBatchDirs removes the batch directories of processes that died without closing
// their BatchDB (their lock is free).
func removeStaleBatchDirs(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), batchDirPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
		if err != nil {
			continue // not ours to judge (no lock file), or gone
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".osprey-probe-")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// Close releases the database and removes its directory.
func (b *BatchDB) Close() error {
	var err error
	b.dropStatements()
	if b.conn != nil {
		err = b.conn.Close()
	}
	err = errors.Join(err, b.db.Close(), os.RemoveAll(b.dir))
	if b.lock != nil {
		b.lock.Close()
	}
	return err
}

// Bind makes db.table hold the rows of recs (batches of one schema), and only them. The table
// has one more column, file_row_number: the number of each row in recs, from 0.
func (b *BatchDB) Bind(ctx context.Context, db, table string, recs ...arrow.RecordBatch) error {
	return b.BindRows(ctx, db, table, recs, nil)
}

// BindRows is Bind of some rows only: rows[i] lists the rows of recs[i], in order (rows nil:
// every row). file_row_number numbers the rows bound, from 0.
func (b *BatchDB) BindRows(ctx context.Context, db, table string, recs []arrow.RecordBatch, rows [][]int32) error {
	if len(recs) == 0 {
		return errors.New("bind: no batch")
	}
	if err := lake.CheckName(db); err != nil {
		return err
	}
	if err := lake.CheckName(table); err != nil {
		return err
	}
	if !b.dbs[db] {
		if _, err := b.conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(db)); err != nil {
			return err
		}
		b.dbs[db] = true
	}
	// The table is a view over a file of the batch, replaced by each bind: DuckDB reads the
	// file in each statement's scan instead of copying it into a table first, which costs more
	// than a scan (about a microsecond a row).
	name := ident(db) + "." + ident(table)
	path := filepath.Join(b.dir, db+"."+table+".parquet")
	b.seq++
	tmp := filepath.Join(b.dir, "b"+strconv.Itoa(b.seq)+".tmp")
	var err error
	if rows == nil {
		_, err = lake.WriteScratchFile(tmp, recs...)
	} else {
		_, err = lake.WriteScratchRows(tmp, recs, rows)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bind %s.%s: %w", db, table, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bind %s.%s: %w", db, table, err)
	}
	sig := lake.Signature(recs[0].Schema())
	if b.tables[name] != sig {
		// New columns: statements prepared over the old ones are dropped.
		b.dropStatements()
		delete(b.tables, name)
		stmt := fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet(%s, file_row_number = true)", name, quote(path))
		if _, err := b.conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("bind %s.%s: %w", db, table, err)
		}
	}
	b.tables[name] = sig
	return nil
}

func (b *BatchDB) dropStatements() {
	for k, st := range b.stmts {
		st.Close()
		delete(b.stmts, k)
	}
}

// expand expands Panther's macros in a rule's statement, counting back from now. As in
// DB.prepare, the statement with its timestamp arguments left expressions must parse as one
// query before any argument is evaluated.
func (b *BatchDB) expand(ctx context.Context, stmt string, now time.Time) (string, error) {
	whole, err := expandMacros(stmt, now, deferEval, nil)
	if err != nil || whole == stmt {
		return whole, err // no macro: nothing to evaluate
	}
	if _, err := parseQuery(ctx, b.conn, whole); err != nil {
		return "", err
	}
	return expandMacros(stmt, now, duckEval(ctx, b.conn), nil)
}

// QueryPrepared is Query through a prepared statement, prepared on first use and kept while
// the tables it reads keep their columns.
func (b *BatchDB) QueryPrepared(ctx context.Context, stmt string, now time.Time) (*sql.Rows, error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, err
	}
	st := b.stmts[run]
	if st == nil {
		if err := checkPrepared(b.conn, run, false); err != nil {
			return nil, oneLine(err)
		}
		if st, err = b.conn.PrepareContext(ctx, run); err != nil {
			return nil, oneLine(err)
		}
		if len(b.stmts) >= maxStatements {
			b.dropStatements()
		}
		b.stmts[run] = st
	}
	rows, err := st.QueryContext(ctx)
	if err != nil {
		return nil, oneLine(err)
	}
	return rows, nil
}

// rowNumberColumn is the column of a bound table that numbers its rows.
const rowNumberColumn = "file_row_number"

// maxStatements bounds the prepared statements a BatchDB keeps (a statement whose macros
// count back from now changes text as time passes).
const maxStatements = 256

// BindSchema makes db.table an empty table of the schema, to check that statements bind.
func (b *BatchDB) BindSchema(ctx context.Context, db, table string, s *arrow.Schema) error {
	rec := emptyRecord(s)
	defer rec.Release()
	return b.Bind(ctx, db, table, rec)
}

// Query runs a statement over the bound tables after expanding Panther's macros, counting back
// from now.
func (b *BatchDB) Query(ctx context.Context, stmt string, now time.Time) (*sql.Rows, error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, err
	}
	if err := checkPrepared(b.conn, run, false); err != nil {
		return nil, oneLine(err)
	}
	rows, err := b.conn.QueryContext(ctx, run)
	if err != nil {
		return nil, oneLine(err)
	}
	return rows, nil
}

// Check reports whether a statement binds against the bound tables, without running it; the
// names of its result columns are returned.
func (b *BatchDB) Check(ctx context.Context, stmt string, now time.Time) ([]string, error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, err
	}
	// database/sql exposes no result columns of a prepared statement; LIMIT 0 runs nothing.
	run = strings.TrimRight(strings.TrimSpace(run), ";")
	run = "SELECT * FROM (" + run + "\n) LIMIT 0"
	if err := checkPrepared(b.conn, run, false); err != nil {
		return nil, oneLine(err)
	}
	rows, err := b.conn.QueryContext(ctx, run)
	if err != nil {
		return nil, oneLine(err)
	}
	defer rows.Close()
	return rows.Columns()
}

func emptyRecord(s *arrow.Schema) arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer rb.Release()
	return rb.NewRecordBatch()
}

// oneLine reduces a DuckDB error to its first line, where the message is.
func oneLine(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Msg: firstLine(strings.TrimSpace(err.Error())), Err: err}
}

// Columns returns the column references of a statement, each as the parts of its name in
// lowercase (DuckDB's identifiers are case-insensitive): actor.name is ["actor", "name"], which
// may be field name of column actor or column name of table actor. all is set when the
// statement may read every column of a table: it uses COLUMNS(...), or a table as a value
// (to_json(t)). Macros are expanded first.
func (b *BatchDB) Columns(ctx context.Context, stmt string, now time.Time) (refs [][]string, all bool, err error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, false, err
	}
	tree, err := b.syntaxTree(ctx, run)
	if err != nil {
		return nil, false, err
	}
	tables := map[string]bool{}
	walk(tree, func(m map[string]any) {
		switch m["class"] {
		case "COLUMN_REF":
			names, _ := m["column_names"].([]any)
			ref := make([]string, 0, len(names))
			for _, n := range names {
				ref = append(ref, strings.ToLower(fmt.Sprint(n)))
			}
			refs = append(refs, ref)
		case "STAR":
			if m["columns"] == true {
				all = true
			}
			for _, key := range []string{"exclude_list", "replace_list", "rename_list", "qualified_exclude_list"} {
				list, _ := m[key].([]any)
				for _, e := range list {
					walkStrings(e, func(s string) { refs = append(refs, []string{strings.ToLower(s)}) })
				}
			}
		}
		if m["type"] == "BASE_TABLE" {
			for _, key := range []string{"table_name", "alias"} {
				if s, _ := m[key].(string); s != "" {
					tables[strings.ToLower(s)] = true
				}
			}
		}
	})
	for _, r := range refs {
		if len(r) == 1 && tables[r[0]] {
			all = true
		}
	}
	return refs, all, nil
}

func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	}
}

// Tables returns the tables a statement reads, each as "db.table" in lowercase, or "table"
// when it names no database (a table of the default schema, or a common table expression),
// sorted, without repeats. Macros are expanded first.
func (b *BatchDB) Tables(ctx context.Context, stmt string, now time.Time) ([]string, error) {
	run, err := b.expand(ctx, stmt, now)
	if err != nil {
		return nil, err
	}
	tree, err := b.syntaxTree(ctx, run)
	if err != nil {
		return nil, err
	}
	var tables []string
	seen := map[string]bool{}
	walk(tree, func(m map[string]any) {
		if m["type"] != "BASE_TABLE" {
			return
		}
		name, _ := m["table_name"].(string)
		if db, _ := m["schema_name"].(string); db != "" {
			name = db + "." + name
		}
		name = strings.ToLower(name)
		if name != "" && !seen[name] {
			seen[name] = true
			tables = append(tables, name)
		}
	})
	sort.Strings(tables) // walk visits maps in no fixed order
	return tables, nil
}
