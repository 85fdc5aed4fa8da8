package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/settings"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

// Step names of up, in order. The faces show them; the TUI lists them up
// front (UpSteps), with the kit and demo steps when a run has them.
const (
	StepKit       = "kit"
	StepPreflight = "preflight"
	StepCluster   = "cluster"
	StepImage     = "image"
	StepDemo      = "demo"
	StepDeploy    = "deploy"
	StepForward   = "forward"
	StepSmoke     = "smoke"
)

// UpOptions are what `up` may be asked beyond the configuration.
type UpOptions struct {
	Token    token.Token
	TokenErr error // reported by preflight, with the other problems
	// TokenFrom says where Token came from, for preflight's line.
	TokenFrom string
	// NoToken says none was given: the cluster's Secret keeps its own, and
	// preflight refuses only when up would create the cluster.
	NoToken  bool
	Recreate bool
	// Detach runs the forward as a background process (Self, ConfigFile);
	// otherwise the forward runs in this process until UpResult.Stop.
	Detach     bool
	Self       string
	ConfigFile string
	// SwitchContext makes the context --merge-kubeconfig (the setting
	// cluster.mergeKubeconfig) adds the current one of that kubeconfig.
	SwitchContext bool
	// Yes applies changes to what is deployed that the user did not ask for
	// by giving a token (drift undone, settings changed); without it they
	// are shown to Confirm, and nil Confirm declines (no terminal to ask).
	Yes     bool
	Confirm func(diff string) bool
	// Workshop, when set, adds its kit and demo steps.
	Workshop *Workshop
	// BuildNodeImage builds a node image here when none can be had (make
	// demo); otherwise a node image that cannot be pulled stops up.
	BuildNodeImage bool
}

// UpResult is what a successful `up` leaves running.
type UpResult struct {
	HTTPPort, HTTPSPort int
	Created             bool
	Detached            bool // the forward runs in the background (now or before)
	ForwardPID          int
	Profile             string // the profile deployed: dev, or prod after promote
	// DemoKey is the demo's subscription key for its echo API (a demo run).
	DemoKey string
	Smoke   []smoke.Result
	// Links is each gateway pod's link to its configuration endpoint,
	// read from its log after the smoke calls passed.
	Links []PodLink
	// Backends are `apimdev backend add`'s, as the relay sees them now.
	Backends    []BackendState
	TokenExpiry token.Expiry
	// Stop ends an in-process forward; nil when the forward is detached.
	Stop func()
}

// upRun is one run of up: the steps share it.
type upRun struct {
	s   *Session
	o   UpOptions
	res *UpResult

	tok        token.Token
	plan       *ProfilePlan
	replaced   bool // the node took a new image under the same name
	ownForward bool
	fwd        int // the recorded background forward's pid
	pres       cluster.Result
	// platformsChecked is the images preflight held to the nodes'
	// architecture (or could not): the image step does not ask again.
	platformsChecked []string
}

// UpSteps is the steps up runs with o, in order.
func (s *Session) UpSteps(o UpOptions) []string { return names((&upRun{s: s, o: o}).steps()) }

func (u *upRun) steps() []step {
	var steps []step
	if u.o.Workshop.hasKit() {
		steps = append(steps, step{name: StepKit, detail: "verifying the offline kit, then loading it into " + u.s.Endpoint.Runs().Title(), run: u.kit})
	}
	steps = append(steps,
		step{name: StepPreflight, detail: "checking " + u.s.Endpoint.Runs().Title() + ", ports, token and cluster", run: u.preflight},
		step{name: StepCluster, detail: "", run: u.cluster},
		step{name: StepImage, detail: u.s.Config.Gateway.Image, run: u.image})
	if u.o.Workshop.demo() {
		steps = append(steps, step{name: StepDemo, detail: "stand-in configuration service (stand-in, not Azure API Management)", run: u.demo})
	}
	return append(steps,
		step{name: StepDeploy, detail: "", run: u.deploy},
		step{name: StepForward, detail: "", run: u.forward},
		step{name: StepSmoke, detail: "", run: u.smoke})
}

