// Package standinhttp holds the HTTP plumbing both stand-in modes share: the
// header that marks every response as coming from a stand-in, JSON replies,
// per-request logging, and serving a set of listeners until a context ends.
package standinhttp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
)

// Header and HeaderValue mark every response, so a test (or a puzzled human with
// curl) can tell the stand-in from the real gateway.
const (
	Header      = "X-Apimdev-Standin"
	HeaderValue = "stand-in gateway, not Azure API Management"
)

// WriteJSON writes v as the JSON body of a response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The client may have gone; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// RecordingWriter remembers the status and size of a response for logs and metrics.
type RecordingWriter struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

// WriteHeader records the status.
func (r *RecordingWriter) WriteHeader(code int) {
	if r.Status == 0 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records the size, and the implicit 200 of a body written without a header.
func (r *RecordingWriter) Write(b []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *RecordingWriter) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// StatusOrOK is the status the client saw (200 when the handler wrote nothing).
func (r *RecordingWriter) StatusOrOK() int {
	if r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

// Server is one listener and what to serve on it.
type Server struct {
	Name     string
	Listener net.Listener
	Handler  http.Handler
	// TLS, when set, makes the server speak HTTPS with this certificate.
	TLS *tls.Certificate
	// HTTP2 serves HTTP/2 besides HTTP/1.1: negotiated (ALPN h2) with TLS,
	// with prior knowledge (h2c) without.
	HTTP2 bool
}

// ServeAll serves every server until ctx is done, then hands over to shutdown,
// which gets the *http.Servers to stop. It returns the first serve error that is
// not a normal close.
func ServeAll(ctx context.Context, log *slog.Logger, servers []Server, shutdown func([]*http.Server)) error {
	hs := make([]*http.Server, len(servers))
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		hs[i] = &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       90 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.With(standinlog.Event(standinlog.EvHTTPServer), "listener", s.Name).Handler(), slog.LevelDebug),
		}
		ln := s.Listener
		if s.HTTP2 {
			p := new(http.Protocols)
			p.SetHTTP1(true)
			p.SetHTTP2(true)
			p.SetUnencryptedHTTP2(true)
			hs[i].Protocols = p
		}
		if s.TLS != nil {
			tc := &tls.Config{Certificates: []tls.Certificate{*s.TLS}, MinVersion: tls.VersionTLS12}
			if s.HTTP2 {
				tc.NextProtos = []string{"h2", "http/1.1"}
			}
			ln = tls.NewListener(ln, tc)
		}
		wg.Go(func() {
			if err := hs[i].Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown(hs)
	wg.Wait()
	return err
}

// Shutdown stops servers gracefully, giving in-flight requests until timeout,
// then closes whatever is left.
func Shutdown(servers []*http.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() {
			if errs[i] = s.Shutdown(ctx); errs[i] != nil {
				s.Close()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
