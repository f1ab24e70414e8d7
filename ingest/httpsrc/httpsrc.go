// Package httpsrc is the HTTP source of osprey serve, in the manner of Panther's HTTP log source:
// a client POSTs records to /http/<source-id>, authenticated by the source's method (a shared
// secret in a named header, an HMAC of the body, a bearer token, basic auth, or none), in one
// of the stream types of package records, optionally gzip or zstd encoded. A 200 answer means
// the records are durable (in the write-ahead log); the client retries on anything else.
//
// Answers: 200 {"records":N}; 400 for a body that cannot be decoded or split; 401 without
// detail for failed authentication; 404 for an unknown source; 405 for another method; 413
// for a body, decoded body or record count over the source's limits (a gzip bomb is refused
// once its output passes the limit, never expanded whole); 415 for an unsupported
// Content-Encoding; 429 with Retry-After when ingest is behind; 503 with Retry-After when it
// cannot store records for now (a full disk) or has stopped.
package httpsrc

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ospreyhq/osprey/ingest/records"
)

// Authentication methods.
const (
	AuthNone   = "none"
	AuthHeader = "header" // a shared secret in a named header
	AuthHMAC   = "hmac"   // HMAC-SHA256 of the body with a secret, in a named header
	AuthBearer = "bearer" // Authorization: Bearer <token>
	AuthBasic  = "basic"  // Authorization: Basic, username and password
)

// Auth is how a source authenticates requests.
type Auth struct {
	Type     string // one of the Auth constants; default none
	Header   string // header and hmac: the header carrying the secret or signature
	Secret   string // the shared secret, HMAC key, bearer token or basic password
	Username string // basic
	Encoding string // hmac: the signature's encoding, hex (default) or base64

	// SecretHash is the SHA-256 of the shared secret, bearer token or basic password, for a
	// source that keeps the hash only; it is used when Secret is empty.
	SecretHash [sha256.Size]byte
}

// Validate checks an authentication method's settings.
func (a Auth) Validate() error {
	switch a.Type {
	case "", AuthNone:
		return nil
	case AuthHeader, AuthHMAC:
		if a.Header == "" {
			return fmt.Errorf("auth %s needs a header", a.Type)
		}
		if a.Type == AuthHMAC && a.Encoding != "" && a.Encoding != "hex" && a.Encoding != "base64" {
			return fmt.Errorf("auth hmac: encoding %q (want hex or base64)", a.Encoding)
		}
	case AuthBearer:
	case AuthBasic:
		if a.Username == "" {
			return errors.New("auth basic needs a username")
		}
	default:
		return fmt.Errorf("unknown auth type %q (want none, header, hmac, bearer or basic)", a.Type)
	}
	if a.Secret == "" && (a.Type == AuthHMAC || a.SecretHash == [sha256.Size]byte{}) {
		return fmt.Errorf("auth %s needs a secret", a.Type)
	}
	return nil
}

