package imagepin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	amd64Index = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}},
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"architecture":"unknown","os":"unknown"}}]}`
	multiList = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
{"digest":"sha256:aa","platform":{"architecture":"amd64","os":"linux"}},
{"digest":"sha256:cc","platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
{"digest":"sha256:dd","platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}`
)

// single is a single-platform manifest whose config blob is config.
func single(config string) (manifest, digest string) {
	sum := sha256.Sum256([]byte(config))
	digest = "sha256:" + hex.EncodeToString(sum[:])
	return `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + digest + `","size":1},"layers":[]}`, digest
}

// registry serves paths (below /v2/) and records what was asked.
type registry struct {
	mu     sync.Mutex
	asked  []string
	accept string
}

func (rg *registry) serve(t *testing.T, paths map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.mu.Lock()
		rg.asked = append(rg.asked, r.URL.Path)
		if strings.Contains(r.URL.Path, "/manifests/") {
			rg.accept = r.Header.Get("Accept")
		}
		rg.mu.Unlock()
		body, ok := paths[strings.TrimPrefix(r.URL.Path, "/v2/")]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (rg *registry) paths() []string {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return append([]string(nil), rg.asked...)
}

func (rg *registry) accepted() string {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.accept
}

func TestPlatformsOfAnIndexSkipTheAttestations(t *testing.T) {
	t.Parallel()
	var rg registry
	srv := rg.serve(t, map[string]string{"azure-api-management/gateway/manifests/v2": amd64Index, "x/multi/manifests/1.0": multiList})
	host := strings.TrimPrefix(srv.URL, "https://")
	r := Registry{Client: srv.Client()}
	ps, err := r.Platforms(context.Background(), host+"/azure-api-management/gateway:v2")
	if err != nil || len(ps) != 1 || ps[0].String() != "linux/amd64" {
		t.Fatalf("%v %v", ps, err)
	}
	for _, mt := range []string{mediaOCIIndex, mediaDockerList, mediaOCIManifest, mediaDockerSingle} {
		if !strings.Contains(rg.accepted(), mt) {
			t.Errorf("Accept %q lacks %s", rg.accepted(), mt)
		}
	}
	ps, err = r.Platforms(context.Background(), host+"/x/multi:1.0")
	if err != nil || len(ps) != 3 || ps[1].String() != "linux/arm64/v8" || ps[2].String() != "linux/arm/v7" {
		t.Fatalf("%v %v", ps, err)
	}
	ip := ImagePlatforms{Platforms: ps}
	if !ip.Has("arm64") || !ip.Has("amd64") || ip.Has("s390x") {
		t.Fatalf("Has: %v", ps)
	}
	if _, err := r.Platforms(context.Background(), host+"/x/none:1.0"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a missing manifest: %v", err)
	}
}

func TestASingleManifestsPlatformIsItsConfigBlobs(t *testing.T) {
	t.Parallel()
	config := `{"architecture":"arm64","os":"linux","rootfs":{"type":"layers"}}`
	m, digest := single(config)
	var rg registry
	srv := rg.serve(t, map[string]string{"gw/manifests/2.11.1": m, "gw/blobs/" + digest: config,
		"bad/manifests/1": m, "bad/blobs/" + digest: `{"architecture":"amd64","os":"linux"}`})
	host := strings.TrimPrefix(srv.URL, "https://")
	ps, err := Registry{Client: srv.Client()}.Platforms(context.Background(), host+"/gw:2.11.1")
	if err != nil || len(ps) != 1 || ps[0].String() != "linux/arm64" {
		t.Fatalf("%v %v", ps, err)
	}
	if asked := rg.paths(); len(asked) != 2 || asked[1] != "/v2/gw/blobs/"+digest {
		t.Fatalf("asked %v", asked)
	}
	// A blob that is not the one the manifest names is not believed.
	if _, err := (Registry{Client: srv.Client()}).Platforms(context.Background(), host+"/bad:1"); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("%v", err)
	}
}

// hubClient sends every connection to srv, as if it were Docker Hub and
// its token service, verifying srv's certificate.
func hubClient(srv *httptest.Server) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // a name in httptest's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	return &http.Client{Transport: tr}
}

