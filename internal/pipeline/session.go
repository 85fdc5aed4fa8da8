// Package pipeline is apimdev's flow: the named steps of `up` (preflight,
// cluster, image, deploy, forward, smoke) and the session of clients they
// share. The CLI and the TUI both run it and only show its events; no flow
// logic lives in either face.
//
// It must not import cli or tui.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

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

// Session is what the steps of one command share: clients are made once.
type Session struct {
	Config  config.Config
	Files   state.Cluster
	Rep     *events.Reporter
	Docker  cluster.Docker
	Cluster *cluster.Manager
	Client  kubernetes.Interface
	REST    *rest.Config
	Profile gateway.Profile
	// Version is apimdev's version, written into the cluster's marker.
	Version string
	// ExtraSmoke are calls smoke makes after the spec's (the demo's echo calls).
	ExtraSmoke []smoke.Call

	current      *events.Step
	localCluster bool // the kind cluster apimdev made, not a --context
}

// NewSession prepares the clients for cfg; getenv finds the state directory.
func NewSession(cfg config.Config, rep *events.Reporter, getenv func(string) string, version string) (*Session, error) {
	dir, err := state.Dir(getenv)
	if err != nil {
		return nil, err
	}
	files, err := state.ForCluster(dir, cfg.Cluster.Name)
	if err != nil {
		return nil, err
	}
	s := &Session{Config: cfg, Files: files, Rep: rep, Profile: gateway.Dev(cfg), Version: version}
	kubeconfig := cfg.Cluster.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = files.Kubeconfig()
	}
	d, err := cluster.NewDocker()
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	s.Docker = d
	kind, _ := cluster.NewKind(s.progress)
	s.Cluster = &cluster.Manager{Kind: kind, Docker: d, Name: cfg.Cluster.Name, Kubeconfig: kubeconfig, NodeImage: cfg.Cluster.NodeImage, Version: version}
	return s, nil
}

func (s *Session) progress(format string, args ...any) {
	if s.current != nil {
		s.current.Progress(format, args...)
	}
}

// Connect builds the Kubernetes client from apimdev's kubeconfig file.
func (s *Session) Connect() error {
	if s.Client != nil {
		return nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", s.Cluster.Kubeconfig)
	if err != nil {
		return &NoClusterError{Name: s.Config.Cluster.Name, Err: err}
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s.Client, s.REST = cs, rc
	return nil
}

// NoClusterError says there is no cluster to talk to.
type NoClusterError struct {
	Name string
	Err  error
}

func (e *NoClusterError) Error() string {
	return fmt.Sprintf("no apimdev cluster %q to talk to (%v)", e.Name, e.Err)
}

// Hint says how to get one.
func (e *NoClusterError) Hint() string { return "run `apimdev up` first" }

// Exists describes what exists now, for an interrupted or failed run.
func (s *Session) Exists(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, _ := s.Cluster.Inspect(ctx)
	switch st {
	case cluster.ClusterAbsent:
		return "nothing was created"
	case cluster.ClusterOurs:
		what := fmt.Sprintf("cluster %q exists", s.Config.Cluster.Name)
		if s.Connect() == nil {
			if d, err := s.Client.AppsV1().Deployments(s.Profile.Namespace).Get(ctx, s.Profile.DeploymentName(), metav1.GetOptions{}); err == nil {
				what += fmt.Sprintf(", gateway %s/%s deployed (%d/%d ready)", s.Profile.Namespace, d.Name, d.Status.ReadyReplicas, gateway.Desired(d))
			} else {
				what += ", the gateway is not deployed"
			}
		}
		return what
	default:
		return fmt.Sprintf("cluster %q is %s", s.Config.Cluster.Name, st)
	}
}

// ClusterToken reads the token back from the cluster's Secret, for its expiry
// only: it is never printed.
func (s *Session) ClusterToken(ctx context.Context) (token.Token, error) {
	sec, err := s.Client.CoreV1().Secrets(s.Profile.Namespace).Get(ctx, s.Profile.SecretName(), metav1.GetOptions{})
	if err != nil {
		return token.Token{}, err
	}
	return token.Parse(string(sec.Data["value"]))
}

// Redactor scrubs the token's text from anything quoted from the cluster.
func Redactor(t token.Token) func(string) string {
	secret := strings.TrimPrefix(t.SecretValue(), token.Prefix)
	return func(s string) string {
		if secret == "" {
			return s
		}
		return strings.ReplaceAll(s, secret, "<redacted>")
	}
}

// StartForward binds the local ports and serves the forward until the
// returned stop is called.
func (s *Session) StartForward(ctx context.Context, httpPort, httpsPort int) (stop func(), stats *forward.Stats, err error) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	backends, err := forward.WatchService(fctx, s.Client, s.Profile.Namespace, s.Profile.LiveService())
	if err != nil {
		cancel()
		return nil, nil, err
	}
	f := &forward.Forwarder{
		Host: "127.0.0.1",
		Mappings: []forward.Mapping{
			{LocalPort: httpPort, ServicePort: gateway.ServiceHTTP, Flag: "--http-port"},
			{LocalPort: httpsPort, ServicePort: gateway.ServiceHTTPS, Flag: "--https-port"},
		},
		Backends: backends,
		Dialer:   &forward.SPDYDialer{Config: s.REST, Client: s.Client, Namespace: s.Profile.Namespace},
		Log:      func(f string, a ...any) { s.Rep.Info("forward", fmt.Sprintf(f, a...)) },
	}
	backends.OnChange = f.Prune
	ls, err := f.Listen()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = f.Serve(fctx, ls); close(done) }()
	return func() { cancel(); <-done }, &f.Stats, nil
}

