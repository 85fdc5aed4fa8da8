package pipeline

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

// Step names, in order. The faces show them; the TUI lists them up front.
const (
	StepPreflight = "preflight"
	StepCluster   = "cluster"
	StepImage     = "image"
	StepDeploy    = "deploy"
	StepForward   = "forward"
	StepSmoke     = "smoke"
)

// Steps is the order of `up`.
var Steps = []string{StepPreflight, StepCluster, StepImage, StepDeploy, StepForward, StepSmoke}

// Steps only some runs have: kit before preflight (up --kit), demo before
// deploy (up --demo). They are not in Steps: the TUI does not offer them.
const (
	StepKit  = "kit"
	StepDemo = "demo"
)

// KitLoader loads an offline kit's images into Docker, checksums first.
type KitLoader interface {
	LoadKit(ctx context.Context, progress func(string, ...any)) (string, error)
}

// DemoDeployer puts the demo's stand-in configuration service into the
// cluster and waits for it, so the gateway's first poll finds it.
type DemoDeployer interface {
	DeployDemo(ctx context.Context, c kubernetes.Interface, progress func(string, ...any)) (string, error)
}

// UpOptions are what `up` may be asked beyond the configuration.
type UpOptions struct {
	Token    token.Token
	TokenErr error // reported by preflight, with the other problems
	Recreate bool
	// Detach runs the forward as a background process (Self, ConfigFile);
	// otherwise the forward runs in this process until UpResult.Stop.
	Detach        bool
	Self          string
	ConfigFile    string
	Merge         bool
	DeployTimeout time.Duration
	// Kit, when set, loads an offline kit before preflight looks for images.
	Kit KitLoader
	// Demo, when set, deploys the demo's configuration service before the gateway.
	Demo DemoDeployer
}

// UpResult is what a successful `up` leaves running.
type UpResult struct {
	HTTPPort, HTTPSPort int
	Created             bool
	Detached            bool // the forward runs in the background (now or before)
	ForwardPID          int
	Smoke               []smoke.Result
	TokenExpiry         token.Expiry
	// Stop ends an in-process forward; nil when the forward is detached.
	Stop func()
}

// FailedStep is set on errors from Up: the step that failed, so a face can
// say "interrupted during deploy" or offer a retry from there.
type FailedStep struct {
	Step string
	Err  error
}

func (e *FailedStep) Error() string { return e.Err.Error() }
func (e *FailedStep) Unwrap() error { return e.Err }

// SmokeError says smoke calls failed.
type SmokeError struct{ Failed, Total int }

func (e *SmokeError) Error() string {
	return fmt.Sprintf("%d of %d smoke call(s) failed (see the table)", e.Failed, e.Total)
}

// Hint says where to look.
func (e *SmokeError) Hint() string {
	return "each failed row says why; `apimdev status` and `kubectl logs` show the gateway's side"
}

