package pgtest_test

import (
	"database/sql"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ospreyhq/osprey/internal/pgtest"
)

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(pgtest.Driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func setting(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatalf("setting %s: %v", name, err)
	}
	return v
}

// TestServer runs the cases of a server on one, as tests that share a server do.
func TestServer(t *testing.T) {
	s := pgtest.Start(t)
	t.Run("settings", func(t *testing.T) { testSettings(t, s) })
	t.Run("user", func(t *testing.T) { testUser(t, s) })
	t.Run("databases", func(t *testing.T) { testNewDatabase(t, s) })
	t.Run("dropped", func(t *testing.T) { testNewDatabaseDropped(t, s) })
}

func testSettings(t *testing.T, s *pgtest.Server) {
	if !strings.HasPrefix(s.DSN, "postgres://postgres@127.0.0.1:") {
		t.Errorf("DSN %q: want postgres://postgres@127.0.0.1:PORT/...", s.DSN)
	}
	db := open(t, s.DSN)
	for name, want := range map[string]string{
		"listen_addresses":              "127.0.0.1",
		"fsync":                         "on",
		"synchronous_commit":            "on",
		"default_transaction_isolation": "read committed",
		"server_encoding":               "UTF8",
	} {
		if got := setting(t, db, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// The unix socket is in the server's own directory, not in a shared one.
	if dir := setting(t, db, "unix_socket_directories"); !strings.Contains(dir, "pgtest-") {
		t.Errorf("unix_socket_directories = %q, want the server's temporary directory", dir)
	}
}

// Each database of NewDatabase is a database of its own: a table in one is not in another.
func testNewDatabase(t *testing.T, s *pgtest.Server) {
	a, b := open(t, s.NewDatabase(t)), open(t, s.NewDatabase(t))
	ctx := t.Context()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count in a = %d, %v; want 1", n, err)
	}
	if _, err := b.ExecContext(ctx, "SELECT * FROM t"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("table t of database a seen in database b: err = %v", err)
	}
	var na, nb string
	a.QueryRowContext(ctx, "SELECT current_database()").Scan(&na)
	b.QueryRowContext(ctx, "SELECT current_database()").Scan(&nb)
	if na == nb || na == "" {
		t.Errorf("databases %q and %q: want two different ones", na, nb)
	}
}

// A database is dropped at the end of its test, even with a connection still open to it.
func testNewDatabaseDropped(t *testing.T, s *pgtest.Server) {
	var name string
	t.Run("sub", func(t *testing.T) {
		db := open(t, s.NewDatabase(t))
		if err := db.QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	var n int
	err := open(t, s.DSN).QueryRowContext(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("database %s after its test: %d found (%v), want 0", name, n, err)
	}
}

// When its test ends, the server and all its backends are gone.
func TestStopLeavesNoProcess(t *testing.T) {
	var backend, postmaster int
	t.Run("server", func(t *testing.T) {
		s := pgtest.Start(t)
		db := open(t, s.DSN)
		if err := db.QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
			t.Fatal(err)
		}
		postmaster = parent(t, backend)
		if postmaster == os.Getpid() || postmaster <= 1 {
			t.Fatalf("backend %d has parent %d: want the postmaster", backend, postmaster)
		}
		if parent(t, postmaster) != os.Getpid() {
			t.Fatalf("postmaster %d is not a child of the test", postmaster)
		}
	})
	for _, pid := range []int{postmaster, backend} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after the test: kill(0) = %v", pid, err)
		}
	}
}

// parent is the parent process of pid, read from /proc.
func parent(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// Running as root, the server runs as the postgres user: initdb and postgres refuse root.
func testUser(t *testing.T, s *pgtest.Server) {
	var pid int
	if err := open(t, s.DSN).QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && st.Uid == 0 {
		t.Errorf("backend %d runs as root", pid)
	}
	if os.Geteuid() != 0 && st.Uid != uint32(os.Geteuid()) {
		t.Errorf("backend %d runs as uid %d, want the test's %d", pid, st.Uid, os.Geteuid())
	}
}
