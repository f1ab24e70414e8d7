package main

// A counting proxy: a reverse proxy on loopback in front of moto_server that counts the S3
// requests of each kind, the bytes each way and the time moto took to answer them, so that
// osprey-bench lake-s3 can say where an S3 lake's time goes and how many GETs a query made.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// s3Counter proxies to an S3 endpoint and counts what passes.
type s3Counter struct {
	URL string // the proxy's URL, to give clients as their endpoint
	srv *http.Server

	mu        sync.Mutex
	idle      *sync.Cond // signalled when no request is in flight
	ops       map[string]*opCount
	inflight  int
	busySince time.Time
	busy      time.Duration // time with at least one request in flight
}

// opCount is what the counter saw of one kind of request ("PUT data", "GET metadata", ...).
type opCount struct {
	N        int
	BytesIn  int64         // request bodies
	BytesOut int64         // response bodies
	Total    time.Duration // sum of the requests' times, from arrival to the response's end
}

// startCounter starts a counting proxy to target on a free loopback port.
func startCounter(target string) (*s3Counter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u) // keeps the client's Host: its signature holds
	proxy.Transport = &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	proxy.ErrorLog = nil
	c := &s3Counter{URL: "http://" + ln.Addr().String(), ops: map[string]*opCount{}}
	c.idle = sync.NewCond(&c.mu)
	c.srv = &http.Server{Handler: c.handler(proxy)}
	go c.srv.Serve(ln)
	return c, nil
}

func (c *s3Counter) Close() error { return c.srv.Close() }

func (c *s3Counter) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c.mu.Lock()
		if c.inflight == 0 {
			c.busySince = start
		}
		c.inflight++
		c.mu.Unlock()
		body := &countReader{r: r.Body}
		r.Body = body
		cw := &countWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		end := time.Now()
		kind := opKind(r)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.inflight--
		if c.inflight == 0 {
			c.busy += end.Sub(c.busySince)
			c.idle.Broadcast()
		}
		o := c.ops[kind]
		if o == nil {
			o = &opCount{}
			c.ops[kind] = o
		}
		o.N++
		o.BytesIn += body.n
		o.BytesOut += cw.n
		o.Total += end.Sub(start)
	})
}

// opKind names a request: its operation, and for objects whether they are data files
// (Parquet) or metadata (Iceberg's JSON and Avro files).
func opKind(r *http.Request) string {
	q := r.URL.Query()
	path := strings.Trim(r.URL.Path, "/")
	isObject := strings.Contains(path, "/") // path-style: bucket/key
	op := r.Method
	switch {
	case r.Method == http.MethodPost && q.Has("delete"):
		return "DELETE objects"
	case r.Method == http.MethodGet && !isObject:
		return "LIST"
	case !isObject:
		return op + " bucket"
	}
	if strings.HasSuffix(path, ".parquet") {
		return op + " data"
	}
	return op + " metadata"
}

// snapshot returns the counts so far and resets them. Call it when the clients are done: it
// waits for the requests in flight, whose clients may have their answer before the proxy
// has counted it.
func (c *s3Counter) snapshot() s3Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.inflight > 0 {
		c.idle.Wait()
	}
	s := s3Counts{ops: c.ops, busy: c.busy}
	c.ops, c.busy = map[string]*opCount{}, 0
	return s
}

// s3Counts are the requests of a phase.
type s3Counts struct {
	ops       map[string]*opCount
	busy      time.Duration
	serverCPU time.Duration // of moto_server, when measured
}

func (s s3Counts) get(kind string) opCount {
	if o := s.ops[kind]; o != nil {
		return *o
	}
	return opCount{}
}

// print writes one line per kind of request.
func (s s3Counts) print(w io.Writer, indent string) {
	kinds := make([]string, 0, len(s.ops))
	for k := range s.ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		o := s.ops[k]
		fmt.Fprintf(w, "%s%-16s %6d requests %10s up %10s down %9.2f s in moto (%.1f ms each)\n",
			indent, k, o.N, human(o.BytesIn), human(o.BytesOut), o.Total.Seconds(), ms(o.Total)/float64(o.N))
	}
	fmt.Fprintf(w, "%s%-16s %.2f s with at least one request in flight\n", indent, "busy", s.busy.Seconds())
}

type countReader struct {
	r io.ReadCloser
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Flush lets the proxy stream: it flushes when the response has no length.
func (c *countWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
