package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/hostsetup"
	"github.com/apimdev/apimdev/internal/ports"
	"github.com/apimdev/apimdev/internal/token"
)

// Check is the outcome of one preflight check.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Warn    bool   `json:"warn,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// PreflightError lists every failed check.
type PreflightError struct{ Failed []Check }

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "preflight found %d problem(s); nothing was created:", len(e.Failed))
	for _, c := range e.Failed {
		fmt.Fprintf(&b, "\n  ✗ %s: %s", c.Name, c.Problem)
		if c.Fix != "" {
			fmt.Fprintf(&b, "\n    fix: %s", c.Fix)
		}
	}
	return b.String()
}

// Hint is given per problem above; the summary needs none of its own.
func (e *PreflightError) Hint() string { return "" }

// ClusterState is what exists under the cluster's name.
type ClusterState string

const (
	ClusterAbsent  ClusterState = "absent"
	ClusterOurs    ClusterState = "ours"    // running, created by apimdev
	ClusterStopped ClusterState = "stopped" // node container exists but is not running
	ClusterForeign ClusterState = "foreign" // running, not created by apimdev
	ClusterBroken  ClusterState = "broken"  // running, but its API server does not answer
	// ClusterStarting is a node that started moments ago (an engine or laptop
	// restart) whose API server does not answer yet.
	ClusterStarting ClusterState = "starting"
	// ClusterPaused is a cluster whose node containers the engine has
	// paused (`apimdev pause`, auto-pause, or `docker pause` by hand): it is
	// neither broken nor starting, and `apimdev resume` thaws it.
	ClusterPaused  ClusterState = "paused"
	ClusterUnknown ClusterState = "unknown" // Docker does not answer, so nothing can be told
)

// Preflight checks the machine. Every check runs; all failures are reported
// together, each with what is wrong and how to fix it.
type Preflight struct {
	Docker  Docker
	Inspect func(ctx context.Context) (ClusterState, string) // what exists under the name
	Config  config.Config
	Token   token.Token
	// TokenErr is the error from reading the token, reported as a check.
	TokenErr error
	// NoToken says none was given: fine when the cluster exists (its Secret's
	// token is kept), a problem when up would create one.
	NoToken bool
	// TokenNote, when set, passes the token check with this detail (the
	// demo mints its token later).
	TokenNote string
	// TokenFrom says where the credential came from (the variable, stdin,
	// or the file and the setting that named it), for the token's line.
	TokenFrom string
	// NodeImage is the image a new cluster would be made from; "" means the
	// configuration's, else kind's.
	NodeImage string
	// Endpoint is where the engine is, and which runtime it is (Docker or
	// Podman), for the runtime check.
	Endpoint Endpoint
	// RuntimeWhy says what chose the runtime, for the runtime check's line.
	RuntimeWhy string
	// GOOS is the OS whose fixes are given ("" is this one's).
	GOOS     string
	Recreate bool
	// ForwardRunning is true when apimdev's own detached forward holds the
	// local ports, which is then expected, not a conflict.
	ForwardRunning bool
	Now            func() time.Time
	LookPath       func(string) (string, error)
	// Platform, when set, holds the images a rollout would run to the
	// architecture of the nodes that would run them (the "platform" check).
	// It runs beside the other checks; in tells it what exists.
	Platform func(ctx context.Context, in PlatformInputs) Check

	// info is the engine's Info once read: by the runtime check (before
	// the other checks start), else by the first check that needs it.
	info    *system.Info
	infoErr error
	infoMu  sync.Mutex
}

// PlatformInputs is what the platform check learns from the rest of
// preflight.
type PlatformInputs struct {
	// Cluster waits for the cluster check and says what exists
	// (ClusterUnknown when ctx ends first).
	Cluster func() ClusterState
	// EngineArch is the engine's architecture as its Info says it (x86_64,
	// aarch64): the architecture of the nodes of a cluster it would make.
	EngineArch func(ctx context.Context) (string, error)
}

// Result of preflight: the checks and what exists.
type Result struct {
	Checks  []Check      `json:"checks"`
	Cluster ClusterState `json:"cluster"`
}

