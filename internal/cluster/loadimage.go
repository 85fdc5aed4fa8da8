package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/docker/docker/errdefs"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// LoadImage copies image from the local Docker engine into every node, unless
// a node already holds the same image ID. It returns what it did, and
// whether a node held a different image under the same name: pods started
// before then run the old one.
func (m *Manager) LoadImage(ctx context.Context, image string, progress Progress) (what string, replaced bool, err error) {
	info, err := m.Docker.ImageInspect(ctx, image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "not on this machine: the node will pull it", false, nil
		}
		return "", false, fmt.Errorf("inspecting image %s: %w", image, err)
	}
	ns, err := m.listNodes()
	if err != nil {
		return "", false, err
	}
	if m.statusHolds(ctx, ns, image, info.ID) {
		return "already on the node (" + shortID(info.ID) + ")", false, nil
	}
	var need []string
	for _, n := range ns {
		id, digests, err := runtimeImage(n, image)
		if err == nil && id == info.ID {
			m.rememberDigests(id, digests)
			continue
		}
		if err == nil && id != "" {
			replaced = true
		}
		need = append(need, n.String())
	}
	if len(need) == 0 {
		return "already on the node (" + shortID(info.ID) + ")", false, nil
	}
	where := "the node"
	if len(need) > 1 {
		where = fmt.Sprintf("%d nodes", len(need))
	}
	progress("loading %s (%d MB) into %s", image, info.Size>>20, where)
	rc, err := m.Docker.ImageSave(ctx, []string{image})
	if err != nil {
		return "", false, fmt.Errorf("saving image %s: %w", image, err)
	}
	if m.Runtime == RuntimePodman {
		rc = NameArchive(rc, image)
	}
	defer rc.Close()
	m.rememberLoad(image, info.ID)
	if err := loadInto(ns, need, rc); err != nil {
		return "", false, fmt.Errorf("loading %s: %w", image, err)
	}
	what = fmt.Sprintf("loaded into %s (%s, %d MB)", where, shortID(info.ID), info.Size>>20)
	if replaced {
		what += ", replacing an older image of the same name"
	}
	return what, replaced, nil
}

// loadInto streams one image archive into every node named in need at once:
// the engine saves the image once, each node's containerd imports its copy
// as it arrives.
func loadInto(ns []nodes.Node, need []string, archive io.Reader) error {
	var targets []nodes.Node
	for _, n := range ns {
		if contains(need, n.String()) {
			targets = append(targets, n)
		}
	}
	if len(targets) == 1 {
		return nodeutils.LoadImageArchive(targets[0], archive)
	}
	pipes := make([]*io.PipeWriter, len(targets))
	writers := make([]io.Writer, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, n := range targets {
		pr, pw := io.Pipe()
		pipes[i], writers[i] = pw, pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := nodeutils.LoadImageArchive(n, pr)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n, err)
			}
			// Unblock the copy if this node stopped reading early.
			_ = pr.CloseWithError(io.ErrClosedPipe)
		}()
	}
	_, cerr := io.Copy(io.MultiWriter(writers...), archive)
	for _, pw := range pipes {
		_ = pw.CloseWithError(cerr)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return cerr
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
