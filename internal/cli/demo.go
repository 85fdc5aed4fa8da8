package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/docker/errdefs"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// workshop is what `up --kit` and `up --demo` add to a plain up. A nil
// *workshop is a plain up: every method is safe on it.
type workshop struct {
	kitPath  string
	manifest *kit.Manifest
	demo     bool
	setup    *demo.Setup
	key      string // the demo's subscription key, printed at the end
	kitNote  string // where the settings came from, said once
}

// prepareWorkshop runs before the configuration is loaded: it reads the
// kit's manifest (and its apimdev.yaml when the user has none) and points a
// demo at its own configuration service and the stand-in image.
func (a *app) prepareWorkshop(cmd *cobra.Command, o upOptions) (*workshop, error) {
	if o.kit == "" && !o.demo {
		return nil, nil
	}
	ws := &workshop{kitPath: o.kit, demo: o.demo}
	fl := cmd.Flags()
	if o.kit != "" {
		m, err := kit.ReadManifest(o.kit)
		if err != nil {
			return nil, err
		}
		ws.manifest = &m
		if err := a.useKitConfig(ws); err != nil {
			return nil, err
		}
	}
	if !o.demo {
		if _, ok := ws.kitImage(kit.RoleGateway); ws.manifest != nil && !ok && !fl.Changed("image") {
			return nil, &usageError{fmt.Sprintf("kit %s holds only the demo's stand-in gateway image: add --demo (or make a kit with --image <gateway>:<version>)", o.kit)}
		}
		return ws, nil
	}
	if fl.Changed("endpoint") {
		return nil, &usageError{"--demo runs its own stand-in configuration service: leave out --endpoint"}
	}
	if fl.Changed("token-file") {
		return nil, &usageError{"--demo mints its own token for the stand-in: leave out --token-file (lab 5 rotates it with `apimdev demo token`)"}
	}
	img, _ := fl.GetString("image")
	switch {
	case fl.Changed("image") && !demo.IsStandinImage(img):
		return nil, &usageError{fmt.Sprintf("--demo runs the stand-in gateway, not %s: leave out --image (or name a stand-in image such as %s)", img, demo.DefaultImage)}
	case fl.Changed("image"):
	case demo.IsStandinImage(a.getenv("APIMDEV_IMAGE")):
		img = a.getenv("APIMDEV_IMAGE")
	default:
		img = demo.DefaultImage
		if ki, ok := ws.kitImage(kit.RoleDemo); ok {
			img = ki.Ref
		}
	}
	for name, v := range map[string]string{"endpoint": demo.Endpoint, "image": img} {
		if err := fl.Set(name, v); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// useKitConfig makes the kit's apimdev.yaml the configuration file when the
// user names none and has no ./apimdev.yaml: an instructor's settings travel
// with the images. It is copied to apimdev's state directory so the
// background forward can read it later.
func (a *app) useKitConfig(ws *workshop) error {
	if a.configFile != "" || ws.manifest.Config == nil {
		return nil
	}
	if _, err := os.Stat(config.DefaultFile); err == nil {
		return nil
	}
	b, err := kit.ReadConfig(ws.kitPath, *ws.manifest)
	if err != nil {
		return err
	}
	dir, err := state.Dir(a.getenv)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "kit", config.DefaultFile)
	if err := state.WriteFile(p, b); err != nil {
		return fmt.Errorf("keeping the kit's %s: %w", config.DefaultFile, err)
	}
	a.configFile = p
	ws.kitNote = "settings from the kit's " + config.DefaultFile + " (your flags and APIMDEV_* variables still win)"
	return nil
}

func (ws *workshop) kitImage(role string) (kit.Image, bool) {
	if ws == nil || ws.manifest == nil {
		return kit.Image{}, false
	}
	return ws.manifest.Image(role)
}

// configure fills in what the kit brings where the user set nothing, after
// the configuration is loaded.
func (ws *workshop) configure(cmd *cobra.Command, cfg *config.Config) {
	if ws == nil {
		return
	}
	if ki, ok := ws.kitImage(kit.RoleNode); ok && cfg.Cluster.NodeImage == "" {
		cfg.Cluster.NodeImage = ki.Ref
	}
	if ki, ok := ws.kitImage(kit.RoleGateway); ok && !ws.demo && !cmd.Flags().Changed("image") && cfg.Gateway.Image == config.DefaultImage {
		cfg.Gateway.Image = ki.Ref
	}
	if ki, ok := ws.kitImage(kit.RoleStatsd); ok && cfg.Prod.StatsdImage == config.DefaultStatsdImage {
		cfg.Prod.StatsdImage = ki.Ref
	}
	if ws.demo {
		// The demo's token is minted, never read from a file: remember none.
		cfg.Gateway.TokenFile = ""
	}
}

// token returns the demo's gateway token and prepares its deploy step:
// a cluster that already runs this demo keeps its keys and (while it is
// good) its token, so a re-run changes nothing.
func (ws *workshop) token(ctx context.Context, s *pipeline.Session, cfg config.Config) (token.Token, error) {
	existing, keys := "", demo.Keys{}
	if c, err := kindClient(ctx, s); err == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := demo.Read(rctx, c)
		if err == nil && st.Found {
			keys = st.Keys
			if sec, err := c.CoreV1().Secrets(s.Profile.Namespace).Get(rctx, s.Profile.SecretName(), metav1.GetOptions{}); err == nil {
				existing = string(sec.Data["value"])
			}
		}
		cancel()
	}
	if keys.Signing == "" {
		var err error
		if keys, err = demo.NewKeys(nil); err != nil {
			return token.Token{}, err
		}
	}
	tok, _, err := keys.Token(cfg.Gateway.Name, existing, time.Now())
	if err != nil {
		return token.Token{}, err
	}
	ws.key = keys.Subscription
	ws.setup = &demo.Setup{Keys: keys, Image: cfg.Gateway.Image, GatewayID: cfg.Gateway.Name, TokenSHA256: demo.TokenSHA256(tok.SecretValue())}
	s.ExtraSmoke = demo.SmokeCalls(keys.Subscription)
	return tok, nil
}

