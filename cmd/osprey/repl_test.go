package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// terminal is the osprey binary (this test binary) running in a pseudo-terminal.
type terminal struct {
	t   *testing.T
	pty *os.File // the master side: what the user types and sees
	tty *os.File // the terminal side, kept open to read its modes
	cmd *exec.Cmd

	mu   sync.Mutex
	out  strings.Builder // everything printed, escape sequences removed
	seen int             // offset up to which expect has matched
	done chan struct{}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r`)

func startTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "OSPREY_TEST_RUN_MAIN=1", "HOME="+t.TempDir(), "TERM=xterm")
	f, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(f, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, pty: f, tty: tty, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				tm.out.WriteString(string(buf[:n]))
				tm.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
		tty.Close()
	})
	return tm
}

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return ansi.ReplaceAllString(tm.out.String(), "")
}

// expect waits until the output after the last match contains s (or fails after a generous
// deadline, for a shell that hangs).
func (tm *terminal) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		text := tm.text()
		if tm.seen > len(text) {
			tm.seen = len(text)
		}
		if i := strings.Index(text[tm.seen:], s); i >= 0 {
			tm.seen += i + len(s)
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("no %q in the terminal after 30s; it shows:\n%s", s, text[tm.seen:])
		}
		select {
		case <-tm.done:
			if !strings.Contains(tm.text()[tm.seen:], s) {
				tm.t.Fatalf("osprey ended without printing %q; it printed:\n%s", s, tm.text()[tm.seen:])
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// typeText types text, waiting for the shell to echo it: keys that arrive together are read by
// go-prompt as a paste, where Enter is a newline.
func (tm *terminal) typeText(s string) {
	tm.t.Helper()
	tm.waitMode(false)
	if _, err := io.WriteString(tm.pty, s); err != nil {
		tm.t.Fatal(err)
	}
	tm.expect(s[max(0, len(s)-12):])
}

// waitMode waits until the terminal is in cooked (a statement runs) or raw mode (go-prompt
// reads keys). go-prompt renders the prompt before it switches to raw mode, and what is typed
// before is line-buffered by the terminal: Enter then arrives with the text, as a paste.
func (tm *terminal) waitMode(cooked bool) {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for (termFlags(tm.t, tm.tty)&unix.ICANON != 0) != cooked {
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal is not in cooked=%v mode after 30s", cooked)
		}
		time.Sleep(5 * time.Millisecond) // polling the terminal's mode
	}
}

// waitCookedOr waits until the terminal is in cooked mode (true) or the output after the last
// match contains s (false, and s is matched).
func (tm *terminal) waitCookedOr(s string) bool {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for termFlags(tm.t, tm.tty)&unix.ICANON == 0 {
		if tm.expectWithin(s, 0) {
			return false
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal is not in cooked mode after 30s, and shows no %q:\n%s", s, tm.text()[min(tm.seen, len(tm.text())):])
		}
		time.Sleep(5 * time.Millisecond) // polling the terminal's mode
	}
	return true
}

// expectWithin is expect that gives up after d, reporting whether s came.
func (tm *terminal) expectWithin(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for first := true; first || time.Now().Before(deadline); first = false {
		text := tm.text()
		if i := strings.Index(text[min(tm.seen, len(text)):], s); i >= 0 {
			tm.seen += i + len(s)
			return true
		}
		time.Sleep(10 * time.Millisecond) // polling the output
	}
	return false
}

func (tm *terminal) key(k string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.pty, k); err != nil {
		tm.t.Fatal(err)
	}
}

func termFlags(t *testing.T, f *os.File) uint32 {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag & (unix.ICANON | unix.ECHO | unix.ISIG)
}

// TestREPL drives `osprey sql` in a pseudo-terminal: a multi-line statement, completion of a
// column and of a struct field, Ctrl-C during a long query, dot commands, Ctrl-D, history, and
// the terminal's mode after exit.
func TestREPL(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	samples, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "samples"))
	if code := run(context.Background(), []string{"ingest", "--lake", lakeDir, "-t", "Panther.Audit", filepath.Join(samples, "panther_audit.jsonl")}); code != 0 {
		t.Fatalf("ingest: exit %d", code)
	}
	history := filepath.Join(dir, "history")
	tm := startTerminal(t, "sql", "--lake", lakeDir, "--history", history)
	before := termFlags(t, tm.tty)
	tm.expect("osprey> ")

	// A statement over two lines.
	tm.typeText("SELECT actionName, count(*) AS n")
	tm.key("\r")
	tm.expect("....... ")
	tm.typeText("FROM panther_logs.panther_audit WHERE actionName = 'SIGN_IN' GROUP BY 1;")
	tm.key("\r")
	tm.expect("│ SIGN_IN")
	tm.expect("1 row in ")

	// Completion: a column, then a field of a struct column.
	tm.typeText("SELECT actionN")
	tm.key("\t")
	tm.expect("SELECT actionName") // the line, not the menu
	tm.typeText(", actor.na")
	tm.key("\t")
	tm.expect(", actor.name")
	tm.typeText(" AS who FROM panther_logs.panther_audit WHERE actionName = 'DELETE_DETECTION';")
	tm.key("\r")
	tm.expect("│ actionName")
	tm.expect("│ DELETE_DETECTION")
	tm.expect("1 row in ")

	// Ctrl-C cancels a long query and the shell goes on. ^C is sent while the terminal is in
	// cooked mode (the statement is running; in raw mode ^C would only clear the line), again if
	// the first one came before the shell listened for it.
	tm.typeText("SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 8;")
	tm.key("\r")
	for try := 0; ; try++ {
		// On a loaded machine "Cancelled." may come after expectWithin gave up, and the shell
		// is then back in raw mode: wait for either.
		if !tm.waitCookedOr("Cancelled.") {
			break
		}
		tm.key("\x03")
		if tm.expectWithin("Cancelled.", 2*time.Second) {
			break
		}
		if try == 10 {
			t.Fatalf("Ctrl-C did not cancel the statement; the terminal shows:\n%s", tm.text()[tm.seen:])
		}
	}
	tm.expect("osprey> ")

	// Dot commands.
	tm.typeText(".mode csv")
	tm.key("\r")
	tm.expect("osprey> ") // the next prompt: the command ran
	tm.typeText("SELECT 40 + 2 AS answer;")
	tm.key("\r")
	tm.expect("answer\n42\n")
	tm.typeText(".tables")
	tm.key("\r")
	tm.expect("panther_views.all_logs")
	tm.typeText(".schema panther_logs.panther_audit")
	tm.key("\r")
	tm.expect("  actor.name ")

	// Ctrl-D on an empty line leaves; the terminal is as it was.
	tm.expect("osprey> ")
	tm.key("\x04")
	exited := make(chan error, 1)
	go func() { exited <- tm.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("osprey sql: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("osprey sql did not end after Ctrl-D; the terminal shows:\n%s", tm.text()[tm.seen:])
	}
	if after := termFlags(t, tm.tty); after != before {
		t.Errorf("terminal modes after exit %#x, before %#x (ICANON|ECHO|ISIG)", after, before)
	}
	data, err := os.ReadFile(history)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"SELECT actionName, count(*) AS n\nFROM panther_logs.panther_audit`, `"SELECT 40 + 2 AS answer;"`, `".mode csv"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("history has no %s:\n%s", want, data)
		}
	}
}
