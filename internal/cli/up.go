package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
)

type upOptions struct {
	recreate, detach, switchCtx, yes bool
	buildNodeImage                   bool
	deployTimeout                    time.Duration
	lockWait                         time.Duration
	kit                              string // offline kit to load first
	demo                             bool   // the stand-in gateway and its configuration service
}

func (a *app) upCommand() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Check the machine, create or reuse the kind cluster, deploy the gateway, forward its ports and smoke-test it",
		Long: `Two ways to start:

  apimdev up --demo --detach
      no Azure account, no token, no registry: apimdev's stand-in gateway (stand-in,
      not Azure API Management) with its own configuration service and echo API
  APIMDEV_TOKEN="$(cat gw.token)" apimdev up --name GW --endpoint APIM.configuration.azure-api.net --detach
      your gateway, with the token from the Azure portal (API Management > Gateways >
      your gateway > Deployment)

up runs the whole pipeline: preflight, cluster, image, deploy, forward, smoke.
Each step reports one line; a failure says what is wrong and how to fix it.

up converges to what the cluster records apimdev applied: re-running it (after
a reboot, say) resumes and changes nothing that runs; a promoted gateway stays
prod, a demo stays a demo, and the token in the cluster is kept when you give
none. When your settings (flags, APIMDEV_*, apimdev.yaml) ask for something
other than what runs, or someone changed the gateway by hand, up shows the
difference object by object and asks first (--yes applies it; without a
terminal and without --yes nothing is changed).

By default up keeps forwarding in the foreground until Ctrl-C. With --detach,
the forward runs as a background apimdev process (its log is in apimdev's state
directory) and up returns; 'apimdev down' stops it.`,
		Example: `  APIMDEV_TOKEN="$(cat gw.token)" apimdev up --name contoso-gw --endpoint contoso.configuration.azure-api.net
  apimdev up --token-file gw.token --detach
  apimdev up -o json --token-file - < gw.token
  apimdev up --detach                         # again, after a reboot: resumes what runs
  apimdev up --demo --detach                  # no Azure, no token: the stand-in gateway
  apimdev up --demo --detach --kit kit.tar --trust SHA256:…   # the same with no network, from a signed kit
  apimdev up --demo --detach --workers 3      # a control plane and three workers in three zones`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.up(cmd, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.recreate, "recreate", false, "delete and recreate the cluster if it exists (everything in it is lost)")
	f.BoolVar(&o.detach, "detach", false, "run the forward in the background and return once smoke passes")
	f.Bool("merge-kubeconfig", false, "also add the cluster's context to your kubeconfig (--kubeconfig FILE, else the one kubectl uses), keeping its other entries and current context; a backup is written beside it, and down takes out only what was added (cluster.mergeKubeconfig)")
	fieldFlag(f, "merge-kubeconfig", "cluster.mergeKubeconfig")
	f.BoolVar(&o.switchCtx, "switch-context", false, "with --merge-kubeconfig: make the cluster's context the current one (down switches back)")
	f.BoolVarP(&o.yes, "yes", "y", false, "apply changes to what runs without asking (your settings differ from it, or it was changed by hand)")
	f.DurationVar(&o.deployTimeout, "timeout", 3*time.Minute, "how long to wait for the gateway to become ready")
	f.DurationVar(&o.lockWait, "lock-wait", 2*time.Second, "how long to wait for another apimdev working on the same cluster")
	f.StringVar(&o.kit, "kit", "", "load this offline kit (apimdev kit create) into Docker first, its signature (--trust) and checksums verified: no registry needed")
	kitTrustFlags(f)
	f.BoolVar(&o.buildNodeImage, "build-node-image", false, "when no node image can be had (kind's cannot be pulled, none was built here), build one here first (about 11 min on 2 cores; Linux, root)")
	f.String("workers", "", "worker nodes beside the control plane when up creates the cluster, spread over cluster.zones (default 0: one node; 3 shows the prod profile's zone spread and drains)")
	fieldFlag(f, "workers", "cluster.workers")
	f.String("helm-values", "", "a values file of Microsoft's Helm chart (azure-api-management-gateway 1.15.x) to take settings from: printed value by value as used, adapted or not applicable locally; apimdev.yaml, APIMDEV_* and flags win over it; secrets in it are refused (gateway.helmValues)")
	fieldFlag(f, "helm-values", "gateway.helmValues")
	f.String("auto-pause", "", "pause the cluster after this long with no connection through the forward, and resume it for the next one (15m; 0 or empty: never); a forward that runs already takes it too (cluster.autoPause)")
	fieldFlag(f, "auto-pause", "cluster.autoPause")
	f.BoolVar(&o.demo, "demo", false, "run apimdev's stand-in gateway (stand-in, not Azure API Management) with its own configuration service: no Azure, no token")
	return cmd
}

