package httpsrc

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ospreyhq/osprey/ingest/source/records"
	"github.com/ospreyhq/osprey/internal/hostiletest"
)

func TestHMACTimestamp(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := &store{recs: map[string][]string{}}
	h := New(st, Options{Now: func() time.Time { return now }})
	for _, s := range []*Source{
		{ID: "stamped", Auth: Auth{Type: AuthHMAC, Header: "x-signature", Secret: "k3y", TimestampHeader: "x-timestamp"}},
		{ID: "narrow", Auth: Auth{Type: AuthHMAC, Header: "x-signature", Secret: "k3y", TimestampHeader: "x-timestamp", Window: time.Minute}},
	} {
		if err := h.SetSource(s); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := []byte(`{"a":1}`)
	sign := func(material string) string {
		mac := hmac.New(sha256.New, []byte("k3y"))
		mac.Write([]byte(material))
		return hex.EncodeToString(mac.Sum(nil))
	}
	at := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	for _, tc := range []struct {
		name, source, ts, sig string
		want                  int
	}{
		{"now", "stamped", at(0), sign(at(0) + "." + string(body)), 200},
		{"4m59s old", "stamped", at(-299 * time.Second), sign(at(-299*time.Second) + "." + string(body)), 200},
		{"5m old, the edge", "stamped", at(-5 * time.Minute), sign(at(-5*time.Minute) + "." + string(body)), 200},
		{"5m1s old", "stamped", at(-301 * time.Second), sign(at(-301*time.Second) + "." + string(body)), 401},
		{"an hour old", "stamped", at(-time.Hour), sign(at(-time.Hour) + "." + string(body)), 401},
		{"5m1s ahead", "stamped", at(301 * time.Second), sign(at(301*time.Second) + "." + string(body)), 401},
		{"4m ahead", "stamped", at(4 * time.Minute), sign(at(4*time.Minute) + "." + string(body)), 200},
		{"no timestamp", "stamped", "", sign("." + string(body)), 401},
		{"not a number", "stamped", "noon", sign("noon." + string(body)), 401},
		{"body signed without the timestamp", "stamped", at(0), sign(string(body)), 401},
		{"timestamp changed after signing", "stamped", at(1 * time.Second), sign(at(0) + "." + string(body)), 401},
		{"2m old in a 1m window", "narrow", at(-2 * time.Minute), sign(at(-2*time.Minute) + "." + string(body)), 401},
		{"30s old in a 1m window", "narrow", at(-30 * time.Second), sign(at(-30*time.Second) + "." + string(body)), 200},
	} {
		hdr := map[string]string{"x-signature": tc.sig}
		if tc.ts != "" {
			hdr["x-timestamp"] = tc.ts
		}
		resp, text := post(t, srv.URL+"/http/"+tc.source, body, hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, text, tc.want)
		}
	}
	for _, a := range []Auth{
		{Type: AuthHeader, Header: "h", Secret: "x", TimestampHeader: "x-timestamp"},
		{Type: AuthHMAC, Header: "h", Secret: "x", Window: time.Minute},
		{Type: AuthHMAC, Header: "h", Secret: "x", TimestampHeader: "t", Window: -time.Minute},
	} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v is valid", a)
		}
	}
}

// rawRequest sends head (a request's start line and headers, without the blank line) and
// body on a new connection, reads the answer, and reports whether the server then closed
// the connection. The deadline only keeps a broken server from hanging the test.
func rawRequest(t *testing.T, addr, head string, body []byte) (status string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, head+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.Write(body)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp.Status, err == io.EOF
}

// TestTooLarge checks that a body over the limit gets 413 however it is sent, and that one
// announced over the limit, or unauthenticated, is answered without being waited for.
func TestTooLarge(t *testing.T) {
	srv, st, _ := newServer(t,
		&Source{ID: "small", MaxBody: 1 << 10, MaxBytes: 4 << 10},
		&Source{ID: "shared", Auth: Auth{Type: AuthHeader, Header: "x-secret", Secret: "s3cret"}},
	)
	big := bytes.Repeat([]byte("x\n"), 1<<10)
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name    string
		body    io.Reader
		enc     string
		want    int
		text    string
		chunked bool
	}{
		{"with Content-Length", bytes.NewReader(big), "", 413, "body over 1024 bytes", false},
		{"without Content-Length", io.MultiReader(bytes.NewReader(big)), "", 413, "body over 1024 bytes", true},
		{"decoded, with Content-Length", bytes.NewReader(gz(bytes.Repeat(big, 4))), "gzip", 413, "decoded body over 4096 bytes", false},
		{"decoded, without Content-Length", io.MultiReader(bytes.NewReader(gz(bytes.Repeat(big, 4)))), "gzip", 413, "decoded body over 4096 bytes", true},
		{"at the limit, without Content-Length", io.MultiReader(bytes.NewReader(big[:1<<10])), "", 200, `{"records":512}`, true},
		{"truncated gzip", bytes.NewReader(gz(big)[:20]), "gzip", 400, "gzip", false},
	} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/http/small", tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if tc.enc != "" {
			req.Header.Set("Content-Encoding", tc.enc)
		}
		if got := req.ContentLength <= 0; got != tc.chunked {
			t.Fatalf("%s: chunked %v", tc.name, got)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(text), tc.text) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, text, tc.want, tc.text)
		}
	}
	if n := len(st.recs["small"]); n != 512 {
		t.Errorf("%d records stored", n)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	// The client announces a body and sends none of it: the answer must not wait for it.
	for _, tc := range []struct{ name, head, want string }{
		{"announced over the limit", "POST /http/small HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824", "413 Request Entity Too Large"},
		// 100 KB: under the 256 KiB net/http would wait for before answering.
		{"unauthenticated", "POST /http/shared HTTP/1.1\r\nHost: x\r\nx-secret: wrong\r\nContent-Length: 100000", "401 Unauthorized"},
		{"unauthenticated, chunked", "POST /http/shared HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked", "401 Unauthorized"},
		{"unknown source", "POST /http/nosuch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000", "404 Not Found"},
	} {
		status, closed := rawRequest(t, addr, tc.head, nil)
		if status != tc.want || !closed {
			t.Errorf("%s: %q, closed %v; want %q and the connection closed", tc.name, status, closed, tc.want)
		}
	}
}