// Smoke runs the health calls and the spec's calls through the given ports.
func (s *Session) Smoke(ctx context.Context, tok token.Token, httpPort, httpsPort int) ([]smoke.Result, error) {
	spec, err := smoke.Load(s.Config.Smoke.File)
	if err != nil {
		return nil, err
	}
	r := &smoke.Runner{
		HTTPBase:     fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		HTTPSBase:    fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
		ProbePath:    s.Profile.ProbePath,
		TokenExpired: tok.ExpiryAt(time.Now()).State == token.ExpiryPast,
	}
	return r.Run(ctx, append(append(r.HealthCalls(), spec.Calls...), s.ExtraSmoke...)), ctx.Err()
}

// StartDetachedForward starts `apimdev forward` (self) as a background process
// of its own session, waits until it holds both ports, and records it.
func (s *Session) StartDetachedForward(ctx context.Context, self, configFile string) (int, error) {
	logf, err := os.OpenFile(s.Files.ForwardLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	c := s.Config
	args := []string{"forward", "--cluster-name", c.Cluster.Name, "--kubeconfig", s.Cluster.Kubeconfig, "--name", c.Gateway.Name,
		"--namespace", c.Gateway.Namespace, "--http-port", strconv.Itoa(c.Forward.HTTPPort), "--https-port", strconv.Itoa(c.Forward.HTTPSPort),
		"--endpoint", c.Gateway.Endpoint}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logf, logf, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "APIMDEV_TOKEN=") // the forward needs no token
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the background forward: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for !portAnswers(c.Forward.HTTPPort) || !portAnswers(c.Forward.HTTPSPort) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(s.Files.ForwardLog())
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
	return pid, s.Files.SaveForward(state.ForwardRecord{PID: pid, HTTPPort: c.Forward.HTTPPort, HTTPSPort: c.Forward.HTTPSPort, Started: time.Now()})
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

// listenFree asks the OS for two free loopback ports.
func listenFree() ([2]int, error) {
	var ps [2]int
	for i := range ps {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ps, err
		}
		defer l.Close()
		ps[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ps, nil
}
