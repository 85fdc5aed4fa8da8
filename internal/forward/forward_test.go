package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/ports"
)

// fakeBackends is a ready set the test edits.
type fakeBackends struct {
	mu      sync.Mutex
	ready   []Backend
	changed chan struct{}
	// readyCalls counts the looks at the ready pods.
	readyCalls atomic.Int64
}

func newFakeBackends(b ...Backend) *fakeBackends {
	return &fakeBackends{ready: b, changed: make(chan struct{})}
}
func (f *fakeBackends) Ready(int) []Backend {
	f.readyCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Backend(nil), f.ready...)
}
func (f *fakeBackends) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}
func (f *fakeBackends) set(b ...Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = b
	close(f.changed)
	f.changed = make(chan struct{})
}

// fakeDialer "tunnels" to a pod by dialling its httptest server directly.
type fakeDialer struct {
	mu     sync.Mutex
	pods   map[string]string // pod -> host:port
	broken map[string]bool   // Open fails, as on a tunnel to a dead pod
	dials  map[string]int
	// hang: how many of the next tunnels to a pod never answer an Open
	// until release is closed (a kubelet that restarted under the tunnel);
	// closing such a tunnel does not end the Open, as with SPDY.
	hang    map[string]int
	release chan struct{}
}

func (d *fakeDialer) Dial(_ context.Context, pod string) (Tunnel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials[pod]++
	addr, ok := d.pods[pod]
	if !ok {
		return nil, fmt.Errorf("pods %q not found", pod)
	}
	ft := &fakeTunnel{addr: addr, d: d, pod: pod, done: make(chan struct{})}
	if d.hang[pod] > 0 {
		d.hang[pod]--
		ft.hang = d.release
	}
	return ft, nil
}

// dialsTo reads the count under the lock: the forwarder dials from its own
// goroutines.
func (d *fakeDialer) dialsTo(pod string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[pod]
}

type fakeTunnel struct {
	addr string
	pod  string
	d    *fakeDialer
	done chan struct{}
	once sync.Once
	hang chan struct{} // non-nil: Open waits for it to close
}