// kindClient talks to the cluster, if it is apimdev's and runs, through the
// kubeconfig kind reports (fresh even when apimdev's file is stale), without
// touching the session's own client.
func kindClient(ctx context.Context, s *pipeline.Session) (kubernetes.Interface, error) {
	if st, _ := s.Cluster.Inspect(ctx); st != cluster.ClusterOurs {
		return nil, errors.New("no running apimdev cluster")
	}
	raw, err := s.Cluster.Kind.KubeConfig(s.Config.Cluster.Name, false)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return nil, err
	}
	rc.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(rc)
}

// checkDemoImage stops a demo before anything is created when the stand-in
// image is nowhere to be found: nothing is ever pulled for the demo.
func (ws *workshop) checkDemoImage(ctx context.Context, s *pipeline.Session, image string) error {
	if ws == nil || !ws.demo {
		return nil
	}
	if ki, ok := ws.kitImage(kit.RoleDemo); ok && ki.Ref == image {
		return nil // the kit step loads it
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.Docker.ImageInspect(ictx, image); errdefs.IsNotFound(err) {
		return &demo.ImageError{Image: image, Reason: "not on this machine", Message: "the demo never pulls it"}
	}
	return nil // Docker down: preflight says so, with its fix
}

// labelled makes every event of a demo say what the gateway is: a JSON
// line gets a "standin" field; text gets a first line of its own.
func (ws *workshop) labelled(a *app, s *pipeline.Session, cfg config.Config) {
	if ws == nil {
		return
	}
	if ws.demo {
		if cfg.Output == "json" {
			s.Rep = events.NewReporter(&labelledJSON{w: a.streams.Out}, nil)
		}
		s.Rep.Info("demo", "the gateway is apimdev's stand-in ("+demo.Label+"): it serves an echo API with a key made on this machine; no Azure is involved")
	}
	if ws.kitNote != "" {
		s.Rep.Info("kit", ws.kitNote)
	}
}

// labelledJSON is the JSON face with a "standin" field on every line.
type labelledJSON struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *labelledJSON) Emit(e events.Event) {
	b, err := json.Marshal(e)
	if err != nil || len(b) < 2 {
		return
	}
	label, _ := json.Marshal(demo.Label)
	b = append(append(append(b[:len(b)-1], `,"standin":`...), label...), "}\n"...)
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(b)
}

// upOptions adds the kit and demo steps to the pipeline's options.
func (ws *workshop) upOptions(o *pipeline.UpOptions) error {
	if ws == nil {
		return nil
	}
	if ws.kitPath != "" {
		d, err := cluster.NewDocker()
		if err != nil {
			return fmt.Errorf("docker client: %w", err)
		}
		o.Kit = kitLoader{docker: d, path: ws.kitPath}
	}
	if ws.setup != nil {
		o.Demo = ws.setup
	}
	return nil
}

type kitLoader struct {
	docker kit.Docker
	path   string
}

func (k kitLoader) LoadKit(ctx context.Context, progress func(string, ...any)) (string, error) {
	res, err := kit.Load(ctx, k.docker, k.path, progress)
	if err != nil {
		return "", err
	}
	return res.String(), nil
}

// decorate adds the demo's facts to up's JSON summary.
func (ws *workshop) decorate(m map[string]any, httpPort int) {
	if ws == nil || !ws.demo {
		return
	}
	m["demo"], m["standin"] = true, demo.Label
	m["subscriptionKey"] = ws.key
	m["echo"] = fmt.Sprintf("http://127.0.0.1:%d/echo/hello", httpPort)
}

