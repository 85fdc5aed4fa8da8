package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
)

// Down stops the background forward and deletes the cluster apimdev created
// with apimdev's kubeconfig for it, or, with keepCluster, only the gateway's
// objects and its record. A cluster apimdev did not create is never deleted.
// The caller holds the cluster lock.
func (s *Session) Down(ctx context.Context, keepCluster bool) error {
	return s.runSteps(ctx, []step{{name: "down", detail: "", run: func(ctx context.Context, st *events.Step) (string, error) {
		// The forward is stopped beside the rest: it drains its connections
		// while the cluster is looked at and deleted, instead of before.
		// Joined before anything else touches the state directory.
		stopped := make(chan struct{})
		said := ""
		go func() {
			defer close(stopped)
			if rec, ok := s.Files.StopForward(); ok {
				said = fmt.Sprintf("stopped the background forward (pid %d)", rec.PID)
			} else {
				said = rec.Note
			}
		}()
		joined := false
		join := func() {
			if joined {
				return
			}
			joined = true
			<-stopped
			if said != "" {
				st.Progress("%s", said)
			}
		}
		defer join()
		state, detail := s.Cluster.Inspect(ctx)
		name := s.Config.Cluster.Name
		if keepCluster || state == cluster.ClusterAbsent || state == cluster.ClusterForeign {
			join() // no deletion to overlap
		}
		if state == cluster.ClusterPaused && keepCluster {
			// The gateway's objects are removed through the API server:
			// the nodes are thawed first (a deletion thaws them itself).
			if _, err := s.unpause(ctx); err != nil {
				return "", err
			}
			st.Progress("resumed the paused cluster %q", name)
			if err := s.Connect(); err != nil {
				return "", err
			}
			if err := s.waitAPIServer(ctx); err != nil {
				return "", err
			}
			state, detail = cluster.ClusterOurs, ""
		}
		if keepCluster {
			if state != cluster.ClusterOurs {
				return "", fmt.Errorf("cluster %q is %s %s: nothing to remove", name, state, detail)
			}
			if err := s.Connect(); err != nil {
				return "", err
			}
			if err := s.Resolve(ctx); err != nil {
				return "", err
			}
			// Everything the gateway has is pruned: the empty plan.
			plan, err := gateway.Plan(ctx, s.Client, s.Names, nil)
			if err != nil {
				return "", err
			}
			gone, err := gateway.Prune(ctx, s.Client, plan)
			if err != nil {
				return "", err
			}
			if _, err := s.convergeBackends(ctx, nil, st.Progress); err != nil {
				return "", err
			}
			if err := s.deleteRecord(ctx); err != nil {
				return "", err
			}
			s.Files.ForgetRecord()
			return fmt.Sprintf("removed %d object(s): %s; cluster %q kept", len(gone), strings.Join(gone, ", "), name), nil
		}
		switch state {
		case cluster.ClusterAbsent:
			_ = s.Files.Remove()
			said := fmt.Sprintf("no cluster %q: nothing to delete", name)
			if others := s.Files.Others(); len(others) > 0 {
				said += fmt.Sprintf("; apimdev made %s here: `apimdev down --cluster-name %s`", strings.Join(others, ", "), others[0])
			}
			return said, nil
		case cluster.ClusterForeign:
			return "", &ForeignError{Name: name}
		}
		err := s.Cluster.Delete()
		join()
		if err != nil {
			return "", fmt.Errorf("deleting cluster %q: %w", name, err)
		}
		if s.Kubeconfig() == s.Files.Kubeconfig() || cluster.EmptyKubeconfig(s.Kubeconfig()) {
			// apimdev's own file: in its state directory, or one it made
			// that kind has just emptied.
			_ = os.Remove(s.Kubeconfig())
		}
		_ = s.Files.Remove()
		return fmt.Sprintf("deleted cluster %q and apimdev's kubeconfig for it", name), nil
	}}})
}

// ForeignError says a cluster of that name is not apimdev's.
type ForeignError struct{ Name string }

func (e *ForeignError) Error() string {
	return fmt.Sprintf("kind cluster %q was not created by apimdev; not deleting it", e.Name)
}

// Hint says how to delete it anyway.
func (e *ForeignError) Hint() string {
	return fmt.Sprintf("delete it yourself with `kind delete cluster --name %s` if you mean to", e.Name)
}
