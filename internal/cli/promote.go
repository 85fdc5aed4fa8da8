package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

type promoteOptions struct {
	to, context, trafficPath string
	yes, allowPending        bool
	timeout                  time.Duration
	headers                  []string
}

func (a *app) promoteCommand() *cobra.Command {
	var o promoteOptions
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Move the same gateway to the production-like profile, in place, proving the rollout loses no requests",
		Long: `promote applies the prod profile to the gateway that 'up' deployed: the same name,
namespace, endpoint, token and image, now with 3 replicas, explicit rolling-update
bounds (maxUnavailable 0, maxSurge 1), a PodDisruptionBudget, topology spread,
startup/liveness/readiness probes, a preStop pause, resource requests, a pinned
image tag, DNS settings, a configuration backup volume, JSON logs at warn and
local metrics to a statsd exporter, non-root.

It shows the dev → prod diff object by object and asks (or --yes), applies with
server-side apply, and sends steady traffic through the forward for the whole
rollout, reporting requests sent, failed and p50/p99. Then it checks each
production feature on the cluster.

On the local kind cluster, requests that the nodes cannot hold are fitted to
them (and said so); 'apimdev export' and --context keep the production values,
and --context first checks that the nodes can hold them.

On a cluster of several nodes (apimdev up --workers 3), the checks show the
pods spread one per zone; on one node, promote says that spread, drains and
node loss cannot be shown there.
--to dev goes back.`,
		Example: `  apimdev promote --yes
  apimdev promote --context my-aks --token-file gw.token
  apimdev promote --to dev --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.promote(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "prod", "profile to move to: prod or dev")
	f.BoolVarP(&o.yes, "yes", "y", false, "apply without asking")
	f.StringVar(&o.context, "context", "", "apply to this context of your kubeconfig instead of the local cluster (production requests, unfitted)")
	prodFlags(f)
	rateFlag(f, "traffic during the rollout, requests/s (default 20)")
	f.StringVar(&o.trafficPath, "traffic-path", "", "path requested during the rollout (default: the health path)")
	f.StringArrayVar(&o.headers, "traffic-header", nil, "header for the traffic, NAME=VALUE; ${VAR} takes VALUE from the environment")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long the rollout may take")
	f.BoolVar(&o.allowPending, "allow-pending", false, "with --context: apply even when the nodes cannot hold the pods now (an autoscaler will add nodes)")
	return cmd
}

func (a *app) promote(cmd *cobra.Command, o promoteOptions) error {
	if o.to != "prod" && o.to != "dev" {
		return &usageError{fmt.Sprintf("--to %q: use prod or dev", o.to)}
	}
	s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, existing: true})
	if err != nil {
		return err
	}
	defer lock.Release()
	return a.rollout(cmd, s, o, "Apply these changes to the running gateway?")
}

// rollout is promote's and upgrade's common part: the credential when one
// was given, then the plan, the question, the rollout under traffic and the
// checks.
func (a *app) rollout(cmd *cobra.Command, s *pipeline.Session, o promoteOptions, question string) error {
	var err error
	cfg := s.Config
	if o.context != "" {
		if err := s.RefuseDemoElsewhere(); err != nil {
			return err
		}
	}
	var tok token.Token
	switch cfg.Gateway.Auth.Mode() {
	case config.AuthWorkloadIdentity:
		// No secret: the ServiceAccount's federated credential is Entra ID's.
	case config.AuthEntraApp:
		if cmd.Flags().Changed("client-secret-file") || a.getenv("APIMDEV_CLIENT_SECRET") != "" {
			if tok, err = a.loadToken(cfg); err != nil {
				return err
			}
		} else if o.context != "" {
			return &usageError{"--context needs the Entra app's client secret: pass --client-secret-file FILE or set APIMDEV_CLIENT_SECRET (the other cluster does not have it)"}
		}
	default:
		if cfg.Gateway.TokenFile != "" && cmd.Flags().Changed("token-file") || a.getenv("APIMDEV_TOKEN") != "" {
			if tok, err = a.loadToken(cfg); err != nil {
				return err
			}
		} else if o.context != "" {
			return &usageError{"--context needs the token: pass --token-file FILE or set APIMDEV_TOKEN (the other cluster does not have it)"}
		}
	}
	headers, err := a.trafficHeaders(o.headers)
	if err != nil {
		return err
	}
	res, err := s.Promote(cmd.Context(), pipeline.PromoteOptions{
		To: o.to, Context: o.context, Token: tok, Timeout: o.timeout, AllowPending: o.allowPending,
		Traffic: pipeline.TrafficOptions{Rate: cfg.Prod.TrafficRate, Path: o.trafficPath, Header: headers},
		Confirm: func(diff string) bool {
			return a.confirm(cfg, diff, o.yes, question)
		},
	})
	return a.finishRollout(cfg.Output, res, err)
}

func (a *app) trafficHeaders(hs []string) (map[string]string, error) {
	headers := map[string]string{}
	for _, h := range hs {
		k, v, ok := strings.Cut(h, "=")
		if !ok {
			return nil, &usageError{fmt.Sprintf("--traffic-header %q: use NAME=VALUE", h)}
		}
		x, err := smoke.Expander{Getenv: a.getenv, Protected: config.SecretVars}.Expand("--traffic-header "+k, v)
		if err != nil {
			return nil, err
		}
		headers[k] = x
	}
	return headers, nil
}

// confirm shows the diff and asks, unless --yes. Without a terminal to ask
// on, it refuses rather than guess.
func (a *app) confirm(cfg config.Config, diff string, yes bool, question string) bool {
	w := a.streams.Err
	if cfg.Output != "json" {
		fmt.Fprintf(w, "\nWhat changes, object by object (+ added, - removed, ~ changed, = unchanged):\n%s\n", diff)
	}
	if yes {
		return true
	}
	f, ok := a.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(w, "not applied: no terminal to confirm on; run again with --yes to apply")
		return false
	}
	fmt.Fprint(w, question+" [y/N] ")
	line, _ := bufio.NewReader(f).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

// confirmer is confirm for up: asked only when a plan changes what runs in
// a way the user did not ask for.
func (a *app) confirmer(cfg config.Config, question string) func(string) bool {
	return func(diff string) bool { return a.confirm(cfg, diff, false, question) }
}

func (a *app) printPromote(res *pipeline.PromoteResult) {
	w := a.streams.Out
	fmt.Fprintf(w, "\nprofile %s, image %s", res.Profile, res.Image)
	if res.PinnedHow != "" {
		fmt.Fprintf(w, " (%s)", res.PinnedHow)
	}
	fmt.Fprintln(w)
	if res.FitNote != "" {
		fmt.Fprintf(w, "resources: %s\n", res.FitNote)
	}
	if res.VersionWarning != "" {
		fmt.Fprintf(w, "version: %s\n", res.VersionWarning)
	}
	fmt.Fprintf(w, "rollout: %.1fs\n", res.RolloutSecs)
	if t := res.Traffic; t != nil {
		fmt.Fprintf(w, "traffic during the rollout: %d sent, %d failed, p50 %.1fms, p99 %.1fms, max %.1fms\n", t.Sent, t.Failed, t.P50MS, t.P99MS, t.MaxMS)
		for _, e := range t.Errors {
			fmt.Fprintf(w, "  failure: %s\n", e)
		}
	}
	if len(res.Checks) > 0 {
		fmt.Fprintln(w, "checks:")
		for _, c := range res.Checks {
			mark := "✓"
			if !c.OK {
				mark = "✗"
			}
			fmt.Fprintf(w, "  %s %-18s %s\n", mark, c.Name, c.Detail)
		}
	}
}
