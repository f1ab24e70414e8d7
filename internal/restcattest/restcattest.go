// Package restcattest is for tests: an Iceberg REST catalog server on 127.0.0.1, backed by
// iceberg-go's SQL catalog on a SQLite file.
//
// It is a test double of the REST protocol, not an independent catalog: every decision about
// tables (requirements, updates, metadata files, compare-and-swap of the metadata location) is
// made by the same iceberg-go SQL catalog that osprey embeds; this package only translates the
// REST routes, bodies and error shapes of the OpenAPI spec
// (open-api/rest-catalog-open-api.yaml in apache/iceberg) to and from it. It exists because
// no open-source REST catalog server (Polaris, Nessie, Lakekeeper, the Java fixture) can be
// installed here or on CI; tests that need a real one should still be run against one.
//
// Routes, under /v1/{prefix} where the prefix is given to clients by GET /v1/config:
//
//	GET  /v1/config
//	GET, POST            /namespaces
//	GET, HEAD, DELETE    /namespaces/{ns}
//	POST                 /namespaces/{ns}/properties
//	GET, POST            /namespaces/{ns}/tables
//	GET, HEAD, POST, DELETE /namespaces/{ns}/tables/{table}
//	POST                 /tables/rename
//
// {ns} is the namespace's levels, each path-escaped, joined by the unit separator %1F.
// Errors are the spec's ErrorModel: 404 NoSuchNamespaceException or NoSuchTableException,
// 409 AlreadyExistsException, NamespaceNotEmptyException or CommitFailedException (a failed
// requirement or a lost compare-and-swap, which iceberg-go's client turns into
// table.ErrCommitFailed so that its callers retry), 400 BadRequestException, and 500 for the
// rest (which a client must read as "commit state unknown" on a commit).
//
// Data and metadata files live under the warehouse given to Start: a local directory, or any
// location iceberg-go's io registry can open in the test's process (s3://bucket/prefix once
// lake/objstore has registered that bucket). The server passes locations through; it vends no
// credentials.
package restcattest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"

	_ "modernc.org/sqlite" // the "sqlite" driver of the backing catalog
)

// Prefix is the path prefix the server hands clients in its configuration's overrides; every
// route but /v1/config lives under /v1/Prefix, so a client that ignores the prefix fails.
const Prefix = "osprey-test"

// nsSep is the namespace separator, decoded: the unit separator the spec uses by default.
const nsSep = "\x1f"

// Server is a running REST catalog.
type Server struct {
	// URI is the catalog's base address, http://127.0.0.1:port, for rest.NewCatalog.
	URI string
	// Catalog is the SQL catalog behind the server, for tests that look under the protocol.
	Catalog *sqlcat.Catalog

	http *httptest.Server
	// commitMu makes checking a commit's requirements and applying it one step, so that a
	// requirement that fails because of a concurrent commit is reported as a conflict (409)
	// rather than as an unknown failure (500).
	commitMu sync.Mutex
}

// Start runs a REST catalog whose tables live under warehouse, with its SQLite database in
// t.TempDir(); it is stopped when the test ends.
func Start(t testing.TB, warehouse string) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restcatalog.db")
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatalf("restcattest: open sqlite: %v", err)
	}
	cat, err := sqlcat.NewCatalog("rest", db, sqlcat.SQLite, iceberg.Properties{
		"init_catalog_tables": "true",
		"warehouse":           warehouse,
	})
	if err != nil {
		db.Close()
		t.Fatalf("restcattest: sql catalog: %v", err)
	}
	s := &Server{Catalog: cat}
	s.http = httptest.NewServer(s)
	s.URI = s.http.URL
	t.Cleanup(func() {
		s.http.Close()
		if err := errors.Join(cat.Close(), db.Close()); err != nil {
			t.Errorf("restcattest: close: %v", err)
		}
	})
	return s
}

// identifier is the spec's TableIdentifier.
type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

// errorBody is the spec's IcebergErrorResponse.
type errorBody struct {
	Error errorModel `json:"error"`
}

type errorModel struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// httpError is an error with the status and ErrorModel type it is answered with.
type httpError struct {
	code int
	typ  string
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, "BadRequestException", fmt.Errorf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, "NotFoundException", fmt.Errorf(format, args...)}
}

