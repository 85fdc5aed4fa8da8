// Package topology is the cluster's nodes as the gateway's placement sees
// them: their zones, readiness and free room, how the prod profile's
// requests fit on them, where the gateway's pods run (the spread over zones
// and nodes) and which nodes answer its NodePorts. It reads nodes, pods,
// Services and EndpointSlices through kubernetes.Interface.
package topology

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/gateway"
)

// NodeInfo is one node as the gateway's placement sees it.
type NodeInfo struct {
	Name   string `json:"name"`
	Zone   string `json:"zone,omitempty"`
	Region string `json:"region,omitempty"`
	Ready  bool   `json:"ready"`
	// Schedulable: not cordoned and without a NoSchedule or NoExecute
	// taint (a multi-node kind cluster's control plane has one).
	Schedulable bool `json:"schedulable"`
	Cordoned    bool `json:"cordoned,omitempty"`
	// Workload: untainted, whether or not cordoned (a drained worker is
	// still one of the zones the pods should spread over).
	Workload bool `json:"workload"`
	// Shared: the node mounts the cluster's shared directory.
	Shared bool `json:"-"`
	// Joining: not Ready, not cordoned, and nothing but its not-ready
	// state (the node lifecycle's taints for it) keeps pods off it: a node
	// that has just joined, or lost its kubelet for a while.
	Joining bool `json:"-"`

	free corev1.ResourceList // allocatable minus what other pods request
}

// Topology is the cluster's nodes.
type Topology struct {
	Nodes []NodeInfo `json:"nodes"`
}

// Read reads the nodes.
func Read(ctx context.Context, c kubernetes.Interface) (Topology, error) {
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Topology{}, fmt.Errorf("reading the nodes: %w", err)
	}
	var t Topology
	for _, n := range nodes.Items {
		ni := NodeInfo{Name: n.Name, Zone: n.Labels[cluster.ZoneLabel], Region: n.Labels[cluster.RegionLabel],
			Cordoned: n.Spec.Unschedulable, Shared: n.Labels[cluster.SharedLabel] == "true"}
		for _, c := range n.Status.Conditions {
			ni.Ready = ni.Ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}
		ni.Workload = RunsWorkloads(&n)
		ni.Joining = !ni.Ready && !n.Spec.Unschedulable && runsWorkloadsOnceReady(&n)
		ni.Schedulable = ni.Workload && !n.Spec.Unschedulable
		ni.free = corev1.ResourceList{corev1.ResourceCPU: n.Status.Allocatable.Cpu().DeepCopy(), corev1.ResourceMemory: n.Status.Allocatable.Memory().DeepCopy()}
		t.Nodes = append(t.Nodes, ni)
	}
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
	return t, nil
}

// RunsWorkloads says n takes pods without tolerations: no NoSchedule or
// NoExecute taint but a cordon's own (a cordoned node is still one the
// gateway's pods may go back to).
func RunsWorkloads(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && t.Key != corev1.TaintNodeUnschedulable {
			return false
		}
	}
	return true
}

// runsWorkloadsOnceReady is RunsWorkloads without the taints the node
// lifecycle puts on a node that is not Ready (or not heard from).
func runsWorkloadsOnceReady(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		switch t.Key {
		case corev1.TaintNodeUnschedulable, corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable:
			continue
		}
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	return true
}

// Schedulable is the nodes new pods can go to.
func (t Topology) Schedulable() []NodeInfo {
	return t.where(func(n NodeInfo) bool { return n.Schedulable })
}

