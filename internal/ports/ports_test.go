package ports

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestBusyPortNamesItsOwner(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = Check("127.0.0.1", port, "--http-port")
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("want BusyError, got %v", err)
	}
	if _, err := os.Stat("/proc/net/tcp"); err == nil && runtime.GOOS == "linux" && !strings.Contains(be.Process, "(pid ") {
		t.Errorf("owner not named: %q", be.Process)
	}
	if !strings.Contains(be.Hint(), "--http-port") {
		t.Errorf("hint: %s", be.Hint())
	}
	l.Close()
	if err := Check("127.0.0.1", port, "--http-port"); err != nil {
		t.Fatalf("free port reported busy: %v", err)
	}
}

// A port the system lent to an outgoing connection: bind fails though no
// program listens. The error says so, and the suggested port is outside
// the lent range.
func TestPortHeldByAnOutgoingConnection(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/net/tcp"); runtime.GOOS != "linux" || err != nil {
		t.Skip("only Linux tells that no program listens on a port")
	}
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// A client connection whose local port the kernel chose, as any
	// outgoing connection's.
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.TCPAddr).Port
	err = Check("127.0.0.1", port, "--https-port")
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("port %d of an outgoing connection: want BusyError, got %v", port, err)
	}
	lo, hi := EphemeralRange()
	if !be.Lent || !strings.Contains(be.Error(), "no program listens on it") || !strings.Contains(be.Hint(), "--https-port") {
		t.Errorf("port %d (range %d-%d): lent %v\n%s\n%s", port, lo, hi, be.Lent, be.Error(), be.Hint())
	}
	if alt := be.alternative(); lo <= alt && alt <= hi {
		t.Errorf("suggested %d, inside the lent range %d-%d", alt, lo, hi)
	}
}

func TestSuggestedPortIsNeverLent(t *testing.T) {
	t.Parallel()
	for port, want := range map[int]int{8080: 18080, 48080: 18080, 18080: 28080, 28080: 18080, 62000: 12000, 8443: 18443} {
		e := &BusyError{Port: port, Ephemeral: [2]int{32768, 60999}}
		if got := e.alternative(); got != want {
			t.Errorf("busy %d: suggested %d, want %d", port, got, want)
		}
	}
}
