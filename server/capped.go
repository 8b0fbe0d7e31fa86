package server

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// cappedListener holds at most max connections open. A connection beyond
// that is closed as soon as it is accepted, so a flood of connections
// costs file descriptors only for as long as the kernel queues them.
type cappedListener struct {
	net.Listener
	slots  chan struct{}
	log    zerolog.Logger
	warned atomic.Int64 // unix nanoseconds of the last warning
}

func newCappedListener(l net.Listener, max int, log zerolog.Logger) *cappedListener {
	return &cappedListener{Listener: l, slots: make(chan struct{}, max), log: log}
}

func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &cappedConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			c.Close()
			l.refused()
		}
	}
}

// refused warns at most once a minute.
func (l *cappedListener) refused() {
	now := time.Now().UnixNano()
	last := l.warned.Load()
	if now-last < int64(time.Minute) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn().Int("max_connections", cap(l.slots)).
		Msg("http connection refused: too many open connections; raise http.max_connections if the clients are legitimate")
}

type cappedConn struct {
	net.Conn
	release func()
}

func (c *cappedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