// secretIs reports whether got is the source's secret, comparing SHA-256 hashes in constant
// time (so that a source may keep the hash only).
func (a Auth) secretIs(got string) bool {
	want := a.SecretHash
	if a.Secret != "" {
		want = sha256.Sum256([]byte(a.Secret))
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// check reports whether a request passes the method; body is the raw body, for hmac.
func (a Auth) check(r *http.Request, body []byte) bool {
	eq := func(got, want string) bool {
		return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	switch a.Type {
	case "", AuthNone:
		return true
	case AuthHeader:
		return a.secretIs(r.Header.Get(a.Header))
	case AuthBearer:
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && a.secretIs(token)
	case AuthBasic:
		user, pass, ok := r.BasicAuth()
		// Both compared, so that the time taken does not tell which was wrong.
		return ok && eq(user, a.Username) && a.secretIs(pass)
	case AuthHMAC:
		mac := hmac.New(sha256.New, []byte(a.Secret))
		mac.Write(body)
		sum := mac.Sum(nil)
		got := r.Header.Get(a.Header)
		got = strings.TrimPrefix(got, "sha256=") // as GitHub and others write it
		var want []byte
		var err error
		if a.Encoding == "base64" {
			want, err = base64.StdEncoding.DecodeString(got)
		} else {
			want, err = hex.DecodeString(got)
		}
		return err == nil && hmac.Equal(sum, want)
	}
	return false
}

// Source is an HTTP source.
type Source struct {
	ID       string
	Auth     Auth
	Split    records.Splitter
	MaxBody  int64 // bytes of a request body as sent; default 10 MiB
	MaxBytes int64 // bytes of a body once decoded; default 10 times MaxBody
}

// Default limits.
const (
	DefaultMaxBody    = 10 << 20
	DefaultMaxRecords = 100000
)

// Appender makes records durable; the pipeline is one.
type Appender interface {
	Append(ctx context.Context, source string, records [][]byte) error
}

// Errors an Appender returns that the handler answers specially.
var (
	// ErrBusy asks the client to retry later (429).
	ErrBusy = errors.New("busy")
	// ErrStopped means nothing is accepted any more (503).
	ErrStopped = errors.New("stopped")
	// ErrUnavailable means nothing can be stored for now, a full disk say (503).
	ErrUnavailable = errors.New("unavailable")
)

// Observer is told about every request, for metrics.
type Observer interface {
	Request(source string, code int, records int, bytes int64, took time.Duration)
}

// Handler serves POST /http/<source-id>.
type Handler struct {
	app    Appender
	busy   func(error) int // the status for an append error (429, 503 or 500)
	obs    Observer
	log    *slog.Logger
	mu     sync.RWMutex
	byID   map[string]*Source
	prefix string
}

// New returns a handler appending to app. classify maps an append error to ErrBusy,
// ErrUnavailable, ErrStopped or anything else (an internal error); obs and log may be nil.
func New(app Appender, classify func(error) error, obs Observer, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{app: app, obs: obs, log: log, byID: map[string]*Source{}, prefix: "/http/"}
	h.busy = func(err error) int {
		switch classify(err) {
		case ErrBusy:
			return http.StatusTooManyRequests
		case ErrStopped, ErrUnavailable:
			return http.StatusServiceUnavailable
		}
		return http.StatusInternalServerError
	}
	return h
}

// SetSource adds or replaces a source.
func (h *Handler) SetSource(s *Source) error {
	if err := s.Auth.Validate(); err != nil {
		return fmt.Errorf("source %s: %w", s.ID, err)
	}
	if err := s.Split.Validate(); err != nil {
		return fmt.Errorf("source %s: %w", s.ID, err)
	}
	c := *s
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 10 * c.MaxBody
	}
	if c.Split.MaxRecords <= 0 {
		c.Split.MaxRecords = DefaultMaxRecords
	}
	h.mu.Lock()
	h.byID[s.ID] = &c
	h.mu.Unlock()
	return nil
}

// RemoveSource removes a source: its requests get 404.
func (h *Handler) RemoveSource(id string) {
	h.mu.Lock()
	delete(h.byID, id)
	h.mu.Unlock()
}

// ServeHTTP handles a request to /http/<source-id>.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := strings.TrimPrefix(r.URL.Path, h.prefix)
	h.mu.RLock()
	src := h.byID[id]
	h.mu.RUnlock()
	code, n, size := h.serve(w, r, src)
	if h.obs != nil && src != nil {
		h.obs.Request(src.ID, code, n, size, time.Since(start))
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, src *Source) (code, n int, size int64) {
	fail := func(code int, msg string) (int, int, int64) {
		http.Error(w, msg, code)
		return code, 0, size
	}
	if src == nil {
		return fail(http.StatusNotFound, "no such source")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(http.StatusMethodNotAllowed, "use POST")
	}
	// Authentication that does not need the body comes first: an unauthenticated client
	// cannot make the server read its body.
	if src.Auth.Type != AuthHMAC && !src.Auth.check(r, nil) {
		return fail(http.StatusUnauthorized, "unauthorized")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, src.MaxBody))
	size = int64(len(raw))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", src.MaxBody))
		}
		return fail(http.StatusBadRequest, "cannot read the body")
	}
	if src.Auth.Type == AuthHMAC && !src.Auth.check(r, raw) {
		return fail(http.StatusUnauthorized, "unauthorized")
	}
	body, err := decode(r.Header.Get("Content-Encoding"), raw, src.MaxBytes)
	switch {
	case errors.Is(err, errEncoding):
		return fail(http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, errTooLarge):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("decoded body over %d bytes", src.MaxBytes))
	case err != nil:
		return fail(http.StatusBadRequest, err.Error())
	}
	recs, err := src.Split.Split(body)
	switch {
	case errors.Is(err, records.ErrTooMany):
		return fail(http.StatusRequestEntityTooLarge, err.Error())
	case err != nil:
		return fail(http.StatusBadRequest, err.Error())
	}
	if len(recs) > 0 {
		if err := h.app.Append(r.Context(), src.ID, recs); err != nil {
			code := h.busy(err)
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
				return fail(code, err.Error())
			}
			h.log.Error("append failed", "source", src.ID, "err", err)
			return fail(code, "could not store the records")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"records\":%d}\n", len(recs))
	return http.StatusOK, len(recs), size
}

var (
	errEncoding = errors.New("unsupported Content-Encoding")
	errTooLarge = errors.New("decoded body too large")
)

// decode undoes a Content-Encoding, refusing output past max.
func decode(enc string, raw []byte, max int64) ([]byte, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)+1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w %q (use gzip, zstd or none)", errEncoding, enc)
	}
	out, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("%s: %w", enc, err)
	}
	if int64(len(out)) > max {
		return nil, errTooLarge
	}
	return out, nil
}
