// Package cli is apimdev's command line: cobra commands that load the
// configuration, assemble the pipeline of steps and show its events. It is
// the only package that knows about flags, exit codes and output formats.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/nodeimage"
	"github.com/apimdev/apimdev/internal/pipeline"
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
	// adjust, when set, is the last layer of overlay: what a kit or the demo
	// brings where the user set nothing.
	adjust  func(*config.Config)
	kitNote string // where the settings came from, said once
	// helm is the Helm values file the settings were read from, if any.
	helm *helmRead
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
machine: it checks the machine, creates (or reuses) a kind cluster (one node, or
--workers N over three zones),
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
		a.renderCommand(), a.preflightCommand(), a.forwardCommand(), a.pauseCommand(), a.resumeCommand(), a.versionCommand(), a.promoteCommand(), a.credentialsCommand(), a.tokenCommand(), a.exportCommand(), a.doctorCommand(),
		a.kitCommand(), a.labCommand(), a.demoCommand(), a.nodeImageCommand(), a.dockerCommand(), a.drainCommand(), a.uncordonCommand(), a.upgradeCommand(), a.logsCommand(), a.topCommand())
	root.AddCommand(a.drillCommand(), a.ciCommand(), a.backendCommand())
	root.AddCommand(a.relayCommand())
	return root
}

// fieldAnnotation marks a flag that sets a config field: the flag names its
// field itself, so no table beside it can drift.
const fieldAnnotation = "apimdev.io/field"

// fieldFlag says the flag name of fs sets field.
func fieldFlag(fs *pflag.FlagSet, name, field string) {
	if err := fs.SetAnnotation(name, fieldAnnotation, []string{field}); err != nil {
		panic(err) // a flag registered under another name: a programming error
	}
}

