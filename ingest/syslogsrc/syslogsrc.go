// Package syslogsrc is the syslog source of osprey serve: it receives RFC 5424 and RFC 3164
// messages over UDP (one message per datagram) and TCP (newline-delimited, or octet-counted as
// RFC 6587 describes: "<length> <message>"; the two framings are told apart per message) and
// appends them, in batches, to the ingest pipeline as records of its source.
//
// Syslog has no acknowledgement: a message counts as accepted once it is appended. When the
// pipeline is behind, appends are retried with backoff: TCP senders are slowed by the full
// receive window; UDP datagrams wait in the kernel's buffer, which drops them when full (the
// kernel counts those drops, not osprey).
package syslogsrc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Appender makes records durable; the pipeline is one.
type Appender interface {
	Append(ctx context.Context, source string, records [][]byte) error
}

// Options configure a Server.
type Options struct {
	// MaxMessage is the longest message kept whole; longer ones are cut. Default 64 KiB.
	MaxMessage int
	// BatchSize and BatchWait bound a batch of messages appended together: default 1000
	// messages or 50 ms.
	BatchSize int
	BatchWait time.Duration
	// Retryable reports whether an append error is worth retrying (the pipeline is busy).
	Retryable func(error) bool
	Logger    *slog.Logger
}

// Server receives syslog messages on its addresses.
type Server struct {
	source string
	app    Appender
	opts   Options
	conns  []net.PacketConn
	lns    []net.Listener
	addrs  []string

	msgs chan []byte
	wg   sync.WaitGroup
	stop context.CancelFunc

	mu       sync.Mutex
	open     map[net.Conn]bool
	received int64
}

// Start listens on the addresses (udp://host:port or tcp://host:port) and starts serving.
func Start(ctx context.Context, source string, addrs []string, app Appender, opts Options) (*Server, error) {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 << 10
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
	s := &Server{source: source, app: app, opts: opts, msgs: make(chan []byte, 4*opts.BatchSize), stop: cancel, open: map[net.Conn]bool{}}
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
func (s *Server) Received() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
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
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Warn("syslog udp read", "err", err)
				continue
			}
			return
		}
		s.deliver(buf[:n])
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.opts.Logger.Warn("syslog tcp accept", "err", err)
			continue
		}
		s.mu.Lock()
		s.open[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
			}()
			if err := s.readStream(c); err != nil && !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Warn("syslog tcp connection", "remote", c.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// readStream reads messages from a TCP stream, octet-counted or newline-delimited.
func (s *Server) readStream(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		first, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if first[0] >= '1' && first[0] <= '9' {
			// Octet counting: "<length> <message>".
			head, err := br.ReadSlice(' ')
			if err != nil {
				return fmt.Errorf("octet-counted frame: %w", err)
			}
			n, err := strconv.Atoi(string(head[:len(head)-1]))
			if err != nil || n <= 0 || n > 1<<24 {
				return fmt.Errorf("octet-counted frame: bad length %q", head)
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(br, msg); err != nil {
				return fmt.Errorf("octet-counted frame: %w", err)
			}
			s.deliver(msg)
			continue
		}
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			s.deliver(line)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// deliver queues a message (trailing newlines and NULs cut, long ones cut to MaxMessage).
func (s *Server) deliver(msg []byte) {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	if len(bytes.TrimSpace(msg)) == 0 {
		return
	}
	if len(msg) > s.opts.MaxMessage {
		msg = msg[:s.opts.MaxMessage]
	}
	s.mu.Lock()
	s.received++
	s.mu.Unlock()
	s.msgs <- bytes.Clone(msg)
}

// batch appends the queued messages in batches, retrying while the pipeline is busy.
func (s *Server) batch(ctx context.Context) {
	var pending [][]byte
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
	}
	for {
		select {
		case msg, ok := <-s.msgs:
			if !ok {
				flush()
				return
			}
			pending = append(pending, msg)
			if len(pending) >= s.opts.BatchSize {
				flush()
			}
		case <-timer.C:
			flush()
			timer.Reset(s.opts.BatchWait)
		}
	}
}
