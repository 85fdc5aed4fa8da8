package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

type upOptions struct {
	recreate, detach, merge bool
	deployTimeout           time.Duration
	lockWait                time.Duration
	kit                     string // offline kit to load first
	demo                    bool   // the stand-in gateway and its configuration service
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
  apimdev up -o json --token-file - < gw.token
  apimdev up --demo --detach                  # no Azure, no token: the stand-in gateway
  apimdev up --demo --detach --kit kit.tar    # the same with no network (apimdev kit create)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.up(cmd, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.recreate, "recreate", false, "delete and recreate the cluster if it exists (everything in it is lost)")
	f.BoolVar(&o.detach, "detach", false, "run the forward in the background and return once smoke passes")
	f.BoolVar(&o.merge, "merge-kubeconfig", false, "also add the cluster to your default kubeconfig and switch its current context")
	f.DurationVar(&o.deployTimeout, "timeout", 3*time.Minute, "how long to wait for the gateway to become ready")
	f.DurationVar(&o.lockWait, "lock-wait", 2*time.Second, "how long to wait for another apimdev working on the same cluster")
	f.StringVar(&o.kit, "kit", "", "load this offline kit (apimdev kit create) into Docker first, checksums verified: no registry needed")
	f.BoolVar(&o.demo, "demo", false, "run apimdev's stand-in gateway (stand-in, not Azure API Management) with its own configuration service: no Azure, no token")
	return cmd
}

func (a *app) session(cfg config.Config) (*pipeline.Session, error) {
	return pipeline.NewSession(cfg, a.reporter(cfg), a.getenv, Version)
}

// existingSession is the settings of the gateway up deployed (see
// loadExisting) and a session on them: where every command that works on
// it starts.
func (a *app) existingSession(cmd *cobra.Command) (config.Config, *pipeline.Session, error) {
	cfg, err := a.loadExisting(cmd)
	if err != nil {
		return cfg, nil, err
	}
	s, err := a.session(cfg)
	return cfg, s, err
}

func (a *app) up(cmd *cobra.Command, o upOptions) error {
	ctx := cmd.Context()
	ws, err := a.prepareWorkshop(cmd, o)
	if err != nil {
		return err
	}
	cfg, err := a.load(cmd)
	if err != nil {
		return err
	}
	ws.configure(cmd, &cfg)
	var tok token.Token
	var tokErr error
	if !o.demo {
		tok, tokErr = a.loadToken(cfg)
	}
	s, err := a.session(cfg)
	if err != nil {
		return err
	}
	lock, err := s.Files.Acquire(cfg.Cluster.Name, o.lockWait)
	if err != nil {
		return err
	}
	defer lock.Release()
	if o.demo {
		if err := ws.checkDemoImage(ctx, s, cfg.Gateway.Image); err != nil {
			return err
		}
		if tok, err = ws.token(ctx, s, cfg); err != nil {
			return err
		}
	}
	ws.labelled(a, s, cfg)
	self, _ := os.Executable()
	uo := pipeline.UpOptions{Token: tok, TokenErr: tokErr, Recreate: o.recreate, Detach: o.detach,
		Self: self, ConfigFile: a.configFile, Merge: o.merge, DeployTimeout: o.deployTimeout}
	if err := ws.upOptions(&uo); err != nil {
		return err
	}
	res, err := s.Up(ctx, uo)
	if res != nil && res.Smoke != nil {
		a.printSmoke(cfg, res.Smoke)
	}
	if err != nil {
		if res != nil && res.Stop != nil {
			res.Stop()
		}
		var fs *pipeline.FailedStep
		if errors.Is(err, context.Canceled) && errors.As(err, &fs) {
			fmt.Fprintf(a.streams.Err, "\ninterrupted during %s. Now: %s.\nRun `apimdev up` again to continue from there; `apimdev down` removes everything.\n", fs.Step, s.Exists(ctx))
			return &shownError{err: err, code: ExitInterrupted}
		}
		return &shownError{err: err, code: ExitFailure}
	}
	if cfg.Output == "json" {
		summary := map[string]any{"ready": true, "http": fmt.Sprintf("http://127.0.0.1:%d", res.HTTPPort), "https": fmt.Sprintf("https://127.0.0.1:%d", res.HTTPSPort),
			"kubeconfig": s.Cluster.Kubeconfig, "tokenExpiry": res.TokenExpiry, "detached": res.Detached, "forwardPid": res.ForwardPID}
		ws.decorate(summary, res.HTTPPort)
		a.printJSON(summary)
	} else {
		fmt.Fprintf(a.streams.Out, "\nThe gateway answers on:\n  http://127.0.0.1:%d\n  https://127.0.0.1:%d  (self-signed certificate)\ntoken: %s\nkubectl: KUBECONFIG=%s kubectl -n %s get pods\n",
			res.HTTPPort, res.HTTPSPort, res.TokenExpiry.Describe(), s.Cluster.Kubeconfig, s.Profile.Namespace)
		ws.summary(a.streams.Out, res.HTTPPort)
	}
	if res.Stop == nil {
		return nil
	}
	lock.Release() // smoke and status may run while we forward
	fmt.Fprintf(a.streams.Err, "Forwarding until Ctrl-C (or run `apimdev up --detach` to keep it in the background).\n")
	<-ctx.Done()
	res.Stop()
	fmt.Fprintf(a.streams.Err, "\nstopped forwarding; the cluster and the gateway are still running (`apimdev down` removes them).\n")
	return nil
}

func (a *app) printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(a.streams.Out, string(b))
}

func (a *app) printSmoke(cfg config.Config, rs []smoke.Result) {
	if cfg.Output == "json" {
		out := map[string]any{"smoke": rs, "passed": len(rs) - smoke.Failed(rs), "failed": smoke.Failed(rs)}
		if isDemo(cfg) {
			out["standin"] = demo.Label
		}
		a.printJSON(out)
		return
	}
	smoke.Table(a.streams.Out, rs)
	if isDemo(cfg) {
		fmt.Fprintf(a.streams.Out, "gateway: apimdev's demo (%s)\n", demo.Label)
	}
}
