package httpsrc

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// store is an Appender that keeps what it is given (the pipeline is tested on its own).
type store struct {
	mu   sync.Mutex
	recs map[string][]string
	err  error
}

func (s *store) Append(ctx context.Context, source string, recs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, r := range recs {
		s.recs[source] = append(s.recs[source], string(r))
	}
	return nil
}

type seen struct {
	mu    sync.Mutex
	codes []int
}

func (o *seen) Request(source string, code int, records int, bytes int64, took time.Duration) {
	o.mu.Lock()
	o.codes = append(o.codes, code)
	o.mu.Unlock()
}

var errFull = errors.New("full")

func classify(err error) error {
	if errors.Is(err, errFull) {
		return ErrBusy
	}
	return err
}

func newServer(t *testing.T, sources ...*Source) (*httptest.Server, *store, *seen) {
	t.Helper()
	st := &store{recs: map[string][]string{}}
	obs := &seen{}
	h := New(st, Options{Classify: classify, Observer: obs})
	for _, s := range sources {
		if err := h.SetSource(s); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st, obs
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAuth(t *testing.T) {
	body := []byte(`{"a":1}` + "\n" + `{"a":2}`)
	mac := hmac.New(sha256.New, []byte("k3y"))
	mac.Write(body)
	sum := mac.Sum(nil)
	srv, st, _ := newServer(t,
		&Source{ID: "open"},
		&Source{ID: "shared", Auth: Auth{Type: AuthHeader, Header: "x-sender-header", Secret: "s3cret"}},
		&Source{ID: "signed", Auth: Auth{Type: AuthHMAC, Header: "x-signature", Secret: "k3y"}},
		&Source{ID: "signed64", Auth: Auth{Type: AuthHMAC, Header: "x-signature", Secret: "k3y", Encoding: "base64"}},
		&Source{ID: "token", Auth: Auth{Type: AuthBearer, Secret: "t0ken"}},
		&Source{ID: "basic", Auth: Auth{Type: AuthBasic, Username: "fluent", Secret: "pw"}},
	)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, tc := range []struct {
		source string
		hdr    map[string]string
		want   int
	}{
		{"open", nil, 200},
		{"shared", map[string]string{"x-sender-header": "s3cret"}, 200},
		{"shared", map[string]string{"x-sender-header": "s3cret!"}, 401},
		{"shared", nil, 401},
		{"signed", map[string]string{"x-signature": hex.EncodeToString(sum)}, 200},
		{"signed", map[string]string{"x-signature": "sha256=" + hex.EncodeToString(sum)}, 200},
		{"signed", map[string]string{"x-signature": hex.EncodeToString(sum[:31])}, 401},
		{"signed", map[string]string{"x-signature": "zz"}, 401},
		{"signed64", map[string]string{"x-signature": base64.StdEncoding.EncodeToString(sum)}, 200},
		{"token", map[string]string{"Authorization": "Bearer t0ken"}, 200},
		{"token", map[string]string{"Authorization": "Bearer t0ke"}, 401},
		{"token", map[string]string{"Authorization": "t0ken"}, 401},
		{"token", map[string]string{"Authorization": "bearer t0ken"}, 200},
		{"token", map[string]string{"Authorization": "BEARER t0ken"}, 200},
		{"token", map[string]string{"Authorization": "Bearer  t0ken "}, 200},
		{"token", map[string]string{"Authorization": "Bearer"}, 401},
		{"token", map[string]string{"Authorization": "Basic t0ken"}, 401},
		{"basic", map[string]string{"Authorization": "basic " + strings.TrimPrefix(basic("fluent", "pw"), "Basic ")}, 200},
		{"basic", map[string]string{"Authorization": "BASIC " + strings.TrimPrefix(basic("fluent", "pw"), "Basic ")}, 200},
		{"basic", map[string]string{"Authorization": basic("fluent", "pw")}, 200},
		{"basic", map[string]string{"Authorization": basic("fluent", "pwx")}, 401},
		{"basic", map[string]string{"Authorization": basic("other", "pw")}, 401},
		{"nosuch", nil, 404},
	} {
		resp, text := post(t, srv.URL+"/http/"+tc.source, body, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %v: %d %q, want %d", tc.source, tc.hdr, resp.StatusCode, text, tc.want)
		}
		if resp.StatusCode == 401 && strings.TrimSpace(text) != "unauthorized" {
			t.Errorf("401 with detail: %q", text)
		}
	}
	if n := len(st.recs["signed"]); n != 4 {
		t.Errorf("signed source got %d records", n)
	}
}

func TestEncodingsAndLimits(t *testing.T) {
	srv, st, _ := newServer(t,
		&Source{ID: "lines", Split: records.Splitter{Kind: records.Lines}, MaxBody: 1 << 20, MaxBytes: 4 << 20},
		&Source{ID: "few", Split: records.Splitter{Kind: records.Lines, MaxRecords: 2}},
		&Source{ID: "trail", Split: records.Splitter{Kind: records.JSONArray, Envelope: "Records"}},
	)
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zs := func(b []byte) []byte {
		w, _ := zstd.NewWriter(nil)
		return w.EncodeAll(b, nil)
	}
	lines := []byte("one\ntwo\nthree\n")
	for _, tc := range []struct {
		name, source string
		body         []byte
		enc          string
		want         int
		text         string
	}{
		{"plain", "lines", lines, "", 200, `{"records":3}`},
		{"gzip", "lines", gz(lines), "gzip", 200, `{"records":3}`},
		{"zstd", "lines", zs(lines), "zstd", 200, `{"records":3}`},
		{"bad gzip", "lines", []byte("not gzip"), "gzip", 400, "gzip"},
		{"unknown encoding", "lines", lines, "br", 415, "Content-Encoding"},
		{"body too large", "lines", bytes.Repeat([]byte("x\n"), 1<<20), "", 413, "body over"},
		// 64 MiB of zeros gzip to 64 KiB: refused once 4 MiB are out, not expanded.
		{"gzip bomb", "lines", hostiletest.GzipBomb(64 << 20), "gzip", 413, "decoded body over"},
		{"zstd bomb", "lines", zs(make([]byte, 64<<20)), "zstd", 413, "decoded body over"},
		{"too many records", "few", lines, "", 413, "too many records"},
		{"envelope", "trail", []byte(`{"Records":[{"e":1},{"e":2}]}`), "", 200, `{"records":2}`},
		{"malformed", "trail", []byte(`{"Records":[{"e":1},`), "", 400, "malformed"},
	} {
		hdr := map[string]string{}
		if tc.enc != "" {
			hdr["Content-Encoding"] = tc.enc
		}
		resp, text := post(t, srv.URL+"/http/"+tc.source, tc.body, hdr)
		if resp.StatusCode != tc.want || !strings.Contains(text, tc.text) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, text, tc.want, tc.text)
		}
	}
	if got := strings.Join(st.recs["lines"], ","); got != "one,two,three,one,two,three,one,two,three" {
		t.Errorf("records %q", got)
	}
	resp, err := http.Get(srv.URL + "/http/lines")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestBusy(t *testing.T) {
	srv, st, obs := newServer(t, &Source{ID: "s"})
	st.err = fmt.Errorf("append: %w", errFull)
	resp, _ := post(t, srv.URL+"/http/s", []byte(`{"a":1}`), nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("busy: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	st.err = errors.New("disk on fire")
	resp, text := post(t, srv.URL+"/http/s", []byte(`{"a":1}`), nil)
	if resp.StatusCode != 500 || strings.Contains(text, "fire") {
		t.Errorf("append failure: %d %q", resp.StatusCode, text)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if fmt.Sprint(obs.codes) != "[429 500]" {
		t.Errorf("observed %v", obs.codes)
	}
}

func TestAuthValidate(t *testing.T) {
	for _, a := range []Auth{
		{Type: AuthHeader, Secret: "x"},
		{Type: AuthHMAC, Header: "h"},
		{Type: AuthHMAC, Header: "h", Secret: "x", Encoding: "b32"},
		{Type: AuthBasic, Secret: "x"},
		{Type: AuthBearer},
		{Type: "mtls"},
	} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v is valid", a)
		}
	}
}

// A source that keeps only the SHA-256 of its secret (as the lake's sources file does) checks
// requests as one that keeps the secret.
func TestAuthSecretHash(t *testing.T) {
	hash := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	srv, _, _ := newServer(t,
		&Source{ID: "shared", Auth: Auth{Type: AuthHeader, Header: "x-sender-header", SecretHash: hash("s3cret")}},
		&Source{ID: "token", Auth: Auth{Type: AuthBearer, SecretHash: hash("t0ken")}},
		&Source{ID: "basic", Auth: Auth{Type: AuthBasic, Username: "fluent", SecretHash: hash("pw")}},
	)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, tc := range []struct {
		source string
		hdr    map[string]string
		want   int
	}{
		{"shared", map[string]string{"x-sender-header": "s3cret"}, 200},
		{"shared", map[string]string{"x-sender-header": "s3cre"}, 401},
		{"shared", map[string]string{"x-sender-header": hex.EncodeToString(sha256.New().Sum(nil))}, 401},
		{"shared", nil, 401},
		{"token", map[string]string{"Authorization": "Bearer t0ken"}, 200},
		{"token", map[string]string{"Authorization": "Bearer t0ken2"}, 401},
		{"basic", map[string]string{"Authorization": basic("fluent", "pw")}, 200},
		{"basic", map[string]string{"Authorization": basic("fluent", "")}, 401},
	} {
		resp, text := post(t, srv.URL+"/http/"+tc.source, []byte(`{"a":1}`), tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %v: %d %q, want %d", tc.source, tc.hdr, resp.StatusCode, text, tc.want)
		}
	}
	// An HMAC key signs: its hash is not enough.
	if err := (Auth{Type: AuthHMAC, Header: "x-signature", SecretHash: hash("k3y")}).Validate(); err == nil {
		t.Error("hmac with a secret hash only is valid")
	}
}
