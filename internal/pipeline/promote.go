package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/traffic"
)

// Promote step names.
const (
	StepPlan    = "plan"
	StepApply   = "apply"
	StepRollout = "rollout"
	StepChecks  = "checks"
)

// PromoteOptions say where to promote and how to prove it.
type PromoteOptions struct {
	To string // "prod" (default) or "dev"
	// Context, when set, targets that context of the user's kubeconfig
	// instead of the local kind cluster: production requests, unfitted.
	Context string
	// Token overrides the token; zero keeps the one in the cluster's Secret.
	Token token.Token
	// Confirm is shown the diff and says whether to go on; nil goes on.
	Confirm func(diff string) bool
	// Traffic is what flows through the forward during the rollout.
	Traffic TrafficOptions
	// Timeout bounds the rollout; 0 means the session's Timeouts.Rollout.
	Timeout time.Duration
	// AllowPending applies a plan whose pods the nodes cannot hold now
	// (promote --context to a cluster with an autoscaler).
	AllowPending bool
	// OnRollout, if set, is told the gateway's pod counts whenever they
	// change during the rollout, from another goroutine: a live view.
	OnRollout func(gateway.RolloutCounts)
}

// PromoteResult is what a promotion (or a rotation) did and proved.
type PromoteResult struct {
	Profile   string `json:"profile"`
	Image     string `json:"image"`
	PinnedHow string `json:"pinnedHow,omitempty"`
	FitNote   string `json:"fitNote,omitempty"`
	// VersionWarning names the known problems of the pinned gateway version.
	VersionWarning string         `json:"versionWarning,omitempty"`
	Diff           string         `json:"diff"`
	Rollout        time.Duration  `json:"-"`
	RolloutSecs    float64        `json:"rolloutSeconds"`
	Traffic        *traffic.Stats `json:"traffic,omitempty"`
	Checks         []CheckResult  `json:"checks"`
	// Spread is where the gateway's pods run, per zone and node.
	Spread   *Spread `json:"spread,omitempty"`
	Declined bool    `json:"declined,omitempty"`
}

