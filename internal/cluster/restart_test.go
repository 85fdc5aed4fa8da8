package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// After a node restart the API server first shows the state from before the
// stop; only fresh reports count.
func TestResynced(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	before, after := metav1.NewTime(since.Add(-time.Minute)), metav1.NewTime(since.Add(3*time.Second))
	node := func(heartbeat metav1.Time) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: heartbeat}}}}
	}
	pod := func(name string, started metav1.Time, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apim-gateway"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "gw", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}}}
		if deleting {
			p.DeletionTimestamp = &before
			p.Finalizers = []string{"x"}
		}
		return p
	}
	waiting := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "apim-gateway"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "gw", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
	for _, tt := range []struct {
		name string
		objs []any
		ok   bool
		why  string
	}{
		{"stale node", []any{node(before), pod("a", after, false)}, false, "node n has not reported"},
		{"stale pod", []any{node(after), pod("a", before, false)}, false, "pod apim-gateway/a still shows"},
		{"fresh but not ready", []any{node(after), pod("a", after, false), waiting}, false, "pod apim-gateway/w is not ready again yet"},
		{"fresh and ready", []any{node(after), pod("a", after, false)}, true, ""},
		{"a terminating pod does not count", []any{node(after), pod("a", before, true)}, true, ""},
	} {
		cs := fake.NewClientset()
		for _, o := range tt.objs {
			switch o := o.(type) {
			case *corev1.Node:
				cs.CoreV1().Nodes().Create(context.Background(), o, metav1.CreateOptions{})
			case *corev1.Pod:
				cs.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
			}
		}
		ok, why := resynced(context.Background(), cs, since)
		if ok != tt.ok || !strings.Contains(why, tt.why) {
			t.Errorf("%s: got %v %q", tt.name, ok, why)
		}
	}
}
