package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/state"
)

// prepareWorkshop reads `up --kit` and `up --demo` before the configuration
// is loaded: the kit, verified whole (signature first, before any of its
// content is used, and before anything touches the engine), its
// apimdev.yaml when the user has none, the demo's own endpoint and
// stand-in image as flags, and what the kit brings as the last layer of
// every configuration (a.adjust). nil is a plain up; the caller closes
// the workshop (its open kit).
func (a *app) prepareWorkshop(cmd *cobra.Command, o upOptions) (ws *pipeline.Workshop, err error) {
	if o.kit == "" && (cmd.Flags().Changed("trust") || cmd.Flags().Changed("allow-unsigned")) {
		return nil, &usageError{"--trust and --allow-unsigned say which kits may load: add --kit FILE, or leave them out"}
	}
	if o.kit == "" && !o.demo {
		return nil, nil
	}
	ws = &pipeline.Workshop{KitPath: o.kit, Demo: o.demo}
	defer func() {
		if err != nil {
			ws.Close()
		}
	}()
	fl := cmd.Flags()
	if o.kit != "" {
		if err := a.openKit(cmd, ws); err != nil {
			return nil, err
		}
		if err := a.useKitConfig(ws); err != nil {
			return nil, err
		}
	}
	a.adjust = func(c *config.Config) { ws.Configure(c, fl.Changed("image")) }
	if !o.demo {
		if _, ok := ws.KitImage(kit.RoleGateway); ws.Manifest != nil && !ok && !fl.Changed("image") {
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
	asked := a.getenv("APIMDEV_IMAGE")
	if fl.Changed("image") {
		if asked, _ = fl.GetString("image"); !demo.IsStandinImage(asked) {
			return nil, &usageError{fmt.Sprintf("--demo runs the stand-in gateway, not %s: leave out --image (or name a stand-in image such as %s)", asked, demo.DefaultImage)}
		}
	}
	for name, v := range map[string]string{"endpoint": demo.Endpoint, "image": ws.DemoImage(asked)} {
		if err := fl.Set(name, v); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// openKit opens and verifies `up --kit`'s kit with --trust, APIMDEV_KIT_TRUST
// and --allow-unsigned, reporting it as a step of its own: the up steps
// that follow load the same open file.
func (a *app) openKit(cmd *cobra.Command, ws *pipeline.Workshop) error {
	trust, err := a.kitTrust(cmd)
	if err != nil {
		return err
	}
	first, err := a.overlay(cmd, config.Default())
	if err != nil {
		return err
	}
	rep := a.reporter(first)
	st := rep.Start("kit", "verifying "+ws.KitPath)
	k, err := kit.Open(cmd.Context(), ws.KitPath, trust, st.Progress)
	if err != nil {
		st.Fail(err)
		return &shownError{err: err, code: ExitFailure}
	}
	a.warnUnsigned(rep, k)
	m := k.Manifest()
	st.Done(fmt.Sprintf("%s; %d image(s), the configuration and the layout check out", kit.SignedBy(k.Signer()), len(m.Images)))
	ws.Kit, ws.Manifest = k, &m
	return nil
}

// useKitConfig makes the kit's apimdev.yaml (verified) the configuration
// file when the user names none and has no ./apimdev.yaml: an instructor's
// settings travel with the images. It is copied to apimdev's state
// directory so the background forward can read it later.
func (a *app) useKitConfig(ws *pipeline.Workshop) error {
	if a.configFile != "" || ws.Kit.Config() == nil {
		return nil
	}
	if _, err := os.Stat(config.DefaultFile); err == nil {
		return nil
	}
	b := ws.Kit.Config()
	dir, err := state.Dir(a.getenv)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "kit", config.DefaultFile)
	if err := state.WriteFile(p, b); err != nil {
		return fmt.Errorf("keeping the kit's %s: %w", config.DefaultFile, err)
	}
	a.configFile = p
	a.kitNote = "settings from the kit's " + config.DefaultFile + " (your flags and APIMDEV_* variables still win)"
	return nil
}

// labelled makes every event of a demo say what the gateway is: a JSON
// line gets a "standin" field; text gets a first line of its own.
func (a *app) labelled(ws *pipeline.Workshop, s *pipeline.Session, cfg config.Config) {
	if ws.IsDemo() {
		if cfg.Output == "json" {
			s.Rep = events.NewReporter(&labelledJSON{w: a.streams.Out}, nil)
		}
		s.Rep.Info("demo", "the gateway is apimdev's stand-in ("+demo.Label+"): it serves an echo API with a key made on this machine; no Azure is involved")
	}
	if a.kitNote != "" {
		s.Rep.Info("kit", a.kitNote)
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

// decorate adds the demo's facts to up's JSON summary.
func decorate(ws *pipeline.Workshop, m map[string]any, httpPort int) {
	if !ws.IsDemo() {
		return
	}
	m["demo"], m["standin"] = true, demo.Label
	m["subscriptionKey"] = ws.Key
	m["echo"] = fmt.Sprintf("http://127.0.0.1:%d/echo/hello", httpPort)
}

// demoSummary prints the demo's lines under up's text summary.
func demoSummary(ws *pipeline.Workshop, w io.Writer, httpPort int) {
	if !ws.IsDemo() {
		return
	}
	fmt.Fprintf(w, "demo: this is apimdev's demo gateway (%s)\ndemo subscription key for the echo API: %s\n  curl -H \"%s: %s\" http://127.0.0.1:%d/echo/hello\n",
		demo.Label, ws.Key, demo.SubscriptionHeader, ws.Key, httpPort)
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
	cmd.AddCommand(a.demoAPICommand())
	return cmd
}

func (a *app) demoState(cmd *cobra.Command) (demo.State, config.Config, error) {
	s, _, err := a.session(cmd, opening{existing: true})
	if err != nil {
		return demo.State{}, config.Config{}, err
	}
	st, err := s.DemoState(cmd.Context())
	return st, s.Config, err
}

// demoAPICommand is `demo api add|list|remove`: proxy APIs on the demo's
// stand-in configuration, forwarding to a backend URL.
func (a *app) demoAPICommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api",
		Short: "The demo's proxy APIs: add one that forwards to your backend's URL, list, remove (stand-in, not Azure API Management)",
		Long: `The demo's stand-in configuration service publishes the echo API and the
proxy APIs added here; the stand-in gateway forwards a proxy API's calls to
its backend URL with the path after the API's prefix appended, as an API with
a backend URL set in Azure does. On Azure, add the API in the portal and set
its backend URL instead.`,
		Args: cobra.NoArgs,
	}
	var path, backend string
	var noSub bool
	add := &cobra.Command{
		Use:   "add NAME --path /PATH --backend URL",
		Short: "Publish a proxy API on the demo gateway: calls to /PATH/... go to URL/... (stand-in, not Azure API Management)",
		Long: `add publishes a proxy API on the demo: calls to /PATH and below, through the
gateway, go to the backend URL with the rest of the path and the query
appended. It stores the API in the demo's record, restarts the stand-in
configuration service with it and waits until that is ready; the gateway
picks the new configuration up at its next poll (every 10 s). The API
needs the demo's subscription key (apimdev demo key) unless
--no-subscription; every later up --demo keeps it.`,
		Example: `  apimdev demo api add mine --path /mine --backend http://mine:8080
  apimdev demo api add open --path /v1/open --backend http://open.apimdev-demo.svc.cluster.local:9000 --no-subscription`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" || backend == "" {
				return &usageError{"demo api add needs --path /PATH and --backend URL, e.g. apimdev demo api add mine --path /mine --backend http://mine:8080"}
			}
			api := demo.API{Name: args[0], Path: path, BackendURL: backend, SubscriptionRequired: !noSub}
			if err := demo.CheckAPI(api, nil); err != nil {
				return err // before touching the cluster
			}
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			st, err := demoAPIState(cmd, s)
			if err != nil {
				return err
			}
			if err := demo.AddAPI(cmd.Context(), s.Client, st, api, a.errLine); err != nil {
				return err
			}
			a.printDemoAPI(s, api)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&path, "path", "", "the API's path prefix on the gateway, e.g. /mine")
	f.StringVar(&backend, "backend", "", "the backend URL the gateway forwards to, e.g. http://mine:8080")
	f.BoolVar(&noSub, "no-subscription", false, "callers need no subscription key (by default they need the demo's, as a new API in Azure does)")
	cmd.AddCommand(add)

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "The demo's APIs: the echo API and the proxy APIs added, with their backends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := a.session(cmd, opening{connect: true})
			if err != nil {
				return err
			}
			st, err := demoAPIState(cmd, s)
			if err != nil {
				return err
			}
			if err := st.APIsErr; err != nil {
				return err
			}
			if s.Config.Output == "json" {
				apis := st.APIs
				if apis == nil {
					apis = []demo.API{}
				}
				return json.NewEncoder(a.streams.Out).Encode(map[string]any{"standin": demo.Label, "apis": apis})
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPATH\tBACKEND\tSUBSCRIPTION")
			fmt.Fprintf(tw, "echo\t%s\t(the stand-in's echo)\trequired\n", demo.EchoPath)
			for _, api := range st.APIs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", api.Name, api.Path, api.BackendURL, map[bool]string{true: "required", false: "none"}[api.SubscriptionRequired])
			}
			tw.Flush()
			fmt.Fprintf(a.streams.Err, "(%s)\n", demo.Label)
			return nil
		},
	})

	cmd.AddCommand(&cobra.Command{
		Use:   "remove NAME",
		Short: "Stop publishing a proxy API the demo had (the echo API stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			st, err := demoAPIState(cmd, s)
			if err != nil {
				return err
			}
			gone, err := demo.RemoveAPI(cmd.Context(), s.Client, st, args[0], a.errLine)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "removed API %s (%s → %s) from the demo (%s); the gateway drops it at its next poll (every %s)\n",
				gone.Name, gone.Path, gone.BackendURL, demo.Label, demo.GatewayPollInterval)
			return nil
		},
	})
	return cmd
}

