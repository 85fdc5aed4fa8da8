// Package pipeline is apimdev's flow: the named steps of `up` (preflight,
// cluster, image, deploy, forward, smoke), promote and rotate under traffic,
// status, down, and the record of what was applied that every one of them
// converges to. The CLI and the TUI both run it and only show its events; no
// flow logic lives in either face.
//
// Layout, one idea a file: session (wiring, Open), steps (the loop that runs
// named steps), record (what the cluster records apimdev applied), plan (the
// target profile and the server's dry run of it), up, promote, rollout
// (changes under traffic, shared with rotate), checks (the production
// proofs), metrics, rotate, status, links (each pod's link to its
// configuration endpoint, read from its log), drill (the backup proven
// offline), down, forward, backends (`backend add`: the relay and the
// tunnel the forward holds), workshop (demo and kit), export (manifests and
// Helm values), labs, ci (what `apimdev ci` needs beyond up and smoke).
//
// It must not import cli or tui.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/imagepin"
	"github.com/apimdev/apimdev/internal/podlogs"
	"github.com/apimdev/apimdev/internal/settings"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// ClusterManager is the local kind cluster as the steps use it:
// *cluster.Manager is the real one, tests use a fake.
type ClusterManager interface {
	Inspect(ctx context.Context) (cluster.ClusterState, string)
	Ensure(ctx context.Context, st cluster.ClusterState, recreate bool, progress cluster.Progress) (bool, error)
	LoadImage(ctx context.Context, image string, progress cluster.Progress) (string, bool, error)
	Delete() error
	// KubeconfigPath is apimdev's own kubeconfig file for the cluster.
	KubeconfigPath() string
	// RefreshKubeconfig rewrites that file from kind, when it is missing or stale.
	RefreshKubeconfig() error
	// MergeKubeconfig adds the cluster's context to a user's kubeconfig
	// (target; "" is kubectl's default), switching to it only when asked,
	// and says what it did (--merge-kubeconfig).
	MergeKubeconfig(target string, switchContext bool) (string, error)
	// Exec runs a command in the cluster's first node.
	Exec(ctx context.Context, out io.Writer, name string, args ...string) error
	// NodeImage is what a new cluster is made from; UseNodeImage changes it.
	NodeImage() string
	UseNodeImage(ref string)
	// Workers counts the existing cluster's workers; UseShape sets the nodes
	// a new cluster is made of.
	Workers(ctx context.Context) (int, error)
	UseShape(cluster.Shape)
}

var _ ClusterManager = (*cluster.Manager)(nil)

// Timeouts bound the waits of the flows; zero fields take the defaults.
// Tests set them to milliseconds.
type Timeouts struct {
	Deploy  time.Duration // pods ready after up's apply (3 min)
	Rollout time.Duration // promote, rotate (5 min)
	// Settle is how long traffic runs before and after a change (2 s).
	Settle time.Duration
	// Poll is the longest time between two looks at a rollout (1 s).
	Poll time.Duration
	// ForwardStart bounds the background forward's start (20 s).
	ForwardStart time.Duration
	// Read bounds a read that a healthy cluster or engine answers at once:
	// the cluster's record, what exists after a failure, an image (5 s).
	Read time.Duration
	// DNS bounds the wait for cluster DNS before a new gateway's first
	// configuration fetch (1 min).
	DNS time.Duration
	// Metrics bounds the wait for the gateway's first OpenTelemetry export,
	// which it makes every minute (75 s).
	Metrics time.Duration
	// Backup bounds the wait for the backup claim to be bound, to make its
	// directory writable on the kind node (2 min).
	Backup time.Duration
	// Drain bounds a drain when the command gives no --timeout (5 min).
	Drain time.Duration
	// Tick is the time between two looks at something apimdev waits for
	// that changes by itself (a claim bound, pods moved) (500 ms).
	Tick time.Duration
}

func (t Timeouts) orDefault() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.Deploy, 3*time.Minute)
	def(&t.Rollout, 5*time.Minute)
	def(&t.Settle, 2*time.Second)
	def(&t.Poll, time.Second)
	def(&t.ForwardStart, 20*time.Second)
	def(&t.Read, 5*time.Second)
	def(&t.DNS, time.Minute)
	def(&t.Metrics, 75*time.Second)
	def(&t.Backup, 2*time.Minute)
	def(&t.Drain, 5*time.Minute)
	def(&t.Tick, 500*time.Millisecond)
	return t
}