// flagField is the config field a flag sets, "" for none.
func flagField(f *pflag.Flag) string {
	if v := f.Annotations[fieldAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// prodFlags are the prod profile's most used settings as flags, on every
// command that applies or prints the prod profile (promote, render: render
// prints exactly what promote would apply, with the same flags); every
// other prod.* field is --set prod.FIELD=VALUE or its APIMDEV_PROD_* variable.
func prodFlags(fs *pflag.FlagSet) {
	for _, f := range []struct{ name, field, usage string }{
		{"replicas", "prod.replicas", "replicas (default 3, at least 2)"},
		{"max-surge", "prod.maxSurge", "rolling update maxSurge (default 1)"},
		{"max-unavailable", "prod.maxUnavailable", "rolling update maxUnavailable (default 0)"},
		{"cpu", "prod.cpu", "CPU request per pod (default 2)"},
		{"memory", "prod.memory", "memory request per pod (default 2Gi)"},
		{"metrics", "prod.metrics", "where the gateway's local metrics go: statsd (default), opentelemetry (an OpenTelemetry Collector) or none"},
	} {
		fs.String(f.name, "", f.usage)
		fieldFlag(fs, f.name, f.field)
	}
}

// rateFlag is --rate, the traffic a rollout sends (prod.trafficRate).
func rateFlag(fs *pflag.FlagSet, usage string) {
	fs.String("rate", "", usage)
	fieldFlag(fs, "rate", "prod.trafficRate")
}

func (a *app) bindFlags(fs *pflag.FlagSet) {
	str := func(name, short, field, usage string) {
		fs.StringP(name, short, "", usage)
		fieldFlag(fs, name, field)
	}
	fs.StringVar(&a.configFile, "config", "", "config file (default ./apimdev.yaml when it exists)")
	str("name", "", "gateway.name", "gateway name, as in the Azure portal (default "+config.DefaultGatewayName+")")
	str("endpoint", "", "gateway.endpoint", "configuration endpoint, e.g. contoso.configuration.azure-api.net")
	str("token-file", "", "gateway.tokenFile", "file holding the gateway token, or - for stdin (or set APIMDEV_TOKEN)")
	str("auth", "", "gateway.auth.type", "how the gateway authenticates to its configuration endpoint: token (default), entra-app or workload-identity")
	str("tenant-id", "", "gateway.auth.tenantId", "Microsoft Entra directory (tenant) ID, with --auth entra-app or workload-identity")
	str("client-id", "", "gateway.auth.clientId", "Microsoft Entra application (client) ID, with --auth entra-app or workload-identity")
	str("client-secret-file", "", "gateway.auth.clientSecretFile", "file holding the Entra app's client secret, or - for stdin (or set APIMDEV_CLIENT_SECRET); never a flag value")
	str("authority", "", "gateway.auth.authority", "Microsoft Entra authority for a sovereign cloud (default "+config.DefaultAuthority+")")
	fs.StringArray("ca-cert", nil, "PEM file of a private CA the gateway must trust (its configuration endpoint on a custom domain); repeatable; none removes those deployed")
	fieldFlag(fs, "ca-cert", "gateway.caCertificates")
	str("image", "", "gateway.image", "gateway image (default "+config.DefaultImage+")")
	str("namespace", "n", "gateway.namespace", "namespace for the gateway (default "+config.DefaultNamespace+")")
	str("cluster-name", "", "cluster.name", "kind cluster name (default "+config.DefaultCluster+")")
	str("node-image", "", "cluster.nodeImage", "kind node image (default: kind's own)")
	str("runtime", "", "cluster.runtime", "container runtime for the kind cluster: auto (default: what your environment names, else what answers, Docker first), docker or podman")
	str("kubeconfig", "", "cluster.kubeconfig", "apimdev's kubeconfig file for the cluster (default: in apimdev's state directory); a file apimdev did not create is refused, unless up --merge-kubeconfig adds the cluster's context to it")
	str("http-port", "", "forward.httpPort", fmt.Sprintf("local port forwarded to the gateway Service's port 80 (default %d)", config.DefaultHTTPPort))
	str("https-port", "", "forward.httpsPort", fmt.Sprintf("local port forwarded to the gateway Service's port 443 (default %d)", config.DefaultHTTPSPort))
	str("smoke-file", "", "smoke.file", "YAML file of smoke calls (kind: SmokeSpec)")
	str("output", "o", "output", "output format: text or json (render: yaml)")
	fs.StringArray("set", nil, "any setting by its apimdev.yaml path, PATH=VALUE (e.g. prod.memoryLimit=none; lists comma-separated); repeatable; every setting also has an APIMDEV_* variable (see docs)")
	fs.Bool("no-tui", false, "never open the interactive wizard (apimdev with no command then prints help)")
}

// load builds the configuration for commands that start from nothing:
// defaults, then the file, then APIMDEV_* variables, then flags the user set.
func (a *app) load(cmd *cobra.Command) (config.Config, error) {
	cfg, err := a.overlay(cmd, config.Default())
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// overlay puts what the user asked for onto base: the config file, then
// APIMDEV_* variables, then the flags they set. It validates nothing, so a
// session can put the same asks on top of what the cluster records.
//
// A Helm values file (gateway.helmValues, up --helm-values) is a layer of
// its own, just above base: the config file, variables and flags all win
// over it. A file that does not read is an error, so nothing is deployed
// from it.
func (a *app) overlay(cmd *cobra.Command, base config.Config) (config.Config, error) {
	cfg, err := a.layers(cmd, base)
	if err != nil || cfg.Gateway.HelmValues == "" {
		return cfg, err
	}
	m, err := readHelmValues(cfg.Gateway.HelmValues)
	if err != nil {
		return cfg, &usageError{err.Error()}
	}
	a.helm = &helmRead{file: cfg.Gateway.HelmValues, mapping: m}
	if err := m.Apply(&base); err != nil {
		return cfg, &usageError{err.Error()}
	}
	return a.layers(cmd, base)
}

// layers is overlay without the values file.
func (a *app) layers(cmd *cobra.Command, base config.Config) (config.Config, error) {
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
		if f.Name == "set" {
			sv, _ := f.Value.(pflag.SliceValue)
			for _, kv := range sv.GetSlice() {
				field, v, ok := strings.Cut(kv, "=")
				if !ok {
					ferrs = append(ferrs, fmt.Errorf("--set %q: give PATH=VALUE, e.g. prod.memoryLimit=none", kv))
					continue
				}
				if err := cfg.Set(strings.TrimSpace(field), v); err != nil {
					ferrs = append(ferrs, fmt.Errorf("--set: %w", err))
				}
			}
			return
		}
		if field := flagField(f); field != "" {
			v := f.Value.String()
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				v = strings.Join(sv.GetSlice(), string(filepath.ListSeparator))
			}
			if err := cfg.Set(field, v); err != nil {
				ferrs = append(ferrs, fmt.Errorf("--%s: %w", f.Name, err))
			}
		}
	})
	if err := errors.Join(ferrs...); err != nil {
		return cfg, &usageError{err.Error()}
	}
	if err := cfg.ReadCACertificates(time.Now()); err != nil {
		return cfg, &usageError{err.Error()}
	}
	if a.adjust != nil {
		a.adjust(&cfg)
	}
	return cfg, nil
}

// lockWait is how long a command waits for another apimdev working on the
// same cluster (up's --lock-wait sets its own).
const lockWait = 2 * time.Second

