package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/state"
)

// directCluster is the fake cluster with the node's published ports.
type directCluster struct {
	*fakeCluster
	addrs map[int]string
	err   error
}

func (d directCluster) DirectAddrs(context.Context) (map[int]string, error) { return d.addrs, d.err }

func TestDirectPath(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	addrs := map[int]string{31080: "127.0.0.1:40001", 31443: "127.0.0.1:40002"}
	marker := func(data map[string]string) {
		_ = w.kube.CoreV1().ConfigMaps(cluster.MarkerNamespace).Delete(ctx, cluster.MarkerName, metav1.DeleteOptions{})
		if _, err := w.kube.CoreV1().ConfigMaps(cluster.MarkerNamespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cluster.MarkerName, Namespace: cluster.MarkerNamespace}, Data: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	session := func(via string, c ClusterManager) *Session {
		s := w.session()
		s.Cluster, s.ForwardVia = c, via
		return s
	}

	// A cluster made before the mapping: auto keeps the tunnel and says why.
	marker(map[string]string{"createdBy": "apimdev"})
	d, err := session("", directCluster{w.kind, addrs, nil}).directPath(ctx)
	if err != nil || d != nil {
		t.Fatalf("marker without the mapping: %v, %v", d, err)
	}
	if !strings.Contains(w.log.text(), "--recreate") {
		t.Fatalf("no reason given:\n%s", w.log.text())
	}
	// --via node does not ask the marker.
	if d, err = session(ViaNode, directCluster{w.kind, addrs, nil}).directPath(ctx); err != nil || d == nil {
		t.Fatalf("--via node: %v, %v", d, err)
	}

	marker(map[string]string{"createdBy": "apimdev", "directNodePorts": "31080,31443"})
	d, err = session("", directCluster{w.kind, addrs, nil}).directPath(ctx)
	if err != nil || d == nil {
		t.Fatalf("auto on a cluster with the mapping: %v, %v", d, err)
	}
	if d.Addr[80] != "127.0.0.1:40001" || d.Addr[443] != "127.0.0.1:40002" {
		t.Fatalf("addresses by Service port: %v", d.Addr)
	}
	svc, err := w.kube.CoreV1().Services("apim-gateway").Get(ctx, "contoso-gw-direct", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the direct Service: %v", err)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 31080 || svc.Spec.Ports[1].NodePort != 31443 ||
		svc.Spec.Selector["app"] != "contoso-gw" || svc.Labels["app"] == "contoso-gw" {
		t.Fatalf("the direct Service: %+v", svc)
	}

	// --via tunnel: none; a bad --via: an error that names the choices.
	if d, err = session(ViaTunnel, directCluster{w.kind, addrs, nil}).directPath(ctx); err != nil || d != nil {
		t.Fatalf("--via tunnel: %v, %v", d, err)
	}
	if _, err = session("fast", directCluster{w.kind, addrs, nil}).directPath(ctx); err == nil || !strings.Contains(err.Error(), "auto, tunnel or node") {
		t.Fatalf("--via fast: %v", err)
	}
	// No published ports: auto falls back, node fails with the fix.
	noPorts := directCluster{w.kind, nil, errors.New("the node publishes no loopback port for node port 31080")}
	if d, err = session("", noPorts).directPath(ctx); err != nil || d != nil {
		t.Fatalf("auto without ports: %v, %v", d, err)
	}
	if _, err = session(ViaNode, noPorts).directPath(ctx); err == nil || !strings.Contains(err.Error(), "31080") || !strings.Contains(err.Error(), "--via auto") {
		t.Fatalf("--via node without ports: %v", err)
	}
	// A cluster apimdev did not make (--context): the tunnel.
	s := session("", directCluster{w.kind, addrs, nil})
	s.localCluster = false
	if d, err = s.directPath(ctx); err != nil || d != nil {
		t.Fatalf("--context: %v, %v", d, err)
	}
}

func TestUpReplacesTheForwardOfADeletedCluster(t *testing.T) {
	w := newWorld(t)
	helper, id := startHelper(t) // recorded below as StartDetachedForward records the forward
	// The forward of an earlier up, on the ports this one asks for; its
	// cluster was deleted by hand (the world's cluster is absent).
	if err := w.files.SaveForward(state.ForwardRecord{PID: helper.Pid, Process: id, HTTPPort: w.cfg.Forward.HTTPPort, HTTPSPort: w.cfg.Forward.HTTPSPort, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.files.Forward(); !ok {
		t.Fatal("the helper does not pass for a forward")
	}
	if _, err := w.up(UpOptions{}); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.text())
	}
	if !strings.Contains(w.log.text(), "it served the cluster this one replaces") {
		t.Fatalf("the old forward was not stopped:\n%s", w.log.text())
	}
	helper.Ends(t, 5*time.Second) // the old forward was stopped
	if strings.Contains(w.log.text(), "already running in the background") {
		t.Fatalf("up reused the old forward:\n%s", w.log.text())
	}
}
