package stream

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// zeros is an endless line of NULs that cancels a context once it has served after bytes, and
// ends (EOF) at limit, so that a reader that does not stop fails the test instead of hanging it.
type zeros struct {
	served, after, limit int64
	cancel               context.CancelFunc
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.served >= z.limit {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.limit-z.served)
	clear(p[:n])
	z.served += n
	if z.served >= z.after {
		z.cancel()
	}
	return int(n), nil
}

// TestEndlessLine checks that a line with no end (as /dev/zero gives) keeps at most the record
// size limit in memory, ends when ctx does, and is handed on as an oversized record.
func TestEndlessLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{ChunkSize: 64 << 10, MaxRecordSize: 1 << 20, HeadSize: 1 << 10}
	z := &zeros{after: 4 << 20, limit: 64 << 20, cancel: cancel}
	out := make(chan Chunk, 16)
	var got []Chunk
	collected := make(chan struct{})
	go func() {
		for c := range out {
			got = append(got, c)
		}
		close(collected)
	}()
	_, err := Chunks(ctx, z, opts, NewPool(2), out)
	close(out)
	<-collected
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Chunks of an endless line = %v, want context.Canceled", err)
	}
	if z.served >= z.limit {
		t.Errorf("Chunks read %d bytes: it went on after ctx was done", z.served)
	}
	if len(got) != 1 || got[0].Oversized == nil {
		t.Fatalf("chunks of an endless line interrupted: %+v, want one oversized record", got)
	}
	if o := got[0].Oversized; o.Size <= int64(opts.MaxRecordSize) || len(o.Head) != opts.HeadSize {
		t.Errorf("oversized record of %d bytes with a head of %d, want over %d and %d", o.Size, len(o.Head), opts.MaxRecordSize, opts.HeadSize)
	}
}

// TestInterruptible reads a pipe no one writes to, and a reader that blocks forever: a Read
// returns ctx's error once ctx is done.
func TestInterruptible(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	block := make(chan struct{})
	defer close(block)
	for name, r := range map[string]io.Reader{"pipe": pr, "reader": blockingReader(block)} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			ir := Interruptible(ctx, r)
			done := make(chan error, 1)
			go func() {
				_, err := ir.Read(make([]byte, 10))
				done <- err
			}()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Read after cancel = %v, want context.Canceled", err)
			}
		})
	}
}

type blockingReader chan struct{}

func (b blockingReader) Read([]byte) (int, error) {
	<-b
	return 0, io.EOF
}

// TestOpenFIFO opens a FIFO no one writes to: Open returns ctx's error once ctx is done, and
// with a writer it opens.
func TestOpenFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f, err := Open(ctx, fifo); !errors.Is(err, context.Canceled) {
		t.Errorf("Open of a FIFO without a writer, cancelled = %v, %v; want context.Canceled", f, err)
	}
	writer := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.WriteString("line\n")
			err = errors.Join(err, w.Close())
		}
		writer <- err
	}()
	f, err := Open(context.Background(), fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(Interruptible(context.Background(), f))
	if err != nil || string(b) != "line\n" {
		t.Errorf("read the FIFO: %q, %v", b, err)
	}
	if err := <-writer; err != nil {
		t.Fatal(err)
	}
}
