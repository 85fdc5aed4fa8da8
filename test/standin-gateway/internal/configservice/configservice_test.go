package configservice

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

const key = "config-service-test-key"

func start(t *testing.T) *Service {
	t.Helper()
	s, err := New(Options{Key: []byte(key), SubscriptionKeys: []string{"sub-a"}, HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return s
}

func call(t *testing.T, url, auth string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func mint(t *testing.T, k string, expiry time.Time) string {
	t.Helper()
	s, err := token.Mint([]byte(k), "gw-cs", expiry)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfiguration(t *testing.T) {
	t.Parallel()
	s := start(t)
	url := "https://" + s.HTTPSAddr() + apimconfig.Path
	good := mint(t, key, time.Now().Add(time.Hour))
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"good", good, 200},
		{"good without prefix", strings.TrimPrefix(good, token.Prefix), 200},
		{"expired but well signed", mint(t, key, time.Now().Add(-time.Hour)), 200},
		{"missing", "", 401},
		{"malformed", "GatewayKey nonsense", 401},
		{"wrong key", mint(t, "other", time.Now().Add(time.Hour)), 401},
		{"bearer", "Bearer " + strings.TrimPrefix(good, token.Prefix), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, header, body := call(t, url, tc.auth)
			if status != tc.status {
				t.Fatalf("status = %d, want %d: %s", status, tc.status, body)
			}
			if header.Get(standinhttp.Header) != standinhttp.HeaderValue {
				t.Error("missing stand-in header")
			}
			if status == 401 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "Unauthorized" {
					t.Errorf("401 body = %s", body)
				}
				return
			}
			cfg, err := apimconfig.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GatewayID != "gw-cs" || len(cfg.APIs) != 1 || cfg.APIs[0].Path != "/echo" || !cfg.APIs[0].SubscriptionRequired {
				t.Errorf("configuration = %+v", cfg)
			}
			if _, ok := cfg.SubscriptionFor("sub-a"); !ok {
				t.Error("configured subscription key not accepted")
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	s := start(t)
	for _, u := range []string{"http://" + s.HTTPAddr() + "/healthz", "https://" + s.HTTPSAddr() + "/healthz"} {
		if status, _, body := call(t, u, ""); status != 200 || !strings.Contains(string(body), "stand-in") {
			t.Errorf("GET %s = %d %s", u, status, body)
		}
	}
	// The plain-HTTP port is for probes only: configuration never travels in clear.
	if status, _, _ := call(t, "http://"+s.HTTPAddr()+apimconfig.Path, mint(t, key, time.Now().Add(time.Hour))); status != 404 {
		t.Errorf("configuration over plain HTTP = %d, want 404", status)
	}
}

func TestNewNeedsKey(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "STANDIN_GATEWAY_KEY") {
		t.Fatalf("New without key = %v, want an error naming STANDIN_GATEWAY_KEY", err)
	}
}

func TestConfigurationCarriesProxyAPIs(t *testing.T) {
	t.Parallel()
	mine := apimconfig.API{Name: "mine", Path: "/mine", Kind: apimconfig.KindProxy, SubscriptionRequired: true, BackendURL: "http://mine:8080"}
	s, err := New(Options{Key: []byte(key), HTTPSAddr: "127.0.0.1:0", APIs: []apimconfig.API{mine}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()
	status, header, body := call(t, "https://"+s.HTTPSAddr()+apimconfig.Path, mint(t, key, time.Now().Add(time.Hour)))
	cfg, err := apimconfig.Decode(body)
	if status != 200 || err != nil || len(cfg.APIs) != 2 || cfg.APIs[1] != mine {
		t.Fatalf("status %d, %v: %+v", status, err, cfg.APIs)
	}
	if header.Get("ETag") != `"`+cfg.Revision+`"` || cfg.Revision == apimconfig.New("gw-cs", nil).Revision {
		t.Errorf("revision %s, ETag %s", cfg.Revision, header.Get("ETag"))
	}
	// New refuses a list that clashes with the echo API.
	clash := mine
	clash.Path = "/echo"
	if _, err := New(Options{Key: []byte(key), APIs: []apimconfig.API{clash}}); err == nil || !strings.Contains(err.Error(), "/echo") {
		t.Errorf("New with a clashing API = %v", err)
	}
}
