package main

import (
	"bytes"
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
	"github.com/ospreyhq/osprey/ingest/httpsrc"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// Limits of the query API.
const (
	apiDefaultTimeout = 30 * time.Second
	apiMaxTimeout     = 5 * time.Minute
	apiDefaultRows    = 10_000
	apiMaxRows        = 1_000_000
	apiMaxBody        = 1 << 20
	apiConcurrent     = 4 // queries at once; more wait for their turn
)

// queryAPI is osprey serve's POST /v1/query: a query over the lake, authorized by an API token
// (osprey token create), answered in JSON, JSON lines, CSV or Parquet.
type queryAPI struct {
	lake *lake.Lake
	log  *slog.Logger
	slot chan struct{}

	mu       sync.Mutex
	db       *query.DB // opened at the first query
	tokens   []config.Token
	tokensAt time.Time // modification time of the tokens file when read
}

func newQueryAPI(l *lake.Lake, log *slog.Logger) *queryAPI {
	return &queryAPI{lake: l, log: log, slot: make(chan struct{}, apiConcurrent)}
}

// queryRequest is the body of POST /v1/query.
type queryRequest struct {
	SQL     string         `json:"sql"`
	Params  map[string]any `json:"params"`
	Format  string         `json:"format"`   // json (default), jsonl, csv or parquet
	Timeout string         `json:"timeout"`  // a Go duration; default 30s, at most 5m
	MaxRows int64          `json:"max_rows"` // default 10,000, at most 1,000,000
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

func (a *queryAPI) open(ctx context.Context) (*query.DB, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.db == nil {
		db, err := query.Open(ctx, a.lake, query.Options{})
		if err != nil {
			return nil, err
		}
		a.db = db
	}
	return a.db, nil // Run refreshes the views before each query
}

// Close closes the query session, if one was opened.
func (a *queryAPI) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.db == nil {
		return nil
	}
	err := a.db.Close()
	a.db = nil
	return err
}

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
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", apiMaxBody))
			return
		}
		apiError(w, http.StatusBadRequest, "body: "+err.Error()+` (want {"sql": "...", "params": {}, "format": "json", "timeout": "30s", "max_rows": 10000})`)
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
		if timeout, err = time.ParseDuration(req.Timeout); err != nil || timeout <= 0 || timeout > apiMaxTimeout {
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
	select {
	case a.slot <- struct{}{}:
		defer func() { <-a.slot }()
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	db, err := a.open(r.Context())
	if err != nil {
		a.log.Error("query API: open the lake", "err", err)
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rows, err := db.Run(r.Context(), query.Request{SQL: req.SQL, Params: req.Params, Timeout: timeout, MaxRows: maxRows})
	if err != nil {
		a.queryFailed(w, tok, err, timeout)
		return
	}
	// The result is bounded by max_rows: it is written whole before the status is sent, so
	// that a failure midway is an error, not a truncated 200.
	var buf bytes.Buffer
	n, err := query.Write(&buf, rows, query.WriteOptions{Format: format})
	truncated := rows.Truncated()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		a.queryFailed(w, tok, err, timeout)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Osprey-Rows", strconv.FormatInt(n, 10))
	h.Set("X-Osprey-Truncated", strconv.FormatBool(truncated))
	h.Set("X-Osprey-Elapsed-Ms", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	w.Write(buf.Bytes())
	a.log.Info("query API", "token", tok.Name, "rows", n, "truncated", truncated, "elapsed", time.Since(start))
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
