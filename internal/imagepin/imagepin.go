// Package imagepin turns a floating image tag (v2, latest, beta) into an
// exact one (major.minor.patch, or a digest), as production wants: from the
// registry's tag list when it answers, else from the tags or digest of the
// same image on this machine, else it refuses with the fix. It also tells
// which platforms (os/architecture) an image is built for: the local
// image's, else the registry's index or manifest (PlatformsOf).
//
// It imports nothing of apimdev's but the tag rules in gateway, and neither
// Docker nor Kubernetes: the registry is an *http.Client, the local images an
// interface.
package imagepin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apimdev/apimdev/internal/gateway"
)

// Local tells what this machine knows of an image: its other tags and its
// digests, and its platform. found is false when the image is not here at
// all.
type Local interface {
	Refs(ctx context.Context, image string) (tags, digests []string, found bool, err error)
	Platform(ctx context.Context, image string) (p Platform, found bool, err error)
}

// Pinner pins images.
type Pinner struct {
	// Tags lists a repository's tags; nil asks the registry's v2 API with
	// HTTP (or http.DefaultClient when HTTP is nil).
	Tags func(ctx context.Context, repo string) ([]string, error)
	// Platforms lists what an image is built for; nil asks the registry's
	// v2 API with HTTP (see Registry.Platforms).
	Platforms func(ctx context.Context, image string) ([]Platform, error)
	HTTP      *http.Client
	Local     Local // nil: no local images to ask
	// Timeout bounds the registry's answer; 0 means 5 s.
	Timeout time.Duration
}

// Pin returns image with an exact version and how it was found.
func (p Pinner) Pin(ctx context.Context, image string) (string, string, error) {
	if gateway.Pinned(image) {
		return image, "already pinned", nil
	}
	repo, tag := gateway.Repo(image), gateway.Tag(image)
	list := p.Tags
	if list == nil {
		list = Registry{Client: p.HTTP}.Tags
	}
	lctx, cancel := context.WithTimeout(ctx, p.timeout())
	tags, regErr := list(lctx, repo)
	cancel()
	if regErr == nil {
		if best := NewestPatch(tags, tag); best != "" {
			return repo + ":" + best, "newest " + strings.TrimPrefix(tag, "v") + ".x.y in the registry's tag list", nil
		}
	}
	if p.Local != nil {
		tags, digests, found, err := p.Local.Refs(ctx, image)
		switch {
		case err != nil:
			regErr = errors.Join(regErr, err)
		case found:
			for _, t := range tags {
				if gateway.Repo(t) == repo && gateway.Pinned(t) {
					return t, "the tag of the same local image " + image, nil
				}
			}
			for _, d := range digests {
				if gateway.Repo(d) == repo || strings.HasPrefix(d, repo+"@") {
					return d, "the digest of the local image " + image, nil
				}
			}
		}
	}
	why := "the registry's tag list is out of reach"
	if regErr == nil {
		why = "the registry lists no " + tag + " version"
	}
	return "", "", &Error{Image: image, Why: why}
}

// timeout is how long a registry gets to answer: Timeout, else 5 s.
func (p Pinner) timeout() time.Duration {
	if p.Timeout == 0 {
		return 5 * time.Second
	}
	return p.Timeout
}

// Error says an image could not be pinned, and how to do it by hand.
type Error struct{ Image, Why string }

func (e *Error) Error() string {
	return fmt.Sprintf("cannot pin %s to a major.minor.patch tag: %s, and no local image says which version it is", e.Image, e.Why)
}

// Hint names the version to pass.
func (e *Error) Hint() string {
	return "name the version yourself, e.g. --image " + gateway.Repo(e.Image) + ":2.11.1 (the tags are listed at https://mcr.microsoft.com/v2/azure-api-management/gateway/tags/list)"
}

// Registry is a registry's v2 API, asked anonymously.
type Registry struct{ Client *http.Client }

// Tags lists repo's tags ("host/path", the host holding a dot).
func (r Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	host, path, ok := strings.Cut(repo, "/")
	if !ok || !strings.Contains(host, ".") {
		return nil, fmt.Errorf("%s has no registry host", repo)
	}
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/"+path+"/tags/list", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tag list: %s", resp.Status)
	}
	var body struct{ Tags []string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body); err != nil {
		return nil, err
	}
	return body.Tags, nil
}

// NewestPatch picks the highest major.minor.patch tag within the floating
// tag's major version ("v2" → 2.x.y; "latest"/"beta" → any).
func NewestPatch(tags []string, floating string) string {
	major := strings.TrimPrefix(floating, "v")
	if _, err := strconv.Atoi(major); err != nil {
		major = ""
	}
	best, bestV := "", [3]int{-1}
	for _, t := range tags {
		if !gateway.Pinned("image:"+t) || strings.Contains(t, "-") {
			continue
		}
		var v [3]int
		for i, p := range strings.SplitN(strings.TrimPrefix(t, "v"), ".", 3) {
			v[i], _ = strconv.Atoi(p)
		}
		if major != "" && strconv.Itoa(v[0]) != major {
			continue
		}
		if v[0] > bestV[0] || v[0] == bestV[0] && (v[1] > bestV[1] || v[1] == bestV[1] && v[2] > bestV[2]) {
			best, bestV = t, v
		}
	}
	return best
}
