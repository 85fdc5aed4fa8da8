package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/exec"
)

// kind lists a cluster's node containers with the docker (or podman) CLI: a
// process per listing, ~30 ms, the largest part of what a warm `up` or
// `status` spends before its first API call. The engine's API answers the
// same question (containers, stopped ones too, with kind's cluster label) in
// a few milliseconds. Most of what apimdev does with a node needs only its
// name (inspect it, pause it, find its Node object); a command in the node
// (crictl, ctr, a log) is kind's, so a node listed through the API asks kind
// for its own handle the first time it runs one.

// clusterLabel is the label kind gives every node container: the cluster's name.
const clusterLabel = "io.x-k8s.kind.cluster"

// containerLister is the engine API's listing; the real client has it, and
// an engine without it (a test's fake) is listed kind's way.
type containerLister interface {
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
}

// listThroughEngine lists the cluster's node containers through the engine's
// API; ok is false when the engine cannot (then kind lists them).
func (m *Manager) listThroughEngine() (ns []nodes.Node, ok bool, err error) {
	l, can := m.Docker.(containerLister)
	if !can || m.Docker == nil {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := l.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", clusterLabel+"="+m.Name))})
	if err != nil {
		return nil, true, fmt.Errorf("failed to list nodes: %w", err)
	}
	for _, c := range cs {
		if len(c.Names) == 0 {
			continue
		}
		ns = append(ns, &engineNode{name: strings.TrimPrefix(c.Names[0], "/"), m: m})
	}
	return ns, true, nil
}

// engineNode is a node container found through the engine's API: its name,
// and kind's handle for anything else, found when first needed.
type engineNode struct {
	name string
	m    *Manager
}

func (n *engineNode) String() string { return n.name }

// kindNode is kind's handle of the same container.
func (n *engineNode) kindNode() (nodes.Node, error) {
	ns, err := n.m.Kind.ListNodes(n.m.Name)
	if err != nil {
		return nil, err
	}
	for _, k := range ns {
		if k.String() == n.name {
			return k, nil
		}
	}
	return nil, fmt.Errorf("kind does not list node %s of cluster %q", n.name, n.m.Name)
}

func (n *engineNode) Role() (string, error) {
	if r, ok := n.m.roleLabel(context.Background(), n.name); ok {
		return r, nil
	}
	k, err := n.kindNode()
	if err != nil {
		return "", err
	}
	return k.Role()
}

func (n *engineNode) IP() (string, string, error) {
	k, err := n.kindNode()
	if err != nil {
		return "", "", err
	}
	return k.IP()
}

func (n *engineNode) SerialLogs(w io.Writer) error {
	k, err := n.kindNode()
	if err != nil {
		return err
	}
	return k.SerialLogs(w)
}

func (n *engineNode) Command(name string, args ...string) exec.Cmd {
	k, err := n.kindNode()
	if err != nil {
		return failedCmd{err}
	}
	return k.Command(name, args...)
}

func (n *engineNode) CommandContext(ctx context.Context, name string, args ...string) exec.Cmd {
	k, err := n.kindNode()
	if err != nil {
		return failedCmd{err}
	}
	return k.CommandContext(ctx, name, args...)
}

// failedCmd is a command that could not be made: running it says why.
type failedCmd struct{ err error }

func (c failedCmd) Run() error                  { return errors.Join(errors.New("no handle on the node"), c.err) }
func (c failedCmd) SetEnv(...string) exec.Cmd   { return c }
func (c failedCmd) SetStdin(io.Reader) exec.Cmd { return c }
func (c failedCmd) SetStdout(io.Writer) exec.Cmd {
	return c
}
func (c failedCmd) SetStderr(io.Writer) exec.Cmd { return c }
