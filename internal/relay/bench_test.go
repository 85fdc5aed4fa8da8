package relay

import (
	"io"
	"net"
	"testing"
)

// The same calls straight to a loopback server and through relay+agent
// over a loopback tunnel: latency of a 1-byte round trip on one
// connection, and throughput of a one-way stream.
func BenchmarkRoundTrip(b *testing.B) {
	srv := serve(b, echo)
	r := newRig(b, Backend{Name: "echo", Port: 80, Target: srv.addr()})
	for _, c := range []struct{ name, addr string }{{"direct", srv.addr()}, {"relay", r.addr(80)}} {
		b.Run(c.name, func(b *testing.B) {
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			p := []byte{1}
			for b.Loop() {
				if _, err := conn.Write(p); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkThroughput(b *testing.B) {
	sink := serve(b, func(c net.Conn) {
		if n, _ := io.Copy(io.Discard, c); n > 0 {
			c.Write([]byte{1})
		}
	})
	r := newRig(b, Backend{Name: "sink", Port: 80, Target: sink.addr()})
	chunk := make([]byte, 1<<20)
	for _, c := range []struct{ name, addr string }{{"direct", sink.addr()}, {"relay", r.addr(80)}} {
		b.Run(c.name, func(b *testing.B) {
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := conn.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			conn.(*net.TCPConn).CloseWrite()
			if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
				b.Fatal(err)
			}
		})
	}
}
