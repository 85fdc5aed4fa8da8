package topology

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apimdev/apimdev/internal/gateway"
)

// capNode is a node with 2 CPUs and 4Gi allocatable.
func capNode(name string, ready bool, taints ...corev1.Taint) *corev1.Node {
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
		}}
}

// A cluster made moments ago: its workers have not joined yet. The refusal
// names them and says to wait, instead of "add nodes".
func TestCheckCapacityNamesWorkersNotReadyYet(t *testing.T) {
	t.Parallel()
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	controlPlane := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	p := gateway.Profile{Gateway: "gw", Namespace: "apim-gateway", Replicas: 3,
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")}}
	ctx := context.Background()

	cordoned := capNode("w3", false, notReady)
	cordoned.Spec.Unschedulable = true // waiting for it would not help
	c := fake.NewClientset(capNode("cp", true, controlPlane), capNode("w1", true), capNode("w2", false, notReady),
		capNode("cp2", false, controlPlane, notReady), // not Ready, but no workload node once Ready either
		cordoned)
	err := CheckCapacity(ctx, c, p, p, "kind-second", true)
	var ce *CapacityError
	if !errors.As(err, &ce) {
		t.Fatalf("3 pods of 1 CPU on one Ready 2-CPU worker: %v, want a CapacityError", err)
	}
	if ce.Fit != 2 || strings.Join(ce.NotReady, ",") != "w2" {
		t.Errorf("fit %d, not Ready %v; want 2 and [w2]", ce.Fit, ce.NotReady)
	}
	if !strings.Contains(ce.Error(), "not counted: 1 node(s) not Ready: w2") || !strings.Contains(ce.Hint(), "kubectl --context kind-second get nodes") {
		t.Errorf("error %q, hint %q", ce.Error(), ce.Hint())
	}

	// Once w2 is Ready (its taint gone), the same plan fits.
	c = fake.NewClientset(capNode("cp", true, controlPlane), capNode("w1", true), capNode("w2", true))
	if err := CheckCapacity(ctx, c, p, p, "kind-second", true); err != nil {
		t.Errorf("two Ready workers: %v", err)
	}

	// Short with every node Ready: the old advice, no waiting.
	c = fake.NewClientset(capNode("cp", true, controlPlane), capNode("w1", true))
	if err := CheckCapacity(ctx, c, p, p, "kind-second", true); !errors.As(err, &ce) || len(ce.NotReady) != 0 || !strings.HasPrefix(ce.Hint(), "add nodes") {
		t.Errorf("one Ready worker: %v (hint %q)", err, ce.Hint())
	}
}