// where is the nodes for which keep holds.
func (t Topology) where(keep func(NodeInfo) bool) []NodeInfo {
	var out []NodeInfo
	for _, n := range t.Nodes {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// Zone is the zone of a node ("" when it has none).
func (t Topology) Zone(node string) string {
	for _, n := range t.Nodes {
		if n.Name == node {
			return n.Zone
		}
	}
	return ""
}

// Workload is the nodes that run workloads, cordoned or not.
func (t Topology) Workload() []NodeInfo { return t.where(func(n NodeInfo) bool { return n.Workload }) }

// Zones is the distinct zones of the workload nodes.
func (t Topology) Zones() []string {
	var out []string
	for _, n := range t.Workload() {
		if n.Zone != "" && !slices.Contains(out, n.Zone) {
			out = append(out, n.Zone)
		}
	}
	sort.Strings(out)
	return out
}

// SharedStorage says every schedulable node mounts the shared directory
// (a multi-node cluster apimdev made).
func (t Topology) SharedStorage() bool {
	s := t.Schedulable()
	if len(s) < 2 {
		return false
	}
	for _, n := range s {
		if !n.Shared {
			return false
		}
	}
	return true
}

// subtractRequests takes from each node's free resources what the pods on it
// other than p's gateway's (and its exporter's) request.
func subtractRequests(ctx context.Context, c kubernetes.Interface, own gateway.Profile, t *Topology) error {
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		cpu, mem := n.free[corev1.ResourceCPU], n.free[corev1.ResourceMemory]
		for _, p := range pods.Items {
			// Terminating pods leave within their grace period (a rotation's
			// or rollout's old pods): their room is the new pods' soon.
			if p.Spec.NodeName != n.Name || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil ||
				p.Namespace == own.Namespace && (p.Labels["app"] == own.Gateway || p.Labels["app"] == own.StatsdName()) {
				continue
			}
			for _, c := range p.Spec.Containers {
				cpu.Sub(*c.Resources.Requests.Cpu())
				mem.Sub(*c.Resources.Requests.Memory())
			}
		}
		n.free = corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	}
	return nil
}

// FitLocal fits the prod profile's requests to the local cluster's
// schedulable nodes: the replicas plus the rollout's surge spread over
// them, each node holding its share, the one with least free deciding. The
// pods of own (the session's gateway) leave room for prod's.
func FitLocal(ctx context.Context, c kubernetes.Interface, own, prod gateway.Profile, t Topology) (gateway.Profile, string, error) {
	if err := subtractRequests(ctx, c, own, &t); err != nil {
		return prod, "", err
	}
	nodes := t.Schedulable()
	if len(nodes) == 0 {
		nodes = t.Nodes // a one-node cluster whose node is cordoned: fit to it anyway
	}
	if len(nodes) == 0 {
		return prod, "", fmt.Errorf("reading the node's capacity: the cluster has no node")
	}
	least := nodes[0].free
	for _, n := range nodes[1:] {
		if n.free.Cpu().Cmp(*least.Cpu()) < 0 {
			least = corev1.ResourceList{corev1.ResourceCPU: n.free.Cpu().DeepCopy(), corev1.ResourceMemory: least.Memory().DeepCopy()}
		}
		if n.free.Memory().Cmp(*least.Memory()) < 0 {
			least = corev1.ResourceList{corev1.ResourceCPU: least.Cpu().DeepCopy(), corev1.ResourceMemory: n.free.Memory().DeepCopy()}
		}
	}
	cpu, mem := least.Cpu().DeepCopy(), least.Memory().DeepCopy()
	// The statsd exporter's own small request comes out of one of them.
	cpu.Sub(resource.MustParse("10m"))
	mem.Sub(resource.MustParse("32Mi"))
	fitted, note := prod.Fit(cpu, mem, len(nodes))
	return fitted, note, nil
}

// CapacityError says a cluster's nodes cannot hold the prod profile's pods
// at their requests: the rollout would wait for pods that never schedule.
type CapacityError struct {
	Context                string
	Fit, Need              int
	Replicas, Surge, Nodes int
	CPU, Memory            string
	// NotReady names the nodes left out only because they are not Ready
	// (yet): a cluster made moments ago, whose workers are still joining.
	NotReady []string
}

func (e *CapacityError) Error() string {
	why := fmt.Sprintf("%d replicas + %d surge", e.Replicas, e.Surge)
	if e.Surge == 0 {
		why = fmt.Sprintf("%d replicas of a new Deployment", e.Replicas)
	}
	waiting := ""
	if len(e.NotReady) > 0 {
		waiting = fmt.Sprintf(" (not counted: %d node(s) not Ready: %s)", len(e.NotReady), strings.Join(e.NotReady, ", "))
	}
	return fmt.Sprintf("the %d schedulable node(s) of context %q can hold %d pod(s) of %s CPU / %s%s; the rollout needs %d (%s): nothing was changed",
		e.Nodes, e.Context, e.Fit, e.CPU, e.Memory, waiting, e.Need, why)
}

// Hint says the ways on.
func (e *CapacityError) Hint() string {
	if len(e.NotReady) > 0 {
		return fmt.Sprintf("wait until `kubectl --context %s get nodes` says Ready for %s (a node that has just joined takes a minute) and run this again; or add nodes, or"+
			" set prod.cpu and prod.memory in apimdev.yaml to what your nodes can hold", e.Context, strings.Join(e.NotReady, ", "))
	}
	return "add nodes, or set prod.cpu and prod.memory in apimdev.yaml to what your nodes can hold; with a cluster autoscaler that adds nodes for pending pods, pass --allow-pending"
}

// CheckCapacity counts how many pods of p's requests the schedulable nodes
// can hold (each node on its own: a pod never straddles two) and refuses a
// plan that needs more.
//
// A new Deployment (fresh) makes its replicas without a surge; changing one
// runs the old and new pods side by side, up to maxSurge more.
//
// The pods of own (the session's gateway) leave room for p's.
func CheckCapacity(ctx context.Context, c kubernetes.Interface, own, p gateway.Profile, kctx string, fresh bool) error {
	if p.Requests == nil {
		return nil
	}
	t, err := Read(ctx, c)
	if err != nil {
		return err
	}
	if err := subtractRequests(ctx, c, own, &t); err != nil {
		return err
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(&p.MaxSurge, int(p.Replicas), true)
	if fresh {
		surge = 0
	}
	need := int(p.Replicas) + surge
	cpu, mem := p.Requests.Cpu().MilliValue(), p.Requests.Memory().Value()
	fit := 0
	nodes := t.Schedulable()
	for _, n := range nodes {
		if !n.Ready {
			continue
		}
		byCPU, byMem := int64(need), int64(need)
		if cpu > 0 {
			byCPU = n.free.Cpu().MilliValue() / cpu
		}
		if mem > 0 {
			byMem = n.free.Memory().Value() / mem
		}
		fit += int(max(min(byCPU, byMem), 0))
	}
	if fit >= need {
		return nil
	}
	var notReady []string
	for _, n := range t.Nodes {
		if n.Joining {
			notReady = append(notReady, n.Name)
		}
	}
	return &CapacityError{Context: kctx, Fit: fit, Need: need, Replicas: int(p.Replicas), Surge: surge, Nodes: len(nodes),
		CPU: p.Requests.Cpu().String(), Memory: p.Requests.Memory().String(), NotReady: notReady}
}

// SharedBackupPath is where the backup of p lives under the shared mount.
func SharedBackupPath(p gateway.Profile) string {
	return path.Join(cluster.SharedMount, p.Namespace, p.Gateway)
}

// Spread is where the gateway's pods run: per zone, per node.
type Spread struct {
	Pods  int         `json:"pods"`
	Zones []ZoneCount `json:"zones"`
	// Even: over the schedulable nodes' zones, no zone (and no node) has
	// more than one pod more than another.
	Even bool   `json:"even"`
	Text string `json:"text"`
}

// ZoneCount is the pods in one zone, by node.
type ZoneCount struct {
	Zone  string         `json:"zone"`
	Pods  int            `json:"pods"`
	Nodes map[string]int `json:"nodes"`
}

// ReadSpread reads where p's running pods (not terminating) are.
func ReadSpread(ctx context.Context, c kubernetes.Interface, p gateway.Profile) (Spread, Topology, error) {
	t, err := Read(ctx, c)
	if err != nil {
		return Spread{}, t, err
	}
	pods, err := c.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.Selector()).String()})
	if err != nil {
		return Spread{}, t, err
	}
	var names []string
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp == nil && pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning {
			names = append(names, pod.Spec.NodeName)
		}
	}
	return SpreadOf(t, names), t, nil
}

