package pipeline

import (
	"context"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/state"
)

// chooseRuntime picks the container runtime for the session's cluster:
// cluster.runtime as asked, else (auto) what the environment names, the one
// the state directory remembers the cluster on, or what answers.
func chooseRuntime(ctx context.Context, cfg config.Config, files state.Cluster) (cluster.RuntimeChoice, error) {
	// The machine's variables (DOCKER_HOST, CONTAINER_HOST,
	// KIND_EXPERIMENTAL_PROVIDER...) are the process's, as the engine client
	// and kind read them; getenv is for apimdev's own settings, which cfg
	// already holds (APIMDEV_RUNTIME is cluster.runtime).
	env := cluster.LocalRuntimeEnv()
	remembered, _ := files.Runtime()
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	has := func(ep cluster.Endpoint) bool { return holdsCluster(ctx, ep, cfg.Cluster.Name) }
	return cluster.ChooseRuntime(ctx, cfg.Cluster.Runtime, env, cluster.Runtime(remembered), cluster.ProbeEngine, has)
}

// holdsCluster says whether the engine at ep has a node of the kind cluster
// name (its containers carry kind's cluster label).
func holdsCluster(ctx context.Context, ep cluster.Endpoint, name string) bool {
	d, err := cluster.NewDockerAt(ep)
	if err != nil {
		return false
	}
	defer d.Close()
	cs, err := d.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.x-k8s.kind.cluster="+name))})
	return err == nil && len(cs) > 0
}

// rememberRuntime writes down the runtime the cluster is on, once it is
// known to be there (created or found).
func (s *Session) rememberRuntime() {
	if s.Endpoint.Runtime == "" {
		return // a session NewSession did not wire (tests)
	}
	_ = s.Files.SaveRuntime(string(s.Endpoint.Runs()))
}

// runtimeLine is status's word on the runtime: which, where, why.
func (s *Session) runtimeLine() string {
	if s.Endpoint.Runtime == "" {
		return ""
	}
	where := s.Endpoint.Host
	if where == "" {
		where = "the default socket"
	}
	line := s.Endpoint.Runs().Title() + " at " + where
	if s.RuntimeWhy != "" {
		line += " (" + s.RuntimeWhy + ")"
	}
	return line
}

// RuntimeAnswers is the runtime a session on cfg's cluster would use, and
// whether it answers now.
func RuntimeAnswers(ctx context.Context, cfg config.Config, getenv func(string) string) (cluster.RuntimeChoice, bool) {
	choice, err := chooseRuntime(ctx, cfg, clusterFiles(cfg, getenv))
	if err != nil {
		return choice, false
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	up, _ := cluster.ProbeEngine(pctx, choice.Endpoint)
	return choice, up
}

// clusterFiles is the state directory's files of cfg's cluster, without
// creating them (zero when there is no state directory).
func clusterFiles(cfg config.Config, getenv func(string) string) state.Cluster {
	return namedClusterFiles(getenv, cfg.Cluster.Name)
}

// namedClusterFiles is clusterFiles for a cluster's name.
func namedClusterFiles(getenv func(string) string, name string) state.Cluster {
	if dir, err := state.Dir(getenv); err == nil {
		return state.Cluster{Dir: filepath.Join(dir, "clusters", name)}
	}
	return state.Cluster{}
}
