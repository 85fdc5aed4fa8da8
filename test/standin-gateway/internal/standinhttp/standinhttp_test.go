package standinhttp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRecordingWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter)
		wantStatus int
		wantBytes  int64
	}{
		{"nothing written", func(http.ResponseWriter) {}, 200, 0},
		{"body only", func(w http.ResponseWriter) { io.WriteString(w, "hello") }, 200, 5},
		{"explicit status", func(w http.ResponseWriter) { w.WriteHeader(503); w.WriteHeader(200) }, 503, 0},
	}
	for _, tc := range tests {
		rec := &RecordingWriter{ResponseWriter: httptest.NewRecorder()}
		tc.handler(rec)
		if rec.StatusOrOK() != tc.wantStatus || rec.Bytes != tc.wantBytes {
			t.Errorf("%s: status %d, bytes %d; want %d, %d", tc.name, rec.StatusOrOK(), rec.Bytes, tc.wantStatus, tc.wantBytes)
		}
	}
}

func TestServeAllStopsOnContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan int, 1)
	go func() {
		done <- ServeAll(ctx, slog.New(slog.DiscardHandler),
			[]Server{{Name: "t", Listener: ln, Handler: http.NotFoundHandler()}},
			func(hs []*http.Server) {
				stopped <- len(hs)
				if err := Shutdown(hs, time.Second); err != nil {
					t.Error(err)
				}
			})
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeAll() = %v", err)
	}
	if n := <-stopped; n != 1 {
		t.Fatalf("shutdown got %d servers, want 1", n)
	}
}