func TestDockerHubsBearerChallengeIsAnsweredWithAnAnonymousToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var tokenQueries, hosts []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		switch {
		case r.URL.Path == "/token":
			mu.Lock()
			tokenQueries = append(tokenQueries, r.URL.RawQuery)
			mu.Unlock()
			if r.Header.Get("Authorization") != "" {
				t.Errorf("the token request carries credentials")
			}
			_, _ = w.Write([]byte(`{"token":"anon-123","expires_in":300}`))
		case r.Header.Get("Authorization") != "Bearer anon-123":
			scope := "repository:" + strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")[0] + ":pull"
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="`+scope+`"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		case r.URL.Path == "/v2/prom/statsd-exporter/manifests/v0.31.0", r.URL.Path == "/v2/library/alpine/manifests/latest":
			_, _ = w.Write([]byte(multiList))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	r := Registry{Client: hubClient(srv)}
	ps, err := r.Platforms(context.Background(), "prom/statsd-exporter:v0.31.0")
	if err != nil || len(ps) != 3 {
		t.Fatalf("%v %v", ps, err)
	}
	if ps, err := r.Platforms(context.Background(), "alpine"); err != nil || len(ps) != 3 {
		t.Fatalf("library image: %v %v", ps, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"scope=repository%3Aprom%2Fstatsd-exporter%3Apull&service=registry.docker.io", "scope=repository%3Alibrary%2Falpine%3Apull&service=registry.docker.io"}
	if len(tokenQueries) != 2 || tokenQueries[0] != want[0] || tokenQueries[1] != want[1] {
		t.Fatalf("token requests %q, want %q", tokenQueries, want)
	}
	// challenge, token, retry with it; for each image.
	wantHosts := []string{"registry-1.docker.io", "auth.docker.io", "registry-1.docker.io"}
	for i, h := range hosts {
		if h != wantHosts[i%3] {
			t.Fatalf("hosts asked %v", hosts)
		}
	}
}

func TestATokenRealmThatIsNotHTTPSIsRefused(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://auth.example.com/token",service="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	_, err := Registry{Client: srv.Client()}.Platforms(context.Background(), strings.TrimPrefix(srv.URL, "https://")+"/gw:1")
	if err == nil || !strings.Contains(err.Error(), "not an https address") || asked.Load() != 1 {
		t.Fatalf("%v (asked %d)", err, asked.Load())
	}
}

func TestAManifestLargerThanTheBoundIsRefused(t *testing.T) {
	t.Parallel()
	big := `{"manifests":[` + strings.Repeat(" ", maxManifest) + `]}`
	var rg registry
	srv := rg.serve(t, map[string]string{"gw/manifests/1": big})
	_, err := Registry{Client: srv.Client()}.Platforms(context.Background(), strings.TrimPrefix(srv.URL, "https://")+"/gw:1")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("%v", err)
	}
}

func TestBearerChallenge(t *testing.T) {
	t.Parallel()
	p, ok := bearerChallenge(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"`)
	if !ok || p["realm"] != "https://auth.docker.io/token" || p["service"] != "registry.docker.io" || p["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("%v", p)
	}
	p, ok = bearerChallenge(`bearer realm=https://r.example/t, service=reg, scope="x\"y"`)
	if !ok || p["realm"] != "https://r.example/t" || p["service"] != "reg" || p["scope"] != `x"y` {
		t.Fatalf("%v", p)
	}
	if _, ok := bearerChallenge(`Basic realm="x"`); ok {
		t.Fatal("a Basic challenge was taken for a Bearer one")
	}
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("ab", 32)
	for image, want := range map[string]Reference{
		"mcr.microsoft.com/azure-api-management/gateway:v2": {"mcr.microsoft.com", "azure-api-management/gateway", "v2"},
		"prom/statsd-exporter:v0.31.0":                      {"registry-1.docker.io", "prom/statsd-exporter", "v0.31.0"},
		"alpine":                                            {"registry-1.docker.io", "library/alpine", "latest"},
		"docker.io/kindest/node@" + d:                       {"registry-1.docker.io", "kindest/node", d},
		"localhost:5000/gw:1.2.3":                           {"localhost:5000", "gw", "1.2.3"},
	} {
		if got, err := ParseReference(image); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", image, got, err, want)
		}
	}
	for _, bad := range []string{"Upper/Case:1", "gw:a/../b", "gw:has space", "host.example/gw@sha256:short"} {
		if _, err := ParseReference(bad); err == nil {
			t.Errorf("%q was taken for a reference", bad)
		}
	}
}

func TestPlatformsOfPrefersTheLocalImageThenTheRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	asked := 0
	reg := func(context.Context, string) ([]Platform, error) {
		asked++
		return []Platform{{OS: "linux", Architecture: "amd64"}}, nil
	}
	p := Pinner{Platforms: reg, Local: local{found: true, platform: Platform{OS: "linux", Architecture: "arm64"}}}
	ip, err := p.PlatformsOf(ctx, "x/gw:1")
	if err != nil || ip.From != FromLocal || !ip.Has("arm64") || ip.Has("amd64") || asked != 0 {
		t.Fatalf("%+v %v (registry asked %d)", ip, err, asked)
	}
	p.Local = local{}
	if ip, err = p.PlatformsOf(ctx, "x/gw:1"); err != nil || ip.From != FromRegistry || !ip.Has("amd64") || asked != 1 {
		t.Fatalf("%+v %v (registry asked %d)", ip, err, asked)
	}
	p.Platforms = func(context.Context, string) ([]Platform, error) { return nil, errors.New("dial tcp: no such host") }
	if _, err = p.PlatformsOf(ctx, "x/gw:1"); err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("%v", err)
	}
}
