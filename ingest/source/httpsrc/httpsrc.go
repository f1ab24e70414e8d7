// Package httpsrc is the HTTP source of osprey serve, in the manner of Panther's HTTP log source,
// and the guards of serve's HTTP server.
//
// A client POSTs records to /http/<source-id>, authenticated by the source's method (a shared
// secret in a named header, an HMAC of the body, optionally with a signed timestamp checked
// against a window, a bearer token, basic auth, or none), in one of the stream types of
// package records, optionally gzip or zstd encoded. A 200 answer means the records are durable
// (in the write-ahead log); the client retries on anything else.
//
// Answers: 200 {"records":N}; 400 for a body that cannot be decoded or split; 401 without
// detail for failed authentication; 404 for an unknown source; 405 for another method; 408
// for a body that did not arrive within the server's read timeout; 413 for a body, decoded
// body or record count over the source's limits (a body announced larger than the limit is
// refused unread, one sent without a length once it passes the limit, and a gzip bomb once
// its output does, never expanded whole); 415 for an unsupported Content-Encoding; 429 with
// Retry-After when ingest is behind; 503 with Retry-After when the source already has
// Options.MaxInFlight requests in flight, when the bodies of all requests in flight hold the
// memory allowed to them (Options.BodyMemory: bodies as sent and decoded, and decoders),
// when ingest cannot store records for now (a full disk), or when it has stopped. A request refused before its body was read is answered at once
// and its connection closed, so that an unauthenticated client cannot make the server wait
// for (or read) its body.
//
// Listener caps the connections of the server as a whole (see its comment); timeouts are the
// http.Server's.
package httpsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/ingest/source/records"
)

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
	DefaultMaxBody     = 10 << 20
	DefaultMaxRecords  = 100000
	DefaultMaxInFlight = 64
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

// Options are a handler's settings; every field has a default.
type Options struct {
	// Classify maps an append error to ErrBusy, ErrUnavailable, ErrStopped or anything else (an internal
	// error). Default: the error itself.
	Classify func(error) error
	// Observer is told about every request to a known source; may be nil.
	Observer Observer
	// Logger logs append failures; default none.
	Logger *slog.Logger
	// BodyMemory bounds the bytes of request bodies, as sent and decoded, and of decoders,
	// held by all requests at once; default DefaultBodyMemory.
	BodyMemory int64
	// MaxInFlight bounds the requests of one source served at once; default
	// DefaultMaxInFlight.
	MaxInFlight int
	// Now is the clock HMAC timestamps are checked against; default time.Now.
	Now func() time.Time
}

// Handler serves POST /http/<source-id>.
type Handler struct {
	app    Appender
	opts   Options
	budget *budget
	prefix string

	mu   sync.RWMutex
	byID map[string]*Source

	flightMu sync.Mutex
	inFlight map[string]int // requests being served, by source id
}

// New returns a handler appending to app.
func New(app Appender, opts Options) *Handler {
	if opts.Classify == nil {
		opts.Classify = func(err error) error { return err }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BodyMemory <= 0 {
		opts.BodyMemory = DefaultBodyMemory
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{app: app, opts: opts, budget: newBudget(opts.BodyMemory), prefix: "/http/",
		byID: map[string]*Source{}, inFlight: map[string]int{}}
}

// SetSource adds or replaces a source. A source whose largest request (body, decoded body and
// decoder) would not fit in the handler's BodyMemory alone is refused: it could never be
// served.
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
	if need := c.needs(); need > h.opts.BodyMemory {
		return fmt.Errorf("source %s: a request at its limits (body %d bytes, decoded %d) needs %d bytes of body memory, more than the %d allowed",
			s.ID, c.MaxBody, c.MaxBytes, need, h.opts.BodyMemory)
	}
	h.mu.Lock()
	h.byID[s.ID] = &c
	h.mu.Unlock()
	return nil
}

// needs returns the body memory a request at the source's limits may hold at once: its body
// as sent, a decoder, and the decoded body as its buffer doubles, old and new while one is
// copied into the other.
func (s *Source) needs() int64 {
	return s.MaxBody + 1 + zstdDecoderCost + 2*(s.MaxBytes+1)
}

// RemoveSource removes a source: its requests get 404.
func (h *Handler) RemoveSource(id string) {
	h.mu.Lock()
	delete(h.byID, id)
	h.mu.Unlock()
}

// BodyMemoryUsed returns the bytes of request bodies and decoders held now, of the
// Options.BodyMemory allowed.
func (h *Handler) BodyMemoryUsed() int64 { return h.budget.size - h.budget.remaining() }

// enter counts a request of a source in flight, unless the source has MaxInFlight already.
func (h *Handler) enter(id string) bool {
	h.flightMu.Lock()
	defer h.flightMu.Unlock()
	if h.inFlight[id] >= h.opts.MaxInFlight {
		return false
	}
	h.inFlight[id]++
	return true
}

func (h *Handler) leave(id string) {
	h.flightMu.Lock()
	defer h.flightMu.Unlock()
	if h.inFlight[id]--; h.inFlight[id] <= 0 {
		delete(h.inFlight, id)
	}
}

// ServeHTTP handles a request to /http/<source-id>.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := strings.TrimPrefix(r.URL.Path, h.prefix)
	h.mu.RLock()
	src := h.byID[id]
	h.mu.RUnlock()
	code, n, size := h.serve(w, r, src)
	if h.opts.Observer != nil && src != nil {
		h.opts.Observer.Request(src.ID, code, n, size, time.Since(start))
	}
}

