// Package syslogsrc is the syslog source of osprey serve: it receives RFC 5424 and RFC 3164
// messages over UDP (one message per datagram) and TCP (newline-delimited, or octet-counted as
// RFC 6587 describes: "<length> <message>"; the two framings are told apart per message) and
// appends them, in batches, to the ingest pipeline as records of its source.
//
// Syslog has no acknowledgement: a message counts as accepted once it is appended. When the
// pipeline is behind, appends are retried with backoff: TCP senders are slowed by the full
// receive window; UDP datagrams wait in the kernel's buffer, which drops them when full (the
// kernel counts those drops, not osprey).
//
// Hostile or broken senders are bounded while reading, not after:
//   - A message over MaxMessage is kept cut to its first MaxMessage bytes (a row whose message
//     is cut, or a classification failure if what is left does not parse); the rest of its
//     bytes are read and dropped as they come, up to its newline or the end of its octet
//     count, and the cut is counted (Stats) and logged. Reading goes on with the next message.
//   - An octet count of a billion bytes or more (10 digits) closes the connection: the
//     stream's framing is lost (see frameReader.count).
//   - A TCP connection that sends nothing for IdleTimeout is closed; past MaxConnections open
//     at once, a new connection is closed at once.
//   - Messages received and not yet appended hold at most 16 MiB (queueBytes); readers wait.
//
// So a source holds at most MaxConnections * (16 KiB + MaxMessage) of connection buffers plus
// 16 MiB of queued messages, whatever is sent: about 96 MiB with the defaults.
package syslogsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Appender makes records durable; the pipeline is one.
type Appender interface {
	Append(ctx context.Context, source string, records [][]byte) error
}

// Defaults of Options.
const (
	DefaultMaxMessage     = 64 << 10
	DefaultMaxConnections = 1024
	DefaultIdleTimeout    = 5 * time.Minute
)

// queueBytes bounds the bytes of messages received and not yet appended.
const queueBytes = 16 << 20

// Options configure a Server.
type Options struct {
	// MaxMessage is the longest message kept whole; longer ones are cut to it (the rest of
	// their bytes read and dropped, counted in Stats and logged). Default DefaultMaxMessage.
	MaxMessage int
	// MaxConnections caps the TCP connections open at once, over all the server's TCP
	// addresses; past it a new connection is closed at once. Default DefaultMaxConnections.
	MaxConnections int
	// IdleTimeout closes a TCP connection that sends nothing for so long. Default
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// BatchSize and BatchWait bound a batch of messages appended together: default 1000
	// messages or 50 ms (and 4 MiB, a quarter of the queue's bound).
	BatchSize int
	BatchWait time.Duration
	// Retryable reports whether an append error is worth retrying (the pipeline is busy).
	Retryable func(error) bool
	Logger    *slog.Logger
}

// Stats are a server's counters since it started.
type Stats struct {
	Received int64 // messages received (appended, or queued to be)
	Cut      int64 // messages over MaxMessage, kept cut to it
	Dropped  int64 // bytes of those messages past MaxMessage, dropped
	Refused  int64 // TCP connections closed at once, MaxConnections being open
	Idle     int64 // TCP connections closed after IdleTimeout without a byte
	Open     int   // TCP connections open now
}

// Add returns the counts of s and o added up (those of a source's listeners one after the
// other), with the connections open now of o.
func (s Stats) Add(o Stats) Stats {
	return Stats{Received: s.Received + o.Received, Cut: s.Cut + o.Cut, Dropped: s.Dropped + o.Dropped,
		Refused: s.Refused + o.Refused, Idle: s.Idle + o.Idle, Open: o.Open}
}