// Session is what the steps of one command share: the configuration, the
// record of what is deployed, and the real dependencies as fields, wired by
// NewSession and replaced by tests.
type Session struct {
	Config config.Config
	// Names are the gateway's object names and what every profile of it
	// shares (namespace, probe path, authentication): the dev profile of
	// Config, never the profile applied (that is Recorded.Spec).
	Names gateway.Profile
	Files state.ClusterDir
	Rep   *events.Reporter
	// Version is apimdev's version, written into the cluster's records.
	Version string

	Cluster ClusterManager
	Docker  cluster.Docker // nil: no engine client (preflight says so)
	// Endpoint is where the container runtime's API is (Docker's, or
	// Podman's Docker-compatible one), how it was found and which it is.
	Endpoint cluster.Endpoint
	// RuntimeWhy says what chose the runtime (cluster.runtime, the
	// environment, what answers), for preflight's line.
	RuntimeWhy string
	Client     kubernetes.Interface
	REST       *rest.Config
	// Dial opens tunnels to the gateway's pods (nil: client-go's SPDY
	// port-forward through the API server).
	Dial forward.Dialer
	// ForwardVia is how forwards reach the gateway: "auto" (or ""), "tunnel"
	// or "node"; see directPath.
	ForwardVia string
	// Pin resolves floating image tags; its HTTP client is injected.
	Pin imagepin.Pinner
	Now func() time.Time
	// LookPath finds programs preflight needs (nil: exec.LookPath).
	LookPath func(string) (string, error)
	Timeouts Timeouts
	// Asks puts what the user asked for (file, APIMDEV_*, flags) on a base
	// configuration; nil means the base itself. settings.Resolve puts it on
	// what the cluster records.
	Asks settings.Asks

	// Recorded is what the cluster records apimdev applied (see Resolve);
	// nil when nothing is recorded.
	Recorded *Record
	// ExtraSmoke are calls smoke makes after the spec's (the demo's echo calls).
	ExtraSmoke []smoke.Call

	// known is what the session knows of the cluster, for settings.Resolve;
	// remembered is the base it resolved from (the state directory's copy).
	known      settings.Known
	remembered config.Config

	current      stepHolder
	localCluster bool // the kind cluster apimdev made, not a --context
	// openLog opens a pod's log; nil is the API server's. Tests give
	// canned logs (the client-go fake has one fixed text).
	openLog podlogs.Opener
	// relayRef is the relay's image this session loaded (backend add, up).
	relayRef string
	// topLinks are the links Top read last, and when.
	topLinks struct {
		links []PodLink
		at    time.Time
	}
	// topRes is what Top read last from the kubelets; summary reads a
	// node's stats summary, nil the API server's node proxy (tests give
	// canned ones).
	topRes  topResources
	summary summaryReader
}

// stepHolder is the step running now: written by the flow, read by progress
// callbacks on other goroutines (kind's logger, the traffic sampler).
type stepHolder struct {
	mu sync.Mutex
	st *events.Step
}

func (h *stepHolder) set(st *events.Step) {
	h.mu.Lock()
	h.st = st
	h.mu.Unlock()
}

