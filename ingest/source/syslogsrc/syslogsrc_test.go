package syslogsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type store struct {
	mu      sync.Mutex
	msgs    []string
	batches int
	busy    int // appends to refuse before accepting
}

var errBusy = errors.New("busy")

func (s *store) Append(ctx context.Context, source string, recs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy > 0 {
		s.busy--
		return errBusy
	}
	s.batches++
	for _, r := range recs {
		s.msgs = append(s.msgs, source+": "+string(r))
	}
	return nil
}

func (s *store) sorted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.msgs...)
	sort.Strings(out)
	return out
}

func TestUDPAndTCP(t *testing.T) {
	st := &store{busy: 2}
	srv, err := Start(context.Background(), "sys", []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}, st,
		Options{MaxMessage: 40, Retryable: func(err error) bool { return errors.Is(err, errBusy) }})
	if err != nil {
		t.Fatal(err)
	}
	addrs := srv.Addrs()
	udp, err := net.Dial("udp", strings.TrimPrefix(addrs[0], "udp://"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fmt.Fprintf(udp, "<13>Nov 22 10:00:0%d host app: udp %d\n", i, i)
	}
	udp.Close()
	tcp, err := net.Dial("tcp", strings.TrimPrefix(addrs[1], "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	rfc5424 := "<165>1 2026-11-22T10:00:00Z host app 1 ID47 - octet counted"
	fmt.Fprintf(tcp, "<13>Nov 22 10:00:00 host app: line one\n")
	fmt.Fprintf(tcp, "%d %s", len(rfc5424), rfc5424)               // octet counted, no newline
	fmt.Fprintf(tcp, "<13>Nov 22 10:00:01 host app: line two\r\n") // then newline framing again
	fmt.Fprintf(tcp, "\n\n<13>Nov 22 10:00:02 host app: %s\n", strings.Repeat("long ", 20))
	tcp.Close()
	// Wait until every message is in (UDP delivery on loopback is reliable at this rate).
	for srv.Received() < 7 {
		runtime.Gosched()
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	cut := func(m string) string { return "sys: " + m[:min(len(m), 40)] }
	want := []string{
		cut(rfc5424),
		cut("<13>Nov 22 10:00:00 host app: line one"),
		cut("<13>Nov 22 10:00:01 host app: line two"),
		cut("<13>Nov 22 10:00:02 host app: " + strings.Repeat("long ", 20)),
	}
	for i := range 3 {
		want = append(want, cut(fmt.Sprintf("<13>Nov 22 10:00:0%d host app: udp %d", i, i)))
	}
	sort.Strings(want)
	if got := st.sorted(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.busy != 0 {
		t.Errorf("the busy appends were not retried")
	}
}

func TestBadAddress(t *testing.T) {
	for _, a := range []string{"127.0.0.1:514", "sctp://127.0.0.1:0", "udp://256.0.0.1:0"} {
		if _, err := Start(context.Background(), "s", []string{a}, &store{}, Options{}); err == nil {
			t.Errorf("%s: no error", a)
		}
	}
}

func TestBadOctetCount(t *testing.T) {
	st := &store{}
	srv, err := Start(context.Background(), "s", []string{"tcp://127.0.0.1:0"}, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.Addrs()[0], "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "<13>ok\n99999999999 x")
	buf := make([]byte, 1)
	c.Read(buf) // the server closes a connection with a bad frame
	c.Close()
	srv.Close()
	if got := st.sorted(); len(got) != 1 || got[0] != "s: <13>ok" {
		t.Errorf("got %q", got)
	}
}

// waitUntil waits, yielding, until cond holds; it fails the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func dialTCP(t *testing.T, srv *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.Addrs()[0], "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLongLineTCP streams a line of 100 MiB without a newline through a TCP connection, then a
// newline and another line: the server holds no more than its read buffer and one message at
// any time, keeps the long line's head, counts what it dropped, and gets the next line whole.
func TestLongLineTCP(t *testing.T) {
	const size = 100 << 20
	st := &store{}
	srv, err := Start(context.Background(), "s", []string{"tcp://127.0.0.1:0"}, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, srv)
	head := "<13>Nov 22 10:00:00 host app: "
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	for range size / len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	next := "<13>Nov 22 10:00:01 host app: the next line"
	fmt.Fprintf(c, "\n%s\n", next)
	waitUntil(t, "two messages", func() bool { return srv.Received() == 2 })
	stats := srv.Stats()
	c.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"s: " + (head + string(chunk))[:DefaultMaxMessage], "s: " + next}
	if got := st.sorted(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %d messages, want the long line's first %d bytes and %q", len(got), DefaultMaxMessage, next)
	}
	if want := (Stats{Received: 2, Cut: 1, Dropped: int64(len(head)) + size - DefaultMaxMessage, Open: 1}); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
	// What a connection holds: its read buffer and one message buffer, never the line.
	if got, bound := srv.peakHeld.Load(), int64(readBuffer+DefaultMaxMessage); got > bound {
		t.Errorf("a connection held %d bytes, over %d", got, bound)
	}
}

// TestOctetCountOverLimit sends an octet-counted frame larger than the limit: its head is kept,
// its other bytes skipped, and the frame after it read whole.
func TestOctetCountOverLimit(t *testing.T) {
	st := &store{}
	srv, err := Start(context.Background(), "s", []string{"tcp://127.0.0.1:0"}, st, Options{MaxMessage: 100})
	if err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, srv)
	big := "<13>Nov 22 10:00:00 host app: " + strings.Repeat("y", 5<<20)
	small := "<13>Nov 22 10:00:01 host app: small"
	fmt.Fprintf(c, "%d %s%d %s", len(big), big, len(small), small)
	c.Close()
	waitUntil(t, "two messages", func() bool { return srv.Received() == 2 })
	stats := srv.Stats()
	srv.Close()
	if got, want := strings.Join(st.sorted(), "\n"), "s: "+big[:100]+"\ns: "+small; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if stats.Cut != 1 || stats.Dropped != int64(len(big)-100) {
		t.Errorf("stats %+v: want 1 cut, %d bytes dropped", stats, len(big)-100)
	}
	if got := srv.peakHeld.Load(); got > readBuffer+100 {
		t.Errorf("a connection held %d bytes, over %d", got, readBuffer+100)
	}
}

// TestUDPOverLimit: a datagram over the limit is kept cut, and counted.
func TestUDPOverLimit(t *testing.T) {
	st := &store{}
	srv, err := Start(context.Background(), "s", []string{"udp://127.0.0.1:0"}, st, Options{MaxMessage: 10})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", strings.TrimPrefix(srv.Addrs()[0], "udp://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "<13>0123456789abcdef")
	c.Close()
	waitUntil(t, "the datagram", func() bool { return srv.Received() == 1 })
	stats := srv.Stats()
	srv.Close()
	if got := st.sorted(); len(got) != 1 || got[0] != "s: <13>012345" {
		t.Errorf("got %q", got)
	}
	if stats.Cut != 1 || stats.Dropped != 10 {
		t.Errorf("stats %+v: want 1 cut, 10 bytes dropped", stats)
	}
}

// TestIdleTimeout: a connection that sends nothing for IdleTimeout is closed, one that keeps
// sending is not. The clock is synctest's.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &store{}
		srv, err := Start(context.Background(), "s", nil, st, Options{IdleTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		serve := func() net.Conn {
			server, client := net.Pipe()
			if !srv.admit(server) {
				t.Fatal("connection refused")
			}
			srv.wg.Go(func() { srv.serveConn(server) })
			return client
		}
		idle, busy := serve(), serve()
		fmt.Fprint(idle, "<13>first\n")
		for i := range 3 { // the busy one sends every 50 s
			time.Sleep(50 * time.Second)
			fmt.Fprintf(busy, "<13>busy %d\n", i)
			synctest.Wait()
			if i == 0 {
				if got := srv.Stats(); got.Idle != 0 || got.Open != 2 {
					t.Fatalf("after 50 s: %+v", got)
				}
			}
		}
		if got := srv.Stats(); got.Idle != 1 || got.Open != 1 {
			t.Fatalf("after 150 s: %+v, want the idle connection closed", got)
		}
		if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read from the idle connection: %v, want EOF", err)
		}
		busy.Close()
		idle.Close()
		srv.Close()
		if got := strings.Join(st.sorted(), "; "); got != "s: <13>busy 0; s: <13>busy 1; s: <13>busy 2; s: <13>first" {
			t.Errorf("got %s", got)
		}
	})
}

// TestMaxConnections: past MaxConnections open, a new connection is closed at once; once one
// ends, a new one is served.
func TestMaxConnections(t *testing.T) {
	st := &store{}
	srv, err := Start(context.Background(), "s", []string{"tcp://127.0.0.1:0"}, st, Options{MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := dialTCP(t, srv), dialTCP(t, srv)
	fmt.Fprint(c1, "<13>one\n")
	fmt.Fprint(c2, "<13>two\n")
	waitUntil(t, "two messages", func() bool { return srv.Received() == 2 })
	c3 := dialTCP(t, srv)
	defer c3.Close()
	c3.SetReadDeadline(time.Now().Add(time.Minute)) // a bound on a failing test, not a timing
	if _, err := c3.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was not closed: %v", err)
	}
	if got := srv.Stats(); got.Refused != 1 || got.Open != 2 {
		t.Errorf("stats %+v, want 1 refused, 2 open", got)
	}
	c1.Close()
	waitUntil(t, "the first connection's end", func() bool { return srv.Stats().Open == 1 })
	c4 := dialTCP(t, srv)
	fmt.Fprint(c4, "<13>four\n")
	c4.Close()
	c2.Close()
	waitUntil(t, "three messages", func() bool { return srv.Received() == 3 })
	srv.Close()
	if got := strings.Join(st.sorted(), "; "); got != "s: <13>four; s: <13>one; s: <13>two" {
		t.Errorf("got %s", got)
	}
}

func TestStatsAdd(t *testing.T) {
	a := Stats{Received: 1, Cut: 2, Dropped: 3, Refused: 4, Idle: 5, Open: 6}
	b := Stats{Received: 10, Cut: 20, Dropped: 30, Refused: 40, Idle: 50, Open: 7}
	if got, want := a.Add(b), (Stats{Received: 11, Cut: 22, Dropped: 33, Refused: 44, Idle: 55, Open: 7}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
}
