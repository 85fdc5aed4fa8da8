package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
)

// startProxyGateway runs a config service publishing the proxy APIs
// /mine → backend (key required) and /open → backend (no key), and a
// gateway polling it, ready.
func startProxyGateway(t *testing.T, backend string, opts gateway.Options) *fixture {
	t.Helper()
	logs := &lockedBuffer{}
	addr := startConfigServiceWith(t, io.Discard, configservice.Options{SubscriptionKeys: []string{subKey}, APIs: []apimconfig.API{
		{Name: "mine", Path: "/mine", Kind: apimconfig.KindProxy, SubscriptionRequired: true, BackendURL: backend},
		{Name: "open", Path: "/open", Kind: apimconfig.KindProxy, SubscriptionRequired: false, BackendURL: backend},
	}})
	opts.Endpoint, opts.Auth = addr, goodToken(t)
	f := startGateway(t, opts, logs)
	f.waitReady(t)
	return f
}

// seen is what a backend received.
type seen struct {
	proto                 int
	method, path, rawPath string
	query, host           string
	header                http.Header
	body                  string
	trailer               http.Header
}

func TestProxyForwardsRequestAndResponse(t *testing.T) {
	t.Parallel()
	got := make(chan seen, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{proto: r.ProtoMajor, method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), query: r.URL.RawQuery, host: r.Host,
			header: r.Header.Clone(), body: string(body), trailer: r.Trailer.Clone()}
		w.Header().Set("X-Backend", "yes")
		w.Header().Set(standinhttp.Header, "the backend's own")
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "dropped")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, "made: ", string(body))
		w.Header().Set("X-Checksum", "abc")
	}))
	defer backend.Close()
	f := startProxyGateway(t, backend.URL+"/base", gateway.Options{})

	req, _ := http.NewRequest(http.MethodPost, f.httpURL+"/mine/a/b%2Fc?x=1&subscription-key="+subKey+"&y=2", strings.NewReader("payload"))
	req.Header.Set(gateway.SubscriptionKeyHeader, subKey)
	req.Header.Set("X-Custom", "kept")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "dropped")
	req.Trailer = http.Header{"X-Sent-Trailer": nil}
	req.ContentLength = -1 // chunked, so the trailer can follow
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader("payload")))
	req.Trailer.Set("X-Sent-Trailer", "t1")
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	b := <-got
	if b.method != http.MethodPost || b.path != "/base/a/b/c" || b.rawPath != "/base/a/b%2Fc" || b.query != "x=1&y=2" || b.body != "payload" || b.proto != 1 {
		t.Errorf("backend got %s %s (raw %s) ?%s proto %d body %q", b.method, b.path, b.rawPath, b.query, b.proto, b.body)
	}
	if h := b.header; h.Get(gateway.SubscriptionKeyHeader) != "" || h.Get("X-Custom") != "kept" || h.Get("X-Client-Hop") != "" ||
		h.Get("X-Forwarded-For") != "10.0.0.1, 127.0.0.1" {
		t.Errorf("backend headers: %v", h)
	}
	if b.host != strings.TrimPrefix(backend.URL, "http://") {
		t.Errorf("backend Host = %q, want its own", b.host)
	}
	if b.trailer.Get("X-Sent-Trailer") != "t1" {
		t.Errorf("request trailer at the backend: %v", b.trailer)
	}
	if resp.StatusCode != http.StatusCreated || string(body) != "made: payload" || resp.Header.Get("X-Backend") != "yes" || resp.Header.Get("X-Backend-Hop") != "" {
		t.Errorf("response %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if v := resp.Header.Values(standinhttp.Header); len(v) != 1 || v[0] != standinhttp.HeaderValue {
		t.Errorf("stand-in header = %q, want only the gateway's", v)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("response trailer = %v (proto %s, TE %v, CL %d)", resp.Trailer, resp.Proto, resp.TransferEncoding, resp.ContentLength)
	}
	waitFor(t, "the GatewayLogs entry", func() bool {
		return f.logs.count(`"eventType":"GatewayLogs"`, `"apiId":"mine"`, `"responseCode":201`, `"backendResponseCode":201`, `"backendUrl":"`+backend.URL+`/base/a/b%2Fc"`) == 1
	})
	if strings.Contains(f.logs.String(), subKey) {
		t.Error("the subscription key is in the logs")
	}

	// No key: refused by the gateway, the backend never called. No key
	// needed on /open; the exact prefix goes to the backend URL itself.
	if r := do(t, http.MethodGet, f.httpURL+"/mine/x", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("no key: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, f.httpURL+"/open", nil, nil); r.status != http.StatusCreated {
		t.Errorf("open API: %d %s", r.status, r.body)
	}
	if b := <-got; b.path != "/base" || b.query != "" {
		t.Errorf("/open reached %s?%s", b.path, b.query)
	}
	select {
	case b := <-got:
		t.Errorf("the backend was called without a key: %+v", b)
	default:
	}
}

// A body goes through as it is sent: the backend has the first megabyte
// while the caller still holds the rest, and a 100 MiB upload passes with
// the heap nowhere near its size.
func TestProxyStreamsLargeBodies(t *testing.T) {
	var received atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		fmt.Fprint(w, hex.EncodeToString(h.Sum(nil)))
	}))
	defer backend.Close()
	f := startProxyGateway(t, backend.URL, gateway.Options{})

	const size = 100 << 20
	pr, pw := io.Pipe()
	sum := sha256.New()
	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer pw.Close()
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == 1<<20 {
				// Hold the rest until the backend has the first MiB.
				deadline := time.Now().Add(10 * time.Second)
				for received.Load() < 1<<20 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if received.Load() < 1<<20 {
					writeErr = fmt.Errorf("the backend had %d bytes of the first MiB while the caller held the rest", received.Load())
					pw.CloseWithError(writeErr)
					return
				}
			}
			sum.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				writeErr = err
				return
			}
		}
	})

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	req, _ := http.NewRequest(http.MethodPut, f.httpURL+"/mine/upload", pr)
	req.Header.Set(gateway.SubscriptionKeyHeader, subKey)
	c := newClient()
	c.Timeout = 2 * time.Minute
	resp, err := c.Do(req)
	close(stop)
	sampler.Wait()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if resp.StatusCode != 200 || string(body) != hex.EncodeToString(sum.Sum(nil)) || received.Load() != size {
		t.Fatalf("status %d, backend's sha256 %s of %d bytes, sent %x", resp.StatusCode, body, received.Load(), sum.Sum(nil))
	}
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("100 MiB through the proxy: heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Errorf("heap in use grew by %d MiB while 100 MiB went through: the body was buffered", growth>>20)
	}
}