// discardGrace is how long net/http may go on reading the rest of a body refused unread
// (at most 256 KiB of it) after the answer, before it closes the connection.
const discardGrace = time.Second

// Bytes a record's slice header takes, counted with the body it points into.
const recordOverhead = 24

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, src *Source) (code, n int, size int64) {
	bodyRead := false
	fail := func(code int, msg string) (int, int, int64) {
		if !bodyRead {
			// Answer now and close, rather than let net/http read what is left of the body
			// (up to 256 KiB, for as long as the client takes) before the answer:
			// Connection: close spares the wait before, and a read deadline bounds the
			// reading after (which lets a client still sending its body read the answer
			// rather than a reset).
			w.Header().Set("Connection", "close")
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(discardGrace))
		}
		if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
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
	// cannot make the server read its body, nor take the source's places in flight.
	if !src.Auth.precheck(r, h.opts.Now()) {
		return fail(http.StatusUnauthorized, "unauthorized")
	}
	if r.ContentLength > src.MaxBody {
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", src.MaxBody))
	}
	if !h.enter(src.ID) {
		return fail(http.StatusServiceUnavailable, "too many requests in flight for this source")
	}
	defer h.leave(src.ID)
	mem := &lease{b: h.budget}
	defer mem.release()
	raw, err := readAll(r.Body, firstBuffer, r.ContentLength, src.MaxBody, mem)
	size = int64(len(raw))
	var timeout net.Error
	switch {
	case errors.Is(err, errTooLarge):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", src.MaxBody))
	case errors.Is(err, errBudget):
		return fail(http.StatusServiceUnavailable, err.Error())
	case errors.As(err, &timeout) && timeout.Timeout():
		return fail(http.StatusRequestTimeout, "the body did not arrive in time")
	case err != nil:
		return fail(http.StatusBadRequest, "cannot read the body")
	}
	bodyRead = true
	if !src.Auth.verify(r, raw) {
		return fail(http.StatusUnauthorized, "unauthorized")
	}
	enc := r.Header.Get("Content-Encoding")
	body, err := decode(enc, raw, src.MaxBytes, mem)
	switch {
	case errors.Is(err, errEncoding):
		return fail(http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, errTooLarge):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("decoded body over %d bytes", src.MaxBytes))
	case errors.Is(err, errBudget):
		return fail(http.StatusServiceUnavailable, err.Error())
	case err != nil:
		return fail(http.StatusBadRequest, err.Error())
	}
	if !identity(enc) {
		mem.shrink(int64(cap(raw))) // the body as sent is not used past here
	}
	recs, err := src.Split.Split(body)
	switch {
	case errors.Is(err, records.ErrTooMany):
		return fail(http.StatusRequestEntityTooLarge, err.Error())
	case err != nil:
		return fail(http.StatusBadRequest, err.Error())
	}
	if err := mem.grow(int64(cap(recs)) * recordOverhead); err != nil {
		return fail(http.StatusServiceUnavailable, err.Error())
	}
	if len(recs) > 0 {
		if err := h.app.Append(r.Context(), src.ID, recs); err != nil {
			switch h.opts.Classify(err) {
			case ErrBusy:
				return fail(http.StatusTooManyRequests, err.Error())
			case ErrStopped, ErrUnavailable:
				return fail(http.StatusServiceUnavailable, err.Error())
			}
			h.opts.Logger.Error("append failed", "source", src.ID, "err", err)
			return fail(http.StatusInternalServerError, "could not store the records")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"records\":%d}\n", len(recs))
	return http.StatusOK, len(recs), size
}