func (t *fakeTunnel) Open(int) (Stream, error) {
	if t.hang != nil {
		<-t.hang
		return nil, errors.New("Timeout occurred")
	}
	t.d.mu.Lock()
	broken := t.d.broken[t.pod]
	t.d.mu.Unlock()
	if broken {
		t.Close()
		return nil, errors.New("connection reset by peer")
	}
	c, err := net.Dial("tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
func (t *fakeTunnel) Close() error          { t.once.Do(func() { close(t.done) }); return nil }
func (t *fakeTunnel) Done() <-chan struct{} { return t.done }

func podServer(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
	t.Cleanup(s.Close)
	return s
}

func startForwarder(t *testing.T, b Backends, d Dialer) (*Forwarder, string) {
	t.Helper()
	f := &Forwarder{Host: "127.0.0.1", Mappings: []Mapping{{LocalPort: 0, ServicePort: 80}}, Backends: b, Dialer: d, WaitReady: 3 * time.Second}
	url, _ := serve(t, f)
	return f, url
}

// serve runs f on a free port until the test ends (or stop is called, which
// waits for Serve to return) and gives its URL.
func serve(t *testing.T, f *Forwarder) (url string, stop func()) {
	t.Helper()
	ls, err := f.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Serve(ctx, ls); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return "http://" + ls[0].Addr().String(), stop
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET through the forward: %v", err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestForwardFollowsReadyPods(t *testing.T) {
	t.Parallel()
	a, b := podServer(t, "pod-a"), podServer(t, "pod-b")
	d := &fakeDialer{pods: map[string]string{"pod-a": a.Listener.Addr().String(), "pod-b": b.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080}, Backend{"pod-b", 8080})
	f, url := startForwarder(t, be, d)

	seen := map[string]int{}
	for range 6 {
		seen[get(t, url)]++
	}
	if seen["pod-a"] != 3 || seen["pod-b"] != 3 {
		t.Fatalf("connections not spread over ready pods: %v", seen)
	}
	if d.dialsTo("pod-a") != 1 || d.dialsTo("pod-b") != 1 {
		t.Fatalf("tunnels not reused: %d, %d dials", d.dialsTo("pod-a"), d.dialsTo("pod-b"))
	}
	// pod-a stops being ready (rollout): every new connection goes to pod-b.
	be.set(Backend{"pod-b", 8080})
	for range 4 {
		if got := get(t, url); got != "pod-b" {
			t.Fatalf("went to %s after it left the ready set", got)
		}
	}
	if f.Stats.Failed.Load() != 0 {
		t.Fatalf("failed connections: %d", f.Stats.Failed.Load())
	}
}

func TestForwardRecoversFromDeadPod(t *testing.T) {
	t.Parallel()
	a, b := podServer(t, "pod-a"), podServer(t, "pod-b")
	d := &fakeDialer{pods: map[string]string{"pod-a": a.Listener.Addr().String(), "pod-b": b.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080}, Backend{"pod-b", 8080})
	f, url := startForwarder(t, be, d)
	get(t, url)
	// pod-a dies before the endpoints say so: its tunnel breaks; the
	// connection is retried on pod-b instead of failing.
	d.mu.Lock()
	d.broken["pod-a"] = true
	d.mu.Unlock()
	for range 4 {
		if got := get(t, url); got != "pod-b" {
			t.Fatalf("got %s", got)
		}
	}
	if f.Stats.Retried.Load() == 0 || f.Stats.Failed.Load() != 0 {
		t.Fatalf("retried %d failed %d", f.Stats.Retried.Load(), f.Stats.Failed.Load())
	}
}

// After an engine restart a tunnel can stay connected while nothing answers
// through it: the stream open is given up on after OpenTimeout, the tunnel
// dropped, and the connection served through a tunnel dialled afresh.
func TestForwardGivesUpOnATunnelThatStoppedAnswering(t *testing.T) {
	t.Parallel()
	a := podServer(t, "pod-a")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	d := &fakeDialer{pods: map[string]string{"pod-a": a.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{},
		hang: map[string]int{"pod-a": 1}, release: release}
	f := &Forwarder{Host: "127.0.0.1", Mappings: []Mapping{{LocalPort: 0, ServicePort: 80}}, Backends: newFakeBackends(Backend{"pod-a", 8080}),
		Dialer: d, WaitReady: 5 * time.Second, OpenTimeout: 100 * time.Millisecond}
	url, _ := serve(t, f)
	start := time.Now()
	if got := get(t, url); got != "pod-a" {
		t.Fatalf("got %q", got)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the call took %s: the hung open was not given up on", took)
	}
	if n := d.dialsTo("pod-a"); n != 2 {
		t.Errorf("%d dials to pod-a, want 2 (the hung tunnel dropped, a new one dialled)", n)
	}
	if f.Stats.Retried.Load() != 1 || f.Stats.Failed.Load() != 0 {
		t.Errorf("retried %d, failed %d; want 1 and 0", f.Stats.Retried.Load(), f.Stats.Failed.Load())
	}
}

// A pod whose node stopped answering stays in the ready set for a while;
// after one failed attempt the forward passes it over instead of trying it
// on every new connection.
func TestForwardShunsAPodThatFailed(t *testing.T) {
	t.Parallel()
	a, b := podServer(t, "pod-a"), podServer(t, "pod-b")
	d := &fakeDialer{pods: map[string]string{"pod-a": a.Listener.Addr().String(), "pod-b": b.Listener.Addr().String()}, broken: map[string]bool{"pod-a": true}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080}, Backend{"pod-b", 8080})
	f, url := startForwarder(t, be, d)
	for range 8 {
		if got := get(t, url); got != "pod-b" {
			t.Fatalf("got %s", got)
		}
	}
	if n := d.dialsTo("pod-a"); n != 1 {
		t.Fatalf("pod-a was dialled %d times in 8 connections; want once, then shunned", n)
	}
	if f.Stats.Failed.Load() != 0 {
		t.Fatalf("failed connections: %d", f.Stats.Failed.Load())
	}
	// When it is the only ready pod, it is tried again (a restart, not a loss).
	d.mu.Lock()
	d.broken["pod-a"] = false
	d.mu.Unlock()
	be.set(Backend{"pod-a", 8080})
	if got := get(t, url); got != "pod-a" {
		t.Fatalf("got %s from the only ready pod", got)
	}
}

func TestForwardWaitsForAReadyPod(t *testing.T) {
	t.Parallel()
	a := podServer(t, "pod-new")
	d := &fakeDialer{pods: map[string]string{"pod-new": a.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{}}
	be := newFakeBackends()
	_, url := startForwarder(t, be, d)
	go func() {
		time.Sleep(50 * time.Millisecond) // the replacement pod becomes ready a little later
		be.set(Backend{"pod-new", 8080})
	}()
	if got := get(t, url); got != "pod-new" {
		t.Fatalf("got %s", got)
	}
}

func TestForwardGivesUpWithReason(t *testing.T) {
	t.Parallel()
	d := &fakeDialer{pods: map[string]string{}, broken: map[string]bool{}, dials: map[string]int{}}
	f := &Forwarder{Host: "127.0.0.1", Mappings: []Mapping{{ServicePort: 80}}, Backends: newFakeBackends(), Dialer: d, WaitReady: 20 * time.Millisecond}
	_, _, err := f.open(context.Background(), f.Mappings[0])
	if err == nil || !strings.Contains(err.Error(), "no ready gateway pod") {
		t.Fatalf("got %v", err)
	}
}

func TestListenNamesBusyPort(t *testing.T) {
	t.Parallel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	f := &Forwarder{Mappings: []Mapping{{LocalPort: 0, ServicePort: 80}, {LocalPort: port, ServicePort: 443, Flag: "--https-port"}}}
	_, err := f.Listen()
	var be *ports.BusyError
	if !errors.As(err, &be) || be.Port != port || !strings.Contains(be.Hint(), "--https-port") {
		t.Fatalf("got %v", err)
	}
}

func slice(name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "gw-live-traffic"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To[int32](8080)},
			{Name: ptr.To("https"), Port: ptr.To[int32](8081)},
		},
	}
}

func ep(pod string, ready, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Terminating: &terminating}}
}

func TestServiceBackendsFromEndpointSlices(t *testing.T) {
	t.Parallel()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "gw-live-traffic", Namespace: "ns"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}}
	cs := fake.NewClientset(svc, slice("s1", ep("old", false, true), ep("new", true, false), ep("starting", false, false)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := WatchService(ctx, cs, "ns", "gw-live-traffic")
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.Ready(80); len(got) != 1 || got[0] != (Backend{"new", 8080}) {
		t.Fatalf("port 80: %v", got)
	}
	if got := sb.Ready(443); len(got) != 1 || got[0].Port != 8081 {
		t.Fatalf("port 443: %v", got)
	}
	changed := sb.Changed()
	if _, err := cs.DiscoveryV1().EndpointSlices("ns").Update(ctx, slice("s1", ep("new", true, false), ep("starting", true, false)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen")
	}
	if sb.ReadyPods() != 2 {
		t.Fatalf("ready pods: %v", sb.Ready(80))
	}
}
