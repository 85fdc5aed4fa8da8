package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	"sigs.k8s.io/kind/pkg/log"

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
	ns, err := m.Kind.ListNodes(m.Name)
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

// Inspect tells what exists under the cluster's name without changing anything.
func (m *Manager) Inspect(ctx context.Context) (ClusterState, string) {
	m.forgetNodes() // Inspect looks afresh
	ns, err := m.listNodes()
	if err != nil {
		return ClusterBroken, "listing kind clusters: " + shortErr(err)
	}
	if len(ns) == 0 {
		m.forgetNodes()
		return ClusterAbsent, ""
	}
	stopped, err := m.stoppedNodes(ctx)
	if err != nil {
		return ClusterBroken, shortErr(err)
	}
	if len(stopped) > 0 {
		return ClusterStopped, strings.Join(stopped, ", ")
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
		if err1 != nil || err2 != nil || started.Sub(created) < 30*time.Second || time.Since(started) > window {
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

func (m *Manager) stoppedNodes(ctx context.Context) ([]string, error) {
	ns, err := m.listNodes()
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var stopped []string
	for _, n := range ns {
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil {
			return nil, fmt.Errorf("inspecting node %s: %w", n, err)
		}
		if ci.ContainerJSONBase == nil || ci.State == nil || !ci.State.Running {
			stopped = append(stopped, n.String())
		}
	}
	return stopped, nil
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

// Progress receives kind's stage lines and apimdev's own.
type Progress func(format string, args ...any)

// Ensure makes the cluster exist and answer, from whatever preflight found:
// create it, reuse it, restart its stopped node, or (recreate) delete and
// create it. It returns whether it created the cluster.
func (m *Manager) Ensure(ctx context.Context, st ClusterState, recreate bool, progress Progress) (bool, error) {
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

// stageLogger turns kind's stage lines into progress; everything else it logs
// at V(0) is kept for an error message.
type stageLogger struct {
	relay *relay
	tail  *tailBuffer
}

// relay is where kind's stage lines go now: kind's provider is made once,
// with its logger, and each create points the logger at its own progress.
// kind logs from its own goroutines, so the target is guarded.
type relay struct {
	mu sync.Mutex
	to Progress
}

func (r *relay) set(p Progress) (restore func()) {
	r.mu.Lock()
	old := r.to
	r.to = p
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.to = old
		r.mu.Unlock()
	}
}

func (r *relay) progress(format string, args ...any) {
	r.mu.Lock()
	to := r.to
	r.mu.Unlock()
	if to != nil {
		to(format, args...)
	}
}

var stageRE = regexp.MustCompile(`^\s*[•✓✗]\s+(.*?)\s*(?:🖼|📦|📜|🕹️|🔌|💾|⏳|🚀)?\s*$`)

func (l stageLogger) Warn(msg string)              { l.tail.add("warning: " + msg) }
func (l stageLogger) Warnf(f string, a ...any)     { l.Warn(fmt.Sprintf(f, a...)) }
func (l stageLogger) Error(msg string)             { l.tail.add("error: " + msg) }
func (l stageLogger) Errorf(f string, a ...any)    { l.Error(fmt.Sprintf(f, a...)) }
func (l stageLogger) V(v log.Level) log.InfoLogger { return stageInfo{l, v} }

type stageInfo struct {
	l stageLogger
	v log.Level
}

func (i stageInfo) Enabled() bool { return i.v == 0 }
func (i stageInfo) Info(msg string) {
	if i.v != 0 {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(msg), "\n") {
		if m := stageRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(strings.TrimSpace(line), "•") {
			i.l.relay.progress("kind: %s", plainStage(m[1]))
		} else if t := strings.TrimSpace(line); t != "" {
			i.l.tail.add(t)
		}
	}
}
func (i stageInfo) Infof(f string, a ...any) { i.Info(fmt.Sprintf(f, a...)) }

// plainStage drops kind's trailing emoji and dots: "Preparing nodes 📦" -> "Preparing nodes".
func plainStage(s string) string {
	s = strings.TrimRightFunc(s, func(r rune) bool { return r > 0x2000 || r == ' ' || r == '.' })
	return s
}

type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

// KindProvider is kind's provider for a runtime with a logger that reports
// its stages to whichever create is running.
type KindProvider struct {
	*kindcluster.Provider
	relay *relay
}

// NewKind returns kind's provider for Docker.
func NewKind() *KindProvider { return NewKindOn(RuntimeDocker) }

// NewKindOn returns kind's provider for the runtime: docker or podman.
func NewKindOn(rt Runtime) *KindProvider {
	r := &relay{}
	which := kindcluster.ProviderWithDocker()
	if rt == RuntimePodman {
		which = kindcluster.ProviderWithPodman()
	}
	return &KindProvider{Provider: kindcluster.NewProvider(which,
		kindcluster.ProviderWithLogger(stageLogger{relay: r, tail: &tailBuffer{}})), relay: r}
}

// Report sends kind's stage lines to p until the returned restore is called.
func (k *KindProvider) Report(p Progress) (restore func()) { return k.relay.set(p) }

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

// LoadImage copies image from the local Docker engine into every node, unless
// a node already holds the same image ID. It returns what it did, and
// whether a node held a different image under the same name: pods started
// before then run the old one.
func (m *Manager) LoadImage(ctx context.Context, image string, progress Progress) (what string, replaced bool, err error) {
	info, err := m.Docker.ImageInspect(ctx, image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "not on this machine: the node will pull it", false, nil
		}
		return "", false, fmt.Errorf("inspecting image %s: %w", image, err)
	}
	ns, err := m.listNodes()
	if err != nil {
		return "", false, err
	}
	var need []string
	for _, n := range ns {
		id, err := nodeutils.ImageID(n, image)
		if err == nil && id == info.ID {
			continue
		}
		if err == nil && id != "" {
			replaced = true
		}
		need = append(need, n.String())
	}
	if len(need) == 0 {
		return "already on the node (" + shortID(info.ID) + ")", false, nil
	}
	where := "the node"
	if len(need) > 1 {
		where = fmt.Sprintf("%d nodes", len(need))
	}
	progress("loading %s (%d MB) into %s", image, info.Size>>20, where)
	rc, err := m.Docker.ImageSave(ctx, []string{image})
	if err != nil {
		return "", false, fmt.Errorf("saving image %s: %w", image, err)
	}
	if m.Runtime == RuntimePodman {
		rc = NameArchive(rc, image)
	}
	defer rc.Close()
	if err := loadInto(ns, need, rc); err != nil {
		return "", false, fmt.Errorf("loading %s: %w", image, err)
	}
	what = fmt.Sprintf("loaded into %s (%s, %d MB)", where, shortID(info.ID), info.Size>>20)
	if replaced {
		what += ", replacing an older image of the same name"
	}
	return what, replaced, nil
}

// loadInto streams one image archive into every node named in need at once:
// the engine saves the image once, each node's containerd imports its copy
// as it arrives.
func loadInto(ns []nodes.Node, need []string, archive io.Reader) error {
	var targets []nodes.Node
	for _, n := range ns {
		if contains(need, n.String()) {
			targets = append(targets, n)
		}
	}
	if len(targets) == 1 {
		return nodeutils.LoadImageArchive(targets[0], archive)
	}
	pipes := make([]*io.PipeWriter, len(targets))
	writers := make([]io.Writer, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, n := range targets {
		pr, pw := io.Pipe()
		pipes[i], writers[i] = pw, pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := nodeutils.LoadImageArchive(n, pr)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n, err)
			}
			// Unblock the copy if this node stopped reading early.
			_ = pr.CloseWithError(io.ErrClosedPipe)
		}()
	}
	_, cerr := io.Copy(io.MultiWriter(writers...), archive)
	for _, pw := range pipes {
		_ = pw.CloseWithError(cerr)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return cerr
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
