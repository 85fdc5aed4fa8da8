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
	"github.com/apimdev/apimdev/internal/topology"
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

// rolloutTimeout is o.Timeout, or the session's Timeouts.Rollout when unset.
func (o PromoteOptions) rolloutTimeout(t Timeouts) time.Duration {
	if o.Timeout != 0 {
		return o.Timeout
	}
	return t.orDefault().Rollout
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
		if err := topology.CheckCapacity(ctx, s.Client, s.Names, p.Target, o.Context, p.Fresh); err != nil {
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
	pr := &promoteRun{s: s, o: o, res: &PromoteResult{Profile: o.To}}
	if err := s.runSteps(ctx, pr.steps()); err != nil {
		if pr.plan == nil {
			return nil, err
		}
		return pr.res, err
	}
	return pr.res, nil
}

// promoteRun is one promotion (or upgrade, which is a promotion to the
// recorded profile with another image): plan, ask, load, apply and roll out
// under traffic, prune, check.
type promoteRun struct {
	s    *Session
	o    PromoteOptions
	plan *ProfilePlan
	res  *PromoteResult
}

func (pr *promoteRun) steps() []step {
	return []step{
		{name: StepPlan, detail: "reading what runs and planning " + pr.o.To, run: pr.planStep},
		stage(pr.confirm),
		stage(pr.load),
		span(pr.underTraffic, pr.s.applySteps(func() *ProfilePlan { return pr.plan }, pr.o)...),
		stage(pr.prune),
		{name: StepChecks, run: pr.check, soft: true},
	}
}

func (pr *promoteRun) planStep(ctx context.Context, st *events.Step) (string, error) {
	plan, err := pr.s.PlanPromote(ctx, pr.o)
	if err != nil {
		return "", err
	}
	pr.plan = plan
	if plan.From == plan.To {
		st.Progress("the gateway already runs the %s profile: applying it again changes only what differs", plan.To)
	}
	if plan.Fresh {
		st.Progress("no gateway in this cluster yet: the %s profile is created from scratch", plan.To)
	}
	if plan.PinnedHow != "" {
		st.Progress("image %s (%s)", plan.Image, plan.PinnedHow)
	}
	res := pr.res
	res.Image, res.PinnedHow, res.FitNote, res.Diff = plan.Image, plan.PinnedHow, plan.FitNote, plan.Diff
	return plan.summary(), nil
}

// confirm warns of what the plan found, then shows the diff and asks.
func (pr *promoteRun) confirm(context.Context) error {
	res, s := pr.res, pr.s
	if res.FitNote != "" {
		s.Rep.Warn("resources", res.FitNote, "")
	}
	if res.VersionWarning = gateway.VersionWarning(gateway.VersionOf(res.Image+" "+res.PinnedHow), pr.plan.Target.Backup != nil); res.VersionWarning != "" {
		s.Rep.Warn("version", res.VersionWarning, "")
	}
	if pr.o.Confirm != nil && !pr.o.Confirm(res.Diff) {
		res.Declined = true
		return ErrDeclined
	}
	return nil
}

// load puts the plan's images on the local cluster's nodes, which never
// pull what this machine already has.
func (pr *promoteRun) load(ctx context.Context) error {
	if !pr.s.localCluster {
		return nil
	}
	say := func(m string) { pr.s.Rep.Info(StepPlan, m) }
	return pr.s.loadImages(ctx, pr.plan.Target, func(l loaded) { say(l.image + ": " + l.what) }, say)
}

// underTraffic runs the apply and rollout with traffic flowing through them,
// and keeps the figures. A fresh gateway has nothing to keep alive: it is
// rolled out first, then a short burst lets the checks see it answer and its
// metrics arrive.
func (pr *promoteRun) underTraffic(ctx context.Context, change func() error) error {
	res := pr.res
	var ts traffic.Stats
	var err error
	if pr.plan.Fresh {
		start := time.Now()
		err = change()
		res.Rollout = time.Since(start)
		if err == nil {
			ts, _, err = pr.s.underTraffic(ctx, pr.o.Traffic, StepRollout, func() error { return nil })
		}
	} else {
		ts, res.Rollout, err = pr.s.underTraffic(ctx, pr.o.Traffic, StepRollout, change)
	}
	res.Traffic, res.RolloutSecs = &ts, res.Rollout.Seconds()
	return err
}

// prune removes what only the profile left behind has.
func (pr *promoteRun) prune(ctx context.Context) error {
	gone, err := gateway.Prune(ctx, pr.s.Client, pr.plan.Changes)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		pr.s.Rep.Info(StepApply, "removed what only "+pr.plan.From+" has: "+strings.Join(gone, ", "))
	}
	return nil
}

func (pr *promoteRun) check(ctx context.Context, st *events.Step) (string, error) {
	var err error
	pr.res.Checks, pr.res.Spread, err = pr.s.check(ctx, st, pr.plan.Target, pr.plan.token)
	return fmt.Sprintf("%d check(s) passed", len(pr.res.Checks)), err
}

// applySteps apply a plan's objects, record it, and wait for the rollout:
// the change that traffic runs through. plan is read when the steps run, so
// a flow can build them before its plan step has made the plan.
func (s *Session) applySteps(plan func() *ProfilePlan, o PromoteOptions) []step {
	return []step{
		{name: StepApply, describe: func() string { return plan().Target.Name }, run: func(ctx context.Context, st *events.Step) (string, error) {
			p := plan()
			applied, err := gateway.Execute(ctx, s.Client, p.Changes)
			if err != nil {
				return "", err
			}
			if err := s.writeRecord(ctx, &p.record); err != nil {
				st.Warn(err.Error(), "")
			}
			// The backends' rule follows the profile's network policy.
			if _, err := s.convergeBackends(ctx, p.record.Backends, st.Progress); err != nil {
				return "", err
			}
			unchanged := 0
			for _, c := range p.Changes {
				if !c.Changed() {
					unchanged++
				}
			}
			return fmt.Sprintf("%d object(s) created or configured, %d unchanged", len(applied), unchanged), nil
		}},
		{name: StepRollout, run: func(ctx context.Context, _ *events.Step) (string, error) {
			p := plan()
			if err := s.waitRollout(ctx, p, o.rolloutTimeout(s.Timeouts), o.OnRollout); err != nil {
				return "", err
			}
			t := p.Target
			return fmt.Sprintf("%s/%s %d/%d ready", t.Namespace, t.DeploymentName(), t.Replicas, t.Replicas), nil
		}},
	}
}
