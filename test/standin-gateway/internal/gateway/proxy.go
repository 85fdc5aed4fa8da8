package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
)

// DefaultBackendTimeout is how long a proxy API waits for its backend to
// connect and answer with headers: the forward-request policy's default
// timeout (300 s, Microsoft's policy reference). STANDIN_BACKEND_TIMEOUT
// lowers it for tests. A response that has started may stream for longer
// (a WebSocket, a gRPC stream, a large download).
const DefaultBackendTimeout = 300 * time.Second

// Last error reasons of a failed forward, in the GatewayLogs entry's
// lastErrorReason. BackendConnectionFailure is the real gateway's (record,
// traps under section 3: #274, with "Name does not resolve"); the record
// has no line for a backend timeout's reason or a caller that went away, so
// Timeout and ClientConnectionFailure are the stand-in's names.
const (
	reasonBackendConnection = "BackendConnectionFailure"
	reasonTimeout           = "Timeout"
	reasonClientGone        = "ClientConnectionFailure"
)

// timeoutException is what the real gateway logged when a backend request
// timed out (record, traps under section 3: #290), first lines only.
const timeoutException = "System.OperationCanceledException: The operation was cancelled.\n" +
	" ---> System.Threading.Tasks.TaskCanceledException: A task was canceled.\n" +
	"   at Gateway.Http.Client.DotNetty.DotNettyHttpBackend.SendRequestAsync(...)"

// forward is one request to a proxy API's backend: what the proxy needs to
// send it, and what the GatewayLogs entry says of it afterwards.
type forward struct {
	target *url.URL
	// h2 sends the request over HTTP/2 (h2c for an http:// backend).
	h2       bool
	timedOut atomic.Bool
	timer    *time.Timer
	start    time.Time
	// Written by the proxy's callbacks, read after ServeHTTP returns.
	backendStatus int
	backendTime   time.Duration
	reason, msg   string
}

type forwardKey struct{}

// proxyAPI forwards r to api's backend the way the real gateway forwards to
// an API's backend URL, and returns the GatewayLogs fields of the forward.
//
// What the stand-in does, and where each comes from:
//   - the path after the API's prefix is appended to the backend URL's path;
//     the query is kept (API Management: backend URL + operation URL);
//   - the method, headers and body go through streamed, never buffered;
//     hop-by-hop headers are dropped both ways (RFC 9110), WebSocket
//     upgrades (101) are tunnelled, trailers pass both ways;
//   - X-Forwarded-For gets the caller's address appended, as API Management
//     adds it (Microsoft Q&A: it cannot even be removed with a policy);
//   - the subscription key (header Ocp-Apim-Subscription-Key and query
//     parameter subscription-key) is removed. The record of real gateway
//     logs is silent on this, and public write-ups say the real gateway
//     passes the header on unless a policy deletes it
//     (<set-header name="Ocp-Apim-Subscription-Key" exists-action="delete"/>,
//     a common All APIs policy): the stand-in behaves as an instance with
//     that policy, so a key never lands in a backend's logs;
//   - HTTP/2: the forward-request policy's default http-version is 1, so
//     the backend gets HTTP/1.1, except a gRPC call (HTTP/2 in, content
//     type application/grpc…), which goes out over HTTP/2 (h2c to an
//     http:// backend) as gRPC needs; a browser or curl that negotiated h2
//     on the TLS port still reaches an HTTP/1-only backend;
//   - backend refused, reset, unresolvable: 502; no connection or no
//     response headers within the backend timeout: 504. Each with a small
//     JSON body in API Management's error shape.
func (g *Gateway) proxyAPI(w http.ResponseWriter, r *http.Request, api apimconfig.API) []any {
	backend, err := url.Parse(api.BackendURL)
	if err != nil { // Decode validated it; a document never gets here with a bad one.
		standinhttp.WriteJSON(w, http.StatusInternalServerError, apimError{http.StatusInternalServerError, "The API's backend URL is not valid."})
		return nil
	}
	f := &forward{target: backendTarget(backend, api.Path, r.URL), h2: r.ProtoMajor == 2 && isGRPC(r.Header.Get("Content-Type"))}
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), forwardKey{}, f))
	defer cancel()
	f.start = g.opts.Clock.Now()
	// One deadline for the connection and the response headers, as the
	// policy's timeout; the body may take longer.
	timer := time.AfterFunc(g.opts.BackendTimeout, func() {
		f.timedOut.Store(true)
		cancel()
	})
	f.timer = timer
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
	timer.Stop()
	if f.backendStatus == 0 {
		f.backendTime = g.opts.Clock.Now().Sub(f.start)
	}
	u := *f.target
	u.RawQuery = "" // may carry what the caller put there
	fields := []any{"backendMethod", r.Method, "backendUrl", u.String(), "backendTime", f.backendTime.Milliseconds()}
	if f.backendStatus != 0 {
		fields = append(fields, "backendResponseCode", f.backendStatus)
	}
	if f.reason != "" {
		fields = append(fields, "lastErrorReason", f.reason, "lastErrorMessage", f.msg)
		if f.reason == reasonTimeout {
			fields = append(fields, standinlog.Exception(timeoutException))
		}
	}
	return fields
}