// gate is an Appender whose appends wait until they are let through.
type gate struct {
	store
	entered chan string   // an append began, with its source
	open    chan struct{} // closed: appends go through
	hold    string        // only appends of this source wait
}

func (g *gate) Append(ctx context.Context, source string, recs [][]byte) error {
	if source == g.hold {
		g.entered <- source
		<-g.open
	}
	return g.store.Append(ctx, source, recs)
}

func newGate(hold string) *gate {
	return &gate{store: store{recs: map[string][]string{}}, entered: make(chan string, 100), open: make(chan struct{}), hold: hold}
}

// TestBodyMemory holds requests inside their append, each with about 1 MiB of decoded body,
// until the shared budget refuses one with 503; once they are let go, the budget is whole.
func TestBodyMemory(t *testing.T) {
	const budgetSize = 16 << 20
	g := newGate("s")
	h := New(g, Options{BodyMemory: budgetSize})
	if err := h.SetSource(&Source{ID: "s", MaxBody: 1 << 20, MaxBytes: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSource(&Source{ID: "huge", MaxBody: 8 << 20}); err == nil {
		t.Error("a source whose requests cannot fit in the budget was accepted")
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(bytes.Repeat([]byte(`{"a":1,"padding":"................................................"}`+"\n"), (1<<20)/64))
	zw.Close()
	body := buf.Bytes()
	type answer struct {
		code  int
		retry string
		text  string
	}
	answers := make(chan answer, 100)
	send := func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/http/s", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{text: err.Error()}
			return
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(text)}
	}
	var wg sync.WaitGroup
	held := 0
	var refused *answer
	// Each request either reaches the append (and waits there, holding its memory) or is
	// answered; the first answer must be the budget's refusal. 1 MiB each: at most 16 fit.
	for refused == nil && held <= budgetSize>>20 {
		wg.Go(send)
		select {
		case <-g.entered:
			held++
		case a := <-answers:
			refused = &a
		}
	}
	close(g.open)
	wg.Wait()
	if refused == nil || refused.code != 503 || refused.retry == "" || !strings.Contains(refused.text, "memory") {
		t.Fatalf("after %d requests held: %+v, want 503 with Retry-After", held, refused)
	}
	if held < 2 {
		t.Errorf("only %d requests fit in %d bytes", held, budgetSize)
	}
	for range held {
		if a := <-answers; a.code != 200 {
			t.Errorf("held request: %+v", a)
		}
	}
	srv.Close() // waits for the handlers to return
	if left := h.budget.remaining(); left != budgetSize {
		t.Errorf("budget left %d after every request ended, want %d", left, budgetSize)
	}
	t.Logf("%d requests of 1 MiB decoded held in a budget of %d MiB", held, budgetSize>>20)
}

// TestBodyMemoryBomb sends gzip bombs at once at a handler whose budget fits few of them:
// each is refused, 413 or 503, and the budget is whole afterwards.
func TestBodyMemoryBomb(t *testing.T) {
	const budgetSize = 32 << 20
	h := New(&store{recs: map[string][]string{}}, Options{BodyMemory: budgetSize})
	if err := h.SetSource(&Source{ID: "s", MaxBody: 1 << 20, MaxBytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := hostiletest.GzipBomb(64 << 20)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/http/s", bytes.NewReader(b))
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 413 && c != 503 {
			t.Errorf("bomb answered %d", c)
		}
	}
	srv.Close() // waits for the handlers to return
	if left := h.budget.remaining(); left != budgetSize {
		t.Errorf("budget left %d, want %d", left, budgetSize)
	}
}

// TestBodyMemoryAtLimits serves a request at its source's limits, a zstd body decoding to
// exactly MaxBytes, with the least body memory SetSource accepts.
func TestBodyMemoryAtLimits(t *testing.T) {
	src := &Source{ID: "s", MaxBody: 1 << 20, MaxBytes: 3 << 20, Split: records.Splitter{Kind: records.Lines}}
	if err := New(nil, Options{BodyMemory: src.needs() - 1}).SetSource(src); err == nil {
		t.Errorf("a source was accepted with less body memory than its requests need")
	}
	st := &store{recs: map[string][]string{}}
	h := New(st, Options{BodyMemory: src.needs()})
	if err := h.SetSource(src); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	line := []byte(strings.Repeat("x", 63) + "\n")
	zw, _ := zstd.NewWriter(nil)
	body := zw.EncodeAll(bytes.Repeat(line, (3<<20)/64), nil)
	resp, text := post(t, srv.URL+"/http/s", body, map[string]string{"Content-Encoding": "zstd"})
	if resp.StatusCode != 200 {
		t.Errorf("a request at the limits: %d %q", resp.StatusCode, text)
	}
	resp, text = post(t, srv.URL+"/http/s", append(bytes.Repeat(line, (3<<20)/64), 'x'), nil)
	if resp.StatusCode != 413 {
		t.Errorf("a byte more, as sent: %d %q", resp.StatusCode, text)
	}
	resp, text = post(t, srv.URL+"/http/s", zw.EncodeAll(append(bytes.Repeat(line, (3<<20)/64), 'x'), nil), map[string]string{"Content-Encoding": "zstd"})
	if resp.StatusCode != 413 || !strings.Contains(text, "decoded body over") {
		t.Errorf("a byte more, decoded: %d %q", resp.StatusCode, text)
	}
}

// TestInFlight holds a source's requests in their append: past MaxInFlight the source's next
// request gets 503 with Retry-After, another source's goes through.
func TestInFlight(t *testing.T) {
	g := newGate("busy")
	h := New(g, Options{MaxInFlight: 2})
	for _, id := range []string{"busy", "other"} {
		if err := h.SetSource(&Source{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, _ := post(t, srv.URL+"/http/busy", []byte(`{"a":1}`), nil)
			if resp.StatusCode != 200 {
				t.Errorf("held request: %d", resp.StatusCode)
			}
		})
		<-g.entered
	}
	third := make(chan *http.Response, 1)
	wg.Go(func() {
		resp, _ := post(t, srv.URL+"/http/busy", []byte(`{"a":1}`), nil)
		third <- resp
	})
	select {
	case resp := <-third:
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	case <-g.entered:
		t.Error("a third request of the source went through")
	}
	if resp, text := post(t, srv.URL+"/http/other", []byte(`{"a":1}`), nil); resp.StatusCode != 200 {
		t.Errorf("other source: %d %q", resp.StatusCode, text)
	}
	close(g.open)
	wg.Wait()
	if resp, text := post(t, srv.URL+"/http/busy", []byte(`{"a":1}`), nil); resp.StatusCode != 200 {
		t.Errorf("after the others ended: %d %q", resp.StatusCode, text)
	}
}

// TestListener fills a capped server with connections: idle ones make room for new ones,
// busy ones do not, and the connection past them gets 503.
func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewListener(ln, 2)
	blocked := make(chan struct{}, 2)
	release := make(chan struct{})
	idle := make(chan struct{}, 10)
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				blocked <- struct{}{}
				<-release
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			lim.ConnState(c, st)
			if st == http.StateIdle {
				idle <- struct{}{}
			}
		},
	}
	go hs.Serve(lim)
	defer hs.Close()
	addr := ln.Addr().String()
	type client struct {
		net.Conn
		br *bufio.Reader
	}
	dial := func() client {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second)) // against a hang, not a measure
		t.Cleanup(func() { c.Close() })
		return client{c, bufio.NewReader(c)}
	}
	get := func(c client, path string) (int, error) {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Two keep-alive connections, idle after a request each.
	c1, c2 := dial(), dial()
	for _, c := range []client{c1, c2} {
		if code, err := get(c, "/"); code != 200 {
			t.Fatalf("keep-alive request: %d %v", code, err)
		}
		<-idle
	}
	// A third connection closes the longest idle, c1.
	c3 := dial()
	if code, err := get(c3, "/"); code != 200 {
		t.Fatalf("third connection: %d %v", code, err)
	}
	<-idle
	if _, err := c1.br.ReadByte(); err == nil {
		t.Error("the longest idle connection is still open")
	}
	// c2 and c3 busy in their handlers: a fourth connection is refused.
	answers := make(chan int, 2)
	for _, c := range []client{c2, c3} {
		go func() {
			code, _ := get(c, "/block")
			answers <- code
		}()
		<-blocked
	}
	c4 := dial()
	resp, err := http.ReadResponse(c4.br, nil)
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection past the cap: %v %v, want 503 with Retry-After", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := c4.br.ReadByte(); err == nil {
		t.Error("the refused connection is still open")
	}
	close(release)
	for range 2 {
		if code := <-answers; code != 200 {
			t.Errorf("busy connection: %d", code)
		}
	}
	if st := lim.Stats(); st.Open != 2 || st.Refused != 1 || st.Evicted != 1 {
		t.Errorf("stats %+v", st)
	}
}
