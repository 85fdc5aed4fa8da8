package topology

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPodsToEvictAndCordon(t *testing.T) {
	t.Parallel()
	yes := true
	pod := func(name, node, owner string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: owner, Name: "o", Controller: &yes}}
		}
		return p
	}
	done := pod("done", "w1", "ReplicaSet")
	done.Status.Phase = corev1.PodSucceeded
	c := fake.NewClientset(pod("rs", "w1", "ReplicaSet"), pod("ds", "w1", "DaemonSet"), pod("bare", "w1", ""), done,
		pod("elsewhere", "w2", "ReplicaSet"), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	ctx := context.Background()
	evict, bare, err := PodsToEvict(ctx, c, "w1", false)
	if err != nil || len(evict) != 1 || evict[0].Name != "rs" || !slices.Equal(bare, []string{"ns/bare"}) {
		t.Fatalf("evict %v, bare %v, %v", evict, bare, err)
	}
	evict, bare, _ = PodsToEvict(ctx, c, "w1", true)
	if len(evict) != 2 || len(bare) != 0 {
		t.Fatalf("forced: evict %v, bare %v", evict, bare)
	}
	for _, on := range []bool{true, false} {
		if err := Cordon(ctx, c, "w1", on); err != nil {
			t.Fatal(err)
		}
		n, _ := c.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		if n.Spec.Unschedulable != on {
			t.Fatalf("cordon %v: unschedulable %v", on, n.Spec.Unschedulable)
		}
	}
	if err := Cordon(ctx, c, "nope", true); err == nil {
		t.Error("cordoning a node that is not there")
	}
}
