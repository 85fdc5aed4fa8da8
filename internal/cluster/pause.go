package cluster

import (
	"context"
	"fmt"
)

// Pause freezes every node container of the cluster with the engine's
// pause (the cgroup freezer: no process runs, memory is kept) and names
// them. Nodes already paused are left as they are.
func (m *Manager) Pause(ctx context.Context) ([]string, error) {
	return m.eachNode(ctx, func(ctx context.Context, name string, paused bool) (bool, error) {
		if paused {
			return false, nil
		}
		return true, m.Docker.ContainerPause(ctx, name)
	})
}

// Unpause thaws every paused node container of the cluster and names those
// it thawed; a cluster with none paused is left as it is.
func (m *Manager) Unpause(ctx context.Context) ([]string, error) {
	return m.eachNode(ctx, func(ctx context.Context, name string, paused bool) (bool, error) {
		if !paused {
			return false, nil
		}
		return true, m.Docker.ContainerUnpause(ctx, name)
	})
}

// eachNode calls do for every running node container with whether the
// engine has it paused, and names those do acted on.
func (m *Manager) eachNode(ctx context.Context, do func(ctx context.Context, name string, paused bool) (bool, error)) ([]string, error) {
	ns, err := m.listNodes()
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var done []string
	for _, n := range ns {
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil {
			return done, fmt.Errorf("inspecting node %s: %w", n, err)
		}
		if ci.ContainerJSONBase == nil || ci.State == nil || !ci.State.Running {
			continue
		}
		acted, err := do(ctx, n.String(), ci.State.Paused)
		if err != nil {
			return done, fmt.Errorf("node %s: %w", n, err)
		}
		if acted {
			done = append(done, n.String())
		}
	}
	return done, nil
}
