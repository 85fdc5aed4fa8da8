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
	"time"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// StartForward binds the local ports and serves the forward until the
// returned stop is called (which waits for it to end).
func (s *Session) StartForward(ctx context.Context, httpPort, httpsPort int) (stop func(), stats *forward.Stats, err error) {
	return s.startForward(ctx, httpPort, httpsPort, 0)
}

// StartLongForward is StartForward for the forward that stays (`up` in the
// foreground, the background forward): it also pauses the cluster after
// cluster.autoPause with no connection, and wakes it for the next one.
func (s *Session) StartLongForward(ctx context.Context, httpPort, httpsPort int) (stop func(), stats *forward.Stats, err error) {
	return s.startForward(ctx, httpPort, httpsPort, s.Config.Cluster.AutoPauseAfter())
}

func (s *Session) startForward(ctx context.Context, httpPort, httpsPort int, idle time.Duration) (stop func(), stats *forward.Stats, err error) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	backends, err := forward.WatchService(fctx, s.Client, s.Names.Namespace, s.Names.LiveService())
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
		Dialer:   s.dialer(s.Names.Namespace),
		Log:      func(f string, a ...any) { s.Rep.Info("forward", fmt.Sprintf(f, a...)) },
	}
	backends.SetOnChange(f.Prune)
	ls, err := f.Listen()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if f.Direct, err = s.directPath(fctx); err != nil {
		cancel()
		for _, l := range ls {
			l.Close()
		}
		return nil, nil, err
	}
	f.Sleep = s.forwardSleep(f, idle)
	done, held := make(chan struct{}), make(chan struct{})
	go func() { _ = f.Serve(fctx, ls); close(done) }()
	// The backends on this machine (`apimdev backend add`): the forward
	// holds their tunnel too.
	go func() {
		if err := s.holdBackends(fctx); err != nil {
			s.Rep.Info("forward", "backends: "+err.Error())
		}
		close(held)
	}()
	return func() { cancel(); <-done; <-held }, &f.Stats, nil
}

// Ports are the local ports a command reaches the gateway on, and how to let
// them go when it is done.
type Ports struct {
	HTTP, HTTPS int
	Background  bool // apimdev's background forward holds them
	Stop        func()
}

// String says which forward it is, for a progress line.
func (p Ports) String() string {
	if p.Background {
		return fmt.Sprintf("the background forward on 127.0.0.1:%d", p.HTTP)
	}
	return fmt.Sprintf("a forward on 127.0.0.1:%d", p.HTTP)
}

// UseForward is the forward a command goes through: apimdev's background
// forward when it runs (and the session is on the local cluster, not a
// --context), else one of this process's own on free local ports (stopped
// by Ports.Stop).
func (s *Session) UseForward(ctx context.Context) (Ports, error) {
	if err := s.Connect(); err != nil {
		return Ports{}, err
	}
	if rec, ok := s.Files.Forward(); ok && s.localCluster {
		return Ports{HTTP: rec.HTTPPort, HTTPS: rec.HTTPSPort, Background: true, Stop: func() {}}, nil
	}
	free, err := listenFree()
	if err != nil {
		return Ports{}, err
	}
	stop, _, err := s.StartForward(ctx, free[0], free[1])
	if err != nil {
		return Ports{}, err
	}
	return Ports{HTTP: free[0], HTTPS: free[1], Stop: stop}, nil
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
		ProbePath:    s.Names.ProbePath,
		Expand:       expander(tok),
		TokenExpired: tok.ExpiryAt(s.now()).State == token.ExpiryPast,
	}
	return r.Run(ctx, append(append(r.HealthCalls(), spec.Calls...), s.ExtraSmoke...)), ctx.Err()
}

// expander fills ${VAR} in what goes through the gateway, never with one of
// apimdev's credentials: the variables that carry them, or the value of
// tok (when known).
func expander(tok token.Token) smoke.Expander {
	e := smoke.Expander{Protected: config.SecretVars}
	if !tok.IsZero() {
		e.Secrets = []string{tok.SecretValue()}
	}
	return e
}

// CheckSmokeSpec reads the smoke spec and refuses one that would send a
// credential, before anything is created.
func (s *Session) CheckSmokeSpec(tok token.Token) error {
	spec, err := smoke.Load(s.Config.Smoke.File)
	if err != nil {
		return err
	}
	return expander(tok).Check(spec.Calls)
}

// SmokeNow is `apimdev smoke`: the calls through the forward UseForward
// picks, with the demo's echo calls when the gateway is the demo.
func (s *Session) SmokeNow(ctx context.Context) ([]smoke.Result, error) {
	ports, err := s.UseForward(ctx)
	if err != nil {
		return nil, err
	}
	defer ports.Stop()
	tok, _ := s.ClusterToken(ctx)
	s.addDemoSmoke(ctx)
	return s.Smoke(ctx, tok, ports.HTTP, ports.HTTPS)
}

// StartDetachedForward starts `apimdev forward` (self) as a background process
// of its own session, waits until it holds both ports, and records it with
// its pid and start time (state.Identity), which is what lets a later
// command stop it and never another process that has its pid by then.
func (s *Session) StartDetachedForward(ctx context.Context, self, configFile string) (int, error) {
	logf, err := os.OpenFile(s.Files.ForwardLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	c := s.Config
	args := []string{"forward", "--cluster-name", c.Cluster.Name, "--kubeconfig", s.Kubeconfig(), "--name", c.Gateway.Name,
		"--namespace", c.Gateway.Namespace, "--http-port", strconv.Itoa(c.Forward.HTTPPort), "--https-port", strconv.Itoa(c.Forward.HTTPSPort),
		"--endpoint", c.Gateway.Endpoint}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	if s.ForwardVia != "" {
		args = append(args, "--via", s.ForwardVia)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logf, logf, nil
	cmd.SysProcAttr = detached()
	cmd.Env = append(os.Environ(), "APIMDEV_TOKEN=") // the forward needs no token
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the background forward: %w", err)
	}
	pid := cmd.Process.Pid
	// The parent reads the child's start time, before anything waits for
	// it: until then its pid cannot name another process. The record then
	// proves, to every later command, which process is the forward.
	id, idErr := state.ProcessIdentity(pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if idErr != nil {
		return 0, unproven(cmd, exited, idErr, s.Files.ForwardLog())
	}
	deadline := time.After(s.Timeouts.orDefault().ForwardStart)
	for !portAnswers(c.Forward.HTTPPort) || !portAnswers(c.Forward.HTTPSPort) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(s.Files.ForwardLog())
			return 0, fmt.Errorf("the background forward exited (%v): %s", err, lastLines(string(log), 5))
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			return 0, errors.New("the background forward did not open its ports in time")
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return pid, s.Files.SaveForward(state.ForwardRecord{PID: pid, Process: id, HTTPPort: c.Forward.HTTPPort, HTTPSPort: c.Forward.HTTPSPort, Started: time.Now()})
}

// unproven ends a background forward whose start time could not be read
// (it exited at once, most likely: then its log says why), so that no
// record is left that would not prove which process it is.
func unproven(cmd *exec.Cmd, exited <-chan error, idErr error, logFile string) error {
	select {
	case err := <-exited:
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("the background forward exited (%v): %s", err, lastLines(string(log), 5))
	case <-time.After(200 * time.Millisecond):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("reading the background forward's start time: %w (apimdev stopped it: a record that cannot prove which process is the forward would let a later command signal another process)", idErr)
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
