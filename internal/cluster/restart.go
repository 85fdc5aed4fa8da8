package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
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
	progress("waiting for the kubelet to report the node and its pods again")
	cs := m.ready // the client waitReady made, when it ran
	for cs == nil {
		// Made once: each make reads the kubeconfig out of the node.
		if c, _, err := m.client(); err == nil {
			cs = c
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(resyncPoll):
		}
	}
	if last := awaitResynced(ctx, cs, since, resyncPoll); last != "" {
		progress("%s; going on", last)
	}
}

// resyncPoll is how often awaitResynced looks again when its watches say
// nothing (a watch that broke, an API server that restarted).
const resyncPoll = 500 * time.Millisecond

// awaitResynced looks at the nodes and pods (resynced) each time a watch on
// them sees a change, and every poll otherwise, until they are back or ctx
// ends; it returns what it still waited for then ("" when back). The
// kubelet's reports are what it waits for: a watch sees them the moment the
// API server stores them, where a poll saw them up to an interval later.
func awaitResynced(ctx context.Context, cs kubernetes.Interface, since time.Time, poll time.Duration) string {
	// The API's times have whole seconds.
	since = since.Truncate(time.Second)
	var pods, nodes watch.Interface
	defer func() {
		for _, w := range []watch.Interface{pods, nodes} {
			if w != nil {
				w.Stop()
			}
		}
	}()
	events := func(w watch.Interface) <-chan watch.Event {
		if w == nil {
			return nil
		}
		return w.ResultChan()
	}
	drain := func(w watch.Interface) { // a burst of changes is one look
		for w != nil {
			select {
			case _, open := <-w.ResultChan():
				if open {
					continue
				}
			default:
			}
			return
		}
	}
	last := ""
	for {
		// (Re)open the watches first, so that nothing between the look and
		// the wait goes unseen.
		if pods == nil {
			pods, _ = cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		}
		if nodes == nil {
			nodes, _ = cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		}
		drain(pods)
		drain(nodes)
		var ok bool
		if ok, last = resynced(ctx, cs, since); ok {
			return ""
		}
		select {
		case <-ctx.Done():
			return last
		case _, open := <-events(pods):
			if !open {
				pods.Stop()
				pods = nil
			}
		case _, open := <-events(nodes):
			if !open {
				nodes.Stop()
				nodes = nil
			}
		case <-time.After(poll):
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