// A WebSocket upgrade is tunnelled: 101 comes back with the stand-in's
// header, then bytes flow both ways.
func TestProxyWebSocketEcho(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get(gateway.SubscriptionKeyHeader) != "" {
			http.Error(w, "want a websocket upgrade without a key", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the caller closes
	}))
	defer backend.Close()
	f := startProxyGateway(t, backend.URL, gateway.Options{})

	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(f.httpURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /mine/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s: %s\r\n\r\n", gateway.SubscriptionKeyHeader, subKey)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get(standinhttp.Header) != standinhttp.HeaderValue {
		t.Fatalf("upgrade answer %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", "again, through the tunnel"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		back := make([]byte, len(msg))
		if _, err := io.ReadFull(br, back); err != nil || string(back) != msg {
			t.Fatalf("echo = %q, %v; want %q", back, err, msg)
		}
	}
}

// A gRPC call (HTTP/2 with prior knowledge on the plain port) reaches the
// backend over h2c with its trailers both ways; a plain call that
// negotiated h2 on the TLS port reaches the backend over HTTP/1.1.
func TestProxyHTTP2AndGRPC(t *testing.T) {
	t.Parallel()
	protos := make(chan int, 2)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		if r.Header.Get("Content-Type") != "application/grpc" {
			fmt.Fprint(w, "plain")
			return
		}
		in, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		w.Write(append([]byte("reply:"), in...))
		// Undeclared trailers, as gRPC servers send them.
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "te="+r.Header.Get("Te"))
	}))
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	backend.Config.Protocols = p
	backend.Start()
	defer backend.Close()
	f := startProxyGateway(t, backend.URL, gateway.Options{})

	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2c}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, f.httpURL+"/mine/echo.v1.Echo/Say", strings.NewReader("\x00\x00\x00\x00\x02hi"))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set(gateway.SubscriptionKeyHeader, subKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "reply:\x00\x00\x00\x00\x02hi" || resp.Header.Get(standinhttp.Header) == "" {
		t.Fatalf("gRPC answer: HTTP/%d %d %q %v", resp.ProtoMajor, resp.StatusCode, body, resp.Header)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "te=trailers" {
		t.Errorf("trailers = %v", resp.Trailer)
	}
	if p := <-protos; p != 2 {
		t.Errorf("the gRPC call reached the backend over HTTP/%d, want 2 (h2c)", p)
	}

	h2 := new(http.Protocols)
	h2.SetHTTP2(true)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer tlsClient.CloseIdleConnections()
	req, _ = http.NewRequest(http.MethodGet, f.httpsURL+"/mine/page", nil)
	req.Header.Set(gateway.SubscriptionKeyHeader, subKey)
	resp, err = tlsClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "plain" {
		t.Errorf("h2 over TLS: HTTP/%d %q", resp.ProtoMajor, body)
	}
	if p := <-protos; p != 1 {
		t.Errorf("a plain h2 call reached the backend over HTTP/%d, want 1.1 (forward-request's default)", p)
	}
}

func TestProxyBackendRefusedIs502AtOnce(t *testing.T) {
	t.Parallel()
	f := startProxyGateway(t, "http://"+closedAddr(t), gateway.Options{})
	start := time.Now()
	r := do(t, http.MethodGet, f.httpURL+"/mine/x", withKey(subKey), nil)
	took := time.Since(start)
	e := decode[struct {
		StatusCode int
		Message    string
	}](t, r.body)
	if r.status != http.StatusBadGateway || e.StatusCode != 502 || !strings.Contains(e.Message, "Connection refused") || r.header.Get(standinhttp.Header) == "" {
		t.Fatalf("refused backend: %d %s %v", r.status, r.body, r.header)
	}
	if took > 2*time.Second {
		t.Errorf("502 took %s", took)
	}
	waitFor(t, "the GatewayLogs entry", func() bool {
		return f.logs.count(`"eventType":"GatewayLogs"`, `"responseCode":502`, `"lastErrorReason":"BackendConnectionFailure"`, `"lastErrorMessage":"Connection refused"`) == 1
	})
}

func TestProxySlowBackendIs504(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the gateway gives up
	}))
	defer backend.Close()
	const timeout = 300 * time.Millisecond
	f := startProxyGateway(t, backend.URL, gateway.Options{BackendTimeout: timeout})
	start := time.Now()
	r := do(t, http.MethodGet, f.httpURL+"/mine/slow", withKey(subKey), nil)
	took := time.Since(start)
	if r.status != http.StatusGatewayTimeout || !strings.Contains(string(r.body), `"statusCode":504`) || r.header.Get(standinhttp.Header) == "" {
		t.Fatalf("slow backend: %d %s", r.status, r.body)
	}
	if took < timeout || took > 5*time.Second {
		t.Errorf("504 after %s, want just after %s", took, timeout)
	}
	waitFor(t, "the GatewayLogs entry", func() bool {
		return f.logs.count(`"eventType":"GatewayLogs"`, `"responseCode":504`, `"lastErrorReason":"Timeout"`, `TaskCanceledException`) == 1
	})
}
