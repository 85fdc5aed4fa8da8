package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

type upOptions struct {
	recreate, detach, merge bool
	deployTimeout           time.Duration
	lockWait                time.Duration
}

func (a *app) upCommand() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Check the machine, create or reuse the kind cluster, deploy the gateway, forward its ports and smoke-test it",
		Long: `up runs the whole pipeline: preflight, cluster, image, deploy, forward, smoke.
Each step reports one line; a failure says what is wrong and how to fix it.
Re-running up is safe: it reuses the cluster and applies only what changed.

By default up keeps forwarding in the foreground until Ctrl-C. With --detach,
the forward runs as a background apimdev process (its log is in apimdev's state
directory) and up returns; 'apimdev down' stops it.`,
		Example: `  APIMDEV_TOKEN="$(cat gw.token)" apimdev up --name contoso-gw --endpoint contoso.configuration.azure-api.net
  apimdev up --token-file gw.token --detach
  apimdev up -o json --token-file - < gw.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.up(cmd, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.recreate, "recreate", false, "delete and recreate the cluster if it exists (everything in it is lost)")
	f.BoolVar(&o.detach, "detach", false, "run the forward in the background and return once smoke passes")
	f.BoolVar(&o.merge, "merge-kubeconfig", false, "also add the cluster to your default kubeconfig and switch its current context")
	f.DurationVar(&o.deployTimeout, "timeout", 3*time.Minute, "how long to wait for the gateway to become ready")
	f.DurationVar(&o.lockWait, "lock-wait", 2*time.Second, "how long to wait for another apimdev working on the same cluster")
	return cmd
}

// session is what the steps of one command share: clients made once.
type session struct {
	cfg     config.Config
	files   state.Cluster
	rep     *events.Reporter
	current *events.Step
	docker  cluster.Docker
	mgr     *cluster.Manager
	cs      kubernetes.Interface
	rc      *rest.Config
	profile gateway.Profile
}

func (s *session) progress(format string, args ...any) {
	if s.current != nil {
		s.current.Progress(format, args...)
	}
}

func (a *app) newSession(cfg config.Config) (*session, error) {
	dir, err := state.Dir(a.getenv)
	if err != nil {
		return nil, err
	}
	files, err := state.ForCluster(dir, cfg.Cluster.Name)
	if err != nil {
		return nil, err
	}
	s := &session{cfg: cfg, files: files, rep: a.reporter(cfg), profile: gateway.Dev(cfg)}
	kubeconfig := cfg.Cluster.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = files.Kubeconfig()
	}
	d, err := cluster.NewDocker()
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	s.docker = d
	kind, _ := cluster.NewKind(s.progress)
	s.mgr = &cluster.Manager{Kind: kind, Docker: d, Name: cfg.Cluster.Name, Kubeconfig: kubeconfig, NodeImage: cfg.Cluster.NodeImage, Version: Version}
	return s, nil
}

// connect builds the Kubernetes client from apimdev's kubeconfig file.
func (s *session) connect() error {
	if s.cs != nil {
		return nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", s.mgr.Kubeconfig)
	if err != nil {
		return &noClusterError{name: s.cfg.Cluster.Name, err: err}
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s.cs, s.rc = cs, rc
	return nil
}

type noClusterError struct {
	name string
	err  error
}

func (e *noClusterError) Error() string {
	return fmt.Sprintf("no apimdev cluster %q to talk to (%v)", e.name, e.err)
}
func (e *noClusterError) Hint() string { return "run `apimdev up` first" }

// exists describes what exists now, for an interrupted or failed run.
func (s *session) exists(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, _ := s.mgr.Inspect(ctx)
	switch st {
	case cluster.ClusterAbsent:
		return "nothing was created"
	case cluster.ClusterOurs:
		what := fmt.Sprintf("cluster %q exists", s.cfg.Cluster.Name)
		if s.connect() == nil {
			if d, err := s.cs.AppsV1().Deployments(s.profile.Namespace).Get(ctx, s.profile.DeploymentName(), metav1.GetOptions{}); err == nil {
				what += fmt.Sprintf(", gateway %s/%s deployed (%d/%d ready)", s.profile.Namespace, d.Name, d.Status.ReadyReplicas, *d.Spec.Replicas)
			} else {
				what += ", the gateway is not deployed"
			}
		}
		return what
	default:
		return fmt.Sprintf("cluster %q is %s", s.cfg.Cluster.Name, st)
	}
}

func (a *app) up(cmd *cobra.Command, o upOptions) (err error) {
	ctx := cmd.Context()
	cfg, err := a.load(cmd)
	if err != nil {
		return err
	}
	tok, tokErr := a.loadToken(cfg)
	s, err := a.newSession(cfg)
	if err != nil {
		return err
	}
	lock, err := s.files.Acquire(cfg.Cluster.Name, o.lockWait)
	if err != nil {
		return err
	}
	defer lock.Release()

	stepName := ""
	defer func() {
		if err != nil && errors.Is(err, context.Canceled) {
			fmt.Fprintf(a.streams.Err, "\ninterrupted during %s. Now: %s.\nRun `apimdev up` again to continue from there; `apimdev down` removes everything.\n", stepName, s.exists(ctx))
			err = &shownError{err: err, code: ExitInterrupted}
		} else if err != nil {
			err = &shownError{err: err, code: ExitFailure}
		}
	}()
	step := func(name, detail string) *events.Step {
		stepName = name
		s.current = s.rep.Start(name, detail)
		return s.current
	}

	// 1. preflight: every check, all problems at once, nothing created.
	fwd, fwdRunning := s.files.Forward()
	st := step("preflight", "checking Docker, ports, token and cluster")
	pf := &cluster.Preflight{Docker: s.docker, Inspect: s.mgr.Inspect, Config: cfg, Token: tok, TokenErr: tokErr,
		Recreate: o.recreate, ForwardRunning: fwdRunning && fwd.HTTPPort == cfg.Forward.HTTPPort && fwd.HTTPSPort == cfg.Forward.HTTPSPort}
	res, err := pf.Run(ctx, func(c cluster.Check) {
		// Failures are told once, in the error with its fix; warnings once,
		// as warning events below.
		if c.OK && !c.Warn {
			st.Progress("✓ %s: %s", c.Name, c.Detail)
		}
	})
	if err != nil {
		return st.Fail(err)
	}
	st.Done(fmt.Sprintf("%d checks passed", len(res.Checks)))
	for _, w := range res.Warnings() {
		s.rep.Warn(w.Name, w.Detail, "")
	}

	// 2. cluster
	st = step("cluster", "")
	created, err := s.mgr.Ensure(ctx, res.Cluster, o.recreate, s.progress)
	if err != nil {
		return st.Fail(err)
	}
	if o.merge {
		if err := s.mgr.Kind.ExportKubeConfig(cfg.Cluster.Name, "", false); err != nil {
			st.Warn("could not merge into your kubeconfig: "+err.Error(), "")
		}
	}
	if err := s.connect(); err != nil {
		return st.Fail(err)
	}
	st.Done(map[bool]string{true: "created " + cfg.Cluster.Name, false: "reused " + cfg.Cluster.Name}[created] + " (kubeconfig " + s.mgr.Kubeconfig + ")")

	// 3. image: the node never pulls what this machine already has.
	st = step("image", cfg.Gateway.Image)
	what, err := s.mgr.LoadImage(ctx, cfg.Gateway.Image, s.progress)
	if err != nil {
		return st.Fail(err)
	}
	st.Done(what)

	// 4. deploy
	st = step("deploy", "")
	applied, err := gateway.Apply(ctx, s.cs, s.profile.Objects(tok, false))
	if err != nil {
		return st.Fail(err)
	}
	changed := 0
	for _, ap := range applied {
		if ap.Created || ap.Changed {
			changed++
			st.Progress("%s", ap)
		}
	}
	w := &gateway.Waiter{Client: s.cs, Profile: s.profile, Timeout: o.deployTimeout, Progress: func(m string) { s.progress("%s", m) }, Redact: redactor(tok)}
	if err := w.Wait(ctx); err != nil {
		return st.Fail(err)
	}
	if err := s.files.SaveConfig(cfg); err != nil {
		st.Warn("could not remember this configuration for status/smoke/down: "+err.Error(), "")
	}
	st.Done(fmt.Sprintf("%s/%s ready (%d object(s) changed, %d unchanged)", s.profile.Namespace, s.profile.DeploymentName(), changed, len(applied)-changed))

	// 5. forward
	st = step("forward", "")
	var stop func()
	httpPort, httpsPort := cfg.Forward.HTTPPort, cfg.Forward.HTTPSPort
	switch {
	case pf.ForwardRunning:
		st.Done(fmt.Sprintf("already running in the background (pid %d)", fwd.PID))
	case o.detach:
		pid, err := a.startDetachedForward(ctx, s)
		if err != nil {
			return st.Fail(err)
		}
		st.Done(fmt.Sprintf("running in the background (pid %d, log %s)", pid, s.files.ForwardLog()))
	default:
		var err error
		stop, err = s.startForward(ctx, httpPort, httpsPort)
		if err != nil {
			return st.Fail(err)
		}
		defer stop()
		st.Done(fmt.Sprintf("127.0.0.1:%d → %s:80, 127.0.0.1:%d → :443", httpPort, s.profile.LiveService(), httpsPort))
	}

	// 6. smoke
	st = step("smoke", "")
	results, err := s.smoke(ctx, tok, httpPort, httpsPort)
	if err != nil {
		return st.Fail(err)
	}
	a.printSmoke(cfg, results)
	if n := smoke.Failed(results); n > 0 {
		return st.Fail(&smokeError{failed: n, total: len(results)})
	}
	st.Done(fmt.Sprintf("%d call(s) passed", len(results)))

	exp := tok.ExpiryAt(time.Now())
	if cfg.Output == "json" {
		a.printJSON(map[string]any{"ready": true, "http": fmt.Sprintf("http://127.0.0.1:%d", httpPort), "https": fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
			"kubeconfig": s.mgr.Kubeconfig, "tokenExpiry": exp, "detached": o.detach || pf.ForwardRunning})
	} else {
		fmt.Fprintf(a.streams.Out, "\nThe gateway answers on:\n  http://127.0.0.1:%d\n  https://127.0.0.1:%d  (self-signed certificate)\ntoken: %s\nkubectl: KUBECONFIG=%s kubectl -n %s get pods\n",
			httpPort, httpsPort, exp.Describe(), s.mgr.Kubeconfig, s.profile.Namespace)
	}
	if stop == nil {
		return nil
	}
	lock.Release() // smoke and status may run while we forward
	fmt.Fprintf(a.streams.Err, "Forwarding until Ctrl-C (or run `apimdev up --detach` to keep it in the background).\n")
	<-ctx.Done()
	fmt.Fprintf(a.streams.Err, "\nstopped forwarding; the cluster and the gateway are still running (`apimdev down` removes them).\n")
	return nil
}

type smokeError struct{ failed, total int }

func (e *smokeError) Error() string {
	return fmt.Sprintf("%d of %d smoke call(s) failed (see the table above)", e.failed, e.total)
}
func (e *smokeError) Hint() string {
	return "each failed row says why; `apimdev status` and `kubectl logs` show the gateway's side"
}

func redactor(t token.Token) func(string) string {
	secret := strings.TrimPrefix(t.SecretValue(), token.Prefix)
	return func(s string) string {
		if secret == "" {
			return s
		}
		return strings.ReplaceAll(s, secret, "<redacted>")
	}
}

// startForward binds the local ports and serves the forward until stop.
func (s *session) startForward(ctx context.Context, httpPort, httpsPort int) (func(), error) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	backends, err := forward.WatchService(fctx, s.cs, s.profile.Namespace, s.profile.LiveService())
	if err != nil {
		cancel()
		return nil, err
	}
	f := &forward.Forwarder{
		Host: "127.0.0.1",
		Mappings: []forward.Mapping{
			{LocalPort: httpPort, ServicePort: gateway.ServiceHTTP, Flag: "--http-port"},
			{LocalPort: httpsPort, ServicePort: gateway.ServiceHTTPS, Flag: "--https-port"},
		},
		Backends: backends,
		Dialer:   &forward.SPDYDialer{Config: s.rc, Client: s.cs, Namespace: s.profile.Namespace},
		Log:      func(f string, a ...any) { s.rep.Info("forward", fmt.Sprintf(f, a...)) },
	}
	backends.OnChange = f.Prune
	ls, err := f.Listen()
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = f.Serve(fctx, ls); close(done) }()
	return func() { cancel(); <-done }, nil
}

func (s *session) smoke(ctx context.Context, tok token.Token, httpPort, httpsPort int) ([]smoke.Result, error) {
	spec, err := smoke.Load(s.cfg.Smoke.File)
	if err != nil {
		return nil, err
	}
	r := &smoke.Runner{
		HTTPBase:     fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		HTTPSBase:    fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
		ProbePath:    s.profile.ProbePath,
		TokenExpired: tok.ExpiryAt(time.Now()).State == token.ExpiryPast,
	}
	return r.Run(ctx, append(r.HealthCalls(), spec.Calls...)), ctx.Err()
}

func (a *app) printSmoke(cfg config.Config, rs []smoke.Result) {
	if cfg.Output == "json" {
		a.printJSON(map[string]any{"smoke": rs, "passed": len(rs) - smoke.Failed(rs), "failed": smoke.Failed(rs)})
		return
	}
	smoke.Table(a.streams.Out, rs)
}

func (a *app) printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(a.streams.Out, string(b))
}

// startDetachedForward starts `apimdev forward` as a background process of its
// own session, waits until it holds both ports, and records it.
func (a *app) startDetachedForward(ctx context.Context, s *session) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(s.files.ForwardLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	c := s.cfg
	args := []string{"forward", "--cluster-name", c.Cluster.Name, "--kubeconfig", s.mgr.Kubeconfig, "--name", c.Gateway.Name,
		"--namespace", c.Gateway.Namespace, "--http-port", strconv.Itoa(c.Forward.HTTPPort), "--https-port", strconv.Itoa(c.Forward.HTTPSPort),
		"--endpoint", c.Gateway.Endpoint}
	if a.configFile != "" {
		args = append(args, "--config", a.configFile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logf, logf, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "APIMDEV_TOKEN=") // the forward needs no token
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the background forward: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for {
		if portAnswers(c.Forward.HTTPPort) && portAnswers(c.Forward.HTTPSPort) {
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(s.files.ForwardLog())
			return 0, fmt.Errorf("the background forward exited (%v): %s", err, lastLines(string(log), 5))
		case <-deadline:
			_ = cmd.Process.Kill()
			return 0, errors.New("the background forward did not open its ports within 20s")
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Release()
	return pid, s.files.SaveForward(state.ForwardRecord{PID: pid, HTTPPort: c.Forward.HTTPPort, HTTPSPort: c.Forward.HTTPSPort, Started: time.Now()})
}

func portAnswers(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}
