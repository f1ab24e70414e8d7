package stream

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// Open opens a file to read as Ingest does, in a way ctx can end: opening a FIFO waits for a
// writer, and Open returns ctx's error if ctx is done first. The open it abandons is ended
// before Open returns (by opening the FIFO's writing end without blocking, and closing it), so
// that it does not take the next writer's data.
func Open(ctx context.Context, name string) (*os.File, error) {
	info, err := os.Stat(name)
	if err != nil || info.Mode()&fs.ModeNamedPipe == 0 {
		return os.Open(name)
	}
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := os.Open(name)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		return o.f, o.err
	case <-ctx.Done():
	}
	for {
		if w, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		// Until the goroutine's open has begun there is no reader, and the writing end does
		// not open: try again shortly.
		retry := time.NewTimer(10 * time.Millisecond)
		select {
		case o := <-done:
			retry.Stop()
			if o.f != nil {
				o.f.Close()
			}
			return nil, ctx.Err()
		case <-retry.C:
		}
	}
}

// Interruptible returns a reader of r whose Read returns ctx's error once ctx is done, even in
// the middle of a read that waits for data (a pipe, a FIFO, a terminal). A file the runtime
// polls (a FIFO or pipe it opened) is given a read deadline when ctx ends; any other reader is
// read by a goroutine of its own, which a Read stops waiting for when ctx ends (the goroutine
// ends with its read, or with the process). Regular files need neither, and are returned as
// they are.
func Interruptible(ctx context.Context, r io.Reader) io.Reader {
	if f, ok := r.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
			return r
		}
		if f.SetReadDeadline(time.Time{}) == nil {
			return &deadlineReader{ctx: ctx, f: f}
		}
	}
	return &asyncReader{ctx: ctx, r: r}
}

// deadlineReader ends a file's reads with a deadline in the past once ctx is done.
type deadlineReader struct {
	ctx  context.Context
	f    *os.File
	stop func() bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.stop == nil {
		d.stop = context.AfterFunc(d.ctx, func() { d.f.SetReadDeadline(time.Unix(1, 0)) })
	}
	n, err := d.f.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && d.ctx.Err() != nil {
		err = d.ctx.Err()
	}
	return n, err
}

// asyncReader reads r in a goroutine, a read at a time, into two buffers of its own (one
// being read into while the other is returned).
type asyncReader struct {
	ctx     context.Context
	r       io.Reader
	results chan readResult
	free    chan []byte
	cur     []byte // the buffer pending is in
	pending []byte // read and not yet returned
	err     error  // the error after pending
}

type readResult struct {
	b   []byte
	err error
}

const asyncBuffer = 256 << 10

func (a *asyncReader) Read(p []byte) (int, error) {
	if len(a.pending) == 0 && a.err == nil {
		if a.results == nil {
			a.results = make(chan readResult)
			a.free = make(chan []byte, 2)
			a.free <- make([]byte, asyncBuffer)
			a.free <- make([]byte, asyncBuffer)
			go a.run()
		}
		select {
		case res := <-a.results:
			a.cur, a.pending, a.err = res.b, res.b, res.err
		case <-a.ctx.Done():
			a.err = a.ctx.Err()
		}
	}
	n := copy(p, a.pending)
	a.pending = a.pending[n:]
	if len(a.pending) == 0 && a.cur != nil {
		a.free <- a.cur[:cap(a.cur)]
		a.cur = nil
	}
	if n == 0 {
		return 0, a.err
	}
	return n, nil
}

// run reads until an error, handing each read over; it stops when ctx is done.
func (a *asyncReader) run() {
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.ctx.Done():
			return
		}
		n, err := a.r.Read(buf)
		select {
		case a.results <- readResult{buf[:n], err}:
		case <-a.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
