package objcache

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// helperEnv carries a helper process's part: "pin <dir> <key>" or "fill <dir> <key>".
const helperEnv = "OBJCACHE_HELPER"

// TestHelperProcess is the other process of the tests below (this test binary, run again); it
// does nothing on its own. It speaks by lines: it writes "objcache: <event>" on stdout and
// reads a line on stdin where it waits.
//
//	pin:  Get the key (100 bytes), "pinned <path>", wait for stdin's end, release
//	fill: Get the key, its Fetch writing half, "fetching", waiting for a line, writing the
//	      rest; then "done <path>", wait for stdin's end, release
func TestHelperProcess(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		t.Skip("run by the multi-process tests")
	}
	f := strings.SplitN(arg, " ", 3)
	mode, dir, k := f[0], f[1], f[2]
	c, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := bufio.NewReader(os.Stdin)
	body := content(k, 100)
	fetch := func(ctx context.Context, w io.Writer) (Checksum, error) {
		if mode == "fill" {
			if _, err := w.Write(body[:50]); err != nil {
				return Checksum{}, err
			}
			fmt.Println("objcache: fetching")
			if _, err := in.ReadString('\n'); err != nil {
				return Checksum{}, err
			}
			_, err := w.Write(body[50:])
			return sha(body), err
		}
		_, err := w.Write(body)
		return sha(body), err
	}
	path, release, err := c.Get(context.Background(), k, 100, fetch)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the file: %q, %v", got, err)
	}
	event := map[string]string{"pin": "pinned", "fill": "done"}[mode]
	fmt.Printf("objcache: %s %s\n", event, path)
	io.Copy(io.Discard, in)
	release()
}

// helper is a running helper process.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

func startHelper(t *testing.T, mode, dir, key string) *helper {
	t.Helper()
	h := &helper{t: t, cmd: exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")}
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode+" "+dir+" "+key)
	h.cmd.Stderr = &h.stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.out = bufio.NewScanner(stdout)
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.stdin.Close()
		h.cmd.Wait()
	})
	return h
}

// expect reads the helper's output up to its next event, and returns the event's argument.
func (h *helper) expect(event string) string {
	h.t.Helper()
	var out []string
	for h.out.Scan() {
		line := h.out.Text()
		if rest, ok := strings.CutPrefix(line, "objcache: "+event); ok {
			return strings.TrimSpace(rest)
		}
		out = append(out, line)
	}
	h.cmd.Wait()
	h.t.Fatalf("helper: no %q event; stdout:\n%s\nstderr:\n%s", event, strings.Join(out, "\n"), h.stderr.String())
	return ""
}

// stop ends the helper's wait: it releases its pin and exits.
func (h *helper) stop() {
	h.t.Helper()
	h.stdin.Close()
	for h.out.Scan() {
	}
	if err := h.cmd.Wait(); err != nil {
		h.t.Fatalf("helper: %v\n%s", err, h.stderr.String())
	}
}

// A file pinned by another process is not evicted, though the least recently used; once that
// process released it, it is.
func TestPinOfOtherProcess(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 300)
	// This Cache's uses are in 2100, after the helper's: a, which the helper uses last, is the
	// least recently used file.
	var s store
	_, release := get(t, c, &s, key("a"))
	release()
	h := startHelper(t, "pin", dir, key("a"))
	h.expect("pinned")
	for _, k := range []string{"b", "c", "d"} {
		_, release := get(t, c, &s, key(k))
		release()
	}
	if !cached(t, c, key("a")) {
		t.Fatal("a, pinned by the other process, was evicted")
	}
	if st := c.Stats(); st.Evictions == 0 {
		t.Fatalf("stats %+v: no eviction", st)
	}

	h.stop()
	open(t, dir, 150)
	if cached(t, c, key("a")) {
		t.Error("a, released by the other process, was not evicted")
	}
}

// Two processes downloading one object at once both get a good file: the first published,
// which each keeps pinned.
func TestTwoProcessesFillOneKey(t *testing.T) {
	dir := t.TempDir()
	k := key("both")
	first, second := startHelper(t, "fill", dir, k), startHelper(t, "fill", dir, k)
	first.expect("fetching")
	second.expect("fetching") // both are downloading now
	fmt.Fprintln(first.stdin, "go")
	path := first.expect("done")
	fmt.Fprintln(second.stdin, "go")
	if got := second.expect("done"); got != path {
		t.Fatalf("paths %s and %s", path, got)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != Name(k) {
		t.Fatalf("the directory holds %q, want the object's file alone", got)
	}

	// The second process released its pin: the first one's still holds the file. Had the
	// second replaced the file under the name, the first would hold the old one, and the
	// name would be evicted.
	second.stop()
	open(t, dir, 1)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content(k, 100)) {
		t.Fatalf("the file, pinned by the first process: %d bytes, %v", len(got), err)
	}
	first.stop()
	c := open(t, dir, 1)
	if cached(t, c, k) {
		t.Error("the file, released by both, was not evicted")
	}
}
