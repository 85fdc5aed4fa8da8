package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/nodeimage"
)

// The node image a new cluster is made from, when nobody named one: kind's
// own when it is on this machine; else one built here before (apimdev
// node-image build, or the e2e rig); else kind's, pulled now, so that a
// registry that cannot be reached is said plainly, with the ways out. With
// build, that last case builds one here instead (make demo).

// chooseNodeImage is the first half, before preflight: a node image built
// on this machine stands in for kind's when kind's is not here. It says
// what it chose ("" when it changed nothing).
func (s *Session) chooseNodeImage(ctx context.Context) string {
	if s.Config.Cluster.NodeImage != "" || s.Docker == nil {
		return ""
	}
	if _, err := s.Docker.ImageInspect(ctx, cluster.DefaultNodeImage); err == nil {
		return ""
	}
	ref, ok, err := nodeimage.Find(ctx, dockerImages{s.Docker})
	if err != nil || !ok {
		return ""
	}
	s.Cluster.UseNodeImage(ref)
	return fmt.Sprintf("kind's %s is not on this machine; using %s, built here", cluster.DefaultNodeImage, ref)
}

// pullNodeImage is the second half, in the cluster step of a new cluster:
// the node image is pulled if it is not here. A pull that fails says which
// registry could not be reached and why; with build, a node image is built
// here instead.
func (s *Session) pullNodeImage(ctx context.Context, st *events.Step, build bool) error {
	ref := s.Cluster.NodeImage()
	if _, err := s.Docker.ImageInspect(ctx, ref); err == nil || !errdefs.IsNotFound(err) {
		return nil // here, or the engine cannot say: kind tells
	}
	st.Progress("pulling the node image %s (about 400 MB)", ref)
	err := nodeimage.Pull(ctx, s.Docker, ref, func(line string) { st.Progress("%s", line) })
	if err == nil {
		return nil
	}
	pe := &NodeImagePullError{Image: ref, Registry: nodeimage.RegistryOf(ref), Reason: err.Error()}
	if !build || ctx.Err() != nil {
		return pe
	}
	st.Warn(pe.Error()+": building a node image on this machine instead ("+nodeimage.EstimateText+", once: it is cached)", "")
	built, err := s.BuildNodeImage(ctx, "", "", st, nil)
	if err != nil {
		return err
	}
	s.Cluster.UseNodeImage(built)
	return nil
}

// BuildNodeImage builds a kind node image here (see package nodeimage),
// reporting each stage, with its time and a cold build's estimate, to st.
func (s *Session) BuildNodeImage(ctx context.Context, ref, cache string, st *events.Step, log func(string)) (string, error) {
	if cache == "" {
		var err error
		if cache, err = nodeimage.DefaultCache(); err != nil {
			return "", err
		}
	}
	b := &nodeimage.Builder{Cache: cache, Image: ref, Log: log, Progress: func(x nodeimage.Stage) {
		switch {
		case x.Done:
			st.Progress("%-18s done in %s (%s into the build)", x.Name, x.Took, x.Elapsed.Round(time.Second))
		case x.Estimate > 0:
			st.Progress("%-18s started (a cold build takes about %s for it)", x.Name, x.Estimate)
		default:
			st.Progress("%-18s started", x.Name)
		}
	}}
	return b.Build(ctx)
}

// NodeImagePullError says the node image could not be pulled (see
// nodeimage.PullError).
type NodeImagePullError = nodeimage.PullError

// Labelled lists the engine's images with label, newest first.
func (di dockerImages) Labelled(ctx context.Context, label string) ([]string, error) {
	return nodeimage.Labelled(ctx, di.d, label)
}