// SpreadOf counts pods (given by their nodes) per zone and node.
func SpreadOf(t Topology, podNodes []string) Spread {
	byZone := map[string]*ZoneCount{}
	perNode := map[string]int{}
	for _, z := range t.Zones() {
		byZone[z] = &ZoneCount{Zone: z, Nodes: map[string]int{}}
	}
	for _, n := range t.Workload() {
		perNode[n.Name] = 0
		if zc := byZone[n.Zone]; zc != nil {
			zc.Nodes[n.Name] = 0
		}
	}
	for _, node := range podNodes {
		z := t.Zone(node)
		zc := byZone[z]
		if zc == nil {
			zc = &ZoneCount{Zone: z, Nodes: map[string]int{}}
			byZone[z] = zc
		}
		zc.Pods++
		zc.Nodes[node]++
		perNode[node]++
	}
	sp := Spread{Pods: len(podNodes)}
	for _, zc := range byZone {
		sp.Zones = append(sp.Zones, *zc)
	}
	sort.Slice(sp.Zones, func(i, j int) bool { return sp.Zones[i].Zone < sp.Zones[j].Zone })
	skew := func(counts []int) int {
		if len(counts) == 0 {
			return 0
		}
		return slices.Max(counts) - slices.Min(counts)
	}
	var zoneCounts, nodeCounts []int
	for _, zc := range sp.Zones {
		if zc.Zone != "" {
			zoneCounts = append(zoneCounts, zc.Pods)
		}
	}
	for _, c := range perNode {
		nodeCounts = append(nodeCounts, c)
	}
	sp.Even = len(t.Workload()) > 1 && skew(zoneCounts) <= 1 && skew(nodeCounts) <= 1
	var parts, counts []string
	for _, zc := range sp.Zones {
		zone := zc.Zone
		if zone == "" {
			zone = "(no zone)"
		}
		var ns []string
		for n, c := range zc.Nodes {
			ns = append(ns, fmt.Sprintf("%s %d", n, c))
		}
		sort.Strings(ns)
		counts = append(counts, fmt.Sprint(zc.Pods))
		parts = append(parts, fmt.Sprintf("%s: %s", zone, strings.Join(ns, ", ")))
	}
	sp.Text = fmt.Sprintf("%s over %d zone(s) (%s)", strings.Join(counts, "/"), len(sp.Zones), strings.Join(parts, "; "))
	return sp
}

