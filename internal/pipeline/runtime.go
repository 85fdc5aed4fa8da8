package pipeline

import (
	"context"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/state"
)

// chooseRuntime picks the container runtime for the session's cluster (see
// cluster.ChooseLocalRuntime); ctx bounds its probing.
func chooseRuntime(ctx context.Context, cfg config.Config, files state.ClusterDir) (cluster.RuntimeChoice, error) {
	return cluster.ChooseLocalRuntime(ctx, cfg, files)
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
func clusterFiles(cfg config.Config, getenv func(string) string) state.ClusterDir {
	return namedClusterFiles(getenv, cfg.Cluster.Name)
}

// namedClusterFiles is clusterFiles for a cluster's name.
func namedClusterFiles(getenv func(string) string, name string) state.ClusterDir {
	return state.ClusterFiles(getenv, name)
}
