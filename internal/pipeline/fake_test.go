package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/imagepin"
	"github.com/apimdev/apimdev/internal/kubefake"
	"github.com/apimdev/apimdev/internal/nodeimage"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/apimdev/apimdev/internal/token"
)

// fakeCluster is the local kind cluster without kind: a state, and a record
// of what it was asked.
type fakeCluster struct {
	mu      sync.Mutex
	workers int           // the existing cluster's
	shape   cluster.Shape // what a new one would be made of
	state   cluster.ClusterState
	calls   []string
	fail    map[string]error // by method: Ensure, LoadImage
	kc      string
	node    string // the node image a new cluster is made from
}

var _ ClusterManager = (*fakeCluster)(nil)

func (f *fakeCluster) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	return f.fail[name]
}

func (f *fakeCluster) Inspect(context.Context) (cluster.ClusterState, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, ""
}

func (f *fakeCluster) Ensure(_ context.Context, st cluster.ClusterState, recreate bool, progress cluster.Progress) (bool, error) {
	if err := f.call("Ensure " + string(st)); err != nil {
		return false, err
	}
	progress("kind: Preparing nodes")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = cluster.ClusterOurs
	created := st == cluster.ClusterAbsent || recreate
	if created {
		f.workers = f.shape.Workers
	}
	return created, nil
}

func (f *fakeCluster) LoadImage(_ context.Context, img string, _ cluster.Progress) (string, bool, error) {
	if err := f.call("LoadImage " + img); err != nil {
		return "", false, err
	}
	return "loaded into the node (fake)", false, nil
}

func (f *fakeCluster) Delete() error {
	_ = f.call("Delete")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = cluster.ClusterAbsent
	return nil
}

func (f *fakeCluster) KubeconfigPath() string { return f.kc }
func (f *fakeCluster) NodeImage() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.node == "" {
		return cluster.DefaultNodeImage
	}
	return f.node
}
func (f *fakeCluster) UseNodeImage(ref string) {
	f.mu.Lock()
	f.node = ref
	f.mu.Unlock()
}
func (f *fakeCluster) Workers(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers, nil
}
func (f *fakeCluster) UseShape(s cluster.Shape) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shape = s
}
func (f *fakeCluster) RefreshKubeconfig() error { return nil }
func (f *fakeCluster) MergeKubeconfig(target string, switchContext bool) (string, error) {
	return "merged", f.call(fmt.Sprintf("MergeKubeconfig %s %v", target, switchContext))
}
func (f *fakeCluster) Exec(_ context.Context, out io.Writer, name string, args ...string) error {
	_ = f.call("Exec " + name + " " + strings.Join(args, " "))
	if name == "ls" && out != nil {
		fmt.Fprintln(out, "standin-configuration.json")
	}
	return nil
}

func (f *fakeCluster) asked(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// fakeDocker is enginefake's engine with every image on it: any name
// inspects as an image (every floating tag the same image as its 2.11.1)
// but the absent ones and any with "missing" in it, which the engine
// answers for itself (it holds them only once loaded or built here).
type fakeDocker struct {
	*enginefake.Engine
	// absent images are not on this machine.
	absent map[string]bool
	// imageArch is the local images' architecture ("": amd64).
	imageArch string
}

var _ cluster.Docker = (*fakeDocker)(nil)

func newFakeDocker() *fakeDocker { return &fakeDocker{Engine: enginefake.New()} }

func (d *fakeDocker) ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error) {
	if strings.Contains(ref, "missing") || d.absent[ref] {
		return d.Engine.ImageInspect(ctx, ref, opts...)
	}
	return image.InspectResponse{ID: "sha256:0123456789abcdef", RepoTags: []string{ref, strings.Split(ref, ":")[0] + ":2.11.1"}, Os: "linux", Architecture: cmp.Or(d.imageArch, "amd64")}, nil
}

// buildNode puts a node image built on this machine (label and all) on
// the engine.
func (d *fakeDocker) buildNode(t *testing.T, ref string) {
	t.Helper()
	if _, err := d.Add(enginefake.Image{Ref: ref, Layer: []byte("node " + ref), Labels: map[string]string{nodeimage.Label: "rig"}}.Archive()); err != nil {
		t.Fatal(err)
	}
}

// setArch makes the engine's architecture, as Info says it, arch.
func (d *fakeDocker) setArch(arch string) {
	d.SetInfo(func(i *system.Info) { i.Architecture = arch })
}

