package nodeimage

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
)

// PullError says the node image could not be pulled, and the ways
// out that need no registry.
type PullError struct{ Image, Registry, Reason string }

func (e *PullError) Error() string {
	return fmt.Sprintf("the node image %s could not be pulled: the registry %s could not be reached (%s)", e.Image, e.Registry, e.Reason)
}

// Hint names the three ways out.
func (e *PullError) Hint() string {
	return "nothing was created. With no registry: load an offline kit (`apimdev up --kit kit.tar`, made with `apimdev kit create` where there is one), " +
		"name a node image this machine has (--node-image NAME), or build one here (`sudo apimdev node-image build`, " + EstimateText + "; up then finds it)"
}

// RegistryOf is the registry host of an image reference (Docker Hub when
// it names none).
func RegistryOf(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "registry-1.docker.io (Docker Hub)"
}

// Puller is the part of a Docker engine client that pulls images.
type Puller interface {
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
}

// Pull pulls ref, reporting the engine's progress every few seconds; an
// error in the stream (the engine reports most failures there) is returned.
func Pull(ctx context.Context, d Puller, ref string, progress func(string)) error {
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

// Lister is the part of a Docker engine client that lists images.
type Lister interface {
	ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error)
}

// Labelled lists the engine's images with label, newest first, by their
// first tag.
func Labelled(ctx context.Context, d Lister, label string) ([]string, error) {
	l, err := d.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
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
