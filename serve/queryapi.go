package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ospreyhq/osprey/config"
	"github.com/ospreyhq/osprey/ingest/source/httpsrc"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/units"
)

// Limits of the query API.
const (
	apiDefaultTimeout = 30 * time.Second
	apiMaxTimeout     = 5 * time.Minute
	apiDefaultRows    = 10_000
	apiMaxRows        = 1_000_000
	apiMaxBody        = 1 << 20
	apiConcurrent     = 4 // queries at once; more wait for their turn
	// A result is cut (X-Osprey-Truncated) once this many bytes of it were written; a request
	// may ask for up to apiMaxBytes.
	apiDefaultBytes = 64 << 20
	apiMaxBytes     = 1 << 30
	// apiHeld is the part of a result held back before anything is sent: a result that fits
	// is answered with its row count in the headers, and a failure with an error status.
	// Past it the result streams, and its counts come as trailers.
	apiHeld = 1 << 20
)

// queryAPI is osprey serve's POST /v1/query: a query over the lake, authorized by an API token
// (osprey token create), answered in JSON, JSON lines, CSV or Parquet.
type queryAPI struct {
	lake   *lake.Lake
	worker []string // the command line of a query worker
	log    *slog.Logger
	slot   chan struct{}

	mu       sync.Mutex
	tokens   []config.Token
	tokensAt time.Time // modification time of the tokens file when read
}

func newQueryAPI(l *lake.Lake, worker []string, log *slog.Logger) *queryAPI {
	return &queryAPI{lake: l, worker: worker, log: log, slot: make(chan struct{}, apiConcurrent)}
}

// queryRequest is the body of POST /v1/query.
type queryRequest struct {
	SQL     string         `json:"sql"`
	Params  map[string]any `json:"params"`
	Format  string         `json:"format"`   // json (default), jsonl, csv or parquet
	Timeout string         `json:"timeout"`  // a duration (units.ParseDuration); default 30s, at most 5m
	MaxRows int64          `json:"max_rows"` // default 10,000, at most 1,000,000
	// MaxBytes cuts the result once this many bytes were written; default 64 MiB, at most
	// 1 GiB.
	MaxBytes int64 `json:"max_bytes"`
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authorize returns the token of the request's bearer secret.
func (a *queryAPI) authorize(r *http.Request) (config.Token, error) {
	secret, ok := httpsrc.BearerToken(r)
	if !ok {
		return config.Token{}, errors.New("an API token is required: Authorization: Bearer <token> (osprey token create)")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Tokens created or revoked while serve runs take effect at once.
	info, err := os.Stat(config.TokensPath(a.lake.Dir()))
	switch {
	case errors.Is(err, os.ErrNotExist):
		a.tokens, a.tokensAt = nil, time.Time{}
	case err != nil:
		return config.Token{}, err
	case !info.ModTime().Equal(a.tokensAt) || a.tokens == nil:
		ts, err := config.LoadTokens(a.lake.Dir())
		if err != nil {
			return config.Token{}, err
		}
		a.tokens, a.tokensAt = ts, info.ModTime()
	}
	t, ok := config.CheckToken(a.tokens, secret)
	if !ok {
		return config.Token{}, errors.New("unknown or revoked API token")
	}
	return t, nil
}

// Close ends the API. Queries run in worker processes that end with their requests.
func (a *queryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apiError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	tok, err := a.authorize(r)
	if err != nil {
		apiError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if tok.Role != config.RoleRead {
		apiError(w, http.StatusForbidden, fmt.Sprintf("token %s has role %s, which may not query", tok.Name, tok.Role))
		return
	}
	var req queryRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, apiMaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			apiError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: over %d bytes", apiMaxBody))
			return
		}
		apiError(w, http.StatusBadRequest, "body: "+err.Error()+` (want {"sql": "...", "params": {}, "format": "json", "timeout": "30s", "max_rows": 10000, "max_bytes": 67108864})`)
		return
	}
	if strings.TrimSpace(req.SQL) == "" {
		apiError(w, http.StatusBadRequest, "sql is empty")
		return
	}
	format := req.Format
	if format == "" {
		format = "json"
	}
	contentType := map[string]string{"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}[format]
	if contentType == "" {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json, jsonl, csv or parquet", format))
		return
	}
	timeout := apiDefaultTimeout
	if req.Timeout != "" {
		if timeout, err = units.ParseDuration(req.Timeout); err != nil || timeout <= 0 || timeout > apiMaxTimeout {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("timeout %q: want a duration up to %s", req.Timeout, apiMaxTimeout))
			return
		}
	}
	maxRows := req.MaxRows
	switch {
	case maxRows == 0:
		maxRows = apiDefaultRows
	case maxRows < 0 || maxRows > apiMaxRows:
		apiError(w, http.StatusBadRequest, fmt.Sprintf("max_rows %d: want 1 to %d", maxRows, apiMaxRows))
		return
	}
	maxBytes := req.MaxBytes
	switch {
	case maxBytes == 0:
		maxBytes = apiDefaultBytes
	case maxBytes < 0 || maxBytes > apiMaxBytes:
		apiError(w, http.StatusBadRequest, fmt.Sprintf("max_bytes %d: want 1 to %d", maxBytes, apiMaxBytes))
		return
	}
	select {
	case a.slot <- struct{}{}:
		defer func() { <-a.slot }()
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	res, err := a.run(r.Context(), w, workerRequest{SQL: req.SQL, Params: req.Params, Format: format,
		Timeout: timeout, MaxRows: maxRows, MaxBytes: maxBytes}, contentType)
	switch {
	case err != nil && res.streaming:
		// Part of the result went out with a 200: cut the transfer, so that the client sees
		// an error and never a complete-looking result.
		a.log.Info("query API: query failed while its result streamed", "token", tok.Name, "rows", res.Rows, "err", err)
		panic(http.ErrAbortHandler)
	case errors.Is(err, errWorkerMemory):
		a.log.Warn("query API: query stopped for its memory", "token", tok.Name, "err", err)
		apiError(w, http.StatusInsufficientStorage, err.Error())
		return
	case err != nil:
		a.queryFailed(w, tok, err, timeout)
		return
	}
	h := w.Header()
	h.Set("X-Osprey-Rows", strconv.FormatInt(res.Rows, 10))
	h.Set("X-Osprey-Truncated", strconv.FormatBool(res.Truncated))
	h.Set("X-Osprey-Elapsed-Ms", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	if !res.streaming {
		h.Set("Content-Type", contentType)
		w.Write(res.held)
	}
	a.log.Info("query API", "token", tok.Name, "rows", res.Rows, "bytes", res.bytes, "truncated", res.Truncated, "elapsed", time.Since(start))
}

func (a *queryAPI) queryFailed(w http.ResponseWriter, tok config.Token, err error, timeout time.Duration) {
	a.log.Info("query API: query failed", "token", tok.Name, "err", err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		apiError(w, http.StatusGatewayTimeout, fmt.Sprintf("the query ran past its timeout of %s", timeout))
	case errors.Is(err, context.Canceled):
		apiError(w, 499, "canceled")
	default:
		apiError(w, http.StatusBadRequest, err.Error())
	}
}
