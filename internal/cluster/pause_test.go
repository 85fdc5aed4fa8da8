package cluster

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/testdir"
)

// deleteWatch is a running cluster whose delete notes the node's state at
// the time kind deletes it.
type deleteWatch struct {
	startingKind
	engine    *enginefake.Engine
	atDelete  string
	deletions int
}

func (k *deleteWatch) Delete(string, string) error {
	k.deletions++
	k.atDelete, _ = k.engine.ContainerState("apimdev-control-plane")
	return nil
}

func pausedRig(t *testing.T) (*Manager, *enginefake.Engine, *deleteWatch) {
	t.Helper()
	e := enginefake.New()
	e.AddContainer("apimdev-control-plane", enginefake.Running)
	k := &deleteWatch{startingKind: startingKind{server: "https://127.0.0.1:1"}, engine: e}
	dir := testdir.New(t)
	return &Manager{Kind: k, Docker: e, Name: "apimdev", Kubeconfig: filepath.Join(dir, "kubeconfig"), UserKubeconfig: filepath.Join(dir, "user-kubeconfig")}, e, k
}

// A node the engine has paused is paused, not broken nor starting: Inspect
// says so without asking its API server (which cannot answer), whoever
// paused it.
func TestInspectSaysPausedForAPausedNode(t *testing.T) {
	m, e, _ := pausedRig(t)
	if err := e.ContainerPause(context.Background(), "apimdev-control-plane"); err != nil { // `docker pause` by hand
		t.Fatal(err)
	}
	st, detail := m.Inspect(context.Background())
	if st != ClusterPaused || detail != "apimdev-control-plane" {
		t.Fatalf("Inspect = %s %q; want paused naming the node", st, detail)
	}
}

func TestPauseAndUnpauseTheNodes(t *testing.T) {
	m, e, _ := pausedRig(t)
	ctx := context.Background()
	nodes, err := m.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nodes, []string{"apimdev-control-plane"}) {
		t.Fatalf("paused %v", nodes)
	}
	if s, _ := e.ContainerState("apimdev-control-plane"); s != enginefake.Paused {
		t.Fatalf("node %s after Pause", s)
	}
	// Again: nothing more to pause, and no call the engine would refuse.
	if nodes, err := m.Pause(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("a second Pause = %v, %v", nodes, err)
	}
	if n := e.Count("pause"); n != 1 {
		t.Fatalf("%d pause calls", n)
	}
	nodes, err = m.Unpause(ctx)
	if err != nil || !slices.Equal(nodes, []string{"apimdev-control-plane"}) {
		t.Fatalf("Unpause = %v, %v", nodes, err)
	}
	if s, _ := e.ContainerState("apimdev-control-plane"); s != enginefake.Running {
		t.Fatalf("node %s after Unpause", s)
	}
	if nodes, err := m.Unpause(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("a second Unpause = %v, %v", nodes, err)
	}
}

// kind's delete runs commands in the nodes: a paused cluster is thawed
// before it is deleted.
func TestDeleteThawsAPausedClusterFirst(t *testing.T) {
	m, e, k := pausedRig(t)
	if _, err := m.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	if k.deletions != 1 || k.atDelete != enginefake.Running {
		t.Fatalf("%d deletion(s), the node %q when kind deleted it; want one, running", k.deletions, k.atDelete)
	}
	if n := e.Count("unpause"); n != 1 {
		t.Fatalf("%d unpause calls", n)
	}
}
