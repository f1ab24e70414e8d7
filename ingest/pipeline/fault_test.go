package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/ospreyhq/osprey/ingest"
	"github.com/ospreyhq/osprey/lake"

	"github.com/ospreyhq/osprey/internal/disktest"
)

// TestBacklogAfterRestart checks the backlog of a pipeline opened on a log holding entries not
// in the lake: they are its backlog, and once read it is zero, not negative.
func TestBacklogAfterRestart(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, stop := start(t, l, Options{FlushAge: time.Hour})
	var size int64
	for i := range 30 {
		rec := event(i)
		size += int64(len(rec))
		if err := p.Append(ctx, "audit", [][]byte{rec}); err != nil {
			t.Fatal(err)
		}
	}
	stop() // a crash: nothing flushed

	p, err = Open(ctx, l, Options{FlushAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.SetSource(auditSource(t))
	if got := p.Stats().Backlog; got != size {
		t.Errorf("backlog after restart = %d, want the %d bytes of records in the log", got, size)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Backlog; got != 0 {
		t.Errorf("backlog once the log is read = %d, want 0", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLogTrimmedAtFlush checks that a flush leaves nothing in the log that the lake holds, even
// when it all fits in one segment.
func TestLogTrimmedAtFlush(t *testing.T) {
	l, err := lake.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, stop := start(t, l, Options{FlushAge: time.Hour})
	for i := range 30 {
		if err := p.Append(ctx, "audit", [][]byte{event(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Stats().WALBytes; got == 0 {
		t.Fatal("the log holds nothing before the flush")
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().WALBytes; got != 0 {
		t.Errorf("the log holds %d bytes after a flush of everything in it, want 0", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFull runs a pipeline whose lake (and log) is on a small tmpfs, fills it, and frees
// it: while full, appends are refused or durable, a flush fails without stopping the pipeline
// and Stats says why; once space is back the pipeline recovers by itself, and every
// acknowledged record is in the lake exactly once.
func TestDiskFull(t *testing.T) {
	dir := disktest.Tmpfs(t, "16m")
	l, err := lake.Open(filepath.Join(dir, "lake"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, stop := start(t, l, Options{FlushAge: time.Hour, RetryMax: 200 * time.Millisecond})
	acked := 0
	appendSome := func(n int) (refused int) {
		for range n {
			err := p.Append(ctx, "audit", [][]byte{event(acked)})
			switch {
			case err == nil:
				acked++
			case errors.Is(err, ErrUnavailable):
				refused++
			default:
				t.Fatalf("append: %v", err)
			}
		}
		return refused
	}
	appendSome(100)
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	filler := disktest.Fill(t, dir, 64<<10)
	appendSome(200)
	if err := p.Sync(ctx); err == nil {
		t.Fatal("a flush on a full disk succeeded")
	}
	st := p.Stats()
	if !strings.Contains(st.Fault, "no space left on device") {
		t.Errorf("Stats().Fault on a full disk = %q, want it to say why", st.Fault)
	}
	if refused := appendSome(20); refused != 20 {
		t.Errorf("%d of 20 appends refused while the lake cannot be written, want all", refused)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFault(t, p, false)
	appendSome(100)
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("flush after space came back: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, d := rows(t, l, "panther_logs.panther_audit"); n != int64(acked) || d != int64(acked) {
		t.Errorf("lake holds %d rows, %d distinct; want the %d acknowledged", n, d, acked)
	}
}

// waitFault waits until the pipeline has a fault (or none), for at most a minute.
func waitFault(t *testing.T, p *Pipeline, want bool) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		p.progMu.Lock()
		ch := p.progress
		p.progMu.Unlock()
		if err, _ := p.Fault(); (err != nil) == want {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			err, _ := p.Fault()
			t.Fatalf("after a minute the pipeline's fault is %v", err)
		}
	}
}

// failingSink fails every write while fail is set, as a full disk fails the lake's writes.
type failingSink struct {
	next ingest.Sink
	fail atomic.Bool
}

func (f *failingSink) Write(ctx context.Context, db, table string, rec arrow.RecordBatch) error {
	if f.fail.Load() {
		return fmt.Errorf("write %s.%s: %w", db, table, syscall.ENOSPC)
	}
	return f.next.Write(ctx, db, table, rec)
}

// countingHandler counts the log records whose message starts with prefix.
type countingHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestFailingWritesBackOff fails every write of the lake for a (virtual) minute: the pipeline
// reads its log again (and parses the whole backlog again) after waits that double up to
// RetryMax, 10 s by default, not in a loop; once writes succeed it recovers.
func TestFailingWritesBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := lake.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWriter(l, nil)
		if err != nil {
			t.Fatal(err)
		}
		sink := &failingSink{next: w}
		sink.fail.Store(true)
		var rereads atomic.Int64
		log := slog.New(countingHandler{prefix: "reading the write-ahead log again", n: &rereads})
		p, stop := start(t, l, Options{FlushAge: 200 * time.Millisecond, Writer: w, Sink: sink, Logger: log})
		ctx := context.Background()
		var recs [][]byte
		for i := range 10 {
			recs = append(recs, event(i))
		}
		if err := p.Append(ctx, "audit", recs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		// Waits of 0.1, 0.2, 0.4 ... 6.4 s, then 10 s: about a dozen in a minute. A retry at
		// each 50 ms tick would be over a thousand.
		if n := rereads.Load(); n == 0 || n > 20 {
			t.Errorf("the log was read again %d times in a minute of failing writes, want 1 to 20", n)
		}
		sink.fail.Store(false)
		waitFault(t, p, false)
		if err := p.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