// opening is how a command opens its session.
type opening struct {
	lock bool          // take the cluster's lock
	wait time.Duration // how long to wait for it (lockWait for most commands)
	// existing: the command works on what up deployed, so it needs no
	// endpoint (status, smoke, down, promote...).
	existing bool
	// connect: the command acts on the cluster now (drain, logs, top), so a
	// cluster that does not answer is an error, not a stale answer: the
	// session is connected and resolved against the cluster's record.
	connect bool
}

// session is how every command starts: on what is deployed. The session's
// settings are settings.Resolve of the cluster's record (its copy in the
// state directory until the cluster is read) and the user's asks (Asks:
// the config file, APIMDEV_* variables, flags).
func (a *app) session(cmd *cobra.Command, o opening) (*pipeline.Session, *state.Lock, error) {
	first, err := a.overlay(cmd, config.Default())
	if err != nil {
		return nil, nil, err
	}
	asks := func(base config.Config) (config.Config, error) { return a.overlay(cmd, base) }
	s, l, err := pipeline.Open(cmd.Context(), pipeline.SessionOptions{Getenv: a.getenv, Version: Version, Rep: a.reporter(first), Asks: asks}, first.Cluster.Name, o.lock, o.wait)
	if err != nil {
		return nil, nil, err
	}
	s.ForwardVia = a.getenv("APIMDEV_FORWARD_VIA")
	fail := func(err error) (*pipeline.Session, *state.Lock, error) {
		l.Release()
		return nil, nil, err
	}
	if o.existing || o.connect {
		if err := s.Config.ValidateExisting(); err != nil {
			return fail(err)
		}
	}
	if o.connect {
		if err := s.Connect(); err != nil {
			return fail(err)
		}
		if err := s.Resolve(cmd.Context()); err != nil {
			return fail(err)
		}
	}
	return s, l, nil
}

func (a *app) loadToken(cfg config.Config) (token.Token, error) {
	t, _, err := config.LoadToken(cfg, a.getenv, a.streams.In)
	return t, err
}

// loadTokenFrom is loadToken, also saying where the credential came from.
func (a *app) loadTokenFrom(cmd *cobra.Command, cfg config.Config) (token.Token, string, error) {
	t, src, err := config.LoadToken(cfg, a.getenv, a.streams.In)
	return t, a.credentialFrom(cmd, cfg, src), err
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
		Short: "Print apimdev's version, commit and build date, its Go, kind and the Kubernetes versions it makes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo()
			if o, _ := cmd.Flags().GetString("output"); o == "json" {
				a.printJSON(v)
				return nil
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "apimdev\t%s\n", v.Version)
			fmt.Fprintf(tw, "commit\t%s\n", v.Commit)
			fmt.Fprintf(tw, "built\t%s\n", v.Date)
			fmt.Fprintf(tw, "go\t%s %s\n", v.Go, v.Platform)
			fmt.Fprintf(tw, "kind\t%s (node image %s)\n", v.Kind, v.KindNodeImage)
			fmt.Fprintf(tw, "kubernetes\t%s with kind's node image; %s with one built here (apimdev node-image build)\n", v.Kubernetes, v.BuiltKubernetes)
			return tw.Flush()
		},
	}
}

// Commit and Date are set at link time (make build); a plain `go build` or
// `go install` takes them from the build's VCS stamp.
var Commit, Date string

// VersionInfo is what `apimdev version` prints.
type VersionInfo struct {
	Version         string `json:"version"`
	Commit          string `json:"commit"`
	Date            string `json:"date"`
	Go              string `json:"go"`
	Platform        string `json:"platform"`
	Kind            string `json:"kind"`
	KindNodeImage   string `json:"kindNodeImage"`
	Kubernetes      string `json:"kubernetes"`
	BuiltKubernetes string `json:"builtKubernetes"`
}

func versionInfo() VersionInfo {
	v := VersionInfo{Version: Version, Commit: Commit, Date: Date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Kind: "unknown", KindNodeImage: cluster.DefaultNodeImage, BuiltKubernetes: nodeimage.KubernetesVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && v.Commit == "":
				v.Commit = s.Value
				if len(v.Commit) > 12 {
					v.Commit = v.Commit[:12]
				}
			case s.Key == "vcs.time" && v.Date == "":
				v.Date = s.Value
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kind" {
				v.Kind = d.Version
			}
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.Date == "" {
		v.Date = "unknown"
	}
	tag := strings.TrimPrefix(v.KindNodeImage, "kindest/node:")
	v.Kubernetes, _, _ = strings.Cut(tag, "@")
	return v
}

func durationFlag(cmd *cobra.Command, name string) time.Duration {
	d, _ := cmd.Flags().GetDuration(name)
	return d
}
