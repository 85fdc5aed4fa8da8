package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
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
