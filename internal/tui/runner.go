package tui

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/traffic"
)

// Runner is the pipeline as the wizard drives it. PipelineRunner is the real
// one; tests use a fake so they need no Docker.
type Runner interface {
	// Up runs the `up` pipeline, reporting every step to rep. Calling it
	// again after a failure is a retry from the failed step: every step
	// reuses what exists. A forward left by the previous call is stopped
	// first.
	Up(ctx context.Context, req UpRequest, rep *events.Reporter) (*pipeline.UpResult, error)
	// Steps names the steps Up runs for req, in order: the pipeline's list.
	Steps(req UpRequest) []string
	// Smoke runs the smoke calls again through the forward Up started.
	Smoke(ctx context.Context) ([]smoke.Result, error)
	// Where says where the gateway lives, for the result view.
	Where() Where
	// Exists describes what exists now, for an interrupted or failed run.
	Exists(ctx context.Context) string
	// Close stops the forward and releases the cluster lock.
	Close()
}

// UpRequest is one run of the pipeline.
type UpRequest struct {
	Config config.Config
	Token  token.Token
	// Workshop is the demo or a kit, from the first question; nil is the
	// user's own gateway.
	Workshop *pipeline.Workshop
}

// Where names the cluster and the gateway's place in it.
type Where struct {
	Cluster    string
	Kubeconfig string
	Namespace  string
}

// PipelineRunner runs internal/pipeline for the wizard. It holds the
// cluster lock from the first Up until Close, and keeps the in-process
// forward of the last successful Up running until the next Up or Close.
type PipelineRunner struct {
	Getenv        func(string) string
	Version       string
	Self          string        // this executable, for a detached forward
	ConfigFile    string        // --config, for a detached forward
	DeployTimeout time.Duration // how long deploy waits for ready pods
	LockWait      time.Duration // how long to wait for another apimdev; 0 means 2s
	// PromoteTimeout bounds the promote rollout; 0 means promote's default.
	PromoteTimeout time.Duration
	// BuildNodeImage builds a node image here when none can be had.
	BuildNodeImage bool

	mu      sync.Mutex
	session *pipeline.Session
	lock    *state.Lock
	lockFor string
	res     *pipeline.UpResult
	stop    func() // the in-process forward of the last Up, if any
	tok     token.Token
}

var _ Runner = (*PipelineRunner)(nil)

// open opens (once) the pipeline session for req's cluster and takes
// its lock, or returns the one opened before; a changed configuration is
// a new session on the same lock.
func (r *PipelineRunner) open(ctx context.Context, req UpRequest, rep *events.Reporter) error {
	if r.session != nil && reflect.DeepEqual(r.session.Config, req.Config) && r.lockFor == req.Config.Cluster.Name {
		return nil
	}
	wait := r.LockWait
	if wait == 0 {
		wait = 2 * time.Second
	}
	held := r.lock != nil && r.lockFor == req.Config.Cluster.Name
	cfg := req.Config
	s, lock, err := pipeline.Open(ctx, pipeline.SessionOptions{Getenv: r.Getenv, Version: r.Version, Rep: rep,
		Asks: func(config.Config) (config.Config, error) { return cfg, nil }}, cfg.Cluster.Name, !held, wait)
	if err != nil {
		return err
	}
	if !held {
		r.lock.Release()
		r.lock, r.lockFor = lock, cfg.Cluster.Name
	}
	s.Timeouts.Deploy = r.DeployTimeout
	r.session = s
	return nil
}

// Steps implements Runner.
func (r *PipelineRunner) Steps(req UpRequest) []string {
	return (&pipeline.Session{Config: req.Config}).UpSteps(r.upOptions(req))
}

func (r *PipelineRunner) upOptions(req UpRequest) pipeline.UpOptions {
	return pipeline.UpOptions{Token: req.Token, NoToken: req.Token.IsZero() && !req.Workshop.IsDemo(), Self: r.Self, ConfigFile: r.ConfigFile,
		Workshop: req.Workshop, BuildNodeImage: r.BuildNodeImage}
}

// Up implements Runner.
func (r *PipelineRunner) Up(ctx context.Context, req UpRequest, rep *events.Reporter) (*pipeline.UpResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopForward()
	if err := r.open(ctx, req, rep); err != nil {
		return nil, err
	}
	r.tok = req.Token
	res, err := r.session.Up(ctx, r.upOptions(req))
	r.res = res
	if res != nil {
		r.stop = res.Stop
	}
	return res, err
}

