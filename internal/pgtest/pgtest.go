// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster of the installed
// server binaries (Debian's postgresql package) in a temporary directory, listening only on
// 127.0.0.1 and a unix socket in that directory, with fsync on.
//
// Start starts a server for a test and stops it when the test ends; NewDatabase gives each
// test (or subtest) a database of its own on it, which is cheap: tests that share a server
// start it once in a parent test and call NewDatabase in each subtest.
//
// The server is a child of the test binary, not a daemon: it is stopped with a fast shutdown
// (what pg_ctl stop -m fast sends) at the test's cleanup, and the kernel stops it (SIGQUIT)
// should the test binary die first, so that no server outlives the tests. Running as root,
// as tests do here and may in CI, the server runs as the postgres system user, since initdb
// and postgres refuse to run as root. Where the binaries are missing, the test is skipped
// with a message that says how to install them (`make test-deps` does).
package pgtest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	// The database/sql driver "pgx", the driver of the tests on PostgreSQL.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// Driver is the database/sql driver name that opens a Server's DSNs.
const Driver = "pgx"

// timeout bounds initdb, the server's start and stop, and the creation of a database.
const timeout = 60 * time.Second

// readyLine is what the server logs once it accepts connections (lc_messages is C).
const readyLine = "database system is ready to accept connections"

// A Server is a running PostgreSQL server of a test.
type Server struct {
	// DSN connects as the superuser postgres (no password) to the database postgres, over
	// TCP to 127.0.0.1: postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
	DSN string

	// Version is the server's version, as postgres --version prints it.
	Version string

	port  int
	admin *sql.DB
	dbs   atomic.Int64
}

// Start starts a PostgreSQL server for the test, stopped at its cleanup. It skips the test,
// saying how to install them, when the server binaries are not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	began := time.Now()
	bin, err := binDir(pgConfigBinDir(), "/usr/lib/postgresql/*/bin")
	if err != nil {
		t.Skipf("no PostgreSQL server to test with: %v; install Debian's postgresql package "+
			"(apt-get install postgresql, or make test-deps)", err)
	}
	cred, err := serverCredential()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// A directory of its own, not t.TempDir: the server's user must reach it (t.TempDir's
	// parent is private to the test's user), and the socket's path must stay short.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// --no-sync: the cluster is new and thrown away; the server itself syncs (fsync on).
	initdb := command(ctx, cred, dir, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	version, err := command(ctx, cred, dir, filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		t.Fatalf("pgtest: postgres --version: %v", err)
	}

	s := &Server{Version: strings.TrimSpace(string(version))}
	var p *process
	// Another process may take the free port before the server binds it: try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		p, err = startServer(cred, dir, filepath.Join(bin, "postgres"), data, port)
		if err == nil {
			s.port = port
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("pgtest: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("pgtest: stop the server: %v\n%s", err, p.log.tail())
		} else if t.Failed() {
			t.Logf("pgtest: the server's log:\n%s", p.log.tail())
		}
	})
	s.DSN = s.dsn("postgres")
	s.admin, err = sql.Open(Driver, s.DSN)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { s.admin.Close() })
	t.Logf("pgtest: %s on 127.0.0.1:%d, started in %v", s.Version, s.port, time.Since(began).Round(time.Millisecond))
	return s
}

// NewDatabase creates an empty database on the server for the test, dropped at its cleanup
// (with the connections still open to it), and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

func (s *Server) dsn(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// pgConfigBinDir is the directory pg_config names for the server's binaries, or "".
func pgConfigBinDir() string {
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// binDir returns the directory of initdb and postgres: preferred when it holds them, or else
// the newest version's among the directories that pattern matches (Debian's
// /usr/lib/postgresql/VERSION/bin).
func binDir(preferred, pattern string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if preferred != "" && has(preferred) {
		return preferred, nil
	}
	dirs, _ := filepath.Glob(pattern)
	best, bestVersion := "", -1.0
	for _, dir := range dirs {
		// Versions are 9.6, 15, 16: compared as numbers, not as text.
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err == nil && v > bestVersion && has(dir) {
			best, bestVersion = dir, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("initdb and postgres found neither in pg_config --bindir nor in %s", pattern)
	}
	return best, nil
}

// serverCredential is who the server runs as: nil for the test's own user, the postgres
// system user when the test runs as root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no postgres user to run the server as (the postgresql package creates it): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// command runs name in dir as cred (nil: as the test's user), in the C locale, killed when ctx
// is done or should the test binary die.
func command(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C", "TZ=UTC"}
	// The kernel sends Pdeathsig when the thread that started the child ends, which in Go is
	// when the process does (no goroutine here is locked to its thread).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errPortTaken = errors.New("port taken")

// process is a running postgres: the postmaster, child of the test binary.
type process struct {
	cmd    *exec.Cmd
	log    *logTail
	exited chan struct{} // closed once the server has exited and its log is read
	err    error         // how it exited, once exited is closed
}

// startServer starts postgres on data and returns once it accepts connections.
func startServer(cred *syscall.Credential, dir, postgres, data string, port int) (*process, error) {
	// Settings for tests: TCP on 127.0.0.1 only, the socket in dir, and what the tests rely on
	// set explicitly (fsync and synchronous commits on: tests check durability).
	// Not bound by a context: it runs until stop, or until the test binary ends.
	cmd := command(context.Background(), cred, dir, postgres, "-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "lc_messages=C",
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
		"-c", "max_connections=100",
	)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	w.Close()
	p := &process{cmd: cmd, log: &logTail{}, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		// The log ends when the postmaster and every backend (they share its stderr) are gone.
		sc := bufio.NewScanner(r)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			p.log.add(line)
			if !signalled && strings.Contains(line, readyLine) {
				close(ready)
				signalled = true
			}
		}
		r.Close()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	timeout := time.NewTimer(timeout)
	defer timeout.Stop()
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		if strings.Contains(p.log.tail(), "could not bind") {
			return nil, fmt.Errorf("postgres on port %d: %w\n%s", port, errPortTaken, p.log.tail())
		}
		return nil, fmt.Errorf("postgres exited before it was ready: %v\n%s", p.err, p.log.tail())
	case <-timeout.C:
		p.kill()
		return nil, fmt.Errorf("postgres not ready after %v\n%s", timeout, p.log.tail())
	}
}

// stop shuts the server down fast (SIGINT: sessions are ended, the server checkpoints) and
// waits for it and its backends to be gone.
func (p *process) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	timeout := time.NewTimer(timeout)
	defer timeout.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-timeout.C:
		p.kill()
		return fmt.Errorf("no fast shutdown after %v: killed", timeout)
	}
}

// kill stops the server at once (SIGQUIT, which ends its backends too) and waits for it.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTail keeps the last lines of the server's log, for the messages of failures.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

const logLines = 100

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 2*logLines {
		l.lines = append(l.lines[:0], l.lines[len(l.lines)-logLines:]...)
	}
}

// tail is the log's last lines.
func (l *logTail) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines[max(0, len(l.lines)-logLines):]
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