// Up runs the pipeline. Each step reports through the session's reporter and
// takes ctx; a re-run after any failure or interruption resumes, because every
// step reuses what exists. The caller holds the cluster lock.
func (s *Session) Up(ctx context.Context, o UpOptions) (res *UpResult, err error) {
	cfg := s.Config
	res = &UpResult{HTTPPort: cfg.Forward.HTTPPort, HTTPSPort: cfg.Forward.HTTPSPort}
	current := ""
	step := func(name, detail string) *events.Step {
		current = name
		s.current = s.Rep.Start(name, detail)
		return s.current
	}
	defer func() {
		if err != nil {
			err = &FailedStep{Step: current, Err: err}
		}
	}()

	// 0. kit: its images into Docker (checksums first) before preflight looks.
	if o.Kit != nil {
		st := step(StepKit, "verifying the offline kit, then loading it into Docker")
		what, err := o.Kit.LoadKit(ctx, s.progress)
		if err != nil {
			return nil, st.Fail(err)
		}
		st.Done(what)
	}

	// 1. preflight: every check, all problems at once, nothing created.
	fwd, fwdRunning := s.Files.Forward()
	ownForward := fwdRunning && fwd.HTTPPort == cfg.Forward.HTTPPort && fwd.HTTPSPort == cfg.Forward.HTTPSPort
	st := step(StepPreflight, "checking Docker, ports, token and cluster")
	pf := &cluster.Preflight{Docker: s.Docker, Inspect: s.Cluster.Inspect, Config: cfg, Token: o.Token, TokenErr: o.TokenErr,
		Recreate: o.Recreate, ForwardRunning: ownForward}
	pres, err := pf.Run(ctx, func(c cluster.Check) {
		// Failures are told once, in the error with its fix; warnings once,
		// as warning events below.
		if c.OK && !c.Warn {
			st.Progress("✓ %s: %s", c.Name, c.Detail)
		}
	})
	if err != nil {
		return nil, st.Fail(err)
	}
	st.Done(fmt.Sprintf("%d checks passed", len(pres.Checks)))
	for _, w := range pres.Warnings() {
		s.Rep.Warn(w.Name, w.Detail, "")
	}

	// 2. cluster
	st = step(StepCluster, "")
	res.Created, err = s.Cluster.Ensure(ctx, pres.Cluster, o.Recreate, s.progress)
	if err != nil {
		return nil, st.Fail(err)
	}
	if o.Merge {
		if err := s.Cluster.Kind.ExportKubeConfig(cfg.Cluster.Name, "", false); err != nil {
			st.Warn("could not merge into your kubeconfig: "+err.Error(), "")
		}
	}
	if err := s.Connect(); err != nil {
		return nil, st.Fail(err)
	}
	verb := "reused"
	if res.Created {
		verb = "created"
	}
	st.Done(fmt.Sprintf("%s %s (kubeconfig %s)", verb, cfg.Cluster.Name, s.Cluster.Kubeconfig))

	// 3. image: the node never pulls what this machine already has.
	st = step(StepImage, cfg.Gateway.Image)
	what, imageReplaced, err := s.Cluster.LoadImage(ctx, cfg.Gateway.Image, s.progress)
	if err != nil {
		return nil, st.Fail(err)
	}
	if restarted, err := gateway.RestartPullFailures(ctx, s.Client, s.Profile.Namespace, cfg.Gateway.Image); err == nil && len(restarted) > 0 {
		st.Progress("restarted pod(s) that could not pull it: %v", restarted)
	}
	st.Done(what)

	// 3b. demo: the stand-in configuration service the demo gateway polls.
	if o.Demo != nil {
		st = step(StepDemo, "stand-in configuration service (stand-in, not Azure API Management)")
		what, err := o.Demo.DeployDemo(ctx, s.Client, s.progress)
		if err != nil {
			return nil, st.Fail(err)
		}
		st.Done(what)
	}

	// 4. deploy
	st = step(StepDeploy, "")
	// The gateway's first act is to resolve its configuration endpoint: on a
	// new cluster, start it once cluster DNS answers, or that first fetch
	// fails and the gateway waits 10 s for its next one.
	if t0 := time.Now(); cluster.WaitDNS(ctx, s.Client, time.Minute) && time.Since(t0) > 100*time.Millisecond {
		st.Progress("cluster DNS ready after %.1fs", time.Since(t0).Seconds())
	}
	if ctx.Err() != nil {
		return nil, st.Fail(ctx.Err())
	}
	applied, err := gateway.Apply(ctx, s.Client, s.Profile.Objects(o.Token, false))
	if err != nil {
		return nil, st.Fail(err)
	}
	changed := 0
	for _, ap := range applied {
		if ap.Created || ap.Changed {
			changed++
			st.Progress("%s", ap)
		}
	}
	// The gateway reads its token from its environment when it starts: a new
	// token in the Secret reaches running pods only through a restart. So
	// does a new image under the same tag (a local rebuild): the spec did not
	// change, so the Deployment would not roll by itself.
	if why := restartReason(applied, imageReplaced); why != "" {
		st.Progress("%s: restarting the gateway pods", why)
		if err := s.restartPods(ctx); err != nil {
			return nil, st.Fail(err)
		}
	}
	// Remembered as soon as it is applied, so status, smoke and down know the
	// gateway even when it never becomes ready.
	if err := s.Files.SaveConfig(cfg); err != nil {
		st.Warn("could not remember this configuration for status/smoke/down: "+err.Error(), "")
	}
	w := &gateway.Waiter{Client: s.Client, Profile: s.Profile, Timeout: o.DeployTimeout,
		Progress: func(m string) { s.progress("%s", m) }, Redact: Redactor(o.Token)}
	if err := w.Wait(ctx); err != nil {
		return nil, st.Fail(err)
	}
	st.Done(fmt.Sprintf("%s/%s ready (%d object(s) changed, %d unchanged)", s.Profile.Namespace, s.Profile.DeploymentName(), changed, len(applied)-changed))

	// 5. forward
	st = step(StepForward, "")
	switch {
	case ownForward:
		res.Detached, res.ForwardPID = true, fwd.PID
		st.Done(fmt.Sprintf("already running in the background (pid %d)", fwd.PID))
	case o.Detach:
		pid, err := s.StartDetachedForward(ctx, o.Self, o.ConfigFile)
		if err != nil {
			return nil, st.Fail(err)
		}
		res.Detached, res.ForwardPID = true, pid
		st.Done(fmt.Sprintf("running in the background (pid %d, log %s)", pid, s.Files.ForwardLog()))
	default:
		stop, _, err := s.StartForward(ctx, res.HTTPPort, res.HTTPSPort)
		if err != nil {
			return nil, st.Fail(err)
		}
		res.Stop = stop
		st.Done(fmt.Sprintf("127.0.0.1:%d → %s:80, 127.0.0.1:%d → :443", res.HTTPPort, s.Profile.LiveService(), res.HTTPSPort))
	}
	stopOnError := func() {
		if res.Stop != nil {
			res.Stop()
		}
	}

	// 6. smoke
	st = step(StepSmoke, "")
	res.Smoke, err = s.Smoke(ctx, o.Token, res.HTTPPort, res.HTTPSPort)
	if err != nil {
		stopOnError()
		return nil, st.Fail(err)
	}
	res.TokenExpiry = o.Token.ExpiryAt(time.Now())
	if n := smoke.Failed(res.Smoke); n > 0 {
		// The forward stays up: the user will want to look. The result is
		// returned with the error so a face can show the table.
		return res, st.Fail(&SmokeError{Failed: n, Total: len(res.Smoke)})
	}
	st.Done(fmt.Sprintf("%d call(s) passed", len(res.Smoke)))
	return res, nil
}