// demoAPIState reads the demo from the cluster, or says that this cluster
// has no stand-in configuration to add APIs to.
func demoAPIState(cmd *cobra.Command, s *pipeline.Session) (demo.State, error) {
	st, err := demo.Read(cmd.Context(), s.Client)
	if err != nil {
		return st, err
	}
	if !st.Found || !s.IsDemo() {
		return st, &demo.NotDemoError{Cluster: s.Config.Cluster.Name}
	}
	return st, nil
}

// printDemoAPI says where to call a new API: through the forward's HTTP
// port, with the key header's placeholder when it needs one.
func (a *app) printDemoAPI(s *pipeline.Session, api demo.API) {
	port, note := s.Config.Forward.HTTPPort, ""
	if fwd := s.Files.CheckForward(); fwd.Running {
		port = fwd.HTTPPort
	} else {
		note = "no forward is running: start one with `apimdev forward` (or `apimdev up --demo --detach`)"
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s/", port, api.Path)
	if s.Config.Output == "json" {
		_ = json.NewEncoder(a.streams.Out).Encode(map[string]any{"standin": demo.Label, "api": api, "url": url,
			"pollInterval": demo.GatewayPollInterval.String(), "forwardRunning": note == ""})
		return
	}
	fmt.Fprintf(a.streams.Out, "added API %s: %s → %s (%s)\n", api.Name, api.Path, api.BackendURL, demo.Label)
	fmt.Fprintf(a.streams.Out, "the configuration service is ready; the gateway picks the API up at its next poll (every %s)\n", demo.GatewayPollInterval)
	fmt.Fprintf(a.streams.Out, "call it through the forward: %s\n", url)
	if api.SubscriptionRequired {
		fmt.Fprintf(a.streams.Out, "  curl -H \"%s: $(apimdev demo key)\" %s\n", demo.SubscriptionHeader, url)
	} else {
		fmt.Fprintf(a.streams.Out, "  curl %s\n", url)
	}
	if note != "" {
		fmt.Fprintln(a.streams.Err, note)
	}
}

// errLine writes one progress line to stderr.
func (a *app) errLine(format string, args ...any) { fmt.Fprintf(a.streams.Err, format+"\n", args...) }
