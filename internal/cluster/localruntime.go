package cluster

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/state"
)

// ChooseLocalRuntime picks the container runtime for cfg's cluster:
// cluster.runtime as asked, else (auto) what the environment names, the one
// the state directory (files) remembers the cluster on, or what answers.
func ChooseLocalRuntime(ctx context.Context, cfg config.Config, files state.ClusterDir) (RuntimeChoice, error) {
	// The machine's variables (DOCKER_HOST, CONTAINER_HOST,
	// KIND_EXPERIMENTAL_PROVIDER...) are the process's, as the engine client
	// and kind read them; getenv is for apimdev's own settings, which cfg
	// already holds (APIMDEV_RUNTIME is cluster.runtime).
	env := LocalRuntimeEnv()
	remembered, _ := files.Runtime()
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	has := func(ep Endpoint) bool { return HoldsCluster(ctx, ep, cfg.Cluster.Name) }
	return ChooseRuntime(ctx, cfg.Cluster.Runtime, env, Runtime(remembered), ProbeEngine, has)
}

// HoldsCluster says whether the engine at ep has a node of the kind cluster
// name (its containers carry kind's cluster label).
func HoldsCluster(ctx context.Context, ep Endpoint, name string) bool {
	d, err := NewDockerAt(ep)
	if err != nil {
		return false
	}
	defer d.Close()
	cs, err := d.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.x-k8s.kind.cluster="+name))})
	return err == nil && len(cs) > 0
}