func (h *stepHolder) get() *events.Step {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// SessionOptions are how NewSession wires a session.
type SessionOptions struct {
	Getenv  func(string) string
	Version string
	Rep     *events.Reporter
	// Asks puts the user's settings on a base (see Session.Asks).
	Asks settings.Asks
	// HTTP is the client for registry tag lists (nil: http.DefaultClient).
	HTTP *http.Client
}

// NewSession wires the real dependencies for cfg: apimdev's state directory,
// the Docker engine from the environment, kind, client-go.
// ctx bounds the runtime's probing (what answers) and nothing after it.
func NewSession(ctx context.Context, cfg config.Config, o SessionOptions) (*Session, error) {
	dir, err := state.Dir(o.Getenv)
	if err != nil {
		return nil, err
	}
	files, err := state.ForCluster(dir, cfg.Cluster.Name)
	if err != nil {
		return nil, err
	}
	rep := o.Rep
	if rep == nil {
		rep = events.Discard()
	}
	s := &Session{Files: files, Rep: rep, Version: o.Version, Asks: o.Asks, Now: time.Now, known: settings.Known{Cluster: cfg.Cluster.Name, Workers: -1}}
	s.setConfig(cfg)
	// apimdev's own kubeconfig: the one cluster.kubeconfig names when it is
	// apimdev's own, else its state directory's. A user's file is never the
	// session's (its current context may be another cluster altogether): up
	// merges into it when asked, and refuses it otherwise.
	kubeconfig, userKubeconfig := cfg.Cluster.Kubeconfig, ""
	if kubeconfig == "" || cfg.Cluster.MergeKubeconfig || cluster.CheckOwnKubeconfig(kubeconfig, cfg.Cluster.Name) != nil {
		kubeconfig, userKubeconfig = files.Kubeconfig(), cfg.Cluster.Kubeconfig
	}
	choice, err := chooseRuntime(ctx, cfg, files)
	if err != nil {
		return nil, err
	}
	ep := choice.Endpoint
	d, err := cluster.NewDockerAt(ep)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", ep.Runs().CLI(), err)
	}
	s.Docker, s.Endpoint, s.RuntimeWhy = d, ep, choice.Why
	kind := cluster.NewKindOn(ep)
	s.Cluster = &cluster.Manager{Kind: kind, Docker: d, Runtime: ep.Runs(), Name: cfg.Cluster.Name, Kubeconfig: kubeconfig, MergeRecord: filepath.Join(files.Dir, "kubeconfig-merge.json"), ImageRecord: filepath.Join(files.Dir, "node-images.json"), UserKubeconfig: userKubeconfig, NodeImageRef: cfg.Cluster.NodeImage, Version: o.Version,
		Shape: shapeOf(cfg), SharedDir: filepath.Join(dir, "shared", cfg.Cluster.Name), PatchesDir: filepath.Join(dir, "kubeadm-patches")}
	s.Pin = imagepin.Pinner{HTTP: o.HTTP, Local: dockerImages{d}}
	return s, nil
}

// shapeOf is the nodes cfg asks a new cluster to be made of.
func shapeOf(cfg config.Config) cluster.Shape {
	return cluster.Shape{Workers: cfg.Cluster.Workers, Zones: cfg.Cluster.ZoneList(), Region: cfg.Cluster.RegionName()}
}

// setConfig makes cfg the session's configuration and its dev profile the
// names of the gateway's objects.
func (s *Session) setConfig(cfg config.Config) {
	s.Config = cfg
	s.Names = gateway.Dev(cfg)
}

// Open is NewSession and, with lock, the cluster's lock: how the CLI and the
// wizard start every command. Its settings are settings.Resolve of what the
// state directory remembers of the cluster (a copy of its record) and the
// user's asks; a command that reads the cluster resolves again (Resolve).
func Open(ctx context.Context, o SessionOptions, clusterName string, lock bool, lockWait time.Duration) (*Session, *state.Lock, error) {
	known := rememberedKnown(namedClusterFiles(o.Getenv, clusterName), clusterName)
	st, err := settings.Resolve(known, o.Asks)
	if err != nil {
		return nil, nil, err
	}
	s, err := NewSession(ctx, st.Config, o)
	if err != nil {
		return nil, nil, err
	}
	s.known = known
	s.use(st)
	if !lock {
		return s, nil, nil
	}
	l, err := s.Files.Acquire(s.Config.Cluster.Name, lockWait)
	if err != nil {
		return nil, nil, err
	}
	return s, l, nil
}

// dockerImages tells imagepin what the local engine knows of an image.
type dockerImages struct{ d cluster.Docker }

func (di dockerImages) Refs(ctx context.Context, image string) ([]string, []string, bool, error) {
	info, err := di.d.ImageInspect(ctx, image)
	if errdefs.IsNotFound(err) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return info.RepoTags, info.RepoDigests, true, nil
}

func (s *Session) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// progress reports to the step running now, from any goroutine.
func (s *Session) progress(format string, args ...any) {
	if st := s.current.get(); st != nil {
		st.Progress(format, args...)
	}
}