// OneNodeNote is what promote and status say where spread cannot be shown.
const OneNodeNote = "one node: the prod profile's zone spread, its disruption budget under a drain and node loss cannot be shown here; `apimdev up --workers 3 --recreate` makes a control plane and three workers in three zones"

// NodePorts is which nodes answer the live Service's NodePorts: with
// externalTrafficPolicy Local, a node forwards to pods on itself only (the
// client's address is kept), and a node without one drops the connection.
type NodePorts struct {
	Ports    []int32  `json:"ports"`
	Answer   []string `json:"answer"`
	NoAnswer []string `json:"noAnswer"`
	Policy   string   `json:"externalTrafficPolicy"`
}

// ReadNodePorts reads p's live Service and its EndpointSlices: the ready
// endpoints' nodes are those kube-proxy lets answer.
func ReadNodePorts(ctx context.Context, c kubernetes.Interface, p gateway.Profile, t Topology) (*NodePorts, error) {
	svc, err := c.CoreV1().Services(p.Namespace).Get(ctx, p.LiveService(), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	np := &NodePorts{Policy: string(svc.Spec.ExternalTrafficPolicy)}
	for _, port := range svc.Spec.Ports {
		if port.NodePort != 0 {
			np.Ports = append(np.Ports, port.NodePort)
		}
	}
	slices2, err := c.DiscoveryV1().EndpointSlices(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + p.LiveService()})
	if err != nil {
		return nil, err
	}
	local := map[string]bool{}
	for _, sl := range slices2.Items {
		for _, e := range sl.Endpoints {
			if e.NodeName != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				local[*e.NodeName] = true
			}
		}
	}
	for _, n := range t.Nodes {
		if local[n.Name] || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			np.Answer = append(np.Answer, n.Name)
		} else {
			np.NoAnswer = append(np.NoAnswer, n.Name)
		}
	}
	return np, nil
}

// PodsToEvict sorts the pods on node for a drain: those to evict, and the
// bare ones (no controller to start them elsewhere) that stop it unless
// force evicts them too. Finished, terminating, mirror and DaemonSet pods
// stay.
func PodsToEvict(ctx context.Context, c kubernetes.Interface, node string, force bool) (evict []corev1.Pod, bare []string, err error) {
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range pods.Items {
		switch {
		case p.Spec.NodeName != node: // (a fake clientset ignores field selectors)
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, p.DeletionTimestamp != nil:
		case p.Annotations[corev1.MirrorPodAnnotationKey] != "", ownedBy(p, "DaemonSet"):
		case metav1.GetControllerOf(&p) == nil && !force:
			bare = append(bare, p.Namespace+"/"+p.Name)
		default:
			evict = append(evict, p)
		}
	}
	return evict, bare, nil
}

func ownedBy(p corev1.Pod, kind string) bool {
	c := metav1.GetControllerOf(&p)
	return c != nil && c.Kind == kind
}

// Cordon marks node unschedulable (on) or schedulable again.
func Cordon(ctx context.Context, c kubernetes.Interface, node string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if !on {
		patch = `{"spec":{"unschedulable":null}}`
	}
	_, err := c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("marking node %s %s: %w", node, map[bool]string{true: "unschedulable", false: "schedulable"}[on], err)
	}
	return nil
}
