package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
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
	err := pull(ctx, s.Docker, ref, func(line string) { st.Progress("%s", line) })
	if err == nil {
		return nil
	}
	pe := &NodeImagePullError{Image: ref, Registry: registryOf(ref), Reason: err.Error()}
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

// NodeImagePullError says the node image could not be pulled, and the ways
// out that need no registry.
type NodeImagePullError struct{ Image, Registry, Reason string }

func (e *NodeImagePullError) Error() string {
	return fmt.Sprintf("the node image %s could not be pulled: the registry %s could not be reached (%s)", e.Image, e.Registry, e.Reason)
}

// Hint names the three ways out.
func (e *NodeImagePullError) Hint() string {
	return "nothing was created. With no registry: load an offline kit (`apimdev up --kit kit.tar`, made with `apimdev kit create` where there is one), " +
		"name a node image this machine has (--node-image NAME), or build one here (`sudo apimdev node-image build`, " + nodeimage.EstimateText + "; up then finds it)"
}

// registryOf is the registry host of an image reference (Docker Hub when
// it names none).
func registryOf(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "registry-1.docker.io (Docker Hub)"
}

// pull pulls ref, reporting the engine's progress every few seconds; an
// error in the stream (the engine reports most failures there) is returned.
func pull(ctx context.Context, d cluster.Docker, ref string, progress func(string)) error {
	rc, err := d.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	last := time.Now()
	for {
		var m struct {
			Status, Progress string
			Error            string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
		if time.Since(last) > 3*time.Second && m.Status != "" {
			progress(strings.TrimSpace(m.Status + " " + m.Progress))
			last = time.Now()
		}
	}
}

// Labelled lists the engine's images with label, newest first.
func (di dockerImages) Labelled(ctx context.Context, label string) ([]string, error) {
	l, err := di.d.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		return nil, err
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Created > l[j].Created })
	var out []string
	for _, im := range l {
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				out = append(out, t)
				break
			}
		}
	}
	return out, nil
}
