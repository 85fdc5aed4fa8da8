package kubefake

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// The fake is what the flows' tests stand on: each thing it claims to do
// of a real API server and controllers is proven here.

func deployment(replicas int32) *appsv1.Deployment {
	lbl := map[string]string{"app": "gw"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gw", Image: "gw:1"}}}}},
	}
}

func pods(t *testing.T, c *Cluster) []corev1.Pod {
	t.Helper()
	l, err := c.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestADeploymentGetsItsPodsReadyAndItsStatus(t *testing.T) {
	ctx := context.Background()
	c := NewCluster()
	if _, err := c.AppsV1().Deployments("ns").Create(ctx, deployment(3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ps := pods(t, c)
	if len(ps) != 3 {
		t.Fatalf("%d pods", len(ps))
	}
	for _, p := range ps {
		if p.Spec.NodeName != "fake-control-plane" || p.Status.Conditions[0].Status != corev1.ConditionTrue || p.Labels["app"] != "gw" {
			t.Fatalf("pod %s on %q, ready %v, labels %v", p.Name, p.Spec.NodeName, p.Status.Conditions[0].Status, p.Labels)
		}
	}
	d, _ := c.AppsV1().Deployments("ns").Get(ctx, "gw", metav1.GetOptions{})
	if d.Status.ReadyReplicas != 3 || d.Status.UpdatedReplicas != 3 {
		t.Fatalf("status %+v", d.Status)
	}
	// A held Deployment's next pods never get ready.
	c.Hold("ns", "gw", true)
	d.Spec.Template.Spec.Containers[0].Image = "gw:2"
	if _, err := c.AppsV1().Deployments("ns").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.AppsV1().Deployments("ns").Get(ctx, "gw", metav1.GetOptions{})
	if ps := pods(t, c); len(ps) != 3 || ps[0].Status.Conditions[0].Status != corev1.ConditionFalse || d.Status.ReadyReplicas != 0 {
		t.Fatalf("held: %d pods, ready %d", len(ps), d.Status.ReadyReplicas)
	}
	// Deleted, it leaves no pods.
	if err := c.AppsV1().Deployments("ns").Delete(ctx, "gw", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ps := pods(t, c); len(ps) != 0 {
		t.Fatalf("%d pods left", len(ps))
	}
}

// A dry-run apply changes nothing; a real write bumps resourceVersion only
// when it changes something, so "unchanged" can be told from "configured".
func TestDryRunChangesNothingAndUnchangedKeepsItsVersion(t *testing.T) {
	ctx := context.Background()
	c := New()
	cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"},"data":{"k":"v"}}`)
	apply := func(data []byte, dry bool) {
		t.Helper()
		o := metav1.PatchOptions{FieldManager: "t", Force: ptr.To(true)}
		if dry {
			o.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := c.CoreV1().ConfigMaps("ns").Patch(ctx, "x", types.ApplyPatchType, data, o); err != nil {
			t.Fatal(err)
		}
	}
	apply(cm, true)
	if _, err := c.CoreV1().ConfigMaps("ns").Get(ctx, "x", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created it: %v", err)
	}
	apply(cm, false)
	first, _ := c.CoreV1().ConfigMaps("ns").Get(ctx, "x", metav1.GetOptions{})
	apply(cm, false)
	same, _ := c.CoreV1().ConfigMaps("ns").Get(ctx, "x", metav1.GetOptions{})
	apply([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"},"data":{"k":"w"}}`), true)
	afterDry, _ := c.CoreV1().ConfigMaps("ns").Get(ctx, "x", metav1.GetOptions{})
	apply([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"},"data":{"k":"w"}}`), false)
	changed, _ := c.CoreV1().ConfigMaps("ns").Get(ctx, "x", metav1.GetOptions{})
	if first.ResourceVersion == "" || same.ResourceVersion != first.ResourceVersion || afterDry.Data["k"] != "v" ||
		changed.ResourceVersion == first.ResourceVersion || changed.Data["k"] != "w" {
		t.Fatalf("versions %q %q %q, data after dry run %v, after change %v", first.ResourceVersion, same.ResourceVersion, changed.ResourceVersion, afterDry.Data, changed.Data)
	}
}

// Evictions move a pod to the next node, or are refused as a disruption
// budget refuses them; Services get EndpointSlices of their ready pods;
// claims are bound.
func TestEvictionsEndpointsAndClaims(t *testing.T) {
	ctx := context.Background()
	c := NewMultiNode(3)
	if _, err := c.AppsV1().Deployments("ns").Create(ctx, deployment(2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := pods(t, c)
	if len(before) != 2 || before[0].Spec.NodeName == before[1].Spec.NodeName || before[0].Spec.NodeName == "fake-control-plane" {
		t.Fatalf("placed on %q and %q", before[0].Spec.NodeName, before[1].Spec.NodeName)
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: before[0].Name, Namespace: "ns"}}
	c.RefuseEvictions(1)
	if err := c.CoreV1().Pods("ns").EvictV1(ctx, ev); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("refused eviction: %v", err)
	}
	if err := c.CoreV1().Pods("ns").EvictV1(ctx, ev); err != nil {
		t.Fatal(err)
	}
	after := pods(t, c)
	names := map[string]bool{}
	for _, p := range after {
		names[p.Name] = true
	}
	if len(after) != 2 || names[before[0].Name] || !names[before[1].Name] {
		t.Fatalf("after the eviction: %v", names)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "gw"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := c.CoreV1().Services("ns").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es, err := c.DiscoveryV1().EndpointSlices("ns").Get(ctx, "gw-fake", metav1.GetOptions{})
	if err != nil || len(es.Endpoints) != 2 || !*es.Endpoints[0].Conditions.Ready {
		t.Fatalf("endpoints %+v %v", es, err)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "ns"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}
	if _, err := c.CoreV1().PersistentVolumeClaims("ns").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "backup", metav1.GetOptions{})
	if got.Status.Phase != corev1.ClaimBound || got.Spec.VolumeName == "" {
		t.Fatalf("claim %s, volume %q", got.Status.Phase, got.Spec.VolumeName)
	}
	if _, err := c.CoreV1().PersistentVolumes().Get(ctx, got.Spec.VolumeName, metav1.GetOptions{}); err != nil {
		t.Fatalf("its volume: %v", err)
	}
}
