package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/imagepin"
	"github.com/apimdev/apimdev/internal/kubefake"
)

const (
	ociIndex  = "application/vnd.oci.image.index.v1+json"
	amd64Only = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}},
{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"architecture":"unknown","os":"unknown"}}]}`
	multiArch = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
{"digest":"sha256:aa","platform":{"architecture":"amd64","os":"linux"}},
{"digest":"sha256:cc","platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`
	gatewayPath = "/azure-api-management/gateway"
)

// fakeRegistry is a registry's v2 API over TLS: manifests and blobs by
// path below /v2/, and a count of what it was asked.
type fakeRegistry struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths map[string]string
	asked int
}

func newFakeRegistry(t *testing.T, paths map[string]string) *fakeRegistry {
	t.Helper()
	r := &fakeRegistry{paths: paths}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.asked++
		body, ok := r.paths[strings.TrimPrefix(req.URL.Path, "/v2/")]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", ociIndex)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// image is the reference of repo:tag on this registry.
func (r *fakeRegistry) image(repo, tag string) string {
	return strings.TrimPrefix(r.srv.URL, "https://") + repo + ":" + tag
}

func (r *fakeRegistry) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked
}

// session is a new command's session on w that asks reg for platforms
// (and pins to 2.11.1).
func (r *fakeRegistry) session(w *world) *Session {
	s := w.session()
	s.Pin = imagepin.Pinner{HTTP: r.srv.Client(), Local: dockerImages{w.docker},
		Tags: func(context.Context, string) ([]string, error) { return []string{"2.11.1", "v2"}, nil }}
	return s
}

// archOf sets the architecture every node of w's cluster reports.
func (w *world) archOf(arch string, nodes ...string) {
	w.t.Helper()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	for _, name := range nodes {
		o, err := w.kube.Tracker().Get(gvr, "", name)
		if err != nil {
			w.t.Fatal(err)
		}
		n := o.(*corev1.Node).DeepCopy()
		n.Status.NodeInfo.Architecture = arch
		if err := w.kube.Tracker().Update(gvr, n, ""); err != nil {
			w.t.Fatal(err)
		}
	}
}

// upOn runs up on s, stopping its forward afterwards.
func upOn(w *world, s *Session) (*UpResult, error) {
	res, err := s.Up(context.Background(), UpOptions{Token: w.tok})
	if res != nil && res.Stop != nil {
		res.Stop()
	}
	return res, err
}

// platformLine is the platform check of `apimdev preflight` on s, and
// preflight's error.
func platformLine(t *testing.T, w *world, s *Session) (cluster.Check, error) {
	t.Helper()
	res, err := s.Preflight(context.Background(), w.tok, "", nil)
	for _, c := range res.Checks {
		if c.Name == "platform" {
			return c, err
		}
	}
	t.Fatalf("preflight has no platform check: %+v (%v)", res.Checks, err)
	return cluster.Check{}, err
}

