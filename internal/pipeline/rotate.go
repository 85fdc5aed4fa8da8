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
	var plan *ProfilePlan
	what := "token"
	if tok.IsAppSecret() {
		what = "client secret"
	}
	err := s.runSteps(ctx, []step{{StepRotate, "", func(ctx context.Context, st *events.Step) (string, error) {
		if err := s.connectTo(o.Context); err != nil {
			return "", err
		}
		if err := s.Resolve(ctx); err != nil {
			return "", err
		}
		var err error
		if plan, err = s.Plan(ctx, PlanOptions{Token: tok}); err != nil {
			return "", err
		}
		if plan.Fresh {
			return "", fmt.Errorf("no gateway %s/%s to rotate the %s of (run `apimdev up` first)", s.Names.Namespace, s.Names.DeploymentName(), what)
		}
		if old, err := s.ClusterToken(ctx); err == nil && old.SecretValue() == tok.SecretValue() {
			st.Warn("the new "+what+" is the same as the one in the cluster; the pods restart anyway", "")
		}
		var secret runtime.Object
		for _, obj := range plan.Target.Objects(tok, false) {
			if _, ok := obj.(*corev1.Secret); ok {
				secret = obj
			}
		}
		if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{secret}); err != nil {
			return "", err
		}
		if tok.IsAppSecret() {
			return fmt.Sprintf("Secret %s/%s updated with the Entra app's new client secret (key %s)", plan.Target.Namespace, plan.Target.SecretName(), gateway.AppSecretKey), nil
		}
		return fmt.Sprintf("Secret %s/%s updated; the new token %s", plan.Target.Namespace, plan.Target.SecretName(), tok.ExpiryAt(s.now()).Describe()), nil
	}}})
	if err != nil {
		return nil, err
	}
	p := plan.Target
	res := &PromoteResult{Profile: p.Name, Image: p.Image}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = s.Timeouts.orDefault().Rollout
	}
	ts, took, err := s.underTraffic(ctx, o.Traffic, StepRollout, func() error {
		return s.runSteps(ctx, []step{{StepRollout, "restarting the gateway pods to load the new " + what, func(ctx context.Context, _ *events.Step) (string, error) {
			if err := s.restartPods(ctx, p); err != nil {
				return "", err
			}
			if err := s.waitRollout(ctx, &ProfilePlan{Target: p, token: tok}, timeout, o.OnRollout); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s/%s %d/%d ready with the new %s", p.Namespace, p.DeploymentName(), p.Replicas, p.Replicas, what), nil
		}}})
	})
	res.Traffic, res.Rollout, res.RolloutSecs = &ts, took, took.Seconds()
	if err != nil {
		return res, err
	}
	res.Checks, res.Spread = s.check(ctx, p, tok)
	return res, nil
}
