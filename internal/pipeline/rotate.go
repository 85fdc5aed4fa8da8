package pipeline

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

// StepRotate names the token rotation's step.
const StepRotate = "rotate"

// RotateToken writes a new token into the gateway's Secret and restarts the
// gateway pods within the Deployment's own rollout bounds, with traffic
// flowing through a forward, so the new token is in use and no request is
// lost. The profile stays what the cluster records. The caller holds the
// cluster lock.
func (s *Session) RotateToken(ctx context.Context, tok token.Token, o PromoteOptions) (*PromoteResult, error) {
	r := &rotateRun{s: s, tok: tok, o: o, what: "token"}
	if tok.IsAppSecret() {
		r.what = "client secret"
	}
	err := s.runSteps(ctx, r.steps())
	if r.res == nil {
		return nil, err
	}
	return r.res, err
}

// rotateRun is one rotation: write the Secret, restart the pods under
// traffic, check.
type rotateRun struct {
	s    *Session
	tok  token.Token
	o    PromoteOptions
	what string // "token" or "client secret"
	p    gateway.Profile
	res  *PromoteResult
}

func (r *rotateRun) steps() []step {
	return []step{
		{name: StepRotate, run: r.secret},
		span(r.underTraffic, step{name: StepRollout, detail: "restarting the gateway pods to load the new " + r.what, run: r.restart}),
		{name: StepChecks, run: r.check, soft: true},
	}
}

// secret writes the new credential into the gateway's Secret.
func (r *rotateRun) secret(ctx context.Context, st *events.Step) (string, error) {
	s := r.s
	if err := s.connectTo(r.o.Context); err != nil {
		return "", err
	}
	if err := s.Resolve(ctx); err != nil {
		return "", err
	}
	plan, err := s.Plan(ctx, PlanOptions{Token: r.tok})
	if err != nil {
		return "", err
	}
	if plan.Fresh {
		return "", fmt.Errorf("no gateway %s/%s to rotate the %s of (run `apimdev up` first)", s.Names.Namespace, s.Names.DeploymentName(), r.what)
	}
	if old, err := s.ClusterToken(ctx); err == nil && old.SecretValue() == r.tok.SecretValue() {
		st.Warn("the new "+r.what+" is the same as the one in the cluster; the pods restart anyway", "")
	}
	var secret runtime.Object
	for _, obj := range plan.Target.Objects(r.tok, false) {
		if _, ok := obj.(*corev1.Secret); ok {
			secret = obj
		}
	}
	if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{secret}); err != nil {
		return "", err
	}
	r.p = plan.Target
	r.res = &PromoteResult{Profile: r.p.Name, Image: r.p.Image}
	if r.tok.IsAppSecret() {
		return fmt.Sprintf("Secret %s/%s updated with the Entra app's new client secret (key %s)", r.p.Namespace, r.p.SecretName(), gateway.AppSecretKey), nil
	}
	return fmt.Sprintf("Secret %s/%s updated; the new token %s", r.p.Namespace, r.p.SecretName(), r.tok.ExpiryAt(s.now()).Describe()), nil
}

func (r *rotateRun) underTraffic(ctx context.Context, restart func() error) error {
	ts, took, err := r.s.underTraffic(ctx, r.o.Traffic, StepRollout, restart)
	r.res.Traffic, r.res.Rollout, r.res.RolloutSecs = &ts, took, took.Seconds()
	return err
}

// restart restarts the pods within the Deployment's own rollout bounds, so
// each loads the new credential.
func (r *rotateRun) restart(ctx context.Context, _ *events.Step) (string, error) {
	p := r.p
	if err := r.s.restartPods(ctx, p); err != nil {
		return "", err
	}
	if err := r.s.waitRollout(ctx, &ProfilePlan{Target: p, token: r.tok}, r.o.rolloutTimeout(r.s.Timeouts), r.o.OnRollout); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%s %d/%d ready with the new %s", p.Namespace, p.DeploymentName(), p.Replicas, p.Replicas, r.what), nil
}

func (r *rotateRun) check(ctx context.Context, st *events.Step) (string, error) {
	var err error
	r.res.Checks, r.res.Spread, err = r.s.check(ctx, st, r.p, r.tok)
	return fmt.Sprintf("%d check(s) passed", len(r.res.Checks)), err
}
