package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/relay"
	"github.com/apimdev/apimdev/internal/testdir"
)

// connected is a command's session as `apimdev backend …` opens it.
func (w *world) connected() *Session {
	w.t.Helper()
	s := w.session()
	if err := s.Resolve(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// backendObjects are the objects apimdev made for backends, by Kind/name.
func (w *world) backendObjects() []string {
	w.t.Helper()
	names, err := w.session().backendObjectNames(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// fakeRelayProgram is a Linux program for the relay's image: an ELF header
// is all the image maker reads.
func fakeRelayProgram(t *testing.T) {
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 62) // x86-64
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64)
	p := filepath.Join(testdir.New(t), "apimdev-linux")
	if err := os.WriteFile(p, append(h, "apimdev"...), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(RelayBinaryEnv, p)
}

func TestBackendAddRefusesBadInputAndLeavesNothing(t *testing.T) {
	fakeRelayProgram(t)
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	ctx := context.Background()
	if _, err := w.connected().BackendAdd(ctx, BackendAddOptions{Name: "orders", To: "127.0.0.1:8080"}); err != nil {
		t.Fatalf("first backend: %v\n%s", err, w.log.text())
	}
	before := w.backendObjects()
	for _, c := range []struct {
		o    BackendAddOptions
		want string
	}{
		{BackendAddOptions{Name: "stock", To: "192.168.1.5:80"}, "loopback"},
		{BackendAddOptions{Name: "Stock_API", To: "127.0.0.1:9000"}, "backend name"},
		{BackendAddOptions{Name: "stock", To: "127.0.0.1:8080"}, `taken by backend "orders"`},
		{BackendAddOptions{Name: "stock", Image: "stock:dev"}, "--image needs the port"},
		{BackendAddOptions{Name: "stock"}, "needs where the backend runs"},
		{BackendAddOptions{Name: "contoso-gw-live-traffic", To: "127.0.0.1:9000"}, "not a backend apimdev made"},
		{BackendAddOptions{Name: "stock", To: "127.0.0.1:4700"}, "control port"},
	} {
		_, err := w.connected().BackendAdd(ctx, c.o)
		var be *BackendError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &be) || be.Hint() == "" {
			t.Errorf("%+v: %v, want %q with a fix", c.o, err, c.want)
		}
	}
	if after := w.backendObjects(); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("bad input changed the cluster:\n before %v\n after  %v", before, after)
	}
	if bs := w.connected().recordedBackends(); len(bs) != 1 || bs[0].Name != "orders" {
		t.Errorf("record: %+v", bs)
	}
}

// A backend whose pods cannot start is taken back: no Service without
// its pod, and the record unchanged.
func TestBackendThatCannotStartIsTakenBack(t *testing.T) {
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	w.kube.Hold("apim-gateway", "stock", true)
	s := w.connected()
	s.Timeouts.Deploy = 300 * time.Millisecond
	_, err := s.BackendAdd(context.Background(), BackendAddOptions{Name: "stock", Image: "stock:dev", Port: 8080})
	if err == nil || !strings.Contains(err.Error(), "stock did not become ready") {
		t.Fatalf("err = %v", err)
	}
	if objs := w.backendObjects(); len(objs) != 0 {
		t.Errorf("left behind: %v", objs)
	}
	if bs := w.connected().recordedBackends(); len(bs) != 0 {
		t.Errorf("recorded: %+v", bs)
	}
	if !strings.Contains(w.log.text(), "taking back what this command made") {
		t.Errorf("not said:\n%s", w.log.text())
	}
}

// Backends are part of the record: up keeps them, promote gives the
// gateway's policy a rule for them and demotion takes it away, export
// leaves them out and says so, and down --keep-cluster removes them.
func TestBackendsFollowTheLifecycle(t *testing.T) {
	fakeRelayProgram(t)
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	ctx := context.Background()
	b, err := w.connected().BackendAdd(ctx, BackendAddOptions{Name: "orders", To: "127.0.0.1:8080"})
	if err != nil {
		t.Fatalf("add: %v\n%s", err, w.log.text())
	}
	if b.ShortURL != "http://orders:8080" || b.URL != "http://orders.apim-gateway.svc.cluster.local:8080" {
		t.Errorf("urls: %+v", b)
	}
	if _, err := w.connected().BackendAdd(ctx, BackendAddOptions{Name: "stock", Image: "stock:dev", Port: 9090}); err != nil {
		t.Fatalf("add image: %v\n%s", err, w.log.text())
	}
	want := "Deployment/apimdev-relay Deployment/stock Service/apimdev-relay Service/orders Service/stock"
	if got := strings.Join(w.backendObjects(), " "); got != want {
		t.Fatalf("objects: %s, want %s", got, want)
	}
	svc, err := w.kube.CoreV1().Services("apim-gateway").Get(ctx, "orders", metav1.GetOptions{})
	if err != nil || svc.Spec.Selector["app"] != gateway.RelayName || svc.Annotations[gateway.AnnotationTarget] != "127.0.0.1:8080" {
		t.Fatalf("orders' Service: %v %+v", err, svc)
	}

	// A lost state directory: the cluster's record still has them.
	w.files.ForgetRecord()
	mark := len(w.kube.Actions())
	mustUp(t, w, UpOptions{})
	if n := w.writes(mark); n != 0 {
		t.Errorf("up again made %d write(s)\n%s", n, w.log.text())
	}
	if bs := w.connected().recordedBackends(); len(bs) != 2 {
		t.Fatalf("after up: %+v", bs)
	}

	promote(t, w, PromoteOptions{To: "prod"})
	pol, err := w.kube.NetworkingV1().NetworkPolicies("apim-gateway").Get(ctx, gateway.BackendPolicyName, metav1.GetOptions{})
	if err != nil || pol.Spec.PodSelector.MatchLabels["app"] != "contoso-gw" {
		t.Fatalf("prod: the gateway may not call its backends: %v", err)
	}
	relay := w.deployment(gateway.RelayName)
	if relay.Spec.Template.Labels["apimdev.io/backend-pod"] != "true" || w.deployment("stock").Spec.Template.Labels["apimdev.io/backend-pod"] != "true" {
		t.Errorf("the policy's rule does not select the backends' pods")
	}
	if bs := w.connected().recordedBackends(); len(bs) != 2 {
		t.Fatalf("after promote: %+v", bs)
	}
	if left := w.connected().ExportLeavesOut(context.Background()); !strings.Contains(left, "orders (→ 127.0.0.1:8080") || !strings.Contains(left, "stock (image stock:dev)") {
		t.Errorf("export: %q", left)
	}

	promote(t, w, PromoteOptions{To: "dev"})
	if _, err := w.kube.NetworkingV1().NetworkPolicies("apim-gateway").Get(ctx, gateway.BackendPolicyName, metav1.GetOptions{}); err == nil {
		t.Errorf("dev: the backends' policy would hold the gateway's pods without the gateway's own")
	}

	if err := w.connected().BackendRemove(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(w.backendObjects(), " "); got != "Deployment/stock Service/stock" {
		t.Errorf("after remove: %s", got)
	}
	if _, err := w.kube.CoreV1().Secrets("apim-gateway").Get(ctx, gateway.RelayKeySecret, metav1.GetOptions{}); err == nil {
		t.Errorf("the relay's key outlived the relay")
	}
	err = w.connected().BackendRemove(ctx, "orders")
	if err == nil || !strings.Contains(err.Error(), `no backend "orders" (backends: stock)`) {
		t.Errorf("remove twice: %v", err)
	}

	if err := w.session().Down(ctx, true); err != nil {
		t.Fatal(err)
	}
	if objs := w.backendObjects(); len(objs) != 0 {
		t.Errorf("down --keep-cluster left: %v", objs)
	}
}

func TestBackendLogsSelectTheRightPods(t *testing.T) {
	fakeRelayProgram(t)
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	s := w.connected()
	if _, err := s.BackendAdd(context.Background(), BackendAddOptions{Name: "orders", To: "[::1]:3000", Port: 80}); err != nil {
		t.Fatal(err)
	}
	relay := w.deployment(gateway.RelayName)
	sc := relay.Spec.Template.Spec.SecurityContext
	if len(sc.Sysctls) != 1 || sc.Sysctls[0].Value != "0" {
		t.Errorf("port 80 without the unprivileged-port sysctl: %+v", sc)
	}
	if c := relay.Spec.Template.Spec.Containers[0]; c.ImagePullPolicy != corev1.PullNever || len(c.Command) != 0 || len(c.Args) != 0 {
		t.Errorf("the relay's container: pull %s, command %v, args %v; want never pulled, the image's entrypoint (apimdev relay) alone", c.ImagePullPolicy, c.Command, c.Args)
	}
	sel, ctr, _, err := w.connected().BackendLogs("orders")
	if err != nil || sel != "app=apimdev-relay" || ctr != "relay" {
		t.Errorf("logs: %s %s %v", sel, ctr, err)
	}
	if _, _, _, err := w.connected().BackendLogs("nope"); err == nil {
		t.Error("no error for an unknown backend")
	}
}

// The forward holds the relay's session for the programs on this machine:
// a connection to the relay's port for the backend reaches the program,
// backend list says answering, and down once the program stops.
func TestTheForwardHoldsTheRelaysSession(t *testing.T) {
	fakeRelayProgram(t)
	w := newWorld(t)
	mustUp(t, w, UpOptions{})

	prog := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprint(rw, "from the laptop") }))
	defer prog.Close()
	if _, err := w.connected().BackendAdd(context.Background(), BackendAddOptions{Name: "orders", To: prog.Listener.Addr().String(), Port: 8080}); err != nil {
		t.Fatalf("add: %v\n%s", err, w.log.text())
	}
	sec, err := w.kube.CoreV1().Secrets("apim-gateway").Get(context.Background(), gateway.RelayKeySecret, metav1.GetOptions{})
	key := string(sec.Data[gateway.RelayKeyField])
	if err != nil || len(key) != 64 {
		t.Fatalf("the relay's key: %v %q", err, key)
	}
	relayEnv := w.deployment(gateway.RelayName).Spec.Template.Spec.Containers[0].Env
	if len(relayEnv) != 1 || relayEnv[0].ValueFrom.SecretKeyRef.Name != gateway.RelayKeySecret {
		t.Fatalf("the relay does not get its key from the Secret: %+v", relayEnv)
	}
	if strings.Contains(w.log.text(), key) {
		t.Fatal("the relay's key is in the output")
	}

	// The relay as its pod runs it (with the Secret's key), its backend
	// ports on loopback.
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	bound := map[int]string{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- relay.Serve(ctx, ctl, relay.ServerOptions{Key: key, Listen: func(port int) (net.Listener, error) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err == nil {
				mu.Lock()
				bound[port] = l.Addr().String()
				mu.Unlock()
			}
			return l, err
		}})
	}()
	defer func() { cancel(); <-served }()
	w.pods.mu.Lock()
	w.pods.relay = ctl.Addr().String()
	w.pods.mu.Unlock()

	s := w.connected()
	stop, _, err := s.StartForward(context.Background(), w.cfg.Forward.HTTPPort, w.cfg.Forward.HTTPSPort)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	state := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			bs, err := w.connected().Backends(context.Background())
			if err == nil && len(bs) == 1 && bs[0].State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("backend state: %+v %v, want %s", bs, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	state("answering")
	mu.Lock()
	addr := bound[8080]
	mu.Unlock()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "from the laptop" {
		t.Fatalf("through the relay: %q", body)
	}
	prog.Close()
	state("down")
}