// Smoke implements Runner.
func (r *PipelineRunner) Smoke(ctx context.Context) ([]smoke.Result, error) {
	r.mu.Lock()
	s, res, tok := r.session, r.res, r.tok
	r.mu.Unlock()
	if s == nil || res == nil {
		return nil, errors.New("nothing is forwarded yet: run up first")
	}
	return s.Smoke(ctx, tok, res.HTTPPort, res.HTTPSPort)
}

// Where implements Runner.
func (r *PipelineRunner) Where() Where {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.session == nil {
		return Where{}
	}
	return Where{Cluster: r.session.Config.Cluster.Name, Kubeconfig: r.session.Kubeconfig(), Namespace: r.session.Names.Namespace}
}

// Exists implements Runner.
func (r *PipelineRunner) Exists(ctx context.Context) string {
	r.mu.Lock()
	s := r.session
	r.mu.Unlock()
	if s == nil {
		return "nothing was started"
	}
	return s.Exists(ctx)
}

// Close implements Runner.
func (r *PipelineRunner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopForward()
	r.lock.Release()
	r.lock = nil
}

func (r *PipelineRunner) stopForward() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// Sampler reads the traffic view's samples through this runner's session,
// once a run has connected it.
func (r *PipelineRunner) Sampler() Sampler {
	return func(ctx context.Context) pipeline.TopSample {
		r.mu.Lock()
		s := r.session
		r.mu.Unlock()
		if s == nil || s.Client == nil {
			return pipeline.TopSample{Time: time.Now(), Missing: "the gateway is not up yet"}
		}
		return s.Top(ctx)
	}
}

// Promoter is the promote view's driver over this runner's session: the
// cluster lock, the token and the forward of the last Up. Promote follows a
// finished Up; there is no second lock to take (it would wait for this one).
func (r *PipelineRunner) Promoter() Promoter { return pipelinePromoter{r} }

type pipelinePromoter struct{ r *PipelineRunner }

var _ Promoter = pipelinePromoter{}

// options are `apimdev promote --yes` with the wizard's settings.
func (p pipelinePromoter) options() (*pipeline.Session, pipeline.PromoteOptions, error) {
	r := p.r
	r.mu.Lock()
	s, res, tok, held := r.session, r.res, r.tok, r.lock != nil
	r.mu.Unlock()
	if s == nil || res == nil || !held {
		return nil, pipeline.PromoteOptions{}, errors.New("the gateway is not up yet: promote follows a finished run")
	}
	return s, pipeline.PromoteOptions{To: "prod", Token: tok, Traffic: pipeline.TrafficOptions{Rate: s.Config.Prod.TrafficRate}, Timeout: r.PromoteTimeout}, nil
}

// Diff implements Promoter: the pipeline's plan of the promotion, what
// `apimdev promote` shows before it asks; nothing is applied.
func (p pipelinePromoter) Diff(ctx context.Context) (string, error) {
	s, o, err := p.options()
	if err != nil {
		return "", err
	}
	plan, err := s.PlanPromote(ctx, o)
	if err != nil {
		return "", err
	}
	return plan.Diff, nil
}

// Promote implements Promoter. The steps report to the reporter the session
// was made with, which is the wizard's own (rep), as for Up.
func (p pipelinePromoter) Promote(ctx context.Context, _ *events.Reporter, live func(PromoteSample)) (PromoteResult, error) {
	s, o, err := p.options()
	if err != nil {
		return PromoteResult{}, err
	}
	var (
		mu  sync.Mutex
		cur PromoteSample
	)
	update := func(change func(*PromoteSample)) {
		mu.Lock()
		change(&cur)
		snap := cur
		mu.Unlock()
		live(snap)
	}
	o.OnRollout = func(c gateway.RolloutCounts) {
		update(func(x *PromoteSample) {
			x.Rollout = RolloutStatus{Desired: c.Desired, Old: c.Old, New: c.New, Ready: min(c.Ready, c.Desired)}
		})
	}
	o.Traffic.OnTraffic = func(ts traffic.Stats) {
		update(func(x *PromoteSample) {
			x.Traffic = TrafficSample{Sent: ts.Sent, Failed: ts.Failed, P50: ts.P50, P99: ts.P99, RecentP99: ts.RecentP99}
		})
	}
	res, err := s.Promote(ctx, o)
	var out PromoteResult
	if res == nil {
		return out, err
	}
	if t := res.Traffic; t != nil {
		// The whole run's figures, tail included, are the last word; the
		// sparkline keeps its last point.
		update(func(x *PromoteSample) {
			x.Traffic.Sent, x.Traffic.Failed, x.Traffic.P50, x.Traffic.P99 = t.Sent, t.Failed, t.P50, t.P99
		})
	}
	for _, c := range res.Checks {
		out.Checks = append(out.Checks, PromoteCheck{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	return out, err
}