// backendTarget is the backend URL with the part of in's path after prefix
// appended (escaped as the caller escaped it) and in's query without the
// subscription key.
func backendTarget(backend *url.URL, prefix string, in *url.URL) *url.URL {
	rest := strings.TrimPrefix(in.EscapedPath(), prefix)
	escaped := strings.TrimSuffix(backend.EscapedPath(), "/") + rest
	if escaped == "" {
		escaped = "/"
	}
	out := *backend
	out.Path, _ = url.PathUnescape(escaped) // escaped came from two valid escaped paths
	out.RawPath = escaped
	out.RawQuery = withoutParam(in.RawQuery, SubscriptionKeyQuery)
	return &out
}

// withoutParam drops the parameter named name from a raw query, keeping the
// others as they were written, in order.
func withoutParam(raw, name string) string {
	if raw == "" {
		return ""
	}
	kept := make([]string, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}

func isGRPC(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;")
}

// newProxy is the reverse proxy every proxy API shares.
func (g *Gateway) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := pr.In.Context().Value(forwardKey{}).(*forward)
			pr.Out.URL = f.target
			pr.Out.Host = "" // the backend's own host name, as API Management sends it
			pr.Out.Header.Del(SubscriptionKeyHeader)
			// The caller's trailers arrive once its body has been read:
			// share the map the server fills rather than a copy taken now.
			pr.Out.Trailer = pr.In.Trailer
			// Rewrite drops the caller's X-Forwarded-For; keep its chain and
			// add the caller, as a proxy does.
			chain := pr.In.Header.Values("X-Forwarded-For")
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				chain = append(chain, ip)
			}
			if len(chain) > 0 {
				pr.Out.Header.Set("X-Forwarded-For", strings.Join(chain, ", "))
			}
		},
		Transport: g.backends,
		ModifyResponse: func(resp *http.Response) error {
			f := resp.Request.Context().Value(forwardKey{}).(*forward)
			f.timer.Stop() // headers are in: the rest may stream for as long as it takes
			f.backendStatus = resp.StatusCode
			f.backendTime = g.opts.Clock.Now().Sub(f.start)
			// The gateway's own mark stays the only one.
			resp.Header.Del(standinhttp.Header)
			return nil
		},
		ErrorHandler: g.backendFailed,
		ErrorLog:     slog.NewLogLogger(g.log.With(standinlog.Event(standinlog.EvHTTPServer), standinlog.Source(standinlog.SrcStandin)).Handler(), slog.LevelDebug),
	}
}

// backendFailed answers a forward that got no response: 504 when the
// backend timeout passed, 502 otherwise.
func (g *Gateway) backendFailed(w http.ResponseWriter, r *http.Request, err error) {
	f := r.Context().Value(forwardKey{}).(*forward)
	status, message := http.StatusBadGateway, ""
	switch {
	case f.timedOut.Load() || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		status, f.reason = http.StatusGatewayTimeout, reasonTimeout
		f.msg = "The backend did not answer within " + g.opts.BackendTimeout.String()
		message = "Gateway timeout: the API's backend did not answer within " + g.opts.BackendTimeout.String() + "."
	case r.Context().Err() != nil:
		// The caller went away; nobody reads this answer.
		f.reason, f.msg = reasonClientGone, "The caller closed the connection"
		message = "The caller closed the connection."
	default:
		f.reason, f.msg = reasonBackendConnection, connectionFailure(err)
		message = "Bad gateway: the API's backend could not be reached (" + f.msg + ")."
	}
	standinhttp.WriteJSON(w, status, apimError{status, message})
}

// connectionFailure says in a few words why the backend could not be
// reached; "Name does not resolve" is the record's wording (#274).
func connectionFailure(err error) string {
	var dns *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dns):
		return "Name does not resolve"
	case connRefused(err):
		return "Connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.Errno(10054)): // WSAECONNRESET
		return "Connection reset by peer"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "The backend closed the connection"
	case errors.As(err, &tlsErr):
		return "The backend's TLS certificate is not trusted"
	}
	return err.Error()
}

// backendTransport picks the transport of a forward: HTTP/1.1, or HTTP/2
// for a gRPC call (h2c for http://, negotiated for https://).
type backendTransport struct {
	h1, h2c, h2 *http.Transport
}

func newBackendTransport(timeout time.Duration) *backendTransport {
	mk := func(proxy bool, protos ...func(*http.Protocols)) *http.Transport {
		p := new(http.Protocols)
		for _, set := range protos {
			set(p)
		}
		t := &http.Transport{
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			Protocols:             p,
		}
		if proxy {
			t.Proxy = http.ProxyFromEnvironment // the real gateway honours HTTP(S)_PROXY
		}
		return t
	}
	h1 := func(p *http.Protocols) { p.SetHTTP1(true) }
	return &backendTransport{
		h1:  mk(true, h1),
		h2c: mk(false, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }),
		h2:  mk(true, h1, func(p *http.Protocols) { p.SetHTTP2(true) }),
	}
}

func (t *backendTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	switch {
	case f == nil || !f.h2:
		return t.h1.RoundTrip(r)
	case r.URL.Scheme == "http":
		return t.h2c.RoundTrip(r)
	}
	return t.h2.RoundTrip(r)
}

// CloseIdleConnections closes every transport's idle connections.
func (t *backendTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
	t.h2.CloseIdleConnections()
}
