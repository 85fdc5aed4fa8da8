package forward

import (
	"net"
	"testing"
	"time"
)

// A deadline that passes closes the stream and its tunnel (a stream has no
// deadlines of its own); one taken back in time does not.
func TestConnDeadlineClosesTheStream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	quiet := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			quiet <- c // accepted, never written to
		}
	}()
	open := func() (net.Conn, chan struct{}) {
		raw, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		tun := &fakeTunnel{done: make(chan struct{})}
		return Conn(raw.(*net.TCPConn), tun, "pod:4700"), tun.done
	}

	c, tunnelDone := open()
	defer c.Close()
	c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("a read past the deadline: %v after %s", err, time.Since(start))
	}
	select {
	case <-tunnelDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel outlived its stream's deadline")
	}
	if c.RemoteAddr().String() != "pod:4700" {
		t.Errorf("remote %s", c.RemoteAddr())
	}

	d, dTunnel := open()
	defer d.Close()
	d.SetDeadline(time.Now().Add(50 * time.Millisecond))
	d.SetDeadline(time.Time{})
	select {
	case <-dTunnel:
		t.Fatal("a deadline taken back still closed the stream")
	case <-time.After(200 * time.Millisecond):
	}
	<-quiet
	<-quiet
}
