package gateway_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
)

func statusPaths(f *fixture) []string {
	var urls []string
	for _, base := range []string{f.httpURL, f.httpsURL} {
		for _, p := range []string{gateway.StatusPath, gateway.LegacyStatusPath} {
			urls = append(urls, base+p)
		}
	}
	return urls
}

func TestNotReadyWithoutSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     gateway.Options
		wantLogs string
	}{
		{"nothing set", gateway.Options{}, "config.service.endpoint is not set"},
		{"no token", gateway.Options{Endpoint: "config.example:8443"}, "config.service.auth is not set"},
		{"prefix only", gateway.Options{Endpoint: "config.example", Auth: "GatewayKey "}, "config.service.auth is not set"},
		{"no endpoint", gateway.Options{Auth: "GatewayKey a&203001010000&c2ln"}, "config.service.endpoint is not set"},
		{"bad scheme", gateway.Options{Endpoint: "ftp://x", Auth: "GatewayKey a&203001010000&c2ln"}, "is not host[:port]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startGateway(t, tc.opts, nil)
			waitFor(t, "the setup error in the log", func() bool { return f.logs.count(tc.wantLogs) > 0 })
			for _, u := range statusPaths(f) {
				if r := get(t, u); r.status != http.StatusServiceUnavailable {
					t.Errorf("GET %s = %d, want 503", u, r.status)
				}
			}
			if r := get(t, f.httpURL+"/echo/x"); r.status != http.StatusServiceUnavailable {
				t.Errorf("API call before configuration = %d, want 503", r.status)
			}
			if f.g.Ready() {
				t.Fatal("gateway is ready without settings")
			}
		})
	}
}

func TestReadyAfterFetchingConfiguration(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	addr := startConfigService(t, logs, subKey)
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t)}, logs)
	f.waitReady(t)
	for _, u := range statusPaths(f) {
		r := get(t, u)
		if r.status != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", u, r.status)
		}
		if r.header.Get(standinhttp.Header) == "" {
			t.Errorf("GET %s has no %s header", u, standinhttp.Header)
		}
	}
	// Polling goes on after the first load without re-announcing readiness.
	waitFor(t, "three fetches", func() bool { return logs.count(`{"level":"Verbose"`, `"eventType":"NoNewEvents"`) >= 2 })
	if n := logs.count(`"eventType":"ConfigInitialSyncCompleted"`, "configuration loaded; gateway ready"); n != 1 {
		t.Errorf("readiness announced %d times, want 1", n)
	}
}

func TestEndpointForms(t *testing.T) {
	t.Parallel()
	addr := startConfigService(t, io.Discard, subKey)
	for _, endpoint := range []string{addr, "https://" + addr, "https://" + addr + "/"} {
		t.Run(endpoint, func(t *testing.T) {
			t.Parallel()
			f := startGateway(t, gateway.Options{Endpoint: endpoint, Auth: strings.TrimPrefix(goodToken(t), "GatewayKey ")}, nil)
			f.waitReady(t)
		})
	}
}

// A token the configuration endpoint refuses at start: the gateway loads no
// configuration, yet its host runs on, its status path answers 200 and an
// API call gets 200 with an empty body, as users report of the real gateway
// (record 6, #287). Only its log says why.
func TestRefusedTokenRunsWithoutConfiguration(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	addr := startConfigService(t, logs, subKey)
	wrong := mint(t, "some-other-key", "gw-test", time.Now().Add(time.Hour))
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: wrong, BackupDir: t.TempDir()}, logs)
	// Several refusals in a row: one would not show that it stays so.
	waitFor(t, "three refusals", func() bool { return logs.count(`"eventType":"ConfigurationApiV2NotAvailable"`) >= 3 })
	if f.g.Ready() {
		t.Fatal("the gateway says it has a configuration with a refused token")
	}
	if r := get(t, f.httpURL+gateway.StatusPath); r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (the host runs without its configuration)", r.status)
	}
	if r := get(t, f.httpURL+"/echo/hello"); r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("an API call = %d %q, want 200 with an empty body", r.status, r.body)
	}
	// As the real gateway (record 2.1): a Warning that the V2 API is "not
	// reachable", the status code in the exception.
	if n := logs.count(`{"level":"Warning",`, `"eventType":"ConfigurationApiV2NotAvailable","message":"The configuration V2 API is not reachable on https://`,
		`"exception":"Gateway.Configuration.Client.ApiException: StatusCode: Unauthorized"`); n != 1 {
		t.Errorf("refusal logged at warning %d times, want once (repeats at debug):\n%s", n, logs)
	}
}

