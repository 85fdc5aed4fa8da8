package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/apimdev/apimdev/internal/state"
)

// DefaultNodeImage is kind's own default node image.
const DefaultNodeImage = defaults.Image

// Marker is the ConfigMap by which apimdev recognises a cluster it created.
const (
	MarkerNamespace = "kube-system"
	MarkerName      = "apimdev"
)

// Manager creates, reuses and deletes the kind cluster.
type Manager struct {
	Kind   Kind
	Docker Docker
	// Runtime is what the nodes run on (Docker when empty).
	Runtime Runtime
	Name    string
	// Kubeconfig is apimdev's own kubeconfig file for this cluster: a file
	// apimdev created (see CheckOwnKubeconfig), never a user's.
	Kubeconfig string
	// MergeRecord is the state-directory file that records what
	// MergeKubeconfig put into a user's kubeconfig ("" records nothing).
	MergeRecord string
	// UserKubeconfig is the user's kubeconfig the settings name (a file
	// that is not apimdev's own), where a merge went when the record of it
	// is lost; "" is kubectl's default.
	UserKubeconfig string
	// NodeImageRef is the node image to create the cluster from; "" means kind's.
	NodeImageRef string
	Version      string // apimdev's version, written into the marker
	// ReadyTimeout bounds the wait for the node and API server; 0 means 3 min.
	ReadyTimeout time.Duration
	// StartingWindow: see the constant; 0 means StartingWindow.
	StartingWindow time.Duration
	// Shape is the nodes a new cluster is made of (one, by default).
	Shape Shape
	// SharedDir is the host directory every node of a multi-node cluster
	// mounts at SharedMount.
	SharedDir string
	// PatchesDir is a host directory for the kubeadm patches a new
	// cluster's control plane reads at init (see kubeadmPatches); "" means
	// none.
	PatchesDir string

	// ImageRecord is the state-directory file in which LoadImage writes
	// down which manifest digests stand for which image IDs (see
	// statusHolds); "" records nothing and always asks the nodes' runtime.
	ImageRecord string

	api         kubernetes.Interface // the session's client (UseClient), for the nodes' status
	ready       kubernetes.Interface // the client waitReady last saw the nodes Ready with
	fileCurrent bool                 // Inspect reached the cluster through the Kubeconfig file

	memoMu    sync.Mutex
	memoNodes []nodes.Node // the cluster's node containers, as listNodes last found them
	memoAt    time.Time
}

// nodesMemoFor is how long one listing of the node containers serves: kind
// lists them with the docker CLI (a process and a round trip, ~30 ms), and a
// warm `up` asked five times. apimdev's own creates and deletes forget it.
const nodesMemoFor = 10 * time.Second

// listNodes is kind's ListNodes for this cluster, remembered briefly.
func (m *Manager) listNodes() ([]nodes.Node, error) {
	m.memoMu.Lock()
	defer m.memoMu.Unlock()
	if m.memoNodes != nil && time.Since(m.memoAt) < nodesMemoFor {
		return m.memoNodes, nil
	}
	ns, through, err := m.listThroughEngine()
	if !through {
		ns, err = m.Kind.ListNodes(m.Name)
	}
	if err != nil {
		return nil, err
	}
	m.memoNodes, m.memoAt = ns, time.Now()
	return ns, nil
}

// forgetNodes drops the remembered listing (the nodes were created or deleted).
func (m *Manager) forgetNodes() {
	m.memoMu.Lock()
	m.memoNodes = nil
	m.memoMu.Unlock()
}

// inspectReuse is how old a listing Inspect still takes as its own look: up
// inspects three times within a fraction of a second (thawing a paused
// cluster, reading its record, preflight), each time a docker CLI process
// (~30 ms) whose answer cannot have changed but by someone else's create or
// delete in between. Longer-lived callers (the forward, status's watch)
// inspect seconds apart and list afresh each time.
const inspectReuse = 2 * time.Second

// forgetNodesOlderThan drops the remembered listing unless it was made less
// than d ago.
func (m *Manager) forgetNodesOlderThan(d time.Duration) {
	m.memoMu.Lock()
	if time.Since(m.memoAt) >= d {
		m.memoNodes = nil
	}
	m.memoMu.Unlock()
}

// Progress receives kind's stage lines and apimdev's own.
type Progress func(format string, args ...any)