func (a *app) up(cmd *cobra.Command, o upOptions) error {
	ctx := cmd.Context()
	ws, err := a.prepareWorkshop(cmd, o)
	if err != nil {
		return err
	}
	defer ws.Close()
	s, lock, err := a.session(cmd, opening{lock: true, wait: o.lockWait})
	if err != nil {
		return err
	}
	defer lock.Release()
	a.printHelmValues(s.Config.Output)
	if s.Config.Output == "text" && a.streams.Terminal && isTerminal(a.streams.In) && s.Endpoint.RuntimeIs(cluster.RuntimeDocker) {
		a.offerDocker(ctx, s.Config.Output) // at a terminal: may install one, with consent
	}
	// A paused cluster is resumed first: nothing in it answers until then.
	if resumed, err := s.ResumeIfPaused(ctx); err != nil {
		return err
	} else if resumed {
		fmt.Fprintf(a.streams.Err, "the cluster %q was paused: resumed it first\n", s.Config.Cluster.Name)
	}
	// What the cluster records is the base, when it answers now.
	if err := s.Resolve(ctx); err != nil {
		return err
	}
	if ws == nil && s.IsDemo() {
		ws = &pipeline.Workshop{Demo: true} // the cluster runs the demo: it stays one
	}
	cfg := s.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	uo := pipeline.UpOptions{Recreate: o.recreate, Detach: o.detach, Self: self(), ConfigFile: a.configFile, SwitchContext: o.switchCtx, Yes: o.yes, Workshop: ws, BuildNodeImage: o.buildNodeImage,
		Confirm: a.confirmer(cfg, "Apply these changes to the running gateway?")}
	if !ws.IsDemo() {
		uo.Token, uo.TokenFrom, uo.TokenErr = a.loadTokenFrom(cmd, cfg)
		if config.IsNoToken(uo.TokenErr) {
			uo.NoToken, uo.TokenErr = true, nil
		}
	}
	s.Timeouts.Deploy = o.deployTimeout
	a.labelled(ws, s, cfg)
	res, err := s.Up(ctx, uo)
	ws.Close() // the kit step is over: its file need not stay open while we forward
	if res != nil && res.Smoke != nil {
		a.printSmoke(s, res.Smoke)
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
			"kubeconfig": s.Kubeconfig(), "tokenExpiry": res.TokenExpiry, "detached": res.Detached, "forwardPid": res.ForwardPID, "profile": res.Profile, "links": res.Links, "backends": res.Backends}
		decorate(ws, summary, res.HTTPPort)
		a.printJSON(summary)
	} else {
		fmt.Fprintf(a.streams.Out, "\nThe gateway answers on:\n  http://127.0.0.1:%d\n  https://127.0.0.1:%d  (self-signed certificate)\nprofile: %s\ntoken: %s\n",
			res.HTTPPort, res.HTTPSPort, res.Profile, res.TokenExpiry.Describe())
		if res.Links != nil {
			fmt.Fprintf(a.streams.Out, "configuration link: %s\n", pipeline.LinkSummary(res.Links, time.Now()))
		}
		for _, b := range res.Backends {
			fmt.Fprintf(a.streams.Out, "backend %s: %s\n", b.Name, b.Line())
		}
		fmt.Fprintf(a.streams.Out, "kubectl: KUBECONFIG=%s kubectl -n %s get pods\n", s.Kubeconfig(), s.Names.Namespace)
		demoSummary(ws, a.streams.Out, res.HTTPPort)
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

func self() string {
	p, _ := os.Executable()
	return p
}

func (a *app) printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(a.streams.Out, string(b))
}

// smokeJSON is the smoke calls' results as `-o json` prints them: a
// command that adds its own fields prints them in the same one object.
func smokeJSON(s *pipeline.Session, rs []smoke.Result) map[string]any {
	out := map[string]any{"smoke": rs, "passed": len(rs) - smoke.Failed(rs), "failed": smoke.Failed(rs)}
	if s.IsDemo() {
		out["standin"] = demo.Label
	}
	return out
}

func (a *app) printSmoke(s *pipeline.Session, rs []smoke.Result) {
	if s.Config.Output == "json" {
		a.printJSON(smokeJSON(s, rs))
		return
	}
	smoke.Table(a.streams.Out, rs)
	if s.IsDemo() {
		fmt.Fprintf(a.streams.Out, "gateway: apimdev's demo (%s)\n", demo.Label)
	}
}
