package syslogsrc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
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