func TestEchoAPI(t *testing.T) {
	t.Parallel()
	addr := startConfigService(t, io.Discard, "other-key", subKey)
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t)}, nil)
	f.waitReady(t)

	missing := `{"statusCode":401,"message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}`
	tests := []struct {
		name       string
		method     string
		url        string
		header     http.Header
		body       string
		wantStatus int
		wantBody   string // exact JSON, when set
		wantInBody string
	}{
		{"no key", "GET", f.httpURL + "/echo/hello", nil, "", 401, missing, ""},
		{"no key over https", "GET", f.httpsURL + "/echo", nil, "", 401, missing, ""},
		{"wrong key", "GET", f.httpURL + "/echo/hello", withKey("nope"), "", 401, "", "invalid subscription key"},
		{"unknown path", "GET", f.httpURL + "/nothing-here", withKey(subKey), "", 404, `{"statusCode":404,"message":"Resource not found"}`, ""},
		{"prefix is not a match", "GET", f.httpURL + "/echoes", withKey(subKey), "", 404, "", "Resource not found"},
		{"header key", "GET", f.httpURL + "/echo/hello?a=1", withKey(subKey), "", 200, "", `"gateway":"stand-in"`},
		{"query key", "DELETE", f.httpsURL + "/echo/x?subscription-key=" + subKey, nil, "", 200, "", `"method":"DELETE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, tc.method, tc.url, tc.header, strings.NewReader(tc.body))
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantBody != "" && strings.TrimSpace(string(r.body)) != tc.wantBody {
				t.Errorf("body = %s, want %s", r.body, tc.wantBody)
			}
			if !strings.Contains(string(r.body), tc.wantInBody) {
				t.Errorf("body %s does not contain %s", r.body, tc.wantInBody)
			}
			if r.header.Get(standinhttp.Header) != standinhttp.HeaderValue {
				t.Errorf("missing stand-in header")
			}
			if strings.Contains(string(r.body), subKey) {
				t.Errorf("the subscription key is echoed back: %s", r.body)
			}
		})
	}

	t.Run("body and request echoed", func(t *testing.T) {
		t.Parallel()
		h := withKey(subKey)
		h.Set("X-Trace", "abc")
		r := do(t, "POST", f.httpURL+"/echo/orders/7?x=1&x=2&subscription-key=ignored", h, strings.NewReader(`{"hello":"world"}`))
		if r.status != 200 {
			t.Fatalf("status = %d: %s", r.status, r.body)
		}
		e := decode[gateway.EchoResponse](t, r.body)
		if e.Gateway != "stand-in" || e.API != "echo" || e.Method != "POST" || e.Path != "/echo/orders/7" ||
			e.Body != `{"hello":"world"}` || e.Pod != "gw-pod-0" || e.Subscription != "subscription-2" {
			t.Errorf("echo = %+v", e)
		}
		if got := e.Query["x"]; len(got) != 2 || got[1] != "2" {
			t.Errorf("query x = %q, want [1 2]", got)
		}
		if _, ok := e.Query["subscription-key"]; ok {
			t.Error("subscription-key query parameter echoed")
		}
		if e.Headers["X-Trace"][0] != "abc" {
			t.Errorf("headers = %v, want X-Trace", e.Headers)
		}
		if _, ok := e.Headers[gateway.SubscriptionKeyHeader]; ok {
			t.Error("subscription key header echoed")
		}
	})
}

func TestExpiredTokenAnswersEmpty200(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	addr := startConfigService(t, logs, subKey)
	expired := mint(t, gatewayKey, "gw-test", time.Now().Add(-time.Hour))
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: expired}, logs)
	f.waitReady(t)
	for _, c := range []struct {
		url    string
		header http.Header
	}{
		{f.httpURL + "/echo/x", withKey(subKey)},
		{f.httpsURL + "/echo/x", nil},
		{f.httpURL + "/anything", nil},
	} {
		r := get(t, c.url)
		if c.header != nil {
			r = do(t, "GET", c.url, c.header, nil)
		}
		if r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("GET %s with an expired token = %d %q, want 200 and an empty body", c.url, r.status, r.body)
		}
	}
	if r := get(t, f.httpURL+gateway.StatusPath); r.status != http.StatusOK {
		t.Errorf("status = %d, want 200: an expired token does not fail health", r.status)
	}
	if n := logs.count("the gateway token has expired"); n != 1 {
		t.Errorf("expiry warning logged %d times, want once", n)
	}
}

func TestBackupWrittenAndUsedWhenServiceIsDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := goodToken(t)

	first := startGateway(t, gateway.Options{Endpoint: startConfigService(t, io.Discard, subKey), Auth: tok, BackupDir: dir}, nil)
	first.waitReady(t)
	backup := filepath.Join(dir, gateway.BackupFile)
	waitFor(t, "the backup file", func() bool { _, err := os.Stat(backup); return err == nil })
	first.stop(t)
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apimconfig.Decode(data); err != nil {
		t.Fatalf("backup is not a configuration: %v", err)
	}
	if strings.Contains(string(data), subKey) {
		t.Fatal("backup holds a subscription key in clear")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".standin-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	down := closedAddr(t)
	t.Run("restarts from backup", func(t *testing.T) {
		t.Parallel()
		second := startGateway(t, gateway.Options{Endpoint: down, Auth: tok, BackupDir: dir}, nil)
		second.waitReady(t)
		if second.logs.count(`{"level":"Warning"`, `"eventType":"StandinConfigRestoredFromBackup","message":"started from configuration backup`) != 1 {
			t.Errorf("log does not say it started from the backup:\n%s", second.logs)
		}
		// A start from the backup is not the initial sync with the endpoint:
		// a reader of the log must not take it for one.
		if n := second.logs.count(`"eventType":"ConfigInitialSyncCompleted"`); n != 0 {
			t.Errorf("%d ConfigInitialSyncCompleted entries after a start from the backup:\n%s", n, second.logs)
		}
		if r := do(t, "GET", second.httpURL+"/echo/after-restart", withKey(subKey), nil); r.status != 200 {
			t.Errorf("echo from backup configuration = %d %s", r.status, r.body)
		}
	})
	t.Run("no backup, no readiness", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		third := startGateway(t, gateway.Options{Endpoint: down, Auth: tok, BackupDir: empty}, nil)
		waitFor(t, "repeated unreachable attempts", func() bool { return third.logs.count("configuration endpoint unreachable") >= 3 })
		if third.g.Ready() {
			t.Fatal("ready with neither service nor backup")
		}
		// The record's lines for a refused connection (3.1: the generic Error
		// event) and for a backup location without a snapshot (5.4), each at
		// error once, then verbose while it repeats.
		if n := third.logs.count(`{"level":"Error"`, `"eventType":"Error","message":"configuration endpoint unreachable"`,
			`"exception":"System.Net.Http.HttpRequestException: Connection refused\n ---> System.Net.Sockets.SocketException (111): Connection refused"`); n != 1 {
			t.Errorf("%d unreachable errors, want 1:\n%s", n, third.logs)
		}
		if n := third.logs.count(`{"level":"Error"`, `"eventType":"ConfigInitialSyncFailed"`,
			`"exception":"Gateway.Configuration.ConfigurationNotFoundException: `+filepath.ToSlash(filepath.Join(empty, gateway.BackupFile))+`"`); n != 1 {
			t.Errorf("%d initial sync failures at error, want 1:\n%s", n, third.logs)
		}
	})
	t.Run("backup of another gateway is ignored", func(t *testing.T) {
		t.Parallel()
		other := mint(t, gatewayKey, "gw-other", time.Now().Add(time.Hour))
		fourth := startGateway(t, gateway.Options{Endpoint: down, Auth: other, BackupDir: dir}, nil)
		waitFor(t, "the backup to be refused", func() bool { return fourth.logs.count("belongs to another gateway") >= 1 })
		if fourth.g.Ready() {
			t.Fatal("ready from another gateway's backup")
		}
	})
}