// PlanPromote is the plan of a promotion, without applying it: what the
// wizard and `promote` show before they ask.
func (s *Session) PlanPromote(ctx context.Context, o PromoteOptions) (*ProfilePlan, error) {
	if o.To == "" {
		o.To = "prod"
	}
	if o.Context != "" {
		if err := s.RefuseDemoElsewhere(); err != nil {
			return nil, err
		}
	}
	if err := s.connectTo(o.Context); err != nil {
		return nil, err
	}
	if err := s.Resolve(ctx); err != nil {
		return nil, err
	}
	p, err := s.Plan(ctx, PlanOptions{To: o.To, Token: o.Token})
	if err != nil {
		return nil, err
	}
	if p.Fresh && s.localCluster {
		return nil, fmt.Errorf("no gateway %s/%s in cluster %q to promote (run `apimdev up` first)", s.Names.Namespace, s.Names.DeploymentName(), s.Config.Cluster.Name)
	}
	// Before anything is loaded or applied: images the nodes cannot run.
	if err := s.requirePlatforms(ctx, profileImages(p.Target), o.Context, nil, func(w string) { s.Rep.Warn("platform", w, "") }); err != nil {
		return nil, err
	}
	if !s.localCluster && !o.AllowPending && p.To == "prod" {
		// Unfitted production requests: say now if the nodes cannot hold
		// them, rather than leave a rollout waiting for pods that never start.
		if err := s.checkCapacity(ctx, p.Target, o.Context, p.Fresh); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// RefuseDemoElsewhere says no when the gateway is the demo: the stand-in is
// never carried to another cluster (promote --context).
func (s *Session) RefuseDemoElsewhere() error {
	if s.IsDemo() || s.Recorded != nil && s.Recorded.Demo || s.remembered.Gateway.Endpoint == demo.Endpoint {
		return &DemoRefusal{Cluster: s.Config.Cluster.Name}
	}
	return nil
}

// Promote moves the gateway to the prod profile (or back to dev) in place,
// with traffic flowing through a forward the whole time, then proves each
// production feature on the cluster. The caller holds the cluster lock.
func (s *Session) Promote(ctx context.Context, o PromoteOptions) (*PromoteResult, error) {
	if o.To == "" {
		o.To = "prod"
	}
	res := &PromoteResult{Profile: o.To}
	var plan *ProfilePlan
	err := s.runSteps(ctx, []step{{StepPlan, "reading what runs and planning " + o.To, func(ctx context.Context, st *events.Step) (string, error) {
		var err error
		if plan, err = s.PlanPromote(ctx, o); err != nil {
			return "", err
		}
		if plan.From == plan.To {
			st.Progress("the gateway already runs the %s profile: applying it again changes only what differs", plan.To)
		}
		if plan.Fresh {
			st.Progress("no gateway in this cluster yet: the %s profile is created from scratch", plan.To)
		}
		if plan.PinnedHow != "" {
			st.Progress("image %s (%s)", plan.Image, plan.PinnedHow)
		}
		return plan.summary(), nil
	}}})
	if plan != nil {
		res.Image, res.PinnedHow, res.FitNote, res.Diff = plan.Image, plan.PinnedHow, plan.FitNote, plan.Diff
	}
	if err != nil {
		return nil, err
	}
	if res.FitNote != "" {
		s.Rep.Warn("resources", res.FitNote, "")
	}
	if res.VersionWarning = gateway.VersionWarning(gateway.VersionOf(res.Image+" "+res.PinnedHow), plan.Target.Backup != nil); res.VersionWarning != "" {
		s.Rep.Warn("version", res.VersionWarning, "")
	}
	if o.Confirm != nil && !o.Confirm(res.Diff) {
		res.Declined = true
		return res, ErrDeclined
	}
	if s.localCluster {
		// The node never pulls what this machine already has.
		say := func(m string) { s.Rep.Info(StepPlan, m) }
		if err := s.loadImages(ctx, plan.Target, func(l loaded) { say(l.image + ": " + l.what) }, say); err != nil {
			return res, err
		}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = s.Timeouts.orDefault().Rollout
	}
	change := func() error { return s.applyAndRoll(ctx, plan, timeout, o.OnRollout) }
	start := time.Now()
	if plan.Fresh {
		// Nothing runs yet, so there is no traffic to keep alive; a short
		// burst after the rollout lets the checks see the new gateway answer
		// and its metrics arrive.
		err = change()
		res.Rollout = time.Since(start)
		if err == nil {
			ts, _, terr := s.underTraffic(ctx, o.Traffic, StepRollout, func() error { return nil })
			res.Traffic, err = &ts, terr
		}
	} else {
		var ts traffic.Stats
		ts, res.Rollout, err = s.underTraffic(ctx, o.Traffic, StepRollout, change)
		res.Traffic = &ts
	}
	res.RolloutSecs = res.Rollout.Seconds()
	if err != nil {
		return res, err
	}
	gone, err := gateway.Prune(ctx, s.Client, plan.Changes)
	if err != nil {
		return res, err
	}
	if len(gone) > 0 {
		s.Rep.Info(StepApply, "removed what only "+plan.From+" has: "+strings.Join(gone, ", "))
	}
	res.Checks, res.Spread = s.check(ctx, plan.Target, plan.token)
	return res, nil
}

// applyAndRoll applies a plan's objects, records it, and waits for the
// rollout: the change that traffic runs through.
func (s *Session) applyAndRoll(ctx context.Context, plan *ProfilePlan, timeout time.Duration, onStatus func(gateway.RolloutCounts)) error {
	p := plan.Target
	return s.runSteps(ctx, []step{
		{StepApply, p.Name, func(ctx context.Context, st *events.Step) (string, error) {
			applied, err := gateway.Execute(ctx, s.Client, plan.Changes)
			if err != nil {
				return "", err
			}
			if err := s.writeRecord(ctx, &plan.record); err != nil {
				st.Warn(err.Error(), "")
			}
			unchanged := 0
			for _, c := range plan.Changes {
				if !c.Changed() {
					unchanged++
				}
			}
			return fmt.Sprintf("%d object(s) created or configured, %d unchanged", len(applied), unchanged), nil
		}},
		{StepRollout, "", func(ctx context.Context, _ *events.Step) (string, error) {
			if err := s.waitRollout(ctx, plan, timeout, onStatus); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s/%s %d/%d ready", p.Namespace, p.DeploymentName(), p.Replicas, p.Replicas), nil
		}},
	})
}