// An apimdev that makes its relay's image removes the ones other apimdev
// programs made (each upgrade's ~80 MB would stay otherwise), and only
// those: a name of the user's on one keeps that image, and an image named
// like a relay without the relay's label is not apimdev's.
func TestANewRelayImageRemovesTheOlderOnes(t *testing.T) {
	fakeRelayProgram(t)
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	bin, err := os.ReadFile(os.Getenv(RelayBinaryEnv))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	ref := relayImageRepo + ":" + hex.EncodeToString(sum[:6])
	w.docker.absent = map[string]bool{ref: true}
	older := func(version, tag string) string {
		var buf bytes.Buffer
		if err := relay.WriteImage(&buf, append(slices.Clone(bin), version...), tag); err != nil {
			t.Fatal(err)
		}
		id, err := w.docker.Add(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	v1 := older("v1", relayImageRepo+":aaaaaaaaaaaa")
	v2 := older("v2", relayImageRepo+":bbbbbbbbbbbb")
	w.docker.SetTag("mine/relay:keep", v2)
	lookalike, err := w.docker.Add(enginefake.Image{Ref: relayImageRepo + ":cccccccccccc", Layer: []byte("not a relay")}.Archive())
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if _, err := w.connected().BackendAdd(ctx, BackendAddOptions{Name: "orders", To: "127.0.0.1:8080"}); err != nil {
		t.Fatalf("add: %v\n%s", err, w.log.text())
	}
	if _, ok := w.docker.ImageID(ref); !ok {
		t.Fatalf("the new relay image %s is not on the engine", ref)
	}
	for _, gone := range []string{relayImageRepo + ":aaaaaaaaaaaa", relayImageRepo + ":bbbbbbbbbbbb"} {
		if _, ok := w.docker.ImageID(gone); ok {
			t.Errorf("%s is still on the engine", gone)
		}
	}
	if _, err := w.docker.Engine.ImageInspect(ctx, v1); err == nil {
		t.Errorf("the older relay image %s is still on the engine", v1)
	}
	if id, ok := w.docker.ImageID("mine/relay:keep"); !ok || id != v2 {
		t.Errorf("the user's name on an older relay image: %q %v", id, ok)
	}
	if id, ok := w.docker.ImageID(relayImageRepo + ":cccccccccccc"); !ok || id != lookalike {
		t.Errorf("an image without the relay's label was touched: %q %v", id, ok)
	}
	if !strings.Contains(w.log.text(), "removed the relay image(s) other apimdev programs made: "+relayImageRepo+":aaaaaaaaaaaa, "+relayImageRepo+":bbbbbbbbbbbb") {
		t.Errorf("up's progress does not say what it removed:\n%s", w.log.text())
	}

	// The image is there now: the next backend neither makes nor removes one.
	mark := len(w.docker.Calls())
	if _, err := w.connected().BackendAdd(ctx, BackendAddOptions{Name: "stock", To: "127.0.0.1:9090"}); err != nil {
		t.Fatalf("add: %v\n%s", err, w.log.text())
	}
	for _, c := range w.docker.Calls()[mark:] {
		if strings.HasPrefix(c, "rmi ") || c == "load" {
			t.Errorf("a second backend made or removed an image: %q", c)
		}
	}
}

func TestPodCannotStart(t *testing.T) {
	waiting := func(reason, msg string) corev1.Pod {
		return corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	for _, c := range []struct {
		pod  corev1.Pod
		want string
	}{
		{waiting("ContainerCreating", ""), ""},
		// The kubelet's cache of the relay's key Secret, made in the same apply.
		{waiting("CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition"), ""},
		{waiting("CreateContainerConfigError", `secret "apimdev-relay" not found`), `CreateContainerConfigError: secret "apimdev-relay" not found`},
		{waiting("ErrImageNeverPull", "Container image \"stock:dev\" is not present with pull policy of Never"), "ErrImageNeverPull: Container image \"stock:dev\" is not present with pull policy of Never"},
		{waiting("CrashLoopBackOff", "back-off 10s"), "it keeps exiting (CrashLoopBackOff)"},
		{corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient memory."}}}}, "no node has room: 0/1 nodes are available: 1 Insufficient memory."},
	} {
		if got := podCannotStart(c.pod); got != c.want {
			t.Errorf("%+v: %q, want %q", c.pod.Status, got, c.want)
		}
	}
}
