package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Inspect tells what exists under the cluster's name without changing anything.
func (m *Manager) Inspect(ctx context.Context) (ClusterState, string) {
	m.forgetNodesOlderThan(inspectReuse) // Inspect looks afresh, but a listing of a moment ago is fresh
	ns, err := m.listNodes()
	if err != nil {
		return ClusterBroken, "listing kind clusters: " + shortErr(err)
	}
	if len(ns) == 0 {
		m.forgetNodes()
		return ClusterAbsent, ""
	}
	stopped, paused, err := m.nodeStates(ctx)
	if err != nil {
		return ClusterBroken, shortErr(err)
	}
	if len(stopped) > 0 {
		return ClusterStopped, strings.Join(stopped, ", ")
	}
	// A paused node (the engine's pause: the engine says it runs) has an
	// API server that cannot answer: paused, neither starting nor broken.
	if len(paused) > 0 {
		return ClusterPaused, strings.Join(paused, ", ")
	}
	// apimdev's own kubeconfig file first: it needs no round trip through the
	// node (kind reads the kubeconfig with docker exec), and when the cluster
	// answers through it, it is current.
	if m.ownFileAnswers(ctx) {
		return ClusterOurs, ""
	}
	// A node that started a moment ago (the engine or the laptop restarted)
	// has an API server that refuses connections, then answers 403 until its
	// RBAC is bootstrapped, then 503: that is starting, not broken.
	starting := func(why string) (ClusterState, string) {
		if up, ok := m.startedWithin(ctx, m.startingWindow()); ok {
			return ClusterStarting, fmt.Sprintf("waiting for the API server (node started %s ago): %s", up.Round(time.Second), why)
		}
		return ClusterBroken, "the API server does not answer: " + why
	}
	cs, _, err := m.client()
	if err != nil {
		if st, d := starting(shortErr(err)); st == ClusterStarting {
			return st, d
		}
		return ClusterBroken, shortErr(err)
	}
	// The read has a deadline of its own: starting's look at the node must
	// not inherit what is left of it (an API server that takes seconds to
	// say 403 would leave none, and a starting cluster would read broken).
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cs.CoreV1().ConfigMaps(MarkerNamespace).Get(gctx, MarkerName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return ClusterForeign, ""
	case err != nil:
		return starting(shortErr(err))
	}
	return ClusterOurs, ""
}

// StartingWindow is how long after its node started a cluster whose API
// server does not answer is called starting; after it, broken.
const StartingWindow = 3 * time.Minute

func (m *Manager) startingWindow() time.Duration {
	if m.StartingWindow > 0 {
		return m.StartingWindow
	}
	return StartingWindow
}

// freshStart is the most a new node container's start comes after its
// creation (kind's docker run does both at once; 10 s leaves room for a
// loaded engine). A later start is a restart. Under the 30 s this was, a node
// made in ~10 s and restarted by an engine restart right after (~30 s from
// its creation) was taken for a fresh one: up did not wait for the kubelet's
// fresh reports and its smoke met a gateway that was starting over.
const freshStart = 10 * time.Second

// restartedWithin says whether a node container was started again (not
// created) less than window ago, and when: the node restarted.
func (m *Manager) restartedWithin(ctx context.Context, window time.Duration) (time.Time, bool) {
	ns, err := m.listNodes()
	if err != nil {
		return time.Time{}, false
	}
	var since time.Time
	for _, n := range ns {
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil || ci.ContainerJSONBase == nil || ci.State == nil {
			continue
		}
		started, err1 := time.Parse(time.RFC3339Nano, ci.State.StartedAt)
		created, err2 := time.Parse(time.RFC3339Nano, ci.Created)
		if err1 != nil || err2 != nil || started.Sub(created) < freshStart || time.Since(started) > window {
			continue
		}
		if started.After(since) {
			since = started
		}
	}
	return since, !since.IsZero()
}

// startedWithin says whether the cluster's newest node container started
// less than window ago, and how long ago.
func (m *Manager) startedWithin(ctx context.Context, window time.Duration) (time.Duration, bool) {
	ns, err := m.listNodes()
	if err != nil {
		return 0, false
	}
	var newest time.Time
	for _, n := range ns {
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil || ci.ContainerJSONBase == nil || ci.State == nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, ci.State.StartedAt); err == nil && t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return 0, false
	}
	up := time.Since(newest)
	return up, up < window
}

// nodeStates names the node containers that do not run and those the
// engine has paused (which it also counts as running).
func (m *Manager) nodeStates(ctx context.Context) (stopped, paused []string, err error) {
	ns, err := m.listNodes()
	if err != nil {
		return nil, nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range ns {
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil {
			return nil, nil, fmt.Errorf("inspecting node %s: %w", n, err)
		}
		switch {
		case ci.ContainerJSONBase == nil || ci.State == nil || !ci.State.Running:
			stopped = append(stopped, n.String())
		case ci.State.Paused:
			paused = append(paused, n.String())
		}
	}
	return stopped, paused, nil
}

// ownFileAnswers tells whether the cluster shows apimdev's marker through
// apimdev's own kubeconfig file, and remembers it for writeKubeconfig.
func (m *Manager) ownFileAnswers(ctx context.Context) bool {
	m.fileCurrent = false
	if _, err := os.Stat(m.Kubeconfig); err != nil {
		return false
	}
	rc, err := clientcmd.BuildConfigFromFlags("", m.Kubeconfig)
	if err != nil {
		return false
	}
	rc.Timeout = 2 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = cs.CoreV1().ConfigMaps(MarkerNamespace).Get(ctx, MarkerName, metav1.GetOptions{})
	m.fileCurrent = err == nil
	return m.fileCurrent
}

// client builds a clientset from the cluster's kubeconfig as kind reports it,
// so it works even when apimdev's own kubeconfig file is missing.
func (m *Manager) client() (kubernetes.Interface, *rest.Config, error) {
	raw, err := m.Kind.KubeConfig(m.Name, false)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the cluster's kubeconfig: %w", err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return nil, nil, err
	}
	rc.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	return cs, rc, err
}