// Up runs the pipeline. Each step reports through the session's reporter and
// takes ctx; a re-run after any failure or interruption resumes, because every
// step reuses what exists, and converges to what the cluster records: a
// promoted gateway stays prod, a demo stays a demo. The caller holds the
// cluster lock.
func (s *Session) Up(ctx context.Context, o UpOptions) (*UpResult, error) {
	cfg := s.Config
	u := &upRun{s: s, o: o, tok: o.Token, res: &UpResult{HTTPPort: cfg.Forward.HTTPPort, HTTPSPort: cfg.Forward.HTTPSPort}}
	err := s.runSteps(ctx, u.steps())
	if err != nil {
		if u.res.Smoke != nil {
			// The forward stays up: the user will want to look. The result
			// is returned with the error so a face can show the table.
			return u.res, err
		}
		if u.res.Stop != nil {
			u.res.Stop()
			u.res.Stop = nil
		}
		return nil, err
	}
	return u.res, nil
}

func (u *upRun) kit(ctx context.Context, _ *events.Step) (string, error) {
	return u.o.Workshop.loadKit(ctx, u.s.Docker, u.s.progress)
}

// preflight: every check, all problems at once, nothing created.
func (u *upRun) preflight(ctx context.Context, st *events.Step) (string, error) {
	s, cfg := u.s, u.s.Config
	if cfg.Cluster.Kubeconfig != "" && !cfg.Cluster.MergeKubeconfig {
		// apimdev writes the file it names: only when it is apimdev's own.
		if err := cluster.CheckOwnKubeconfig(cfg.Cluster.Kubeconfig, cfg.Cluster.Name); err != nil {
			return "", err
		}
	}
	// A smoke spec that would send a credential through the gateway stops
	// up here, not after the cluster is made.
	if err := s.CheckSmokeSpec(u.o.Token); err != nil {
		return "", err
	}
	fwd := s.Files.CheckForward()
	if fwd.Note != "" {
		st.Progress("%s", fwd.Note)
	}
	running := fwd.Running
	u.ownForward = running && fwd.HTTPPort == cfg.Forward.HTTPPort && fwd.HTTPSPort == cfg.Forward.HTTPSPort
	u.fwd = fwd.PID
	if err := u.o.Workshop.checkDemoImage(ctx, s.Docker, cfg.Gateway.Image, s.Timeouts.orDefault().Read); err != nil {
		return "", err
	}
	chose := s.chooseNodeImage(ctx)
	pf := &cluster.Preflight{Docker: s.Docker, Inspect: s.Cluster.Inspect, Config: cfg, Token: u.o.Token, TokenErr: u.o.TokenErr,
		NoToken: u.o.NoToken, TokenFrom: u.o.TokenFrom, Recreate: u.o.Recreate, ForwardRunning: u.ownForward, LookPath: s.LookPath, NodeImage: s.Cluster.NodeImage(), Endpoint: s.Endpoint, RuntimeWhy: s.RuntimeWhy}
	pf.Platform = s.platformPreflight(s.upImages(), u.o.Recreate, &u.platformsChecked)
	if u.o.Workshop.demo() {
		pf.NoToken, pf.TokenErr = false, nil
		pf.TokenNote = "the demo's, minted on this machine once the cluster answers (" + demo.Label + ")"
	}
	pres, err := pf.Run(ctx, func(c cluster.Check) {
		// Failures are told once, in the error with its fix; warnings once,
		// as warning events below.
		if c.OK && !c.Warn {
			st.Progress("✓ %s: %s", c.Name, c.Detail)
		}
	})
	if err != nil {
		return "", err
	}
	u.pres = pres
	if err := u.checkShape(ctx); err != nil {
		return "", err
	}
	if chose != "" && (pres.Cluster == cluster.ClusterAbsent || u.o.Recreate) {
		st.Progress("%s", chose)
	}
	// Reported after the step, with nothing else on its line.
	defer func() {
		for _, w := range pres.Warnings() {
			s.Rep.Warn(w.Name, w.Detail, "")
		}
	}()
	if running && !u.ownForward {
		// A background forward on other ports than asked: stop it, or it
		// would keep serving the old ports beside the new one.
		if rec, ok := s.Files.StopForward(); ok {
			st.Progress("stopped the background forward on 127.0.0.1:%d (pid %d): this run forwards 127.0.0.1:%d", rec.HTTPPort, rec.PID, cfg.Forward.HTTPPort)
		} else if rec.Note != "" {
			st.Progress("%s", rec.Note)
		}
	}
	return fmt.Sprintf("%d checks passed", len(pres.Checks)), nil
}

