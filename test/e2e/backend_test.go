//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The proxy APIs the rig's stand-in configuration service publishes
// (stand-in, not Azure API Management): /orders calls the backend
// `apimdev backend add orders` gives the gateway, and the gRPC health
// service's path the same backend. Neither needs a subscription key.
const standinAPIs = `[{"name":"orders","path":"/orders","backendUrl":"http://orders:8080","subscriptionRequired":false},` +
	`{"name":"orders-grpc","path":"/grpc.health.v1.Health","backendUrl":"http://orders:8080/grpc.health.v1.Health","subscriptionRequired":false}]`

// laptopBackend is the program a developer runs on the laptop: HTTP/1.1
// and HTTP/2 (h2c) on 127.0.0.1, a WebSocket echo, a streamed upload's
// checksum, and a gRPC health service. stop and start make its port
// refuse and answer again.
type laptopBackend struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func newLaptopBackend(t *testing.T) *laptopBackend {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &laptopBackend{addr: l.Addr().String()}
	b.serve(l)
	t.Cleanup(b.stop)
	return b
}

func (b *laptopBackend) port() string { _, p, _ := net.SplitHostPort(b.addr); return p }

func (b *laptopBackend) handler() http.Handler {
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Laptop", "yes")
		fmt.Fprintf(w, "hello from the laptop (%s %s)", r.Proto, r.URL.Path)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	})
	mux.Handle("/ws", websocket.Handler(func(c *websocket.Conn) { _, _ = io.Copy(c, c) }))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (b *laptopBackend) serve(l net.Listener) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: b.handler(), Protocols: &p, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	b.mu.Lock()
	b.srv, b.done = srv, done
	b.mu.Unlock()
}

// stop closes the program: its port refuses connections.
func (b *laptopBackend) stop() {
	b.mu.Lock()
	srv, done := b.srv, b.done
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// start runs it again on the same port.
func (b *laptopBackend) start(t *testing.T) {
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.serve(l)
}

// callOrders is GET /orders/hello through the gateway's forward.
func callOrders(port string) (int, string, time.Duration, error) {
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + port + "/orders/hello")
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), time.Since(start), nil
}

// backendStates is `apimdev backend list -o json`, by name.
func (r *rig) backendStates(t *testing.T) map[string]string {
	t.Helper()
	code, out, errs := r.apimdev(t, "backend", "list", "-o", "json")
	var bs []struct{ Name, State, Reason string }
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &bs) != nil {
		t.Fatalf("backend list -o json exited %d:\n%s\n%s", code, out, errs)
	}
	m := map[string]string{}
	for _, b := range bs {
		m[b.Name] = b.State
	}
	return m
}

// waitOrders polls the backend through the gateway until it answers 200
// with the laptop's answer, or the limit passes.
func waitOrders(t *testing.T, port string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < limit {
		code, body, _, err := callOrders(port)
		if err == nil && code == 200 && strings.Contains(body, "hello from the laptop") {
			return time.Since(start)
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the laptop's backend did not answer through the gateway within %s: last %s", limit, last)
	return 0
}

// checkBackendTraffic makes the calls of the issue through the gateway's
// forward to the laptop's program: HTTP/1.1, a gRPC call, a WebSocket
// echo, and a streamed 100 MB upload whose checksum both ends compare.
func checkBackendTraffic(t *testing.T, port string) {
	t.Helper()
	code, body, took, err := callOrders(port)
	if err != nil || code != 200 || !strings.Contains(body, "hello from the laptop (HTTP/1.1 /hello)") {
		t.Fatalf("GET /orders/hello: %d %q %v", code, body, err)
	}
	t.Logf("GET /orders/hello through the gateway to the laptop: %d in %s", code, took.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health check through the gateway: %v %v", hr, err)
	} else {
		t.Logf("gRPC health check through the gateway to the laptop: %s", hr.Status)
	}

	ws, err := websocket.Dial("ws://127.0.0.1:"+port+"/orders/ws", "", "http://127.0.0.1:"+port)
	if err != nil {
		t.Errorf("WebSocket through the gateway: %v", err)
	} else {
		msg := "echo through the relay"
		_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ws.Write([]byte(msg)); err != nil {
			t.Errorf("WebSocket write: %v", err)
		}
		buf := make([]byte, 64)
		n, err := ws.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Errorf("WebSocket echo: %q %v", buf[:n], err)
		}
		ws.Close()
	}

	// 100 MB of random bytes, streamed: its checksum here and the one the
	// laptop's program computed must agree.
	const size = 100 << 20
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.Reader, size), h)
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/orders/upload", src)
	req.ContentLength = size
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("100 MB upload: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("%d %s", size, hex.EncodeToString(h.Sum(nil)))
	if resp.StatusCode != 200 || string(got) != want {
		t.Fatalf("100 MB upload: %d %q, want %q", resp.StatusCode, got, want)
	}
	secs := time.Since(start).Seconds()
	t.Logf("100 MB streamed through the gateway and the relay in %.1fs (%.0f MB/s), checksums equal", secs, 100/secs)
}

// checkBackendDown stops the laptop's program: the gateway answers 502 at
// once (the relay resets the connection it cannot pass on), and backend
// list says down; started again, the next call works with no command.
func checkBackendDown(t *testing.T, r *rig, b *laptopBackend) {
	t.Helper()
	b.stop()
	code, body, took, err := callOrders(r.httpPort)
	if err != nil || code != http.StatusBadGateway || took > time.Second {
		t.Errorf("with the laptop's program stopped: %d %q in %s (%v), want 502 within 1s", code, body, took, err)
	}
	t.Logf("program stopped: the gateway answered %d in %s", code, took.Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for st := r.backendStates(t)["orders"]; st != "down"; st = r.backendStates(t)["orders"] {
		if time.Now().After(deadline) {
			t.Fatalf("backend list says %q with the program stopped, want down", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	_, text, _ := r.apimdev(t, "status")
	if !strings.Contains(text, "backend") || !strings.Contains(text, "down") {
		t.Errorf("status does not say the backend is down:\n%s", text)
	}
	b.start(t)
	code, body, took, err = callOrders(r.httpPort)
	if err != nil || code != 200 {
		t.Errorf("the first call after the program started again: %d %q %v", code, body, err)
	}
	t.Logf("program started again: the first call answered %d in %s", code, took.Round(time.Millisecond))
}
