package forward

import (
	"net"
	"sync"
	"time"
)

// Conn is a tunnel's stream as a net.Conn that owns its tunnel: closing it
// closes both. A stream has no deadlines of its own: a deadline that passes
// closes it, which is what a caller bounding a handshake needs (a longer
// conversation watches itself, with pings). remote names the far end.
func Conn(st Stream, t Tunnel, remote string) net.Conn {
	return &streamConn{Stream: st, tunnel: t, remote: remote}
}

type streamConn struct {
	Stream
	tunnel Tunnel
	remote string

	mu    sync.Mutex
	timer *time.Timer
}

func (c *streamConn) Close() error {
	c.SetDeadline(time.Time{})
	err := c.Stream.Close()
	c.tunnel.Close()
	return err
}

type tunnelAddr string

func (a tunnelAddr) Network() string { return "apimdev-tunnel" }
func (a tunnelAddr) String() string  { return string(a) }

func (c *streamConn) LocalAddr() net.Addr  { return tunnelAddr("apimdev") }
func (c *streamConn) RemoteAddr() net.Addr { return tunnelAddr(c.remote) }

func (c *streamConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() { c.Stream.Close(); c.tunnel.Close() })
	}
	return nil
}

func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }
