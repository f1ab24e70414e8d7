package httpsrc

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener that holds at most a number of connections open, so that
// clients cannot take all of the process's file descriptors. Past the cap, a new connection
// makes room by closing the connection that has been idle (between two keep-alive requests)
// the longest; when none is idle, the new connection is answered 503 with Retry-After and
// closed, its request unread. The server must report its connections' states: set
// http.Server.ConnState to the Listener's ConnState.
//
// Closing an idle connection races with a request the client may be sending on it, as
// http.Server.Shutdown's closing of idle connections does: that client sees the connection
// closed and retries.
type Listener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[*limitConn]struct{}
	seq   uint64 // orders idle connections: the lowest idleSeq is the longest idle

	refused atomic.Int64
	evicted atomic.Int64
}

// NewListener caps the connections of ln at max.
func NewListener(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, max: max, conns: map[*limitConn]struct{}{}}
}

// refusal is the whole answer to a connection past the cap.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nConnection: close\r\nContent-Length: 21\r\n\r\ntoo many connections\n"

// Accept waits for a connection that fits under the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l}
		l.mu.Lock()
		var victim *limitConn
		if len(l.conns) >= l.max {
			for o := range l.conns {
				if o.idle && (victim == nil || o.idleSeq < victim.idleSeq) {
					victim = o
				}
			}
			if victim == nil {
				l.mu.Unlock()
				l.refused.Add(1)
				// A fresh connection's send buffer is empty: this write does not wait for
				// the client, and the deadline makes sure of it.
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte(refusal))
				c.Close()
				continue
			}
			delete(l.conns, victim)
			l.evicted.Add(1)
		}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			victim.Conn.Close() // its server goroutine sees the error and lets it go
		}
		return lc, nil
	}
}

// ConnState records which connections are idle; it is an http.Server's ConnState hook.
func (l *Listener) ConnState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateIdle:
		l.seq++
		lc.idle, lc.idleSeq = true, l.seq
	case http.StateActive, http.StateNew:
		lc.idle = false
	case http.StateHijacked:
		delete(l.conns, lc) // no longer the server's: not counted, not evicted
	}
}

// ListenerStats are a Listener's figures, for metrics.
type ListenerStats struct {
	Open    int   // connections open
	Refused int64 // connections answered 503 at the cap, since start
	Evicted int64 // idle connections closed to make room, since start
}

// Stats returns the listener's figures.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	open := len(l.conns)
	l.mu.Unlock()
	return ListenerStats{Open: open, Refused: l.refused.Load(), Evicted: l.evicted.Load()}
}

// limitConn is a connection counted by its Listener until it is closed.
type limitConn struct {
	net.Conn
	l       *Listener
	once    sync.Once
	idle    bool   // guarded by l.mu
	idleSeq uint64 // guarded by l.mu
}

func (c *limitConn) Close() error {
	var err error
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
