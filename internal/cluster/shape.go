package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster/constants"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// Shape is the nodes a new cluster is made of: one control plane and
// Workers workers, labelled topology.kubernetes.io/zone round-robin over
// Zones and topology.kubernetes.io/region Region, as a cloud labels its
// nodes. Zero workers is one node that runs everything (the default: the
// fastest cluster to make).
type Shape struct {
	Workers int
	Zones   []string
	Region  string
}

// Node labels apimdev gives the nodes of a multi-node cluster.
const (
	ZoneLabel   = "topology.kubernetes.io/zone"
	RegionLabel = "topology.kubernetes.io/region"
	// SharedLabel marks a node that mounts the cluster's shared directory
	// at SharedMount.
	SharedLabel = "apimdev.io/shared-dir"
)

// SharedMount is where every node of a multi-node cluster apimdev made sees
// one host directory (the Manager's SharedDir): storage that follows a pod
// to any node, as a ReadWriteMany share (Azure Files, NFS) does on a real
// cluster. The prod profile's configuration backup lives there.
const SharedMount = "/var/lib/apimdev/shared"

// nodes is the kind configuration's node list for the shape.
func (m *Manager) nodes(img string) []v1alpha4.Node {
	cp := v1alpha4.Node{Role: v1alpha4.ControlPlaneRole, Image: img, ExtraPortMappings: directMappings()}
	if m.Shape.Workers <= 0 {
		return []v1alpha4.Node{cp}
	}
	mounts := []v1alpha4.Mount{{HostPath: m.SharedDir, ContainerPath: SharedMount}}
	region := m.Shape.Region
	if region == "" {
		region = "local"
	}
	zones := m.Shape.Zones
	if len(zones) == 0 {
		zones = []string{region + "-1", region + "-2", region + "-3"}
	}
	// The control plane keeps kind's NoSchedule taint once there are
	// workers: like a managed cluster's, it runs no workload.
	cp.Labels = map[string]string{RegionLabel: region, SharedLabel: "true"}
	cp.ExtraMounts = mounts
	ns := []v1alpha4.Node{cp}
	for i := 0; i < m.Shape.Workers; i++ {
		ns = append(ns, v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: img, ExtraMounts: mounts,
			Labels: map[string]string{RegionLabel: region, ZoneLabel: zones[i%len(zones)], SharedLabel: "true"}})
	}
	return ns
}

// prepareShared makes the shared directory before kind mounts it (Docker
// would make it root's).
func (m *Manager) prepareShared() error {
	if m.Shape.Workers <= 0 {
		return nil
	}
	if m.SharedDir == "" {
		return fmt.Errorf("cluster %q: a multi-node cluster needs a shared directory", m.Name)
	}
	abs, err := filepath.Abs(m.SharedDir)
	if err != nil {
		return err
	}
	m.SharedDir = abs
	return os.MkdirAll(abs, 0o755)
}

// clearShared empties the shared directory from inside a node before the
// cluster goes (what pods wrote there belongs to root or the gateway's
// UID, which the user may not be able to delete), then removes it.
func (m *Manager) clearShared(ctx context.Context) {
	if m.SharedDir == "" {
		return
	}
	if _, err := os.Stat(m.SharedDir); err != nil {
		return
	}
	if ns, err := m.listNodes(); err == nil {
		for _, n := range ns {
			if r, _ := n.Role(); r == constants.ControlPlaneNodeRoleValue {
				_ = n.CommandContext(ctx, "sh", "-c", "rm -rf "+SharedMount+"/* "+SharedMount+"/.[!.]*").Run()
			}
		}
	}
	_ = os.RemoveAll(m.SharedDir)
}

// Workers counts the existing cluster's worker nodes (kind's roles, read
// from the node containers: no API server needed).
func (m *Manager) Workers(ctx context.Context) (int, error) {
	ns, err := m.listNodes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, node := range ns {
		if r, err := m.role(ctx, node); err == nil && r == constants.WorkerNodeRoleValue {
			n++
		}
	}
	return n, nil
}

// role is a node's kind role, from the label kind reads it from, through
// the engine's API: kind's own Role runs a docker CLI process per node
// (~30 ms each). A container the API shows without the label is asked kind's
// way.
func (m *Manager) role(ctx context.Context, n nodes.Node) (string, error) {
	if r, ok := m.roleLabel(ctx, n.String()); ok {
		return r, nil
	}
	return n.Role()
}

// roleLabel is the role label of the node container name, as the engine's
// API shows it.
func (m *Manager) roleLabel(ctx context.Context, name string) (string, bool) {
	if m.Docker == nil {
		return "", false
	}
	ci, err := m.Docker.ContainerInspect(ctx, name)
	if err != nil || ci.Config == nil {
		return "", false
	}
	r, ok := ci.Config.Labels[nodeRoleLabel]
	return r, ok && r != ""
}

// nodeRoleLabel is the label kind gives each node container its role in.
const nodeRoleLabel = "io.x-k8s.kind.role"

// UseShape sets the nodes a new cluster is made of.
func (m *Manager) UseShape(s Shape) { m.Shape = s }

// ShapeError says an existing cluster has another number of workers than
// asked: kind cannot add or remove nodes of a running cluster.
type ShapeError struct {
	Name       string
	Have, Want int
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("cluster %q has %s; you asked for %s, and kind cannot add or remove nodes of a running cluster", e.Name, describeWorkers(e.Have), describeWorkers(e.Want))
}

// Hint says the two ways on.
func (e *ShapeError) Hint() string {
	return fmt.Sprintf("make it anew with `apimdev up --workers %d --recreate` (deletes the cluster and everything in it), or keep this one: drop --workers (or set cluster.workers: %d)", e.Want, e.Have)
}

func describeWorkers(n int) string {
	switch n {
	case 0:
		return "one node (no workers)"
	case 1:
		return "a control plane and 1 worker"
	}
	return fmt.Sprintf("a control plane and %d workers", n)
}

// DescribeShape says what a shape makes, for progress lines.
func DescribeShape(s Shape) string {
	if s.Workers <= 0 {
		return "one node"
	}
	zones := s.Zones
	if len(zones) > s.Workers {
		zones = zones[:s.Workers]
	}
	return fmt.Sprintf("a control plane and %d workers over zones %s", s.Workers, strings.Join(zones, ", "))
}
