// Package cli is apimdev's command line: cobra commands that load the
// configuration, assemble the pipeline of steps and show its events. It is
// the only package that knows about flags, exit codes and output formats.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// Version is set at link time.
var Version = "dev"

// Streams are the process's standard streams.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// Terminal reports whether Err is a terminal (progress lines, glyphs).
	Terminal bool
}

// Exit codes.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// app holds one invocation's settings; nothing here is package-level state.
type app struct {
	streams Streams
	getenv  func(string) string

	configFile string
	cfg        config.Config
	loaded     bool
	flagFields map[string]string // flag name -> config field
}

// Run executes apimdev with args and returns the exit code. main is the only
// caller, and the only place that exits.
func Run(ctx context.Context, args []string, s Streams, getenv func(string) string) int {
	a := &app{streams: s, getenv: getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	return a.report(err)
}

// report prints err once, with its fix, and picks the exit code.
func (a *app) report(err error) int {
	var shown *shownError
	if errors.As(err, &shown) {
		return shown.code
	}
	var ue *usageError
	code := ExitFailure
	switch {
	case errors.As(err, &ue):
		code = ExitUsage
	case errors.Is(err, context.Canceled):
		code = ExitInterrupted
	}
	var ps config.Problems
	if errors.As(err, &ps) {
		code = ExitUsage
	}
	fmt.Fprintf(a.streams.Err, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	if h := events.HintOf(err); h != "" && !strings.Contains(err.Error(), h) {
		fmt.Fprintf(a.streams.Err, "fix: %s\n", h)
	}
	return code
}

// shownError is an error whose story the events already told.
type shownError struct {
	err  error
	code int
}

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "apimdev",
		Short: "A local Azure API Management self-hosted gateway on kind, in one command",
		Long: `apimdev gives you a working Azure API Management self-hosted gateway on your own
machine: it checks the machine, creates (or reuses) a single-node kind cluster,
deploys the gateway with your token as the Azure portal would, forwards the
gateway's ports 80 and 443 to 127.0.0.1, and proves it answers with smoke calls.

Run with no command in a terminal, it opens a wizard that does the same step
by step and can then promote the gateway to the production-like profile.

The token is read from --token-file (or - for stdin) or APIMDEV_TOKEN, never
from a flag value. Settings come from apimdev.yaml, then APIMDEV_* variables,
then flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		RunE:          a.runRoot,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	a.bindFlags(root.PersistentFlags())
	a.wizardFlags(root)
	root.AddCommand(a.upCommand(), a.smokeCommand(), a.statusCommand(), a.downCommand(),
		a.renderCommand(), a.preflightCommand(), a.forwardCommand(), a.versionCommand(), a.promoteCommand(), a.tokenCommand(), a.exportCommand(), a.doctorCommand(),
		a.kitCommand(), a.labCommand(), a.demoCommand())
	return root
}

func (a *app) bindFlags(fs *pflag.FlagSet) {
	a.flagFields = map[string]string{}
	str := func(name, short, field, usage string) {
		fs.StringP(name, short, "", usage)
		a.flagFields[name] = field
	}
	fs.StringVar(&a.configFile, "config", "", "config file (default ./apimdev.yaml when it exists)")
	str("name", "", "gateway.name", "gateway name, as in the Azure portal (default "+config.DefaultGatewayName+")")
	str("endpoint", "", "gateway.endpoint", "configuration endpoint, e.g. contoso.configuration.azure-api.net")
	str("token-file", "", "gateway.tokenFile", "file holding the gateway token, or - for stdin (or set APIMDEV_TOKEN)")
	str("image", "", "gateway.image", "gateway image (default "+config.DefaultImage+")")
	str("namespace", "n", "gateway.namespace", "namespace for the gateway (default "+config.DefaultNamespace+")")
	str("cluster-name", "", "cluster.name", "kind cluster name (default "+config.DefaultCluster+")")
	str("node-image", "", "cluster.nodeImage", "kind node image (default: kind's own)")
	str("kubeconfig", "", "cluster.kubeconfig", "apimdev's kubeconfig file for the cluster (default: in apimdev's state directory; never ~/.kube/config)")
	str("http-port", "", "forward.httpPort", fmt.Sprintf("local port forwarded to the gateway Service's port 80 (default %d)", config.DefaultHTTPPort))
	str("https-port", "", "forward.httpsPort", fmt.Sprintf("local port forwarded to the gateway Service's port 443 (default %d)", config.DefaultHTTPSPort))
	str("smoke-file", "", "smoke.file", "YAML file of smoke calls (kind: SmokeSpec)")
	str("output", "o", "output", "output format: text or json (render: yaml)")
	fs.Bool("no-tui", false, "never open the interactive wizard (apimdev with no command then prints help)")
}

// load builds the configuration for commands that create things: defaults,
// then the file, then APIMDEV_* variables, then flags the user set.
func (a *app) load(cmd *cobra.Command) (config.Config, error) {
	return a.loadOnto(cmd, config.Default(), true)
}

// loadExisting is load for commands that work on what `up` deployed: what up
// last applied to the cluster is the base, so `apimdev status` needs no flags.
func (a *app) loadExisting(cmd *cobra.Command) (config.Config, error) {
	first, err := a.loadOnto(cmd, config.Default(), false)
	if err != nil {
		return first, err
	}
	saved, ok := a.savedConfig(first.Cluster.Name)
	if !ok {
		return first, nil
	}
	a.loaded = false
	return a.loadOnto(cmd, saved, false)
}

func (a *app) loadOnto(cmd *cobra.Command, base config.Config, needEndpoint bool) (config.Config, error) {
	if a.loaded {
		return a.cfg, nil
	}
	path, optional := a.configFile, false
	if path == "" {
		path, optional = config.DefaultFile, true
	}
	cfg, _, err := config.LoadFileOnto(path, optional, base)
	if err != nil {
		return cfg, &usageError{err.Error()}
	}
	if err := cfg.ApplyEnv(a.getenv); err != nil {
		return cfg, &usageError{err.Error()}
	}
	var ferrs []error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "output" && cmd.Name() == "export" {
			return // export's -o is its directory
		}
		if field, ok := a.flagFields[f.Name]; ok {
			if err := cfg.Set(field, f.Value.String()); err != nil {
				ferrs = append(ferrs, fmt.Errorf("--%s: %w", f.Name, err))
			}
		}
	})
	if err := errors.Join(ferrs...); err != nil {
		return cfg, &usageError{err.Error()}
	}
	validate := cfg.Validate
	if !needEndpoint {
		validate = cfg.ValidateExisting
	}
	if err := validate(); err != nil {
		return cfg, err
	}
	a.cfg, a.loaded = cfg, true
	return cfg, nil
}

// savedConfig is what `up` last applied to the cluster (no token in it).
func (a *app) savedConfig(cluster string) (config.Config, bool) {
	dir, err := state.Dir(a.getenv)
	if err != nil {
		return config.Config{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "clusters", cluster, "config.json"))
	if err != nil {
		return config.Config{}, false
	}
	c := config.Default()
	if json.Unmarshal(b, &c) != nil {
		return config.Config{}, false
	}
	c.Output = "text"
	return c, true
}

func (a *app) loadToken(cfg config.Config) (token.Token, error) {
	t, _, err := config.LoadToken(cfg, a.getenv, a.streams.In)
	return t, err
}

// reporter returns the event stream's face for the output format.
func (a *app) reporter(cfg config.Config) *events.Reporter {
	if cfg.Output == "json" {
		return events.NewReporter(events.NewJSON(a.streams.Out), nil)
	}
	t := events.NewText(a.streams.Err, true)
	t.ASCII = !a.streams.Terminal && a.getenv("APIMDEV_ASCII") == "1"
	return events.NewReporter(t, nil)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print apimdev's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.streams.Out, "apimdev %s\n", Version)
			return nil
		},
	}
}

func durationFlag(cmd *cobra.Command, name string) time.Duration {
	d, _ := cmd.Flags().GetDuration(name)
	return d
}