// An arm64 node and a gateway image published for amd64 only: preflight
// (alone, and up's) fails naming both and the ways out, before the cluster
// is touched or any image loaded.
func TestAnArm64NodeRefusesAnAmd64OnlyImageBeforeAnythingChanges(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/v2": amd64Only})
	img := reg.image(gatewayPath, "v2")
	w.cfg.Gateway.Image = img
	w.docker.absent = map[string]bool{img: true}
	w.docker.setArch("aarch64")
	w.kind.state = cluster.ClusterOurs
	w.archOf("arm64", "fake-control-plane")
	mark := len(w.kube.Actions())

	c, err := platformLine(t, w, reg.session(w))
	if err == nil || c.OK || !strings.Contains(c.Problem, img+" is built for linux/amd64 only, not linux/arm64") ||
		!strings.Contains(c.Problem, "nodes are arm64") || !strings.Contains(c.Fix, "--image") || !strings.Contains(c.Fix, "apimdev up --demo") ||
		!strings.Contains(c.Fix, "amd64 engine") {
		t.Fatalf("preflight: %+v (%v)", c, err)
	}
	_, err = upOn(w, reg.session(w))
	if err == nil || !strings.Contains(err.Error(), img+" is built for linux/amd64 only") || !strings.Contains(err.Error(), "nodes are arm64") {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	if n := w.writes(mark); n != 0 {
		t.Fatalf("the refused up wrote %d time(s): %v", n, w.kube.Actions()[mark:])
	}
	if w.kind.asked("LoadImage") != 0 || w.kind.asked("Ensure") != 0 {
		t.Fatalf("the refused up touched the cluster: %v", w.kind.calls)
	}
}

// Before the cluster exists, the engine's architecture is the nodes'.
func TestANewClusterIsHeldToTheEnginesArchitecture(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/v2": amd64Only})
	img := reg.image(gatewayPath, "v2")
	w.cfg.Gateway.Image = img
	w.docker.absent = map[string]bool{img: true}
	w.docker.setArch("aarch64")
	_, err := upOn(w, reg.session(w))
	if err == nil || !strings.Contains(err.Error(), "the Docker engine is arm64, as a new cluster's nodes will be") || w.kind.asked("Ensure") != 0 || w.kind.asked("LoadImage") != 0 {
		t.Fatalf("%v %v\n%s", err, w.kind.calls, w.log.text())
	}
}

func TestAnImageWithTheNodesArchitecturePasses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		index, arch, want string
	}{
		{amd64Only, "amd64", "has linux/amd64; nodes are amd64"},
		{multiArch, "amd64", "has linux/amd64, linux/arm64/v8; nodes are amd64"},
		{multiArch, "arm64", "has linux/amd64, linux/arm64/v8; nodes are arm64"},
	} {
		w := newWorld(t)
		reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/v2": tt.index})
		img := reg.image(gatewayPath, "v2")
		w.cfg.Gateway.Image = img
		w.docker.absent = map[string]bool{img: true}
		w.docker.setArch(map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[tt.arch])
		w.kind.state = cluster.ClusterOurs
		w.archOf(tt.arch, "fake-control-plane")
		c, err := platformLine(t, w, reg.session(w))
		if err != nil || !c.OK || c.Warn || c.Detail != img+" "+tt.want {
			t.Fatalf("%s on %s: %+v (%v)", tt.index[:60], tt.arch, c, err)
		}
		if tt.arch == "arm64" {
			// The whole up goes through, and loads what it checked.
			if _, err := upOn(w, reg.session(w)); err != nil || w.kind.asked("LoadImage "+img) != 1 {
				t.Fatalf("up: %v %v\n%s", err, w.kind.calls, w.log.text())
			}
		}
	}
}

// A single-platform manifest says its platform in its config blob.
func TestAnArm64OnlyManifestFailsOnAnAmd64Engine(t *testing.T) {
	t.Parallel()
	config := `{"architecture":"arm64","os":"linux","config":{}}`
	sum := sha256.Sum256([]byte(config))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + digest + `"},"layers":[]}`
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{"example/gw/manifests/1.0.0": manifest, "example/gw/blobs/" + digest: config})
	img := reg.image("/example/gw", "1.0.0")
	w.cfg.Gateway.Image = img
	w.docker.absent = map[string]bool{img: true}
	c, err := platformLine(t, w, reg.session(w))
	if err == nil || c.OK || !strings.Contains(c.Problem, img+" is built for linux/arm64 only, not linux/amd64; the Docker engine is amd64") {
		t.Fatalf("%+v (%v)", c, err)
	}
	// No amd64 engine to suggest for an arm64 image.
	if strings.Contains(c.Fix, "amd64 engine") || !strings.Contains(c.Fix, "linux/amd64") {
		t.Fatalf("fix: %s", c.Fix)
	}
}

// A registry out of reach: a warning, once, and up goes on.
func TestAnUnreachableRegistryWarnsAndDoesNotBlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, nil)
	img := reg.image(gatewayPath, "v2")
	reg.srv.Close()
	w.cfg.Gateway.Image = img
	w.docker.absent = map[string]bool{img: true}
	if _, err := upOn(w, reg.session(w)); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	var warned []events.Event
	w.log.mu.Lock()
	for _, e := range w.log.ev {
		if e.State == events.Warning && strings.Contains(e.Detail, "could not check "+img+"'s platforms") {
			warned = append(warned, e)
		}
	}
	w.log.mu.Unlock()
	if len(warned) != 1 || warned[0].Step != "platform" || strings.Contains(warned[0].Detail, "\n") {
		t.Fatalf("warnings %+v\n%s", warned, w.log.text())
	}
}

// What this machine has is what apimdev loads: its architecture wins.
func TestALocalImageWinsOverTheRegistry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/v2": amd64Only})
	img := reg.image(gatewayPath, "v2")
	w.cfg.Gateway.Image = img
	w.docker.setArch("aarch64")
	w.docker.imageArch = "arm64"
	if _, err := upOn(w, reg.session(w)); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	if !strings.Contains(w.log.text(), "✓ platform: "+img+" has linux/arm64 (the local image); the Docker engine is arm64") || reg.requests() != 0 {
		t.Fatalf("registry asked %d time(s)\n%s", reg.requests(), w.log.text())
	}
}