// Ensure makes the cluster exist and answer, from whatever preflight found:
// create it, reuse it, restart its stopped node, or (recreate) delete and
// create it. It returns whether it created the cluster.
func (m *Manager) Ensure(ctx context.Context, st ClusterState, recreate bool, progress Progress) (bool, error) {
	if st == ClusterPaused {
		// Paused nodes are thawed first, to be reused or (recreate)
		// deleted: kind's delete needs running containers.
		thawed, err := m.Unpause(ctx)
		if err != nil {
			return false, fmt.Errorf("resuming the paused cluster %q: %w", m.Name, err)
		}
		progress("the cluster was paused: resumed %d node(s)", len(thawed))
		st = ClusterOurs
	}
	switch {
	case st == ClusterOurs && !recreate:
		progress("reusing cluster %q", m.Name)
		if since, ok := m.restartedWithin(ctx, m.startingWindow()); ok {
			// The node came back a moment ago (an engine or laptop restart):
			// until its kubelet reports afresh, the API server shows pods
			// ready that are in fact starting over.
			m.waitResynced(ctx, since, progress)
		}
		return false, m.writeKubeconfig()
	case st == ClusterStopped && !recreate:
		if err := m.restart(ctx, progress); err != nil {
			return false, err
		}
		return false, m.writeKubeconfig()
	case st == ClusterStarting && !recreate:
		// The node runs: its control plane is on its way. Wait for it, then
		// for the kubelet to report the pods afresh.
		m.fileCurrent = false
		since := time.Now()
		if up, ok := m.startedWithin(ctx, m.startingWindow()); ok {
			since = time.Now().Add(-up)
		}
		progress("the cluster is starting: waiting for its control plane")
		if err := m.waitReady(ctx, progress); err != nil {
			return false, err
		}
		m.waitResynced(ctx, since, progress)
		return false, m.writeKubeconfig()
	case st != ClusterAbsent:
		if !recreate {
			return false, fmt.Errorf("cluster %q exists (%s); refusing to touch it without --recreate", m.Name, st)
		}
		progress("deleting cluster %q (--recreate)", m.Name)
		defer m.forgetNodes()
		m.clearShared(ctx)
		if err := m.Kind.Delete(m.Name, m.Kubeconfig); err != nil {
			return false, fmt.Errorf("deleting cluster %q: %w", m.Name, err)
		}
	}
	return true, m.create(ctx, progress)
}

func (m *Manager) create(ctx context.Context, progress Progress) error {
	img := m.NodeImage()
	if err := m.prepareShared(); err != nil {
		return err
	}
	if m.Runtime == RuntimePodman {
		img = m.podmanLocalName(ctx, img)
	}
	if m.Shape.Workers > 0 {
		progress("creating %s", DescribeShape(m.Shape))
	}
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:    m.nodes(img),
		// The API server listens on loopback only.
		Networking:           v1alpha4.Networking{APIServerAddress: "127.0.0.1"},
		KubeadmConfigPatches: []string{controlPlaneTuning},
	}
	if err := m.withKubeadmPatches(cfg); err != nil {
		return err
	}
	m.ready = nil
	defer m.forgetNodes()
	if r, ok := m.Kind.(interface{ Report(Progress) func() }); ok {
		defer r.Report(progress)()
	}
	done := make(chan error, 1)
	go func() {
		done <- m.Kind.Create(m.Name,
			kindcluster.CreateWithV1Alpha4Config(cfg),
			kindcluster.CreateWithNodeImage(img),
			kindcluster.CreateWithKubeconfigPath(m.Kubeconfig),
			kindcluster.CreateWithWaitForReady(0),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false))
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// kind cannot be cancelled halfway; letting it finish leaves a whole
		// cluster (or, on failure, none) instead of a half-made one.
		progress("interrupted: letting kind finish this cluster so nothing is left half-made (Ctrl-C again to abandon it)")
		err = <-done
		if err == nil {
			_ = os.Chmod(m.Kubeconfig, 0o600)
			_ = m.mark(context.Background())
		}
		return ctx.Err()
	}
	if err != nil {
		return &CreateError{Name: m.Name, Image: img, Err: err}
	}
	_ = os.Chmod(m.Kubeconfig, 0o600)
	if err := m.waitReady(ctx, progress); err != nil {
		return err
	}
	return m.mark(ctx)
}

// controlPlaneTuning lets a one-node cluster's controllers start seconds
// sooner; until they run, no Deployment gets a pod. Leader election among one
// controller manager (and one scheduler) only waits: its first try comes
// before RBAC is in place and the retry is 2 s or more later. And at its
// default 20 requests/s the controller manager paces the start of its ~40
// controllers over about 5 s (each makes a service account and a token
// first); its informers, the ReplicaSet controller's among them, start after
// the last one.
const controlPlaneTuning = `kind: ClusterConfiguration
controllerManager:
  extraArgs:
    leader-elect: "false"
    kube-api-qps: "100"
    kube-api-burst: "200"
scheduler:
  extraArgs:
    leader-elect: "false"
`

// CreateError explains a failed kind create.
type CreateError struct {
	Name, Image string
	Err         error
}

func (e *CreateError) Error() string {
	return fmt.Sprintf("kind could not create cluster %q from %s: %v", e.Name, e.Image, e.Err)
}
func (e *CreateError) Unwrap() error { return e.Err }

// Hint says where to look.
func (e *CreateError) Hint() string {
	return "kind removed the half-made node; check `docker info` and free disk space, then run `apimdev up` again (add --node-image to use another node image)"
}