// summary prints the demo's lines under up's text summary.
func (ws *workshop) summary(w io.Writer, httpPort int) {
	if ws == nil || !ws.demo {
		return
	}
	fmt.Fprintf(w, "demo: this is apimdev's demo gateway (%s)\ndemo subscription key for the echo API: %s\n  curl -H \"%s: %s\" http://127.0.0.1:%d/echo/hello\n",
		demo.Label, ws.key, demo.SubscriptionHeader, ws.key, httpPort)
}

// isDemo says whether the configuration is the demo's: its endpoint is the
// demo's own configuration service. What up applied is saved, so this is how
// later commands know (the stand-in image alone is not the demo: the e2e
// suites run it against configuration services of their own).
func isDemo(cfg config.Config) bool {
	return cfg.Gateway.Endpoint == demo.Endpoint
}

// refuseDemoContext keeps the demo where it belongs: the stand-in is never
// promoted to a real cluster.
func (a *app) refuseDemoContext(cfg config.Config) error {
	saved, ok := a.savedConfig(cfg.Cluster.Name)
	if !isDemo(cfg) && (!ok || !isDemo(saved)) {
		return nil
	}
	return &demoRefusal{cluster: cfg.Cluster.Name}
}

type demoRefusal struct{ cluster string }

func (e *demoRefusal) Error() string {
	return fmt.Sprintf("cluster %q runs the demo (%s): promote --context never carries it to a real cluster", e.cluster, demo.Label)
}

// Hint says how to get a real gateway to promote.
func (e *demoRefusal) Hint() string {
	return "`apimdev promote --yes` (no --context) promotes the demo on the local cluster; for a real cluster, run `apimdev down` and `apimdev up` with your gateway's token first"
}

// demoSmoke adds the demo's echo calls to a smoke run against a demo,
// reading the subscription key from the cluster; it reports whether the
// gateway is the demo's.
func demoSmoke(ctx context.Context, s *pipeline.Session) bool {
	if !isDemo(s.Config) || s.Client == nil {
		return false
	}
	if st, err := demo.Read(ctx, s.Client); err == nil && st.Found {
		s.ExtraSmoke = demo.SmokeCalls(st.Keys.Subscription)
	}
	return true
}

func (a *app) demoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The demo gateway's keys: its echo API subscription key, and fresh tokens (stand-in, not Azure API Management)",
		Long: `'apimdev up --demo' runs apimdev's stand-in gateway (stand-in, not Azure API
Management) and its configuration service in the cluster, with keys made on
this machine. These commands read them back from the cluster.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "key",
		Short: "Print the demo's subscription key for the echo API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, err := a.demoState(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.streams.Out, st.Keys.Subscription)
			return nil
		},
	})
	var validFor time.Duration
	var out string
	tok := &cobra.Command{
		Use:   "token",
		Short: "Mint a new demo gateway token (for lab 5, rotating the token)",
		Example: `  apimdev demo token --out new.token
  apimdev demo token --valid-for 48h --out new.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validFor < time.Minute {
				return &usageError{"--valid-for: at least 1m"}
			}
			st, cfg, err := a.demoState(cmd)
			if err != nil {
				return err
			}
			// The expiry field has minute precision: round up so the token
			// never lasts less than asked.
			expiry := time.Now().Add(validFor).Truncate(time.Minute).Add(time.Minute)
			t := demo.Mint(st.Keys.Signing, cfg.Gateway.Name, expiry)
			if out == "" {
				fmt.Fprintln(a.streams.Out, t)
				return nil
			}
			if err := os.WriteFile(out, []byte(t+"\n"), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Err, "wrote a demo token for gateway %s (%s), valid until %s, to %s\n", cfg.Gateway.Name, demo.Label, expiry.UTC().Format("2006-01-02 15:04 UTC"), out)
			return nil
		},
	}
	tok.Flags().DurationVar(&validFor, "valid-for", demo.TokenValidity, "how long the token is valid")
	tok.Flags().StringVar(&out, "out", "", "write the token to this file (0600) instead of stdout")
	cmd.AddCommand(tok)
	return cmd
}

func (a *app) demoState(cmd *cobra.Command) (demo.State, config.Config, error) {
	cfg, s, err := a.existingSession(cmd)
	if err != nil {
		return demo.State{}, cfg, err
	}
	if err := s.Connect(); err != nil {
		return demo.State{}, cfg, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
	defer cancel()
	st, err := demo.Read(ctx, s.Client)
	if err != nil {
		return st, cfg, err
	}
	if !st.Found {
		return st, cfg, &noDemoError{cluster: cfg.Cluster.Name}
	}
	return st, cfg, nil
}

type noDemoError struct{ cluster string }

func (e *noDemoError) Error() string { return fmt.Sprintf("cluster %q runs no demo", e.cluster) }
func (e *noDemoError) Hint() string  { return "start one with `apimdev up --demo --detach`" }

var _ pipeline.KitLoader = kitLoader{}
var _ pipeline.DemoDeployer = (*demo.Setup)(nil)
