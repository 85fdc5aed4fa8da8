package cluster

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/testdir"
)

// countingKind counts kind's listings of the node containers.
type countingKind struct {
	startingKind
	listings int
}

func (k *countingKind) ListNodes(name string) ([]nodes.Node, error) {
	k.listings++
	return k.startingKind.ListNodes(name)
}

// up inspects the cluster three times in a moment (thaw, record, preflight):
// one listing serves them; a listing seconds old does not.
func TestInspectReusesAListingOfAMomentAgo(t *testing.T) {
	e := enginefake.New()
	e.AddContainer("apimdev-control-plane", enginefake.Paused)
	k := &countingKind{startingKind: startingKind{server: "https://127.0.0.1:1"}}
	m := &Manager{Kind: k, Docker: e, Name: "apimdev", Kubeconfig: filepath.Join(testdir.New(t), "kubeconfig")}
	ctx := context.Background()
	for range 3 {
		if st, _ := m.Inspect(ctx); st != ClusterPaused {
			t.Fatalf("Inspect = %s; want paused", st)
		}
	}
	if k.listings != 1 {
		t.Fatalf("%d listings for three inspections in a moment; want 1", k.listings)
	}
	m.memoMu.Lock()
	m.memoAt = time.Now().Add(-inspectReuse)
	m.memoMu.Unlock()
	m.Inspect(ctx)
	if k.listings != 2 {
		t.Fatalf("%d listings; want a fresh one for a listing %s old", k.listings, inspectReuse)
	}
}

// labelledDocker shows node containers with kind's role label.
type labelledDocker struct {
	*enginefake.Engine
	roles map[string]string
}

func (d labelledDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	ci, err := d.Engine.ContainerInspect(ctx, id)
	if r, ok := d.roles[id]; ok && err == nil {
		ci.Config = &container.Config{Labels: map[string]string{"io.x-k8s.kind.role": r}}
	}
	return ci, err
}

type twoNodeKind struct{ startingKind }

func (twoNodeKind) ListNodes(string) ([]nodes.Node, error) {
	return []nodes.Node{fakeNode("apimdev-control-plane"), fakeNode("apimdev-worker")}, nil
}

// Workers reads the role label through the engine's API (fakeNode's Role
// says control-plane for every node: a worker counted proves the label was
// read), and asks kind's way for a container without the label.
func TestWorkersReadsTheRoleLabel(t *testing.T) {
	e := enginefake.New()
	e.AddContainer("apimdev-control-plane", enginefake.Running)
	e.AddContainer("apimdev-worker", enginefake.Running)
	m := &Manager{Kind: twoNodeKind{}, Name: "apimdev",
		Docker: labelledDocker{Engine: e, roles: map[string]string{"apimdev-control-plane": "control-plane", "apimdev-worker": "worker"}}}
	if n, err := m.Workers(context.Background()); err != nil || n != 1 {
		t.Fatalf("Workers = %d, %v; want 1 (from the label)", n, err)
	}
	m = &Manager{Kind: twoNodeKind{}, Name: "apimdev", Docker: labelledDocker{Engine: e}}
	if n, err := m.Workers(context.Background()); err != nil || n != 0 {
		t.Fatalf("Workers without labels = %d, %v; want 0 (kind's Role: control-plane)", n, err)
	}
}

// listingDocker lists the node containers through the engine's API, as the
// real client does, and checks the listing asks for the cluster's label.
type listingDocker struct {
	*enginefake.Engine
	t     *testing.T
	names []string
	calls int
}

func (d *listingDocker) ContainerList(_ context.Context, o container.ListOptions) ([]container.Summary, error) {
	d.calls++
	if !o.All || !o.Filters.ExactMatch("label", "io.x-k8s.kind.cluster=apimdev") {
		d.t.Errorf("listing %+v: want all containers with the cluster's label", o)
	}
	var out []container.Summary
	for _, n := range d.names {
		out = append(out, container.Summary{Names: []string{"/" + n}})
	}
	return out, nil
}

// The node containers are listed through the engine's API (no CLI process);
// kind's own handle is asked for only to run a command in a node.
func TestNodesAreListedThroughTheEngine(t *testing.T) {
	e := enginefake.New()
	e.AddContainer("apimdev-control-plane", enginefake.Running)
	d := &listingDocker{Engine: e, t: t, names: []string{"apimdev-control-plane"}}
	k := &countingKind{startingKind: startingKind{server: "https://127.0.0.1:1"}}
	m := &Manager{Kind: k, Docker: d, Name: "apimdev", Kubeconfig: filepath.Join(testdir.New(t), "kubeconfig")}
	ns, err := m.listNodes()
	if err != nil || len(ns) != 1 || ns[0].String() != "apimdev-control-plane" {
		t.Fatalf("listNodes = %v, %v; want the control plane by name", ns, err)
	}
	if d.calls != 1 || k.listings != 0 {
		t.Fatalf("%d engine listings, %d of kind's; want 1 and 0", d.calls, k.listings)
	}
	if n, err := m.Workers(context.Background()); err != nil || n != 0 {
		t.Fatalf("Workers = %d, %v", n, err)
	}
	if k.listings != 1 {
		t.Fatalf("no label on the fake's container: its role is kind's, asked once; kind listed %d times", k.listings)
	}

	// A container kind does not know: a command in it fails, saying so.
	d.names = []string{"apimdev-worker"}
	m.forgetNodes()
	ns, _ = m.listNodes()
	if err := ns[0].Command("crictl", "images").Run(); err == nil || !strings.Contains(err.Error(), "apimdev-worker") {
		t.Fatalf("command in a node kind does not list: %v; want an error naming it", err)
	}
}
