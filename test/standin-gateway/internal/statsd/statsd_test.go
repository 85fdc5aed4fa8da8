package statsd

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
)

func TestPacketsReachListener(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := New(pc.LocalAddr().String(), standinlog.Discard())
	go c.Run(t.Context())

	c.Observe(Request{API: "echo", Method: "GET", Status: 200, Duration: 1500 * time.Microsecond})
	want := []string{
		"requests:1|c|#api:echo,status:200,method:GET",
		"request_duration:1.500|ms|#api:echo,status:200,method:GET",
	}
	got := readPackets(t, pc, len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("packets = %q, want %q", got, want)
	}
}

func TestTagSanitises(t *testing.T) {
	t.Parallel()
	if got := tag("GE|T#,x"); got != "GE_T__x" {
		t.Fatalf("tag() = %q", got)
	}
	if got := tag(""); got != "none" {
		t.Fatalf("tag(\"\") = %q", got)
	}
}

func TestUnresolvableEndpointNeverBlocks(t *testing.T) {
	t.Parallel()
	c := New("name.invalid", standinlog.Discard())
	if c.Endpoint() != "name.invalid:8125" {
		t.Fatalf("Endpoint() = %q, want the default port added", c.Endpoint())
	}
	// Nothing drains the queue: Observe must still return at once when it is full.
	done := make(chan struct{})
	go func() {
		for range 2000 {
			c.Observe(Request{API: "echo", Method: "GET", Status: 200})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked on a full queue")
	}
}

func readPackets(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	buf := make([]byte, 2048)
	var got []string
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for len(got) < n {
		m, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:m]))
	}
	return got
}