// gateClock hands the drain delay to the test: the drain waits until released.
type gateClock struct {
	asked   chan time.Duration
	release chan time.Time
}

func (c gateClock) Now() time.Time { return time.Now() }
func (c gateClock) After(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.release
}

func TestDrain(t *testing.T) {
	t.Parallel()
	clock := gateClock{asked: make(chan time.Duration, 1), release: make(chan time.Time)}
	addr := startConfigService(t, io.Discard, subKey)
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t), Clock: clock, DrainDelay: 5 * time.Second}, nil)
	f.waitReady(t)

	// An in-flight request: its body is still arriving when the drain starts.
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", f.httpURL+"/echo/slow", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(gateway.SubscriptionKeyHeader, subKey)
	type result struct {
		resp *http.Response
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := newClient().Do(req)
		inflight <- result{resp, err}
	}()
	if _, err := pw.Write([]byte("first half, ")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to be in flight", func() bool { return f.g.InFlight() == 1 })

	f.g.Drain()
	if d := <-clock.asked; d != 5*time.Second {
		t.Errorf("drain delay = %v, want 5s", d)
	}
	// During the drain delay: health fails, traffic is still served, and
	// clients are told to reconnect elsewhere.
	for _, u := range statusPaths(f) {
		if r := get(t, u); r.status != http.StatusServiceUnavailable {
			t.Errorf("GET %s while draining = %d, want 503", u, r.status)
		}
	}
	r := do(t, "GET", f.httpURL+"/echo/during-drain", withKey(subKey), nil)
	if r.status != http.StatusOK || !r.close {
		t.Errorf("echo while draining = %d, Connection: close %v; want 200 and close", r.status, r.close)
	}

	// After the delay the listeners close, but the in-flight request finishes.
	close(clock.release)
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", f.g.HTTPAddr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-f.done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	if _, err := pw.Write([]byte("second half")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-inflight
	if res.err != nil {
		t.Fatalf("in-flight request failed: %v", res.err)
	}
	defer res.resp.Body.Close()
	var e gateway.EchoResponse
	if err := json.NewDecoder(res.resp.Body).Decode(&e); err != nil || res.resp.StatusCode != 200 {
		t.Fatalf("in-flight request = %d, %v", res.resp.StatusCode, err)
	}
	if e.Body != "first half, second half" {
		t.Errorf("in-flight body = %q", e.Body)
	}
	f.stop(t)
}