// Run runs all checks concurrently and returns them in a fixed order.
func (p *Preflight) Run(ctx context.Context, progress func(Check)) (Result, error) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	look := p.LookPath
	if look == nil {
		look = exec.LookPath
	}
	var res Result
	type job struct {
		name string
		run  func(context.Context) Check
	}
	// Docker first: when it does not answer, the checks that need it are
	// skipped instead of failing a second time for the same reason.
	dctx, dcancel := context.WithTimeout(ctx, 4*time.Second)
	p.info, p.infoErr = nil, nil // this run's answer only
	rt := p.Endpoint.Runs()
	var docker Check
	var engineUp bool
	if rt == RuntimePodman {
		docker, engineUp = p.checkPodman(dctx, look)
	} else {
		docker, engineUp = p.checkDocker(dctx, look)
	}
	dcancel()
	docker.Name = string(rt)
	skipped := func() func(context.Context) Check {
		return func(context.Context) Check {
			return Check{OK: true, Warn: true, Detail: "not checked: it needs " + rt.Title()}
		}
	}
	known := make(chan struct{}) // closed once res.Cluster is set
	resources, inspect := p.checkResources, func(ctx context.Context) Check {
		defer close(known)
		c, st := p.checkCluster(ctx)
		res.Cluster = st
		return c
	}
	platform := func(ctx context.Context) Check {
		return p.Platform(ctx, PlatformInputs{Cluster: func() ClusterState {
			select {
			case <-known:
				return res.Cluster
			case <-ctx.Done():
				return ClusterUnknown
			}
		}, EngineArch: p.engineArch})
	}
	if !engineUp {
		resources, inspect, platform = skipped(), skipped(), skipped()
		res.Cluster = ClusterUnknown
	}
	jobs := []job{
		{string(rt), func(context.Context) Check { return docker }},
		{"resources", resources},
		{"ports", func(context.Context) Check { return p.checkPorts() }},
		{"token", func(context.Context) Check { return p.checkToken(now()) }},
		{"endpoint", func(context.Context) Check { return p.checkEndpoint() }},
		{"cluster", inspect},
	}
	if p.Platform != nil {
		jobs = append(jobs, job{"platform", platform})
	}
	checks := make([]Check, len(jobs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			c := j.run(cctx)
			c.Name = j.name
			mu.Lock()
			checks[i] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	if p.NoToken && p.Config.Gateway.Auth.Mode() != config.AuthWorkloadIdentity {
		for i := range checks {
			if jobs[i].name == "token" {
				checks[i] = p.checkNoToken(res.Cluster)
				checks[i].Name = "token"
			}
		}
	}
	// The node image matters only when a cluster will be created.
	if engineUp && (res.Cluster == ClusterAbsent || p.Recreate) {
		c := p.checkNodeImage(ctx)
		c.Name = "node image"
		checks = append(checks, c)
	}
	res.Checks = checks
	var failed []Check
	for _, c := range checks {
		if progress != nil {
			progress(c)
		}
		if !c.OK {
			failed = append(failed, c)
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if len(failed) > 0 {
		return res, &PreflightError{Failed: failed}
	}
	return res, nil
}

// checkDocker pings the engine and finds the docker CLI; engineUp says whether
// the checks that need the engine can run.
func (p *Preflight) checkDocker(ctx context.Context, look func(string) (string, error)) (c Check, engineUp bool) {
	if p.Docker == nil {
		return Check{Problem: "no Docker client", Fix: "set DOCKER_HOST to your Docker engine"}, false
	}
	if _, err := p.Docker.Ping(ctx); err != nil {
		return Check{Problem: "the Docker engine does not answer: " + shortErr(err), Fix: DockerFix(runtime.GOOS, osRelease())}, false
	}
	v, err := p.Docker.ServerVersion(ctx)
	if err != nil {
		return Check{Problem: "the Docker engine answered ping but not version: " + shortErr(err), Fix: "restart Docker"}, false
	}
	if _, err := look("docker"); err != nil {
		return Check{Problem: "the docker command is not on PATH (kind drives the engine through it)", Fix: "install the Docker CLI (the docker-ce-cli or docker.io package) or add it to PATH"}, true
	}
	detail := fmt.Sprintf("Docker %s (API %s, %s/%s)", v.Version, v.APIVersion, v.Os, v.Arch)
	if p.Endpoint.Source != "" && p.Endpoint.Source != "the default" {
		detail += " via " + p.Endpoint.Describe() + " (" + p.Endpoint.Source + ")"
	}
	if p.RuntimeWhy != "" && p.RuntimeWhy != "it answers" {
		detail += "; runtime: " + p.RuntimeWhy
	}
	return Check{OK: true, Detail: detail}, true
}

var currentGOOS = runtime.GOOS

// DockerFix says how to get a Docker engine running on this OS: the desktop
// engines people use on macOS and Windows, the distribution's engine on
// Linux (and on Debian or Ubuntu the script that installs and starts it).
func DockerFix(goos, osRelease string) string {
	switch goos {
	case "darwin":
		return "start Docker Desktop (or `colima start`, Rancher Desktop, OrbStack) and run this again; none installed? `brew install --cask docker`, or `brew install colima docker` then `colima start --cpu 4 --memory 8`"
	case "windows":
		return "start Docker Desktop (WSL 2 backend) and run this again; none installed? `winget install Docker.DockerDesktop`, or Rancher Desktop"
	}
	if hostsetup.DebianLike(osRelease) {
		return "start Docker (`sudo systemctl start docker`) and run this again; none installed? `apimdev docker install` installs your distribution's docker.io and enables its service (`--dry-run` shows every change and its undo first); if Docker runs elsewhere, set DOCKER_HOST"
	}
	return "start Docker (`sudo systemctl start docker`) and run this again; none installed? see https://docs.docker.com/engine/install/; if Docker runs elsewhere, set DOCKER_HOST"
}

func osRelease() string {
	b, _ := os.ReadFile("/etc/os-release")
	return string(b)
}

func (p *Preflight) checkResources(ctx context.Context) Check {
	if p.Docker == nil {
		return Check{OK: true, Warn: true, Detail: "skipped: no Docker"}
	}
	info, err := p.engineInfo(ctx)
	if err != nil {
		return Check{OK: true, Warn: true, Detail: "could not read the engine's resources: " + shortErr(err)}
	}
	gib := float64(info.MemTotal) / (1 << 30)
	d := fmt.Sprintf("%d CPUs, %.1f GiB memory for %s", info.NCPU, gib, p.Endpoint.Runs().Title())
	more := ResourceFix(p.Endpoint.Engine)
	if p.Endpoint.RuntimeIs(RuntimePodman) {
		more = PodmanResourceFix(p.Endpoint.Engine)
	}
	switch {
	case info.MemTotal > 0 && gib < 2:
		return Check{Problem: d + ": a kind node and the gateway need at least 2 GiB", Fix: more + ", or close other containers"}
	case info.NCPU < 2 || gib < 4:
		return Check{OK: true, Warn: true, Detail: d + " (works, but 2 CPUs and 4 GiB or more make it faster; " + more + ")"}
	case info.NCPU < 4 || gib < 8:
		// Enough for the dev profile; promote fits the prod profile's
		// requests to what there is.
		return Check{OK: true, Detail: d + " (promote fits the prod profile's requests to these; 4 CPUs and 8 GiB hold its 3 replicas)"}
	}
	return Check{OK: true, Detail: d}
}

// ResourceFix says where this engine's CPUs and memory are set.
func ResourceFix(engine string) string {
	switch engine {
	case "Docker Desktop":
		return "give Docker Desktop more in Settings > Resources"
	case "Colima":
		return "give Colima more: colima stop && colima start --cpu 4 --memory 8"
	case "Rancher Desktop":
		return "give Rancher Desktop more in Preferences > Virtual Machine"
	case "OrbStack":
		return "give OrbStack more in Settings > System"
	}
	return "give Docker more CPUs and memory (Docker Desktop: Settings > Resources; Colima: colima start --cpu 4 --memory 8)"
}

// engineInfo is the engine's Info, asked once per run however many checks
// need it (Podman takes 0.2 s to answer).
func (p *Preflight) engineInfo(ctx context.Context) (system.Info, error) {
	p.infoMu.Lock()
	defer p.infoMu.Unlock()
	if p.info == nil && p.infoErr == nil {
		info, err := p.Docker.Info(ctx)
		if err != nil {
			p.infoErr = err
		} else {
			p.info = &info
		}
	}
	if p.infoErr != nil {
		return system.Info{}, p.infoErr
	}
	return *p.info, nil
}

// engineArch is the engine's architecture as Info says it.
func (p *Preflight) engineArch(ctx context.Context) (string, error) {
	if p.Docker == nil {
		return "", errors.New("no engine client")
	}
	info, err := p.engineInfo(ctx)
	return info.Architecture, err
}

func (p *Preflight) checkPorts() Check {
	f := p.Config.Forward
	if p.ForwardRunning {
		return Check{OK: true, Detail: fmt.Sprintf("%d and %d are held by apimdev's own forward", f.HTTPPort, f.HTTPSPort)}
	}
	var probs, fixes []string
	for _, pp := range []struct {
		port int
		flag string
	}{{f.HTTPPort, "--http-port"}, {f.HTTPSPort, "--https-port"}} {
		if err := ports.Check("127.0.0.1", pp.port, pp.flag); err != nil {
			probs = append(probs, err.Error())
			var h interface{ Hint() string }
			if errors.As(err, &h) {
				fixes = append(fixes, h.Hint())
			}
		}
	}
	if len(probs) > 0 {
		return Check{Problem: strings.Join(probs, "; "), Fix: strings.Join(fixes, "; ")}
	}
	return Check{OK: true, Detail: fmt.Sprintf("127.0.0.1:%d and 127.0.0.1:%d are free", f.HTTPPort, f.HTTPSPort)}
}

func (p *Preflight) checkToken(now time.Time) Check {
	if p.TokenNote != "" {
		return Check{OK: true, Detail: p.TokenNote}
	}
	if p.TokenErr != nil {
		c := Check{Problem: p.TokenErr.Error()}
		var h interface{ Hint() string }
		if errors.As(p.TokenErr, &h) {
			c.Fix = h.Hint()
		}
		return c
	}
	a := p.Config.Gateway.Auth
	switch a.Mode() {
	case config.AuthWorkloadIdentity:
		return Check{Problem: "workload identity cannot work on a local kind cluster: Microsoft Entra ID must trust the cluster's service account tokens through an OIDC issuer it can reach (AKS: --enable-oidc-issuer --enable-workload-identity, plus a federated credential on the identity), and a local cluster has none",
			Fix: "locally, use --auth entra-app (client secret) or the token; take workload identity to AKS with `apimdev export -o DIR` or `apimdev promote --context AKS-CONTEXT`"}
	case config.AuthEntraApp:
		return Check{OK: true, Detail: fmt.Sprintf("Microsoft Entra app %s in tenant %s (%s), client secret %s; gateway.name %s", a.ClientID, a.TenantID, config.AuthorityOr(a.Authority), p.from("given"), p.Config.Gateway.Name)}
	}
	e := p.Token.ExpiryAt(now)
	c := Check{OK: true, Detail: "gateway " + p.Token.GatewayID + ", " + e.Describe() + p.from("")}
	if w := e.Warning(); w != "" {
		c.Warn, c.Detail = true, w+p.from("")
	}
	if p.Token.GatewayID != p.Config.Gateway.Name {
		c.Warn = true
		c.Detail += fmt.Sprintf("; note: the token is for gateway %q but --name is %q (objects are named after --name)", p.Token.GatewayID, p.Config.Gateway.Name)
	}
	return c
}

// from says where the credential came from ("from file gw.token, named by
// --token-file"), with a leading separator when there is text before it;
// or: when nobody said.
func (p *Preflight) from(or string) string {
	switch {
	case p.TokenFrom == "":
		return or
	case or == "":
		return "; from " + p.TokenFrom
	}
	return "from " + p.TokenFrom
}

// checkNoToken is the token check when none was given.
func (p *Preflight) checkNoToken(st ClusterState) Check {
	secret := p.Config.Gateway.Auth.Mode() == config.AuthEntraApp
	switch {
	case p.Recreate:
	case st == ClusterOurs || st == ClusterStopped || st == ClusterStarting || st == ClusterPaused:
		if secret {
			return Check{OK: true, Detail: "no client secret given: the one in the cluster's Secret is kept"}
		}
		return Check{OK: true, Detail: "none given: the token in the cluster's Secret is kept"}
	}
	if secret {
		return Check{Problem: "no client secret: Entra app authentication needs the app's client secret",
			Fix: "use --client-secret-file FILE (or - for stdin) or APIMDEV_CLIENT_SECRET; never a flag value"}
	}
	return Check{Problem: "no token: the gateway needs its token from the Azure portal",
		Fix: "use --token-file FILE, APIMDEV_TOKEN, or try `apimdev up --demo` (no Azure needed)"}
}

func (p *Preflight) checkEndpoint() Check {
	if msg, fix := config.EndpointProblem(p.Config.Gateway.Endpoint); msg != "" {
		return Check{Problem: "gateway.endpoint " + msg, Fix: fix}
	}
	h := config.EndpointHost(p.Config.Gateway.Endpoint)
	c := Check{OK: true, Detail: h}
	if !strings.HasSuffix(strings.Split(h, ":")[0], ".azure-api.net") {
		c.Warn = true
		c.Detail += " (not an azure-api.net host: fine for a custom domain or a stand-in)"
	}
	return c
}

func (p *Preflight) checkCluster(ctx context.Context) (Check, ClusterState) {
	name := p.Config.Cluster.Name
	if p.Inspect == nil {
		return Check{OK: true, Detail: "not checked"}, ClusterAbsent
	}
	st, detail := p.Inspect(ctx)
	switch st {
	case ClusterAbsent:
		return Check{OK: true, Detail: fmt.Sprintf("no cluster %q yet: it will be created", name)}, st
	case ClusterOurs:
		if p.Recreate {
			return Check{OK: true, Warn: true, Detail: fmt.Sprintf("cluster %q exists and will be deleted and recreated (--recreate)", name)}, st
		}
		return Check{OK: true, Detail: fmt.Sprintf("cluster %q exists and is healthy: it will be reused", name)}, st
	case ClusterStopped:
		return Check{OK: true, Warn: true, Detail: fmt.Sprintf("cluster %q exists but its node is stopped (%s): it will be restarted", name, detail)}, st
	case ClusterStarting:
		return Check{OK: true, Detail: fmt.Sprintf("cluster %q is starting (%s): up waits for it", name, detail)}, st
	case ClusterPaused:
		return Check{OK: true, Detail: fmt.Sprintf("cluster %q is paused (%s): it will be resumed", name, detail)}, st
	case ClusterForeign, ClusterBroken:
		what := "was not created by apimdev"
		if st == ClusterBroken {
			what = "does not answer (" + detail + ")"
		}
		if p.Recreate {
			return Check{OK: true, Warn: true, Detail: fmt.Sprintf("kind cluster %q %s; it will be deleted and recreated (--recreate)", name, what)}, st
		}
		return Check{Problem: fmt.Sprintf("a kind cluster named %q exists and %s", name, what),
			Fix: fmt.Sprintf("leave it alone with --cluster-name another-name, or delete and recreate it with --recreate (everything in it is lost)%s", map[bool]string{true: "; `kind export logs` shows why it is broken", false: ""}[st == ClusterBroken])}, st
	}
	return Check{Problem: "unknown cluster state " + string(st)}, st
}

func (p *Preflight) checkNodeImage(ctx context.Context) Check {
	img := p.NodeImage
	if img == "" {
		img = p.Config.Cluster.NodeImage
	}
	if img == "" {
		img = DefaultNodeImage
	}
	if p.Docker == nil {
		return Check{OK: true, Warn: true, Detail: img}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.Docker.ImageInspect(ctx, img); err != nil {
		if errdefs.IsNotFound(err) {
			return Check{OK: true, Warn: true, Detail: img + " is not on this machine: it is pulled (about 400 MB) before the cluster is made"}
		}
		return Check{OK: true, Warn: true, Detail: "could not inspect " + img + ": " + shortErr(err)}
	}
	return Check{OK: true, Detail: img + " is on this machine"}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\n"); i > 0 {
		s = s[:i]
	}
	return s
}

// Warnings returns the checks that passed with something to say.
func (r Result) Warnings() []Check {
	return slices.DeleteFunc(slices.Clone(r.Checks), func(c Check) bool { return !c.Warn || !c.OK })
}