// fakePods stands in for every pod's ports: the gateway's HTTP and HTTPS
// (health, the demo's echo API) and the statsd exporter's metrics. broken
// makes the gateway answer 500.
type fakePods struct {
	mu      sync.Mutex
	broken  bool
	http    *httptest.Server
	https   *httptest.Server
	metrics *httptest.Server
	dials   map[string]int
	// relay is the address of a relay serving the pods' control port
	// (4700), when a test runs one.
	relay string
}

func newFakePods(t *testing.T) *fakePods {
	p := &fakePods{dials: map[string]int{}}
	gw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		broken := p.broken
		p.mu.Unlock()
		switch {
		case broken:
			http.Error(w, "broken on purpose", http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/echo"):
			if r.Header.Get(demo.SubscriptionHeader) == "" {
				http.Error(w, "no key", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"gateway":"stand-in","api":"echo"}`)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	p.http, p.https = httptest.NewServer(gw), httptest.NewTLSServer(gw)
	p.metrics = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "requests{status=\"200\"} 42\nrequest_duration{quantile=\"0.5\"} 0.001\n")
	}))
	t.Cleanup(func() { p.http.Close(); p.https.Close(); p.metrics.Close() })
	return p
}

func (p *fakePods) setBroken(b bool) {
	p.mu.Lock()
	p.broken = b
	p.mu.Unlock()
}

func (p *fakePods) Dial(_ context.Context, pod string) (forward.Tunnel, error) {
	p.mu.Lock()
	p.dials[pod]++
	p.mu.Unlock()
	return &podTunnel{p: p, done: make(chan struct{})}, nil
}

type podTunnel struct {
	p    *fakePods
	once sync.Once
	done chan struct{}
}

func (t *podTunnel) Open(port int) (forward.Stream, error) {
	if t.p.mu.Lock(); port == gateway.RelayControlPort && t.p.relay != "" {
		addr := t.p.relay
		t.p.mu.Unlock()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	}
	t.p.mu.Unlock()
	srv := map[int]*httptest.Server{8080: t.p.http, 8081: t.p.https, 9102: t.p.metrics}[port]
	if srv == nil {
		return nil, fmt.Errorf("no port %d on the fake pod", port)
	}
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
func (t *podTunnel) Close() error          { t.once.Do(func() { close(t.done) }); return nil }
func (t *podTunnel) Done() <-chan struct{} { return t.done }

// eventLog keeps every event a flow reported.
type eventLog struct {
	mu sync.Mutex
	ev []events.Event
}

func (l *eventLog) Emit(e events.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

// text is every event as "step state detail" lines.
func (l *eventLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.ev {
		fmt.Fprintf(&b, "%s %s %s\n", e.Step, e.State, e.Detail)
	}
	return b.String()
}

// failures counts the failure events.
func (l *eventLog) failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.ev {
		if e.State == events.Failed {
			n++
		}
	}
	return n
}

func (l *eventLog) reset() {
	l.mu.Lock()
	l.ev = nil
	l.mu.Unlock()
}

// world is one user's machine and cluster, all fake but the HTTP.
type world struct {
	t       *testing.T
	kube    *kubefake.Cluster
	kind    *fakeCluster
	docker  *fakeDocker
	pods    *fakePods
	log     *eventLog
	files   state.ClusterDir
	cfg     config.Config
	tok     token.Token
	now     time.Time
	version string
	// asks is what the user asks for on top of what is recorded (flags).
	asks func(*config.Config)
	// podLog, when set, is each pod's log as the kubelet serves it (each
	// line after its RFC 3339 time); opened records each open's options.
	podLog func(pod string) string
	opened []corev1.PodLogOptions
	mu     sync.Mutex
}

const testCanary = "Q0FOQVJZLXBpcGVsaW5lLXRlc3Q="

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := testdir.New(t)
	files, err := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.Name = "contoso-gw"
	cfg.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	free := testPorts(t)
	cfg.Forward.HTTPPort, cfg.Forward.HTTPSPort = free[0], free[1]
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tok, err := token.Parse("GatewayKey contoso-gw&202612301200&" + testCanary)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, kube: kubefake.NewCluster(), kind: &fakeCluster{state: cluster.ClusterAbsent, fail: map[string]error{}, kc: filepath.Join(dir, "kubeconfig")},
		docker: newFakeDocker(), pods: newFakePods(t), log: &eventLog{}, files: files, cfg: cfg, tok: tok, now: now, version: "test"}
}

// session is a new command's session on the world, as Open makes one: the
// state directory's copy of the record is read, the cluster is not.
func (w *world) session() *Session {
	s := &Session{Files: w.files, Rep: events.NewReporter(w.log, func() time.Time { return w.now }), Version: w.version,
		Cluster: w.kind, Docker: w.docker, Client: w.kube, Dial: w.pods, LookPath: func(string) (string, error) { return "/usr/bin/docker", nil },
		Pin: imagepin.Pinner{Tags: func(context.Context, string) ([]string, error) { return nil, errors.New("offline") },
			Platforms: func(context.Context, string) ([]imagepin.Platform, error) { return nil, errors.New("offline") }, Local: dockerImages{w.docker}},
		Now:          func() time.Time { return w.now },
		Timeouts:     Timeouts{Deploy: 2 * time.Second, Rollout: 2 * time.Second, Settle: 20 * time.Millisecond, Poll: 5 * time.Millisecond, ForwardStart: time.Second},
		localCluster: true}
	// As Open: settings.Resolve of the state directory's copy of the record
	// and the user's asks: the world's settings as a config file would give
	// them (what differs from the defaults), then the flags (w.asks).
	s.Asks = func(base config.Config) (config.Config, error) {
		asFile(reflect.ValueOf(&base).Elem(), reflect.ValueOf(w.cfg), reflect.ValueOf(config.Default()))
		if w.asks != nil {
			w.asks(&base)
		}
		return base, nil
	}
	if w.podLog != nil {
		s.openLog = func(_ context.Context, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
			w.mu.Lock()
			w.opened = append(w.opened, *o)
			w.mu.Unlock()
			text := w.podLog(pod)
			if o.TailLines != nil { // as the kubelet: the last lines only
				lines := strings.SplitAfter(text, "\n")
				if lines[len(lines)-1] == "" {
					lines = lines[:len(lines)-1]
				}
				text = strings.Join(lines[max(0, len(lines)-int(*o.TailLines)):], "")
			}
			if o.LimitBytes != nil && int64(len(text)) > *o.LimitBytes {
				text = text[:*o.LimitBytes]
			}
			return io.NopCloser(strings.NewReader(text)), nil
		}
	}
	s.known = rememberedKnown(w.files, w.cfg.Cluster.Name)
	if _, err := s.resolve(); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// asFile sets in dst what a config file holding cfg would: each field whose
// value differs from the default's.
func asFile(dst, cfg, def reflect.Value) {
	for i := range cfg.NumField() {
		switch f := cfg.Field(i); {
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(time.Time{}):
			asFile(dst.Field(i), f, def.Field(i))
		case !reflect.DeepEqual(f.Interface(), def.Field(i).Interface()):
			dst.Field(i).Set(f)
		}
	}
}

// asked is cfg with the user's asks on it.
func (w *world) asked(cfg config.Config) config.Config {
	if w.asks != nil {
		w.asks(&cfg)
	}
	return cfg
}

// up runs up as a new command with o, stopping its forward afterwards.
func (w *world) up(o UpOptions) (*UpResult, error) {
	w.t.Helper()
	s := w.session()
	if o.Token.IsZero() && !o.NoToken {
		o.Token = w.tok
	}
	res, err := s.Up(context.Background(), o)
	if res != nil && res.Stop != nil {
		res.Stop()
	}
	return res, err
}

// testPorts hands each world two local ports of its own. They come from
// below every system's ephemeral range (Linux 32768-60999, Windows and
// macOS 49152-65535), so neither another test's port-0 listener (the
// session forwards, a smoke call's source port) can take them between the
// pick and the test's own listen: a port picked by binding port 0 and
// released could, and did in CI. A process-wide set keeps parallel tests
// apart; the start is random so two test binaries rarely meet, and a port
// is only handed out after it was bound and released here.
func testPorts(t *testing.T) [2]int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	if portsNext == 0 {
		portsNext = 20000 + rand.IntN(10000)
	}
	var ps [2]int
	for i := range ps {
		for tries := 0; ; tries++ {
			if tries > 2000 {
				t.Fatal("no free local port below the ephemeral range")
			}
			p := portsNext
			portsNext++
			if portsNext >= 32000 {
				portsNext = 20000
			}
			if portsUsed[p] {
				continue
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				continue
			}
			l.Close()
			portsUsed[p] = true
			ps[i] = p
			break
		}
	}
	return ps
}

var (
	portsMu   sync.Mutex
	portsNext int
	portsUsed = map[int]bool{}
)
