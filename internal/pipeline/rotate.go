package pipeline

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

// StepRotate names the token rotation's step.
const StepRotate = "rotate"

// RotateToken writes a new token into the gateway's Secret and restarts the
// gateway pods within the Deployment's own rollout bounds, with traffic
// flowing through a forward, so the new token is in use and no request is
// lost. The caller holds the cluster lock.
func (s *Session) RotateToken(ctx context.Context, tok token.Token, o PromoteOptions) (*PromoteResult, error) {
	local := o.Context == ""
	s.localCluster = local
	var err error
	if local {
		err = s.Connect()
	} else {
		err = s.ConnectContext(o.Context)
	}
	if err != nil {
		return nil, err
	}
	st := s.Rep.Start(StepRotate, "")
	s.current = st
	d, err := s.Client.AppsV1().Deployments(s.Profile.Namespace).Get(ctx, s.Profile.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		return nil, st.Fail(fmt.Errorf("reading Deployment %s/%s: %w (run `apimdev up` first)", s.Profile.Namespace, s.Profile.DeploymentName(), err))
	}
	p := s.Profile
	if d.Labels[gateway.LabelProfile] == "prod" {
		if p, err = gateway.Prod(s.Config); err != nil {
			return nil, st.Fail(err)
		}
	}
	p.Replicas = gateway.Desired(d)
	if old, err := s.ClusterToken(ctx); err == nil && old.SecretValue() == tok.SecretValue() {
		st.Warn("the new token is the same as the one in the cluster; the pods restart anyway", "")
	}
	var secret runtime.Object
	for _, obj := range p.Objects(tok, false) {
		if _, ok := obj.(*corev1.Secret); ok {
			secret = obj
		}
	}
	if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{secret}); err != nil {
		return nil, st.Fail(err)
	}
	e := tok.ExpiryAt(time.Now())
	st.Done(fmt.Sprintf("Secret %s/%s updated; the new token %s", p.Namespace, p.SecretName(), e.Describe()))

	res := &PromoteResult{Profile: p.Name, Image: d.Spec.Template.Spec.Containers[0].Image}
	ts, took, err := s.underTraffic(ctx, o, local, func() error { return s.restart(ctx, p, tok, o) })
	res.Traffic, res.Rollout, res.RolloutSecs = &ts, took, took.Seconds()
	if err != nil {
		return res, err
	}
	res.Checks = s.check(ctx, p, local, tok)
	return res, nil
}

// restart rolls the gateway's pods the way `kubectl rollout restart` does: a
// pod-template annotation, so the Deployment's maxUnavailable/maxSurge hold.
func (s *Session) restart(ctx context.Context, p gateway.Profile, tok token.Token, o PromoteOptions) error {
	st := s.Rep.Start(StepRollout, "restarting the gateway pods to load the new token")
	s.current = st
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"apimdev.io/restartedAt":%q}}}}}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := s.Client.AppsV1().Deployments(p.Namespace).Patch(ctx, p.DeploymentName(), types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: gateway.FieldManager + "-rotate"}); err != nil {
		return st.Fail(fmt.Errorf("restarting %s/%s: %w", p.Namespace, p.DeploymentName(), err))
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	w := &gateway.Waiter{Client: s.Client, Profile: p, Timeout: timeout, Redact: Redactor(tok), Progress: func(m string) { s.progress("%s", m) }, OnStatus: o.OnRollout}
	if err := w.Wait(ctx); err != nil {
		return st.Fail(err)
	}
	st.Done(fmt.Sprintf("%s/%s %d/%d ready with the new token", p.Namespace, p.DeploymentName(), p.Replicas, p.Replicas))
	return nil
}
