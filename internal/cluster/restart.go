package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ResyncTimeout bounds waitResynced.
const ResyncTimeout = 90 * time.Second

// waitResynced waits, after a stopped node was started again, until its
// kubelet has reported the node and its pods afresh and the pods are ready
// again. Until then the API server shows what was true before the stop: a
// Ready node, ready pods whose containers are in fact starting over, and
// Deployments whose status still counts them ready, so the deploy step would
// call a restarting gateway ready and smoke would fail against it. Best
// effort: after ResyncTimeout up goes on (a pod may never be ready for its
// own reasons), and the deploy step's own wait tells.
func (m *Manager) waitResynced(ctx context.Context, since time.Time, progress Progress) {
	ctx, cancel := context.WithTimeout(ctx, ResyncTimeout)
	defer cancel()
	// The API's times have whole seconds.
	since = since.Truncate(time.Second)
	progress("waiting for the kubelet to report the node and its pods again")
	last := ""
	for {
		cs, _, err := m.client()
		if err == nil {
			var ok bool
			if ok, last = resynced(ctx, cs, since); ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			if last != "" {
				progress("%s; going on", last)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// resynced tells whether every node has sent a heartbeat since the restart
// and every pod has been reported since (no container still running from
// before it) and is ready; otherwise it says what it waits for.
func resynced(ctx context.Context, cs kubernetes.Interface, since time.Time) (bool, string) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, "the API server does not answer yet"
	}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && (c.Status != corev1.ConditionTrue || c.LastHeartbeatTime.Time.Before(since)) {
				return false, fmt.Sprintf("node %s has not reported Ready since it started", n.Name)
			}
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, "the API server does not list pods yet"
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			if r := c.State.Running; r != nil && r.StartedAt.Time.Before(since) {
				return false, fmt.Sprintf("pod %s/%s still shows its containers from before the restart", p.Namespace, p.Name)
			}
		}
		if !podReady(&p) {
			return false, fmt.Sprintf("pod %s/%s is not ready again yet", p.Namespace, p.Name)
		}
	}
	return true, ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