func (m *Manager) restart(ctx context.Context, progress Progress) error {
	m.fileCurrent = false // a restarted node's API server has a new port
	ns, err := m.listNodes()
	if err != nil {
		return err
	}
	started := time.Now()
	for _, n := range ns {
		progress("starting stopped node %s", n)
		if err := m.Docker.ContainerStart(ctx, n.String(), container.StartOptions{}); err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("starting node %s: %w", n, err)
		}
	}
	if err := m.waitReady(ctx, progress); err != nil {
		return err
	}
	m.waitResynced(ctx, started, progress)
	return nil
}

// waitReady waits for the API server and the node to be Ready.
func (m *Manager) waitReady(ctx context.Context, progress Progress) error {
	timeout := m.ReadyTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	progress("waiting for the node to be Ready")
	var last error
	var cs kubernetes.Interface // made once: each make reads the kubeconfig out of the node
	for {
		var err error
		if cs == nil {
			cs, _, err = m.client()
		}
		if err == nil {
			var nodes *corev1.NodeList
			nodes, err = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err == nil {
				if allReady(nodes.Items) {
					m.ready = cs
					return nil
				}
				err = errors.New("node not Ready yet")
			}
		}
		last = err
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return fmt.Errorf("cluster %q not ready after %s: %v", m.Name, timeout, last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func allReady(ns []corev1.Node) bool {
	if len(ns) == 0 {
		return false
	}
	for _, n := range ns {
		ok := false
		for _, c := range n.Status.Conditions {
			ok = ok || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (m *Manager) mark(ctx context.Context) error {
	cs := m.ready
	if cs == nil {
		var err error
		if cs, _, err = m.client(); err != nil {
			return err
		}
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: MarkerName, Namespace: MarkerNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "apimdev"}},
		Data: map[string]string{"createdBy": "apimdev", "version": m.Version, "created": time.Now().UTC().Format(time.RFC3339),
			"workers": fmt.Sprint(max(m.Shape.Workers, 0)), markerDirect: directMarkerValue()},
	}
	_, err := cs.CoreV1().ConfigMaps(MarkerNamespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// writeKubeconfig refreshes apimdev's own kubeconfig file from kind (the API
// server's port changes when a node restarts).
func (m *Manager) writeKubeconfig() error {
	if m.fileCurrent { // Inspect has just reached the cluster through it
		m.fileCurrent = false
		return nil
	}
	raw, err := m.Kind.KubeConfig(m.Name, false)
	if err != nil {
		return fmt.Errorf("reading the cluster's kubeconfig: %w", err)
	}
	if old, err := os.ReadFile(m.Kubeconfig); err == nil && bytes.Equal(old, []byte(raw)) {
		return nil
	}
	if err := CheckOwnKubeconfig(m.Kubeconfig, m.Name); err != nil {
		return err
	}
	return state.WriteFile(m.Kubeconfig, []byte(raw))
}

// NodeImage is the image a new cluster is made from (kind's default when
// none was named).
func (m *Manager) NodeImage() string {
	if m.NodeImageRef == "" {
		return DefaultNodeImage
	}
	return m.NodeImageRef
}

// UseNodeImage makes ref the image a new cluster is made from.
func (m *Manager) UseNodeImage(ref string) { m.NodeImageRef = ref }

// KubeconfigPath is apimdev's own kubeconfig file for the cluster.
func (m *Manager) KubeconfigPath() string { return m.Kubeconfig }

// RefreshKubeconfig rewrites apimdev's kubeconfig file from kind: after the
// state directory was lost, or when the file is stale.
func (m *Manager) RefreshKubeconfig() error {
	m.fileCurrent = false
	return m.writeKubeconfig()
}

// Exec runs a command in the cluster's control plane node, writing its stdout
// to out (nil: discarded).
func (m *Manager) Exec(ctx context.Context, out io.Writer, name string, args ...string) error {
	nodes, err := m.listNodes()
	if err != nil || len(nodes) == 0 {
		return fmt.Errorf("no kind node: %v", err)
	}
	first := nodes[0]
	for _, n := range nodes {
		if r, _ := n.Role(); r == constants.ControlPlaneNodeRoleValue {
			first = n
		}
	}
	cmd := first.CommandContext(ctx, name, args...)
	if out != nil {
		cmd.SetStdout(out)
	}
	return cmd.Run()
}

// Delete removes the cluster. kind deletes its context from m.Kubeconfig;
// what `up --merge-kubeconfig` added to a user's kubeconfig goes too, and
// nothing else of that file.
func (m *Manager) Delete() error {
	defer m.forgetNodes()
	// kind's delete and the clean-up of the shared directory run commands
	// in the nodes: a paused node is thawed first.
	_, _ = m.Unpause(context.Background())
	server := m.apiServer()
	m.clearShared(context.Background())
	if m.Runtime == RuntimePodman {
		m.killNodes(context.Background())
	}
	if err := m.Kind.Delete(m.Name, m.Kubeconfig); err != nil {
		return err
	}
	return m.forgetMerged(server)
}
