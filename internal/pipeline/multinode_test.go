package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/kubefake"
)

// newMultiNodeWorld is a world whose cluster, once made, has a control plane
// and three workers in three zones.
func newMultiNodeWorld(t *testing.T) *world {
	w := newWorld(t)
	w.kube = kubefake.NewMultiNode(3)
	w.cfg.Cluster.Workers = 3
	return w
}

func (w *world) gatewayPods() []corev1.Pod {
	w.t.Helper()
	l, err := w.kube.CoreV1().Pods("apim-gateway").List(context.Background(), metav1.ListOptions{LabelSelector: "app=contoso-gw"})
	if err != nil {
		w.t.Fatal(err)
	}
	return l.Items
}

// On three workers the prod profile spreads one pod per zone, serves its
// backup claim ReadWriteMany from the shared directory, fits its requests
// per node, and status tells zones, nodes and which nodes answer NodePorts.
func TestPromoteOnThreeZones(t *testing.T) {
	t.Parallel()
	w := newMultiNodeWorld(t)
	mustUp(t, w, UpOptions{})
	if w.kind.shape.Workers != 3 || len(w.kind.shape.Zones) != 3 {
		t.Fatalf("the cluster was made with %+v", w.kind.shape)
	}
	res := promote(t, w, PromoteOptions{To: "prod"})
	var spread *CheckResult
	for i, c := range res.Checks {
		if !c.OK {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
		if c.Name == "spread" {
			spread = &res.Checks[i]
		}
	}
	if spread == nil || !strings.HasPrefix(spread.Detail, "1/1/1 over 3 zone(s) (local-1: fake-worker 1; local-2: fake-worker2 1; local-3: fake-worker3 1)") {
		t.Fatalf("spread check: %+v", spread)
	}
	if res.Spread == nil || !res.Spread.Even || res.Spread.Pods != 3 || len(res.Spread.Zones) != 3 {
		t.Fatalf("spread in the result: %+v", res.Spread)
	}
	pvc, err := w.kube.CoreV1().PersistentVolumeClaims("apim-gateway").Get(context.Background(), "contoso-gw-config-backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.AccessModes[0] != corev1.ReadWriteMany || *pvc.Spec.StorageClassName != gateway.SharedStorageClass || pvc.Spec.VolumeName != "apimdev-apim-gateway-contoso-gw-backup" {
		t.Fatalf("backup claim: %+v", pvc.Spec)
	}
	pv, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != cluster.SharedMount+"/apim-gateway/contoso-gw" {
		t.Fatalf("shared volume: %v %+v", err, pv)
	}
	// Fitted per node: 4 pods (3 + surge) over 3 nodes is 2 to a node.
	if !strings.Contains(res.FitNote, "they go 2 to a node over 3 nodes") {
		t.Errorf("fit note: %s", res.FitNote)
	}
	d := w.deployment("contoso-gw")
	if tol := d.Spec.Template.Spec.Tolerations; len(tol) != 2 || *tol[1].TolerationSeconds != gateway.NodeLossSeconds {
		t.Errorf("tolerations: %+v", tol)
	}

	st := w.session().Status(context.Background())
	if len(st.Nodes) != 4 || st.Spread == nil || !st.Spread.Even || st.NodePorts == nil {
		t.Fatalf("status: %+v", st)
	}
	if strings.Join(st.NodePorts.NoAnswer, ",") != "fake-control-plane" || len(st.NodePorts.Answer) != 3 {
		t.Fatalf("NodePort answers: %+v", st.NodePorts)
	}

	// Back to dev: the shared volume goes with the claim.
	promote(t, w, PromoteOptions{To: "dev"})
	if _, err := w.kube.CoreV1().PersistentVolumes().Get(context.Background(), pvc.Spec.VolumeName, metav1.GetOptions{}); err == nil {
		t.Error("the shared volume survived the demotion")
	}
}

// drain cordons the node, retries what the budget refuses, and returns once
// the gateway is whole elsewhere; uncordon undoes the cordon.
func TestDrainRetriesRefusedEvictionsAndUncordonUndoesIt(t *testing.T) {
	t.Parallel()
	w := newMultiNodeWorld(t)
	mustUp(t, w, UpOptions{})
	promote(t, w, PromoteOptions{To: "prod"})
	// An unmanaged pod elsewhere and a DaemonSet pod on the node stay out of it.
	ctx := context.Background()
	ds := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-x", Namespace: "kube-system",
		OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "kube-proxy", Controller: ptrTo(true), APIVersion: "apps/v1", UID: "u"}}},
		Spec: corev1.PodSpec{NodeName: "fake-worker2"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if _, err := w.kube.CoreV1().Pods("kube-system").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.kube.RefuseEvictions(2)
	w.log.reset()
	res, err := w.session().Drain(ctx, DrainOptions{Node: "fake-worker2"})
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, w.log.text())
	}
	gw := 0
	for _, e := range res.Evicted {
		if strings.HasPrefix(e, "apim-gateway/contoso-gw-") && !strings.Contains(e, "statsd") {
			gw++
		}
	}
	if res.Refused != 2 || gw != 1 || len(res.Moved) != 1 || !strings.HasPrefix(res.Moved[0], "3/3 ready on ") {
		t.Fatalf("drain: %+v", res)
	}
	if !strings.Contains(w.log.text(), "refused: Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Errorf("the refusal was not told:\n%s", w.log.text())
	}
	for _, p := range w.gatewayPods() {
		if p.Spec.NodeName == "fake-worker2" {
			t.Errorf("gateway pod %s still on the drained node", p.Name)
		}
	}
	if len(w.gatewayPods()) != 3 {
		t.Errorf("%d gateway pods after the drain", len(w.gatewayPods()))
	}
	n, _ := w.kube.CoreV1().Nodes().Get(ctx, "fake-worker2", metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Fatal("the node is not cordoned")
	}
	if _, err := w.kube.CoreV1().Pods("kube-system").Get(ctx, "kube-proxy-x", metav1.GetOptions{}); err != nil {
		t.Errorf("the DaemonSet pod was evicted: %v", err)
	}
	if st := w.session().Status(ctx); st.Spread == nil || st.Spread.Even {
		t.Errorf("status after the drain should say the spread is uneven: %+v", st.Spread)
	}
	if err := w.session().Uncordon(ctx, "fake-worker2"); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.kube.CoreV1().Nodes().Get(ctx, "fake-worker2", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Fatal("uncordon left the node unschedulable")
	}
}

func TestDrainRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One node: nowhere to go.
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	_, err := w.session().Drain(ctx, DrainOptions{Node: "fake-control-plane"})
	var ne *NodeError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "nowhere to run") || !strings.Contains(err.Error(), "--workers 3 --recreate") {
		t.Fatalf("draining the only node: %v", err)
	}
	// A node that does not exist: the nodes there are are named.
	m := newMultiNodeWorld(t)
	mustUp(t, m, UpOptions{})
	_, err = m.session().Drain(ctx, DrainOptions{Node: "fake-worker9"})
	if !errors.As(err, &ne) || !strings.Contains(ne.Hint(), "fake-worker, fake-worker2, fake-worker3") {
		t.Fatalf("unknown node: %v", err)
	}
	// A pod nothing would restart: refused, nothing cordoned.
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "scratch", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "fake-worker3"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if _, err := m.kube.CoreV1().Pods("default").Create(ctx, bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = m.session().Drain(ctx, DrainOptions{Node: "fake-worker3"})
	if err == nil || !strings.Contains(err.Error(), "default/scratch") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("bare pod: %v", err)
	}
	if n, _ := m.kube.CoreV1().Nodes().Get(ctx, "fake-worker3", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Fatal("a refused drain cordoned the node")
	}
}

// kind cannot add nodes: asking an existing one-node cluster for workers
// says how to get them, and changes nothing.
func TestUpWithWorkersOnAOneNodeClusterExplainsRecreate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	w.asks = func(c *config.Config) { c.Cluster.Workers = 3 }
	mark := len(w.kube.Actions())
	_, err := w.up(UpOptions{})
	var se *cluster.ShapeError
	if !errors.As(err, &se) || se.Have != 0 || se.Want != 3 || !strings.Contains(se.Hint(), "apimdev up --workers 3 --recreate") {
		t.Fatalf("up --workers 3 on one node: %v", err)
	}
	if w.writes(mark) != 0 || w.kind.asked("Ensure") != 1 {
		t.Fatalf("a refused up changed something: %d writes, %v", w.writes(mark), w.kind.calls)
	}
	// Without the ask, the cluster's own count is the setting.
	w.asks = nil
	mustUp(t, w, UpOptions{})
}

func ptrTo[T any](v T) *T { return &v }