func TestStatsdMetrics(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	m := statsd.New(pc.LocalAddr().String(), standinlog.Discard())
	go m.Run(t.Context())

	addr := startConfigService(t, io.Discard, subKey)
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t), Metrics: m}, nil)
	f.waitReady(t)
	get(t, f.httpURL+gateway.StatusPath) // Probes are not API traffic: not counted.
	do(t, "GET", f.httpURL+"/echo/m", withKey(subKey), nil)
	get(t, f.httpURL+"/echo/m")

	want := []string{
		"requests:1|c|#api:echo,status:200,method:GET",
		"request_duration:*|ms|#api:echo,status:200,method:GET",
		"requests:1|c|#api:echo,status:401,method:GET",
		"request_duration:*|ms|#api:echo,status:401,method:GET",
	}
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range want {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		got := string(buf[:n])
		prefix, suffix, _ := strings.Cut(w, "*")
		if !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) {
			t.Errorf("packet %d = %q, want %q", i, got, w)
		}
	}
}

// TestLogsAreMarkedAndHoldNoSecrets runs the paths that touch the token and the
// keys (accepted, refused, expired, keys in header and query) with canary
// values, then checks every line, at debug level, of both modes.
func TestLogsAreMarkedAndHoldNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		canaryID     = "canary-gw-5d1e"
		canaryExpiry = "209912312359"
		canarySubKey = "canary-subscription-key-0c7a"
	)
	logs := &lockedBuffer{}
	addr := startConfigService(t, logs, canarySubKey)
	good := mint(t, gatewayKey, canaryID, time.Date(2099, 12, 31, 23, 59, 0, 0, time.UTC))
	bad := mint(t, "canary-wrong-key", canaryID, time.Date(2099, 12, 31, 23, 59, 0, 0, time.UTC))
	expired := mint(t, gatewayKey, canaryID, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))

	ok := startGateway(t, gateway.Options{Endpoint: addr, Auth: good, BackupDir: t.TempDir()}, logs)
	refused := startGateway(t, gateway.Options{Endpoint: addr, Auth: bad}, logs)
	old := startGateway(t, gateway.Options{Endpoint: addr, Auth: expired}, logs)
	ok.waitReady(t)
	old.waitReady(t)
	waitFor(t, "a refusal", func() bool { return logs.count("refused the token") > 0 })
	do(t, "GET", ok.httpURL+"/echo/a", withKey(canarySubKey), nil)
	get(t, ok.httpsURL+"/echo/b?subscription-key="+canarySubKey)
	do(t, "GET", ok.httpURL+"/echo/c", withKey(canarySubKey+"-wrong"), nil)
	do(t, "GET", old.httpURL+"/echo/d", withKey(canarySubKey), nil)
	for _, f := range []*fixture{ok, refused, old} {
		f.stop(t)
	}

	secrets := []string{good, bad, expired, gatewayKey, canaryID, canaryExpiry, canarySubKey}
	for _, tok := range []string{good, bad, expired} {
		secrets = append(secrets, tok[strings.LastIndex(tok, "&")+1:])
	}
	out := logs.String()
	lines := 0
	for line := range strings.Lines(out) {
		lines++
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if src, _ := m["source"].(string); !strings.HasSuffix(src, standinlog.SourceMark) {
			t.Errorf("line not marked stand-in: %q", line)
		}
		if ev, _ := m["eventType"].(string); ev == "" || ev == standinlog.UnnamedEvent {
			t.Errorf("line names no event: %q", line)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks a secret (%.6s…): %q", s, line)
			}
		}
	}
	for _, want := range []string{`"eventType":"GatewayLogs"`, `"eventType":"StandinConfigServiceRequest"`, "refused the token", "token has expired", "configuration loaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q; the test did not exercise what it checks", want)
		}
	}
	t.Logf("checked %d log lines", lines)
}
