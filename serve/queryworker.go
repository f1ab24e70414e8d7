package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

// Each query of the API runs in a worker process (osprey query-worker) that serve starts and
// watches: DuckDB materializes a statement's whole result before the first row can be read,
// outside its memory limit, so one query (SELECT repeat('x', 10000000) FROM range(300)) can
// take gigabytes, and a statement that crashed DuckDB would take serve with it. A worker whose
// resident memory passes apiWorkerMemory is killed and its request answered 507; serve's own
// memory does not depend on the query. Starting a worker costs tens of milliseconds.

const (
	// apiWorkerMemory is the resident memory a query worker may reach before it is killed.
	apiWorkerMemory = 2 << 30
	// apiWorkerDuckDB is the worker's DuckDB memory_limit: the operators DuckDB accounts for
	// (joins, aggregates, sorts) spill past it, well below apiWorkerMemory.
	apiWorkerDuckDB = "1GB"
	// apiWorkerPoll is how often serve reads a worker's resident memory.
	apiWorkerPoll = 10 * time.Millisecond
	// apiWorkerGrace is how long past its query's timeout a worker may take to answer before
	// serve kills it (DuckDB stops a statement at its timeout; this is for one that does not).
	apiWorkerGrace = 10 * time.Second
)

var errWorkerMemory = fmt.Errorf("the query needed more than %d MiB of memory: select fewer or narrower rows (max_rows, LIMIT)", apiWorkerMemory>>20)

// QueryWorkerArg is the argument that makes a program a query worker (Options.QueryWorker).
const QueryWorkerArg = "query-worker"

// workerRequest is what serve hands a query worker on its standard input.
type workerRequest struct {
	Lake     lake.Options   `json:"lake"`
	SQL      string         `json:"sql"`
	Params   map[string]any `json:"params,omitempty"`
	Format   string         `json:"format"`
	Timeout  time.Duration  `json:"timeout"`
	MaxRows  int64          `json:"max_rows"`
	MaxBytes int64          `json:"max_bytes"`
}

// WorkerStatus is what a query worker reports on its status pipe (file descriptor 3) at the
// end, in JSON.
type WorkerStatus struct {
	Rows      int64  `json:"rows"`
	Truncated bool   `json:"truncated"`
	Error     string `json:"error,omitempty"`
	Kind      string `json:"kind,omitempty"` // timeout, canceled or query, with Error
}

// workerResult is how a query went, for the handler.
type workerResult struct {
	WorkerStatus
	streaming bool   // the response's header and part of the result were sent
	held      []byte // the whole result, when not streaming
	bytes     int64
}

