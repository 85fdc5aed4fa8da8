package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
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

// The wait looks again when a watch sees the kubelet's report, not at its
// next poll: with a poll of an hour, a pod turning fresh and ready ends it.
func TestAwaitResyncedWakesOnAWatchEvent(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	after := metav1.NewTime(since.Add(3 * time.Second))
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: after}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "apim-gateway"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "gw", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: after}}}}}},
	)
	watching := make(chan struct{})
	var once sync.Once
	cs.PrependWatchReactor("pods", func(clienttesting.Action) (bool, watch.Interface, error) {
		once.Do(func() { close(watching) })
		return false, nil, nil // the fake's own watch
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan string, 1)
	go func() { done <- awaitResynced(ctx, cs, since, time.Hour) }()
	select {
	case <-watching:
	case <-ctx.Done():
		t.Fatal("no watch on the pods")
	}
	// The wait's first look may come before or after the update; after it,
	// only the watch can end the wait before its hour's poll.
	p, err := cs.CoreV1().Pods("apim-gateway").Get(ctx, "gw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Pods("apim-gateway").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case last := <-done:
		if last != "" {
			t.Fatalf("ended waiting for %q", last)
		}
	case <-ctx.Done():
		t.Fatal("the wait did not see the pod's report through its watch")
	}
}

// When ctx ends first, the wait says what it still waited for.
func TestAwaitResyncedSaysWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(since.Add(-time.Minute))}}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if last := awaitResynced(ctx, cs, since, time.Hour); !strings.Contains(last, "node n has not reported") {
		t.Errorf("got %q", last)
	}
}