// checkShape holds an existing cluster to the number of workers it has: a
// count the user asks for that differs from it needs --recreate (kind cannot
// add nodes), and without an ask the cluster's own count is the setting.
func (u *upRun) checkShape(ctx context.Context) error {
	s := u.s
	if u.pres.Cluster == cluster.ClusterAbsent || u.o.Recreate {
		return nil
	}
	have, err := s.Cluster.Workers(ctx)
	if err != nil {
		return nil // the cluster step says what is wrong with the cluster
	}
	s.known.Workers = have
	st, err := s.resolve()
	if err != nil {
		return err
	}
	if st.Reshape != nil {
		return &cluster.ShapeError{Name: s.Config.Cluster.Name, Have: st.Reshape.Have, Want: st.Reshape.Want}
	}
	return nil
}

// cluster: create, reuse, restart or wait for the cluster, connect, and read
// what it records.
func (u *upRun) cluster(ctx context.Context, st *events.Step) (string, error) {
	s, cfg := u.s, u.s.Config
	if u.pres.Cluster == cluster.ClusterAbsent || u.o.Recreate {
		if err := s.pullNodeImage(ctx, st, u.o.BuildNodeImage); err != nil {
			return "", err
		}
	}
	s.Cluster.UseShape(shapeOf(cfg))
	created, err := s.Cluster.Ensure(ctx, u.pres.Cluster, u.o.Recreate, s.progress)
	u.res.Created = created
	if err != nil {
		return "", err
	}
	s.rememberRuntime()
	if created && u.ownForward {
		// A background forward outlived its cluster (deleted by hand, say):
		// it follows an API server and node ports that are gone.
		if rec, ok := s.Files.StopForward(); ok {
			st.Progress("stopped the background forward (pid %d): it served the cluster this one replaces", rec.PID)
		} else if rec.Note != "" {
			st.Progress("%s", rec.Note)
		}
		u.ownForward = false
	}
	if cfg.Cluster.MergeKubeconfig {
		what, err := s.Cluster.MergeKubeconfig(cfg.Cluster.Kubeconfig, u.o.SwitchContext)
		if err != nil {
			st.Warn("could not merge into your kubeconfig: "+err.Error(), "")
		} else {
			st.Progress("kubeconfig: %s", what)
		}
	}
	if err := s.Connect(); err != nil {
		return "", err
	}
	verb := "reused"
	if created {
		verb = "created"
	}
	done := fmt.Sprintf("%s %s (kubeconfig %s)", verb, cfg.Cluster.Name, s.Kubeconfig())
	if created {
		// A new cluster records nothing, whatever the state directory said.
		s.known.Workers = -1
		if err := s.take(nil); err != nil {
			return "", err
		}
		return done, nil
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil {
		return "", err
	}
	if prev, ok := cachedRecord(s.Files); rec == nil && ok && !prev.IsFor(cfg) {
		st.Warn(fmt.Sprintf("this cluster also runs gateway %s/%s (the one apimdev last deployed here); this up deploys %s/%s beside it",
			prev.Config.Gateway.Namespace, prev.Config.Gateway.Name, cfg.Gateway.Namespace, cfg.Gateway.Name), "")
	}
	if err := s.take(rec); err != nil {
		return "", err
	}
	if s.Recorded != nil {
		done += fmt.Sprintf("; it records the %s profile", s.Recorded.Profile)
		if s.Recorded.Demo {
			done += " of the demo"
		}
	}
	return done, nil
}

// image: what the target profile runs, into the node; the node never pulls
// what this machine already has.
func (u *upRun) image(ctx context.Context, st *events.Step) (string, error) {
	s := u.s
	p := &ProfilePlan{To: ""}
	if s.Recorded != nil {
		p.To = s.Recorded.Profile
	}
	if p.To == "" {
		p.To = "dev"
	}
	if err := s.target(ctx, p); err != nil {
		return "", err
	}
	u.plan = p
	if err := s.requirePlatforms(ctx, profileImages(p.Target), "", u.platformsChecked, func(w string) { st.Warn(w, "") }); err != nil {
		return "", err
	}
	var what []string
	err := s.loadImages(ctx, p.Target, func(l loaded) {
		if len(what) == 0 {
			u.replaced = l.replaced
			what = append(what, l.what)
		} else {
			what = append(what, l.image+": "+l.what)
		}
	}, func(m string) { st.Progress("%s", m) })
	return strings.Join(what, "; "), err
}

// loaded is an image loadImages put into the node, and how.
type loaded struct {
	image, what string
	replaced    bool // another image of the same name was there
}

// loadImages puts the images target runs into the local cluster's node
// (the node never pulls what this machine already has), the gateway's
// first, each told to done, and restarts pods that had failed to pull one
// (said through say). up and promote load alike.
func (s *Session) loadImages(ctx context.Context, target gateway.Profile, done func(loaded), say func(string)) error {
	for _, img := range []string{target.Image, target.StatsdImage, target.CollectorImage} {
		if img == "" {
			continue
		}
		what, replaced, err := s.Cluster.LoadImage(ctx, img, s.progress)
		if err != nil {
			return err
		}
		done(loaded{image: img, what: what, replaced: replaced})
		if restarted, err := gateway.RestartPullFailures(ctx, s.Client, s.Names.Namespace, img); err == nil && len(restarted) > 0 {
			say("restarted pod(s) that could not pull it: " + strings.Join(restarted, ", "))
		}
	}
	return nil
}

// demo: the stand-in configuration service the demo gateway polls, and the
// demo's token (kept while it is good, minted otherwise).
func (u *upRun) demo(ctx context.Context, _ *events.Step) (string, error) {
	tok, what, err := u.o.Workshop.deployDemo(ctx, u.s)
	if err != nil {
		return "", err
	}
	u.tok = tok
	u.res.DemoKey = u.o.Workshop.Key
	return what, nil
}

// deploy: plan against what runs, ask about what the user did not ask for,
// apply, record, wait, prune.
func (u *upRun) deploy(ctx context.Context, st *events.Step) (string, error) {
	s := u.s
	// The gateway's first act is to resolve its configuration endpoint: on a
	// new cluster, start it once cluster DNS answers, or that first fetch
	// fails and the gateway waits 10 s for its next one.
	if t0 := time.Now(); cluster.WaitDNS(ctx, s.Client, s.Timeouts.orDefault().DNS) && time.Since(t0) > 100*time.Millisecond {
		st.Progress("cluster DNS ready after %.1fs", time.Since(t0).Seconds())
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	tok := u.tok
	if tok.IsZero() {
		t, err := s.ClusterToken(ctx)
		if err != nil {
			return "", s.noCredential()
		}
		tok = t
		switch s.Names.Auth.Mode() {
		case config.AuthEntraApp:
			st.Progress("client secret: the one in Secret %s/%s", s.Names.Namespace, s.Names.SecretName())
		case config.AuthToken:
			st.Progress("token: the one in Secret %s/%s (%s)", s.Names.Namespace, s.Names.SecretName(), t.ExpiryAt(s.now()).Describe())
		}
	}
	u.res.TokenExpiry = tok.ExpiryAt(s.now())
	plan := u.plan
	from, fresh, err := s.deployedProfile(ctx)
	if err != nil {
		return "", err
	}
	plan.From, plan.Fresh, plan.token = from, fresh, tok
	if err := s.planChanges(ctx, plan); err != nil {
		return "", err
	}
	if unasked := plan.Unasked(); len(unasked) > 0 && !u.o.Yes {
		what := fmt.Sprintf("the %s gateway differs from these settings", plan.To)
		if s.Recorded != nil {
			if ch := settings.Changes(s.Recorded.Config, s.Config); len(ch) > 0 {
				what += " (" + settings.Describe(ch) + ")"
			}
		}
		if plan.AsRecorded {
			what = fmt.Sprintf("the %s gateway differs from what apimdev recorded (changed by hand?)", plan.To)
		}
		if u.o.Confirm == nil || !u.o.Confirm(plan.Diff) {
			why := "nobody to ask"
			if u.o.Confirm != nil {
				why = "not confirmed"
			}
			return "", &DeclinedError{What: what + "; up did not apply " + refs(unasked), Why: why}
		}
	}
	applied, err := gateway.Execute(ctx, s.Client, plan.Changes)
	if err != nil {
		return "", err
	}
	for _, ap := range applied {
		st.Progress("%s", ap)
	}
	// Recorded as soon as it is applied, so status, smoke and down know the
	// gateway even when it never becomes ready.
	if err := s.writeRecord(ctx, &plan.record); err != nil {
		st.Warn(err.Error(), "")
	}
	// The gateway reads its token and its settings from its environment when
	// it starts: a new token in the Secret or a new endpoint in the ConfigMap
	// reaches running pods only through a restart. So does a new image under
	// the same tag (a local rebuild): the spec did not change, so the
	// Deployment would not roll by itself.
	if why := restartReason(plan.Changes, plan.Target, u.replaced); why != "" {
		st.Progress("%s: restarting the gateway pods", why)
		if err := s.restartPods(ctx, plan.Target); err != nil {
			return "", err
		}
	}
	if err := s.waitRollout(ctx, plan, s.Timeouts.orDefault().Deploy, nil); err != nil {
		return "", err
	}
	gone, err := gateway.Prune(ctx, s.Client, plan.Changes)
	if err != nil {
		return "", err
	}
	if len(gone) > 0 {
		st.Progress("removed what the %s profile does not have: %s", plan.To, strings.Join(gone, ", "))
	}
	// The backends the record has (`apimdev backend add`), as recorded.
	if _, err := s.convergeBackends(ctx, s.recordedBackends(), st.Progress); err != nil {
		return "", err
	}
	u.res.Profile = plan.To
	changed, total := plan.Changed()
	return fmt.Sprintf("%s/%s ready, %s profile (%d object(s) changed, %d unchanged)", s.Names.Namespace, s.Names.DeploymentName(), plan.To, changed, total-changed), nil
}

// sameGateway says two settings name the same gateway.
func sameGateway(a, b config.Gateway) bool { return a.Name == b.Name && a.Namespace == b.Namespace }

func refs(cs []gateway.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Ref())
	}
	return strings.Join(out, ", ")
}