// Kubeconfig is apimdev's kubeconfig file for the local cluster.
func (s *Session) Kubeconfig() string {
	if s.Cluster == nil {
		return s.Config.Cluster.Kubeconfig
	}
	return s.Cluster.KubeconfigPath()
}

// Connect builds the Kubernetes client from apimdev's kubeconfig file,
// rewriting the file from kind first when it is missing.
func (s *Session) Connect() error {
	if s.Client != nil {
		return nil
	}
	s.localCluster = true
	path := s.Kubeconfig()
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil && s.Cluster != nil && s.Config.Cluster.Kubeconfig == "" {
		if rerr := s.Cluster.RefreshKubeconfig(); rerr == nil {
			rc, err = clientcmd.BuildConfigFromFlags("", path)
		}
	}
	if err != nil {
		return &NoClusterError{Name: s.Config.Cluster.Name, Err: err}
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s.Client, s.REST = cs, rc
	if m, ok := s.Cluster.(*cluster.Manager); ok {
		m.UseClient(cs)
	}
	return nil
}

// ConnectContext points the session at a context of the user's kubeconfig
// (read, never written).
func (s *Session) ConnectContext(name string) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig context %q: %w", name, err)
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s.Client, s.REST, s.localCluster = cs, rc, false
	return nil
}

// connectTo is Connect for the local cluster ("" context), else ConnectContext.
func (s *Session) connectTo(kctx string) error {
	if kctx == "" {
		return s.Connect()
	}
	return s.ConnectContext(kctx)
}

// dialer opens tunnels to the gateway's pods.
func (s *Session) dialer(namespace string) forward.Dialer {
	if s.Dial != nil {
		return s.Dial
	}
	return &forward.SPDYDialer{Config: s.REST, Client: s.Client, Namespace: namespace}
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeouts.orDefault().Read)
	defer cancel()
	st, _ := s.Cluster.Inspect(ctx)
	switch st {
	case cluster.ClusterAbsent:
		return "nothing was created"
	case cluster.ClusterOurs:
		what := fmt.Sprintf("cluster %q exists", s.Config.Cluster.Name)
		if s.Connect() == nil {
			if d, err := s.Client.AppsV1().Deployments(s.Names.Namespace).Get(ctx, s.Names.DeploymentName(), metav1.GetOptions{}); err == nil {
				what += fmt.Sprintf(", gateway %s/%s deployed (%d/%d ready)", s.Names.Namespace, d.Name, d.Status.ReadyReplicas, gateway.Desired(d))
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
// and for re-applying it: it is never printed.
//
// With Entra ID app authentication it is the app's client secret; with
// workload identity there is none (a zero Token and no error).
func (s *Session) ClusterToken(ctx context.Context) (token.Token, error) {
	key := s.Names.SecretKey()
	if key == "" {
		return token.Token{}, nil
	}
	if s.Client == nil {
		// Not connected yet (a command that never reached the cluster).
		if err := s.Connect(); err != nil {
			return token.Token{}, err
		}
	}
	sec, err := s.Client.CoreV1().Secrets(s.Names.Namespace).Get(ctx, s.Names.SecretName(), metav1.GetOptions{})
	if err != nil {
		return token.Token{}, err
	}
	if key == gateway.AppSecretKey {
		if _, ok := sec.Data[key]; !ok {
			return token.Token{}, apierrors.NewNotFound(corev1.Resource("secrets"), s.Names.SecretName()+" key "+key)
		}
		return token.AppSecret(string(sec.Data[key]))
	}
	return token.Parse(string(sec.Data[key]))
}

// noCredential is up's and promote's first-run words when the credential the
// authentication mode needs is nowhere.
func (s *Session) noCredential() error {
	if s.Names.Auth.Mode() == config.AuthEntraApp {
		return errors.New("no client secret: use --client-secret-file FILE or APIMDEV_CLIENT_SECRET (the Entra app's secret is kept only in the cluster's Secret, and this gateway's Secret has none yet)")
	}
	return errNoToken
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

// errNoToken is up's first-run words when there is no token anywhere.
var errNoToken = errors.New("no token: use --token-file FILE, APIMDEV_TOKEN, or try `apimdev up --demo` (no Azure needed)")