// Server receives syslog messages on its addresses.
type Server struct {
	source string
	app    Appender
	opts   Options
	conns  []net.PacketConn
	lns    []net.Listener
	addrs  []string

	msgs   chan []byte
	queued *budget
	wg     sync.WaitGroup
	stop   context.CancelFunc

	mu     sync.Mutex
	open   map[net.Conn]bool
	closed bool // Close has begun: no connection is admitted
	full   bool // the last connection was refused
	stats  Stats

	peakHeld atomic.Int64 // the most bytes a connection's reader held (for tests)
}

// Start listens on the addresses (udp://host:port or tcp://host:port) and starts serving.
func Start(ctx context.Context, source string, addrs []string, app Appender, opts Options) (*Server, error) {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}
	if opts.Retryable == nil {
		opts.Retryable = func(error) bool { return false }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{source: source, app: app, opts: opts, msgs: make(chan []byte, 4*opts.BatchSize),
		queued: newBudget(queueBytes), stop: cancel, open: map[net.Conn]bool{}}
	for _, a := range addrs {
		network, hostport, ok := strings.Cut(a, "://")
		if !ok {
			s.Close()
			return nil, fmt.Errorf("syslog address %q: want udp://host:port or tcp://host:port", a)
		}
		switch network {
		case "udp":
			c, err := net.ListenPacket("udp", hostport)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("syslog %s: %w", a, err)
			}
			s.conns = append(s.conns, c)
			s.addrs = append(s.addrs, "udp://"+c.LocalAddr().String())
			s.wg.Go(func() { s.serveUDP(c) })
		case "tcp":
			ln, err := net.Listen("tcp", hostport)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("syslog %s: %w", a, err)
			}
			s.lns = append(s.lns, ln)
			s.addrs = append(s.addrs, "tcp://"+ln.Addr().String())
			s.wg.Go(func() { s.serveTCP(ln) })
		default:
			s.Close()
			return nil, fmt.Errorf("syslog address %q: want udp:// or tcp://", a)
		}
	}
	batcher := make(chan struct{})
	go func() {
		defer close(batcher)
		s.batch(ctx)
	}()
	s.stop = func() {
		cancel()
		<-batcher
	}
	return s, nil
}

// Addrs returns the addresses the server listens on (with the ports chosen for port 0).
func (s *Server) Addrs() []string { return s.addrs }

// Received returns the number of messages received so far.
func (s *Server) Received() int64 { return s.Stats().Received }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Open = len(s.open)
	return st
}

// Close stops listening, waits for the connections to end, and appends the last batch.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	for _, ln := range s.lns {
		errs = append(errs, ln.Close())
	}
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	close(s.msgs)
	if s.stop != nil {
		s.stop()
	}
	return errors.Join(errs...)
}

func (s *Server) serveUDP(c net.PacketConn) {
	// 65536 bytes hold any UDP datagram (IPv4 and IPv6 payloads stop at 65535), so the kernel
	// never cuts one unseen; deliver cuts those over MaxMessage and counts them.
	buf := make([]byte, 65536)
	for {
		n, addr, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Warn("syslog udp read", "source", s.source, "err", err)
				continue
			}
			return
		}
		s.deliver(buf[:n], int64(n), addr)
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Logger.Warn("syslog tcp accept", "source", s.source, "err", err)
			continue
		}
		if !s.admit(c) {
			c.Close()
			continue
		}
		s.wg.Go(func() { s.serveConn(c) })
	}
}

// admit registers a new connection, or refuses it once MaxConnections are open (logging the
// first refusal after an admission, so that a flood of connections does not flood the log).
func (s *Server) admit(c net.Conn) bool {
	s.mu.Lock()
	closed, full := s.closed, len(s.open) >= s.opts.MaxConnections
	first := full && !s.full
	switch {
	case closed:
	case full:
		s.stats.Refused++
		s.full = true
	default:
		s.open[c] = true
		s.full = false
	}
	s.mu.Unlock()
	if first {
		s.opts.Logger.Warn("syslog tcp connections refused: the limit is reached", "source", s.source,
			"remote", c.RemoteAddr().String(), "max_connections", s.opts.MaxConnections)
	}
	return !closed && !full
}

