package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/ingest/parse/batch"
	"github.com/ospreyhq/osprey/ingest/schema/logtypes"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/query"
)

func auditSource(t *testing.T) *ingest.Source {
	t.Helper()
	reg, err := logtypes.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := reg.Lookup("Panther.Audit")
	if err != nil {
		t.Fatal(err)
	}
	return &ingest.Source{Source: batch.Source{ID: "audit", Label: "audit over HTTP"}, LogTypes: []*logtypes.LogType{lt}}
}

func event(i int) []byte {
	return fmt.Appendf(nil, `{"actionName":"E%d","actionResult":"SUCCEEDED","actor":{"id":"u","type":"USER"},"timestamp":"2026-11-22T%02d:00:00Z","pantherVersion":"1"}`, i, i%24)
}

// rows counts the rows of a table and their distinct action names, through DuckDB.
func rows(t *testing.T, l *lake.Lake, table string) (n, distinct int64) {
	t.Helper()
	db, err := query.Open(context.Background(), l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SQL().QueryRow("SELECT count(*), count(DISTINCT actionName) FROM "+table).Scan(&n, &distinct); err != nil {
		return 0, 0
	}
	return n, distinct
}

// start opens a pipeline with the audit source and runs it.
func start(t *testing.T, l *lake.Lake, opts Options) (*Pipeline, func() error) {
	t.Helper()
	p, err := Open(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	p.SetSource(auditSource(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, func() error { cancel(); return <-done }
}

// TestAppendFlushClose checks the normal path: appended records are in the lake after a flush,
// and the log position is recorded with them.
func TestAppendFlushClose(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, stop := start(t, l, Options{FlushAge: time.Hour})
	ctx := context.Background()
	for i := range 100 {
		if err := p.Append(ctx, "audit", [][]byte{event(2 * i), event(2*i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Append(ctx, "nope", [][]byte{event(0)}); !errors.Is(err, ErrUnknownSource) {
		t.Errorf("append for an unknown source: %v", err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, d := rows(t, l, "panther_logs.panther_audit"); n != 200 || d != 200 {
		t.Errorf("after a flush: %d rows, %d distinct", n, d)
	}
	if meta, _ := l.CommitMeta(WriterName); meta[metaNext] != "100" {
		t.Errorf("commit metadata %v", meta)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Append(ctx, "audit", [][]byte{event(0)}); !errors.Is(err, ErrStopped) {
		t.Errorf("append after close: %v", err)
	}
}

// TestCrashReplaysExactlyOnce abandons a pipeline without closing it, as kill -9 would (rows
// buffered in workers and unpublished files lost, the log intact), then opens another on the
// same lake: every appended record ends up in the lake exactly once.
func TestCrashReplaysExactlyOnce(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	total := 0
	for range 3 {
		p, stop := start(t, l, Options{FlushAge: time.Hour})
		for i := range 50 {
			if err := p.Append(ctx, "audit", [][]byte{event(total + i)}); err != nil {
				t.Fatal(err)
			}
			if i == 20 {
				// A flush in the middle: what came before is in the lake.
				if err := p.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		total += 50
		// The crash: no Close, no last flush. (The abandoned pipeline's goroutines stop
		// reading; its files stay unpublished in its own tmp directory.)
		stop()
	}
	p, stop := start(t, l, Options{FlushAge: time.Hour})
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, d := rows(t, l, "panther_logs.panther_audit"); n != int64(total) || d != int64(total) {
		t.Errorf("after replay: %d rows, %d distinct, want %d", n, d, total)
	}
	stop()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedSource checks that records of a source removed before they were read are kept as
// failures naming the source.
func TestRemovedSource(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(context.Background(), l, Options{FlushAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.SetSource(auditSource(t))
	ctx := context.Background()
	if err := p.Append(ctx, "audit", [][]byte{event(1)}); err != nil {
		t.Fatal(err)
	}
	p.RemoveSource("audit")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var src, reason string
	if err := db.SQL().QueryRow("SELECT p_source_id, error FROM panther_monitor.classification_failures").Scan(&src, &reason); err != nil {
		t.Fatal(err)
	}
	if src != "audit" || reason != `source "audit" has no log types (it is not configured)` {
		t.Errorf("failure %q: %q", src, reason)
	}
}

// TestBusy checks that appends are refused, not buffered without bound, when the workers are
// behind (here: not running at all).
func TestBusy(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(context.Background(), l, Options{MaxBacklog: 1000})
	if err != nil {
		t.Fatal(err)
	}
	p.SetSource(auditSource(t))
	ctx := context.Background()
	var busy error
	for range 20 {
		if busy = p.Append(ctx, "audit", [][]byte{event(1)}); busy != nil {
			break
		}
	}
	if !errors.Is(busy, ErrBusy) {
		t.Errorf("append past the backlog limit: %v", busy)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCursorsAndFiles appends records with S3 objects and cursors across a flush and a crash:
// the rows carry their object as p_source_file (null without one), and a restarted pipeline
// hands back each source's last durable cursor, from the commit metadata or from the log.
func TestCursorsAndFiles(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, stop := start(t, l, Options{FlushAge: time.Hour})
	other := auditSource(t)
	other.ID = "other"
	p.SetSource(other)
	f := batch.SourceFile{Bucket: "trail", Key: "AWSLogs/1 2.json.gz"}
	if err := p.AppendWith(ctx, "audit", [][]byte{event(1), event(2)}, Extra{File: f, Cursor: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendWith(ctx, "other", nil, Extra{Cursor: "o1"}); err != nil { // a cursor alone
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil { // c1 and o1 go to the commit metadata
		t.Fatal(err)
	}
	if err := p.AppendWith(ctx, "audit", [][]byte{event(3)}, Extra{Cursor: "c2"}); err != nil {
		t.Fatal(err)
	}
	if got := p.Cursor("audit"); got != "c2" {
		t.Errorf("cursor %q, want c2", got)
	}
	stop() // a crash: c2 is only in the log
	p, stop = start(t, l, Options{FlushAge: time.Hour})
	if a, o, n := p.Cursor("audit"), p.Cursor("other"), p.Cursor("none"); a != "c2" || o != "o1" || n != "" {
		t.Errorf("after restart: cursors %q %q %q, want c2 o1 \"\"", a, o, n)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if meta, _ := l.CommitMeta(WriterName); meta[metaCursor+"audit"] != "c2" || meta[metaCursor+"other"] != "o1" {
		t.Errorf("commit metadata %v", meta)
	}
	db, err := query.Open(ctx, l, query.Options{MemoryLimit: "1GB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := map[string]string{}
	rs, err := db.SQL().Query(`SELECT actionName, coalesce(p_source_file.aws_s3_bucket || '|' || p_source_file.aws_s3_key, 'null') FROM panther_logs.panther_audit`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var name, file string
		if err := rs.Scan(&name, &file); err != nil {
			t.Fatal(err)
		}
		got[name] = file
	}
	want := map[string]string{"E1": "trail|AWSLogs/1 2.json.gz", "E2": "trail|AWSLogs/1 2.json.gz", "E3": "null"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

// rowCounter counts the rows handed to it and passes them on.
type rowCounter struct {
	next ingest.Sink
	rows atomic.Int64
}

func (c *rowCounter) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	c.rows.Add(rec.NumRows())
	return c.next.Write(ctx, db, table, rec)
}

// TestSinkInFrontOfWriter checks that a sink built on the pipeline's writer before the pipeline
// sees every row on its way to the lake, and that a sink without its writer is refused.
func TestSinkInFrontOfWriter(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), l, Options{Sink: &rowCounter{}}); err == nil {
		t.Fatal("Open took a Sink without the Writer it ends at")
	}
	w, err := NewWriter(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	counter := &rowCounter{next: w}
	p, stop := start(t, l, Options{FlushAge: time.Hour, Writer: w, Sink: counter})
	ctx := context.Background()
	for i := range 50 {
		if err := p.Append(ctx, "audit", [][]byte{event(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counter.rows.Load(); got != 50 {
		t.Errorf("the sink saw %d rows, want 50", got)
	}
	if n, _ := rows(t, l, "panther_logs.panther_audit"); n != 50 {
		t.Errorf("the lake has %d rows, want 50", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