// restartReason says why running pods must restart to pick up what was just
// applied, or "": the Secret took a new token, or the node a new image under
// the same name, while the Deployment stayed as it was (a new or changed
// Deployment starts new pods, which read both anyway).
func restartReason(applied []gateway.Applied, imageReplaced bool) string {
	secret, deployment, existed := false, false, false
	for _, ap := range applied {
		switch ap.Kind {
		case "Secret":
			secret = ap.Changed && !ap.Created
		case "Deployment":
			deployment = ap.Created || ap.Changed
			existed = !ap.Created
		}
	}
	switch {
	case deployment || !existed:
		return ""
	case secret && imageReplaced:
		return "the token and the image changed"
	case secret:
		return "the token changed"
	case imageReplaced:
		return "the image changed under the same name"
	}
	return ""
}

// restartPods rolls the gateway's pods as `kubectl rollout restart` does, so
// the Deployment's rollout bounds hold; the deploy step then waits for it.
func (s *Session) restartPods(ctx context.Context) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"apimdev.io/restartedAt":%q}}}}}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := s.Client.AppsV1().Deployments(s.Profile.Namespace).Patch(ctx, s.Profile.DeploymentName(), types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: gateway.FieldManager + "-rotate"}); err != nil {
		return fmt.Errorf("restarting %s/%s for the new token: %w", s.Profile.Namespace, s.Profile.DeploymentName(), err)
	}
	return nil
}
