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
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
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

func (a *app) session(cfg config.Config) (*pipeline.Session, error) {
	return pipeline.NewSession(cfg, a.reporter(cfg), a.getenv, Version)
}

func (a *app) up(cmd *cobra.Command, o upOptions) error {
	ctx := cmd.Context()
	cfg, err := a.load(cmd)
	if err != nil {
		return err
	}
	tok, tokErr := a.loadToken(cfg)
	s, err := a.session(cfg)
	if err != nil {
		return err
	}
	lock, err := s.Files.Acquire(cfg.Cluster.Name, o.lockWait)
	if err != nil {
		return err
	}
	defer lock.Release()
	self, _ := os.Executable()
	res, err := s.Up(ctx, pipeline.UpOptions{Token: tok, TokenErr: tokErr, Recreate: o.recreate, Detach: o.detach,
		Self: self, ConfigFile: a.configFile, Merge: o.merge, DeployTimeout: o.deployTimeout})
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
		a.printJSON(map[string]any{"ready": true, "http": fmt.Sprintf("http://127.0.0.1:%d", res.HTTPPort), "https": fmt.Sprintf("https://127.0.0.1:%d", res.HTTPSPort),
			"kubeconfig": s.Cluster.Kubeconfig, "tokenExpiry": res.TokenExpiry, "detached": res.Detached, "forwardPid": res.ForwardPID})
	} else {
		fmt.Fprintf(a.streams.Out, "\nThe gateway answers on:\n  http://127.0.0.1:%d\n  https://127.0.0.1:%d  (self-signed certificate)\ntoken: %s\nkubectl: KUBECONFIG=%s kubectl -n %s get pods\n",
			res.HTTPPort, res.HTTPSPort, res.TokenExpiry.Describe(), s.Cluster.Kubeconfig, s.Profile.Namespace)
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
		a.printJSON(map[string]any{"smoke": rs, "passed": len(rs) - smoke.Failed(rs), "failed": smoke.Failed(rs)})
		return
	}
	smoke.Table(a.streams.Out, rs)
}