func commitFailed(err error) error {
	return &httpError{http.StatusConflict, "CommitFailedException", err}
}

// classify gives the status and ErrorModel type of an error of the SQL catalog.
func classify(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code, he.typ
	case errors.Is(err, catalog.ErrNoSuchTable):
		return http.StatusNotFound, "NoSuchTableException"
	case errors.Is(err, catalog.ErrNoSuchNamespace):
		return http.StatusNotFound, "NoSuchNamespaceException"
	case errors.Is(err, catalog.ErrTableAlreadyExists), errors.Is(err, catalog.ErrNamespaceAlreadyExists),
		errors.Is(err, catalog.ErrViewAlreadyExists):
		return http.StatusConflict, "AlreadyExistsException"
	case errors.Is(err, catalog.ErrNamespaceNotEmpty):
		return http.StatusConflict, "NamespaceNotEmptyException"
	case errors.Is(err, table.ErrCommitFailed):
		return http.StatusConflict, "CommitFailedException"
	case errors.Is(err, catalog.ErrInvalidIdentifier):
		return http.StatusBadRequest, "BadRequestException"
	}
	return http.StatusInternalServerError, "InternalServerError"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, typ := classify(err)
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, errorBody{errorModel{Message: err.Error(), Type: typ, Code: code}})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return badRequest("decode %s body: %v", r.URL.Path, err)
	}
	return nil
}

// ServeHTTP routes a request of the REST protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		writeError(w, r, badRequest("%v", err))
		return
	}
	if len(segs) < 2 || segs[0] != "v1" {
		writeError(w, r, notFound("no route %s %s", r.Method, r.URL.Path))
		return
	}
	if len(segs) == 2 && segs[1] == "config" && r.Method == http.MethodGet {
		s.config(w)
		return
	}
	if segs[1] != Prefix {
		writeError(w, r, notFound("no route %s %s (prefix %q expected)", r.Method, r.URL.Path, Prefix))
		return
	}
	ctx, rest := r.Context(), segs[2:]
	route := r.Method + " " + strings.Join(pattern(rest), "/")
	var ns table.Identifier
	if len(rest) >= 2 && rest[0] == "namespaces" {
		ns = strings.Split(rest[1], nsSep)
	}
	switch route {
	case "GET namespaces":
		s.listNamespaces(ctx, w, r)
	case "POST namespaces":
		s.createNamespace(ctx, w, r)
	case "GET namespaces/{ns}":
		s.loadNamespace(ctx, w, r, ns)
	case "HEAD namespaces/{ns}":
		s.namespaceExists(ctx, w, r, ns)
	case "DELETE namespaces/{ns}":
		s.respond(w, r, http.StatusNoContent, nil, s.Catalog.DropNamespace(ctx, ns))
	case "POST namespaces/{ns}/properties":
		s.updateNamespace(ctx, w, r, ns)
	case "GET namespaces/{ns}/tables":
		s.listTables(ctx, w, r, ns)
	case "POST namespaces/{ns}/tables":
		s.createTable(ctx, w, r, ns)
	case "GET namespaces/{ns}/tables/{name}":
		s.loadTable(ctx, w, r, append(ns, rest[3]))
	case "HEAD namespaces/{ns}/tables/{name}":
		s.tableExists(ctx, w, r, append(ns, rest[3]))
	case "POST namespaces/{ns}/tables/{name}":
		s.commitTable(ctx, w, r, append(ns, rest[3]))
	case "DELETE namespaces/{ns}/tables/{name}":
		s.dropTable(ctx, w, r, append(ns, rest[3]))
	case "POST tables/rename":
		s.renameTable(ctx, w, r)
	default:
		writeError(w, r, notFound("no route %s %s", r.Method, r.URL.Path))
	}
}

// splitPath splits an escaped path into its unescaped segments: a namespace's levels keep
// their separator (%1F, decoded) and a level's own escaped slashes stay inside its segment.
func splitPath(escaped string) ([]string, error) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("path segment %q: %w", p, err)
		}
		parts[i] = u
	}
	return parts, nil
}

