package pipeline

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

// RenderOptions say what to render.
type RenderOptions struct {
	Profile string // "dev" or "prod"
	// Unfitted keeps the production requests even when a local cluster
	// exists (what export and promote --context apply).
	Unfitted bool
	// Token is shown redacted; zero shows where it would come from.
	Token token.Token
}

// Rendered is the objects a command would apply, and how they were decided.
type Rendered struct {
	Objects   []runtime.Object
	Image     string
	PinnedHow string
	FitNote   string
	// Fitted says the requests are fitted to the local cluster's node.
	Fitted bool
}

// Render is what `up` (dev) or `promote` (prod) would apply, token
// redacted: for prod, the image pinned (or refused) as promote pins it, and
// the requests fitted to the local cluster's node when one answers (and
// unless Unfitted), production values otherwise.
func (s *Session) Render(ctx context.Context, o RenderOptions) (*Rendered, error) {
	p := &ProfilePlan{To: o.Profile}
	s.localCluster = false
	if o.Profile == "prod" && !o.Unfitted && s.Cluster != nil {
		if st, _ := s.Cluster.Inspect(ctx); st == cluster.ClusterOurs && s.Connect() == nil {
			if err := s.Resolve(ctx); err != nil {
				return nil, err
			}
			s.localCluster = true
		}
	}
	switch o.Profile {
	case "dev":
		p.Target = gateway.Dev(s.Config)
		p.Image = p.Target.Image
	case "prod":
		if err := s.target(ctx, p); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("profile %q is not known; use dev or prod", o.Profile)
	}
	return &Rendered{Objects: p.Target.Objects(o.Token, true), Image: p.Image, PinnedHow: p.PinnedHow, FitNote: p.FitNote, Fitted: s.localCluster && o.Profile == "prod"}, nil
}