// forward: apimdev's background forward when it already runs on these
// ports, a new one (--detach), or one in this process.
func (u *upRun) forward(ctx context.Context, _ *events.Step) (string, error) {
	s, res := u.s, u.res
	// The auto-pause setting as given now, for the forward that runs
	// already too (it reads it from the state directory).
	_ = s.Files.SaveAutoPause(s.Config.Cluster.AutoPauseAfter())
	switch {
	case u.ownForward:
		res.Detached, res.ForwardPID = true, u.fwd
		return fmt.Sprintf("already running in the background (pid %d)", u.fwd), nil
	case u.o.Detach:
		pid, err := s.StartDetachedForward(ctx, u.o.Self, u.o.ConfigFile)
		if err != nil {
			return "", err
		}
		res.Detached, res.ForwardPID = true, pid
		return fmt.Sprintf("running in the background (pid %d, log %s)", pid, s.Files.ForwardLog()), nil
	}
	stop, _, err := s.StartLongForward(ctx, res.HTTPPort, res.HTTPSPort)
	if err != nil {
		return "", err
	}
	res.Stop = stop
	return fmt.Sprintf("127.0.0.1:%d → %s:80, 127.0.0.1:%d → :443", res.HTTPPort, s.Names.LiveService(), res.HTTPSPort), nil
}

// smoke: the health calls and the spec's, through the forward.
func (u *upRun) smoke(ctx context.Context, st *events.Step) (string, error) {
	rs, err := u.s.Smoke(ctx, u.tok, u.res.HTTPPort, u.res.HTTPSPort)
	if err != nil {
		return "", err
	}
	u.res.Smoke = rs
	// The status path answers without a configuration: the pods' logs say
	// whether the gateway has one, and why not.
	links, lerr := u.s.CheckLinks(ctx, st)
	u.res.Links = links
	if len(u.s.recordedBackends()) > 0 {
		u.res.Backends = u.s.backendsAfterUp(ctx)
	}
	if n := smoke.Failed(rs); n > 0 {
		return "", smokeFailure(&SmokeError{Failed: n, Total: len(rs)}, lerr)
	}
	if lerr != nil {
		return "", lerr
	}
	return fmt.Sprintf("%d call(s) passed; configuration link %s", len(rs), LinkSummary(links, u.s.now())), nil
}