// pattern replaces the variable segments of a route below the prefix by placeholders.
func pattern(rest []string) []string {
	out := append([]string(nil), rest...)
	if len(out) >= 2 && out[0] == "namespaces" {
		out[1] = "{ns}"
		if len(out) >= 4 && out[2] == "tables" {
			out[3] = "{name}"
		}
	}
	return out
}

// respond answers code with body, or the error's answer when err is not nil.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, code int, body any, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	if body == nil {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, body)
}

// endpoints is what the server advertises; a client calls nothing else.
var endpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"POST /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"DELETE /v1/{prefix}/namespaces/{namespace}",
	"POST /v1/{prefix}/namespaces/{namespace}/properties",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"POST /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/tables/rename",
}

func (s *Server) config(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"defaults":  map[string]string{},
		"overrides": map[string]string{"prefix": Prefix},
		"endpoints": endpoints,
	})
}

func (s *Server) listNamespaces(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	var parent table.Identifier
	if p := r.URL.Query().Get("parent"); p != "" {
		parent = strings.Split(p, nsSep)
	}
	got, err := s.Catalog.ListNamespaces(ctx, parent)
	if got == nil {
		got = []table.Identifier{}
	}
	s.respond(w, r, http.StatusOK, map[string]any{"namespaces": got}, err)
}

