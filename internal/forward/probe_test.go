package forward

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Any HTTP answer, a busy gateway's 503 too, is a gateway; a closed port is not.
func TestProbeHTTP(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case paths <- r.URL.Path:
		default:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := ProbeHTTP(addr, "/status-0123456789abcdef")(ctx); err != nil {
		t.Fatalf("a 503 answer: %v", err)
	}
	if p := <-paths; p != "/status-0123456789abcdef" {
		t.Errorf("probed %q", p)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if err := ProbeHTTP(closed, "/")(ctx); err == nil {
		t.Error("a closed port answered")
	}
}