// serveConn reads the messages of an admitted connection until it ends, fails, or sends
// nothing for IdleTimeout.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
	}()
	fr := newFrameReader(idleReader{c, s.opts.IdleTimeout}, s.opts.MaxMessage)
	for {
		f, err := fr.next()
		if h := int64(fr.held()); h > s.peakHeld.Load() {
			s.peakHeld.Store(h) // only a test reads it: a lost race costs nothing
		}
		if f.size > 0 {
			s.deliver(f.msg, f.size, c.RemoteAddr())
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.mu.Lock()
			s.stats.Idle++
			s.mu.Unlock()
			s.opts.Logger.Info("syslog tcp connection idle: closed", "source", s.source,
				"remote", c.RemoteAddr().String(), "idle_timeout", s.opts.IdleTimeout)
		default:
			s.opts.Logger.Warn("syslog tcp connection", "source", s.source, "remote", c.RemoteAddr().String(), "err", err)
		}
		return
	}
}

// idleReader reads from a connection, failing with os.ErrDeadlineExceeded when nothing
// comes for its timeout.
type idleReader struct {
	c       net.Conn
	timeout time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.c.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

// deliver queues a message of size bytes as sent, of which msg holds the first (all of them
// unless it was over MaxMessage): one cut is kept cut, counted and logged. Trailing newlines
// and NULs are cut; blank messages are skipped.
func (s *Server) deliver(msg []byte, size int64, from net.Addr) {
	if len(msg) > s.opts.MaxMessage {
		msg = msg[:s.opts.MaxMessage]
	}
	dropped := size - int64(len(msg))
	cut := dropped > 0
	if cut {
		s.opts.Logger.Warn("syslog message over the size limit: its first bytes are kept, the rest dropped",
			"source", s.source, "remote", from.String(), "bytes", size, "kept", len(msg))
	}
	msg = bytes.TrimRight(msg, "\r\n\x00")
	blank := len(bytes.TrimSpace(msg)) == 0
	s.mu.Lock()
	if cut {
		s.stats.Cut++
		s.stats.Dropped += dropped
	}
	if !blank {
		s.stats.Received++
	}
	s.mu.Unlock()
	if blank {
		return
	}
	s.queued.acquire(int64(len(msg)))
	s.msgs <- bytes.Clone(msg)
}

// A budget bounds the bytes of messages received and not yet appended: a reader waits for
// room (the pipeline being behind slows TCP senders down, as a full channel would).
type budget struct {
	mu   sync.Mutex
	cond sync.Cond
	used int64
	max  int64
}

func newBudget(max int64) *budget {
	b := &budget{max: max}
	b.cond.L = &b.mu
	return b
}

// acquire waits until n bytes fit (a message larger than the budget waits for it to be empty).
func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.max {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// batch appends the queued messages in batches, retrying while the pipeline is busy.
func (s *Server) batch(ctx context.Context) {
	var pending [][]byte
	var size int64 // bytes of pending
	timer := time.NewTimer(s.opts.BatchWait)
	defer timer.Stop()
	flush := func() {
		if len(pending) == 0 {
			return
		}
		backoff := 10 * time.Millisecond
		for {
			err := s.app.Append(context.WithoutCancel(ctx), s.source, pending)
			if err == nil {
				break
			}
			if !s.opts.Retryable(err) {
				s.opts.Logger.Error("syslog messages could not be stored", "source", s.source, "messages", len(pending), "err", err)
				break
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
		}
		pending = nil
		s.queued.release(size)
		size = 0
	}
	for {
		select {
		case msg, ok := <-s.msgs:
			if !ok {
				flush()
				return
			}
			pending = append(pending, msg)
			size += int64(len(msg))
			if len(pending) >= s.opts.BatchSize || size >= queueBytes/4 {
				flush()
			}
		case <-timer.C:
			flush()
			timer.Reset(s.opts.BatchWait)
		}
	}
}