func (s *Server) createNamespace(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	var req struct {
		Namespace  table.Identifier   `json:"namespace"`
		Properties iceberg.Properties `json:"properties"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Properties == nil {
		req.Properties = iceberg.Properties{}
	}
	err := s.Catalog.CreateNamespace(ctx, req.Namespace, req.Properties)
	s.respond(w, r, http.StatusOK, req, err)
}

func (s *Server) loadNamespace(ctx context.Context, w http.ResponseWriter, r *http.Request, ns table.Identifier) {
	props, err := s.Catalog.LoadNamespaceProperties(ctx, ns)
	s.respond(w, r, http.StatusOK, map[string]any{"namespace": ns, "properties": props}, err)
}

func (s *Server) namespaceExists(ctx context.Context, w http.ResponseWriter, r *http.Request, ns table.Identifier) {
	ok, err := s.Catalog.CheckNamespaceExists(ctx, ns)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", catalog.ErrNoSuchNamespace, strings.Join(ns, "."))
	}
	s.respond(w, r, http.StatusNoContent, nil, err)
}

func (s *Server) updateNamespace(ctx context.Context, w http.ResponseWriter, r *http.Request, ns table.Identifier) {
	var req struct {
		Removals []string           `json:"removals"`
		Updates  iceberg.Properties `json:"updates"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	sum, err := s.Catalog.UpdateNamespaceProperties(ctx, ns, req.Removals, req.Updates)
	s.respond(w, r, http.StatusOK, sum, err)
}

func (s *Server) listTables(ctx context.Context, w http.ResponseWriter, r *http.Request, ns table.Identifier) {
	ids := []identifier{}
	for id, err := range s.Catalog.ListTables(ctx, ns) {
		if err != nil {
			writeError(w, r, err)
			return
		}
		ids = append(ids, identifier{Namespace: catalog.NamespaceFromIdent(id), Name: catalog.TableNameFromIdent(id)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"identifiers": ids})
}

// createTableRequest is the spec's CreateTableRequest. The partition spec's and write order's
// source IDs refer to the request's schema, so they are decoded unbound and bound by the
// catalog's table.NewMetadata, as iceberg-go asks of servers.
type createTableRequest struct {
	Name          string                        `json:"name"`
	Schema        *iceberg.Schema               `json:"schema"`
	Location      string                        `json:"location"`
	PartitionSpec *iceberg.UnboundPartitionSpec `json:"partition-spec"`
	WriteOrder    *table.UnboundSortOrder       `json:"write-order"`
	StageCreate   bool                          `json:"stage-create"`
	Properties    iceberg.Properties            `json:"properties"`
}

func (s *Server) createTable(ctx context.Context, w http.ResponseWriter, r *http.Request, ns table.Identifier) {
	var req createTableRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Name == "" || req.Schema == nil {
		writeError(w, r, badRequest("create table: name and schema are required"))
		return
	}
	if req.StageCreate {
		writeError(w, r, &httpError{http.StatusNotImplemented, "NotImplementedException",
			errors.New("create table: stage-create is not supported by this test server")})
		return
	}
	var opts []catalog.CreateTableOpt
	if req.Location != "" {
		opts = append(opts, catalog.WithLocation(req.Location))
	}
	if req.PartitionSpec != nil {
		opts = append(opts, catalog.WithPartitionSpec(&req.PartitionSpec.PartitionSpec))
	}
	if req.WriteOrder != nil {
		opts = append(opts, catalog.WithSortOrder(req.WriteOrder.SortOrder))
	}
	if req.Properties != nil {
		opts = append(opts, catalog.WithProperties(req.Properties))
	}
	tbl, err := s.Catalog.CreateTable(ctx, append(append(table.Identifier{}, ns...), req.Name), req.Schema, opts...)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeTable(w, r, tbl.Metadata(), tbl.MetadataLocation())
}

// writeTable answers a LoadTableResult (and, without its config, a CommitTableResponse).
func writeTable(w http.ResponseWriter, r *http.Request, meta table.Metadata, loc string) {
	raw, err := json.Marshal(meta)
	if err != nil {
		writeError(w, r, fmt.Errorf("encode metadata: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"metadata-location": loc,
		"metadata":          json.RawMessage(raw),
		"config":            map[string]string{},
	})
}

func (s *Server) loadTable(ctx context.Context, w http.ResponseWriter, r *http.Request, ident table.Identifier) {
	tbl, err := s.Catalog.LoadTable(ctx, ident)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeTable(w, r, tbl.Metadata(), tbl.MetadataLocation())
}

func (s *Server) tableExists(ctx context.Context, w http.ResponseWriter, r *http.Request, ident table.Identifier) {
	ok, err := s.Catalog.CheckTableExists(ctx, ident)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", catalog.ErrNoSuchTable, strings.Join(ident, "."))
	}
	s.respond(w, r, http.StatusNoContent, nil, err)
}

// commitTableRequest is the spec's CommitTableRequest, decoded with iceberg-go's own
// requirement and update types.
type commitTableRequest struct {
	Identifier   *identifier        `json:"identifier"`
	Requirements table.Requirements `json:"requirements"`
	Updates      table.Updates      `json:"updates"`
}

func (s *Server) commitTable(ctx context.Context, w http.ResponseWriter, r *http.Request, ident table.Identifier) {
	var req commitTableRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	// The SQL catalog checks requirements too, but answers a failed one with a plain error;
	// checked here, it is the 409 the spec asks for.
	var current table.Metadata
	tbl, err := s.Catalog.LoadTable(ctx, ident)
	switch {
	case err == nil:
		current = tbl.Metadata()
	case errors.Is(err, catalog.ErrNoSuchTable) && assertsCreate(req.Requirements):
	default:
		writeError(w, r, err)
		return
	}
	for _, q := range req.Requirements {
		if err := q.Validate(current); err != nil {
			writeError(w, r, commitFailed(fmt.Errorf("commit %s: %w", strings.Join(ident, "."), err)))
			return
		}
	}
	meta, loc, err := s.Catalog.CommitTable(ctx, ident, req.Requirements, req.Updates)
	if err != nil {
		writeError(w, r, err)
		return
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		writeError(w, r, fmt.Errorf("encode metadata: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadata-location": loc, "metadata": json.RawMessage(raw)})
}

func assertsCreate(reqs table.Requirements) bool {
	for _, q := range reqs {
		if q.GetType() == "assert-create" {
			return true
		}
	}
	return false
}

func (s *Server) dropTable(ctx context.Context, w http.ResponseWriter, r *http.Request, ident table.Identifier) {
	var err error
	if r.URL.Query().Get("purgeRequested") == "true" {
		err = s.Catalog.PurgeTable(ctx, ident)
	} else {
		err = s.Catalog.DropTable(ctx, ident)
	}
	s.respond(w, r, http.StatusNoContent, nil, err)
}

func (s *Server) renameTable(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	var req struct {
		Source      identifier `json:"source"`
		Destination identifier `json:"destination"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	from := append(append(table.Identifier{}, req.Source.Namespace...), req.Source.Name)
	to := append(append(table.Identifier{}, req.Destination.Namespace...), req.Destination.Name)
	_, err := s.Catalog.RenameTable(ctx, from, to)
	s.respond(w, r, http.StatusNoContent, nil, err)
}
