package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

const (
	gatewayKey = "test-gateway-key"
	subKey     = "test-subscription-key"
)

// lockedBuffer is a log sink the test can read while the gateway writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count is how many log lines contain s, and each of more.
func (b *lockedBuffer) count(s string, more ...string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, s) && containsAll(line, more) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startConfigService runs an in-process stand-in config service on loopback
// and returns its HTTPS address.
func startConfigService(t *testing.T, logs io.Writer, subKeys ...string) string {
	t.Helper()
	return startConfigServiceWith(t, logs, configservice.Options{SubscriptionKeys: subKeys})
}

// startConfigServiceWith is startConfigService with more options (Entra).
func startConfigServiceWith(t *testing.T, logs io.Writer, opts configservice.Options) string {
	t.Helper()
	log, _ := standinlog.New(logs, standinlog.Settings{Format: "json", Level: "debug", Mode: "config-service"})
	opts.Key, opts.HTTPSAddr, opts.Logger = []byte(gatewayKey), "127.0.0.1:0", log
	svc, err := configservice.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("config service Run() = %v", err)
		}
	})
	return svc.HTTPSAddr()
}

// closedAddr is a loopback address nothing listens on: connections are refused at once.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mint(t *testing.T, key, id string, expiry time.Time) string {
	t.Helper()
	s, err := token.Mint([]byte(key), id, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodToken is valid for a day.
func goodToken(t *testing.T) string {
	return mint(t, gatewayKey, "gw-test", time.Now().Add(24*time.Hour))
}

type fixture struct {
	g    *gateway.Gateway
	logs *lockedBuffer
	done chan error
	// httpURL and httpsURL are the traffic listeners' base URLs.
	httpURL, httpsURL string
}

// startGateway runs a gateway on loopback with fast polling and debug JSON logs.
// Unset fields of opts get test defaults.
func startGateway(t *testing.T, opts gateway.Options, logs *lockedBuffer) *fixture {
	t.Helper()
	if logs == nil {
		logs = &lockedBuffer{}
	}
	opts.HTTPAddr, opts.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	opts.UDPAddrs = []string{"127.0.0.1:0", "127.0.0.1:0"}
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.PodName == "" {
		opts.PodName = "gw-pod-0"
	}
	if opts.Logger == nil {
		opts.Logger, _ = standinlog.New(logs, standinlog.Settings{Format: "json", Level: "debug", Mode: "gateway"})
	}
	g := gateway.New(opts)
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{g: g, logs: logs, done: make(chan error, 1),
		httpURL: "http://" + g.HTTPAddr(), httpsURL: "https://" + g.HTTPSAddr()}
	go func() { f.done <- g.Run(context.Background()) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// stop drains the gateway and waits for Run to return; safe to call twice.
func (f *fixture) stop(t *testing.T) {
	t.Helper()
	f.g.Drain()
	select {
	case err, ok := <-f.done:
		if ok && err != nil {
			t.Errorf("gateway Run() = %v", err)
		}
		if ok {
			close(f.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not stop")
	}
}

func (f *fixture) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "gateway ready", f.g.Ready)
}

// newClient talks to both ports without keep-alive, so every call is a fresh
// connection (what a probe does), and trusts the self-signed certificate.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
	// close is whether the server said Connection: close (net/http moves
	// that header into Response.Close).
	close bool
}

func do(t *testing.T, method, url string, header http.Header, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := newClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data, resp.Close}
}

func get(t *testing.T, url string) response {
	t.Helper()
	return do(t, http.MethodGet, url, nil, nil)
}

func withKey(key string) http.Header {
	return http.Header{gateway.SubscriptionKeyHeader: {key}}
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("body is not the expected JSON: %v\n%s", err, data)
	}
	return v
}

func containsAll(line string, subs []string) bool {
	for _, s := range subs {
		if !strings.Contains(line, s) {
			return false
		}
	}
	return true
}