// run runs a query in a worker process and copies its result into w through a resultWriter.
func (a *queryAPI) run(ctx context.Context, w http.ResponseWriter, req workerRequest, contentType string) (workerResult, error) {
	req.Lake = a.lake.Options()
	in, err := json.Marshal(req)
	if err != nil {
		return workerResult{}, fmt.Errorf("query parameters: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout+apiWorkerGrace)
	defer cancel()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return workerResult{}, err
	}
	defer statusR.Close()
	cmd := exec.CommandContext(ctx, a.worker[0], a.worker[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.ExtraFiles = []*os.File{statusW}
	var logs tailBuffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		statusW.Close()
		return workerResult{}, err
	}
	if err := cmd.Start(); err != nil {
		statusW.Close()
		return workerResult{}, fmt.Errorf("start a query worker: %w", err)
	}
	statusW.Close()
	var overMemory atomic.Bool
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchMemory(cmd.Process, apiWorkerMemory, &overMemory)
	}()
	out := &resultWriter{w: w, held: apiHeld, start: func(h http.Header) {
		h.Set("Content-Type", contentType)
		h.Set("Trailer", "X-Osprey-Rows, X-Osprey-Truncated, X-Osprey-Elapsed-Ms")
	}}
	_, copyErr := io.Copy(out, stdout)
	if copyErr != nil {
		cmd.Process.Kill() // the client went away
	}
	var st WorkerStatus
	statusErr := json.NewDecoder(io.LimitReader(statusR, 1<<20)).Decode(&st)
	waitErr := cmd.Wait()
	<-watchDone
	res := workerResult{WorkerStatus: st, streaming: out.streaming, held: out.buf.Bytes(), bytes: out.n}
	switch {
	case overMemory.Load():
		return res, errWorkerMemory
	case copyErr != nil:
		return res, copyErr
	case ctx.Err() != nil:
		return res, ctx.Err()
	case statusErr == nil && st.Error != "":
		switch st.Kind {
		case "timeout":
			return res, context.DeadlineExceeded
		case "canceled":
			return res, context.Canceled
		}
		return res, errors.New(st.Error)
	case statusErr != nil || waitErr != nil:
		return res, fmt.Errorf("the query worker failed (%v): %s", errors.Join(waitErr, statusErr), logs.String())
	}
	return res, nil
}

// watchMemory kills p once its resident memory passes limit, setting over; it returns when p
// has exited.
func watchMemory(p *os.Process, limit int64, over *atomic.Bool) {
	path := fmt.Sprintf("/proc/%d/statm", p.Pid)
	page := int64(os.Getpagesize())
	t := time.NewTicker(apiWorkerPoll)
	defer t.Stop()
	for range t.C {
		data, err := os.ReadFile(path)
		if err != nil {
			return // exited and reaped
		}
		f := strings.Fields(string(data))
		if len(f) < 2 {
			return // a zombie
		}
		rss, err := strconv.ParseInt(f[1], 10, 64)
		if err == nil && rss*page > limit {
			over.Store(true)
			p.Kill()
			return
		}
	}
}

// tailBuffer keeps the last 8 KiB written to it (a worker's log lines, for an error).
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// resultWriter holds the first held bytes of a result; past them it sends the response's
// header (after start sets it) and what it held, and writes through.
type resultWriter struct {
	w         http.ResponseWriter
	held      int
	start     func(http.Header)
	buf       bytes.Buffer
	streaming bool
	n         int64 // bytes of the result written to it
}

func (r *resultWriter) Write(p []byte) (int, error) {
	r.n += int64(len(p))
	if !r.streaming {
		if r.buf.Len()+len(p) <= r.held {
			return r.buf.Write(p)
		}
		r.streaming = true
		r.start(r.w.Header())
		r.w.WriteHeader(http.StatusOK)
		if _, err := r.w.Write(r.buf.Bytes()); err != nil {
			return 0, err
		}
		r.buf = bytes.Buffer{}
	}
	return r.w.Write(p)
}

// QueryWorkerMain is the whole of a query worker process (a program given QueryWorkerArg):
// the request on standard input, the result on standard output, the WorkerStatus on file
// descriptor 3, which serve opens for it.
func QueryWorkerMain(ctx context.Context) error {
	status := os.NewFile(3, "status")
	if status == nil {
		return errors.New("a query worker is started by osprey serve")
	}
	defer status.Close()
	st := RunQueryWorker(ctx, os.Stdin, os.Stdout)
	return json.NewEncoder(status).Encode(st)
}

// RunQueryWorker is a query worker's work: it runs the request serve wrote to in, writing the
// result to out, and returns the status the worker reports.
func RunQueryWorker(ctx context.Context, in io.Reader, out io.Writer) WorkerStatus {
	fail := func(err error) WorkerStatus {
		st := WorkerStatus{Error: err.Error(), Kind: "query"}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			st.Kind = "timeout"
		case errors.Is(err, context.Canceled):
			st.Kind = "canceled"
		}
		return st
	}
	var req workerRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fail(fmt.Errorf("read the request: %w", err))
	}
	l, err := lake.OpenExistingWith(ctx, req.Lake)
	if err != nil {
		return fail(err)
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: apiWorkerDuckDB})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	rows, err := db.Run(ctx, query.Request{SQL: req.SQL, Params: req.Params, Timeout: req.Timeout, MaxRows: req.MaxRows})
	if err != nil {
		return fail(err)
	}
	cw := &countingWriter{w: out}
	bw := bufio.NewWriterSize(cw, 64<<10)
	rows.LimitBytes(req.MaxBytes, func() int64 { return cw.n + int64(bw.Buffered()) })
	n, err := query.Write(bw, rows, query.WriteOptions{Format: req.Format})
	truncated := rows.Truncated()
	err = errors.Join(err, rows.Close(), bw.Flush())
	if err != nil {
		return fail(err)
	}
	return WorkerStatus{Rows: n, Truncated: truncated}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
