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