// promote and upgrade to an image the nodes cannot run stop at the plan:
// nothing loaded, nothing written.
func TestPromoteAndUpgradeRefuseAnImageTheNodesCannotRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/2.11.1": amd64Only, gatewayPath[1:] + "/manifests/2.12.0": amd64Only})
	w.cfg.Gateway.Image = reg.image(gatewayPath, "v2")
	w.docker.setArch("aarch64")
	w.docker.imageArch = "arm64" // the v2 here is an arm64 build
	w.archOf("arm64", "fake-control-plane")
	if _, err := upOn(w, reg.session(w)); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	pinned, next := reg.image(gatewayPath, "2.11.1"), reg.image(gatewayPath, "2.12.0")
	w.docker.absent = map[string]bool{pinned: true, next: true}
	mark, loads := len(w.kube.Actions()), w.kind.asked("LoadImage")

	_, err := reg.session(w).Promote(context.Background(), PromoteOptions{To: "prod"})
	var pe *PlatformError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), pinned+" is built for linux/amd64 only, not linux/arm64") {
		t.Fatalf("promote: %v\n%s", err, w.log.text())
	}
	// upgrade: the same profile, another tag.
	w.asks = func(c *config.Config) { c.Gateway.Image = next }
	s := reg.session(w)
	if err := s.Resolve(context.Background()); err != nil || s.Recorded == nil {
		t.Fatalf("resolve: %v", err)
	}
	_, err = s.Promote(context.Background(), PromoteOptions{To: s.Recorded.Profile})
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), next+" is built for linux/amd64 only") || !strings.Contains(events.HintOf(err), "--image") {
		t.Fatalf("upgrade: %v\n%s", err, w.log.text())
	}
	if n := w.writes(mark); n != 0 || w.kind.asked("LoadImage") != loads {
		t.Fatalf("refused rollouts wrote %d time(s), loaded %d image(s): %v", n, w.kind.asked("LoadImage")-loads, w.kind.calls)
	}
}

// Every node that would run the gateway counts; a tainted control plane
// does not.
func TestEveryNodeThatWouldRunTheGatewayIsCovered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.kube = kubefake.NewMultiNode(2)
	w.archOf("amd64", "fake-worker")
	w.archOf("arm64", "fake-control-plane", "fake-worker2")
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/v2": amd64Only})
	img := reg.image(gatewayPath, "v2")
	w.docker.absent = map[string]bool{img: true}
	s := reg.session(w)
	var warned []string
	warn := func(m string) { warned = append(warned, m) }
	err := s.requirePlatforms(context.Background(), []roleImage{{img, "--image"}}, "", nil, warn)
	if err == nil || !strings.Contains(err.Error(), "nodes are amd64 (fake-worker), arm64 (fake-worker2)") || len(warned) != 0 {
		t.Fatalf("%v %v", err, warned)
	}
	w.archOf("amd64", "fake-worker2")
	if err := s.requirePlatforms(context.Background(), []roleImage{{img, "--image"}}, "", nil, warn); err != nil || len(warned) != 0 {
		t.Fatalf("the tainted control plane counted: %v %v", err, warned)
	}
}

// Another cluster (promote --context): its nodes through its API, its own
// ways out; nodes that do not say are a warning, not the engine's.
func TestAnotherClustersNodesHaveTheirOwnWaysOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	reg := newFakeRegistry(t, map[string]string{gatewayPath[1:] + "/manifests/2.11.1": amd64Only})
	img := reg.image(gatewayPath, "2.11.1")
	w.docker.absent = map[string]bool{img: true}
	w.docker.imageArch = "arm64" // the statsd exporter here is an arm64 build
	s := reg.session(w)
	s.localCluster = false
	var warned []string
	warn := func(m string) { warned = append(warned, m) }
	images := []roleImage{{img, "--image"}, {"prom/statsd-exporter:v0.31.0", "prod.statsdImage"}}
	if err := s.requirePlatforms(context.Background(), images, "aks-prod", nil, warn); err != nil || len(warned) != 1 || !strings.Contains(warned[0], "no node says its architecture") {
		t.Fatalf("nodes without an architecture: %v %v", err, warned)
	}
	w.archOf("arm64", "fake-control-plane")
	err := s.requirePlatforms(context.Background(), images, "aks-prod", nil, warn)
	hint := events.HintOf(err)
	if err == nil || !strings.Contains(err.Error(), "the nodes of context aks-prod are arm64") || strings.Contains(err.Error(), "statsd") ||
		!strings.Contains(hint, "node pool") || strings.Contains(hint, "--demo") {
		t.Fatalf("%v\nfix: %s", err, hint)
	}
}
