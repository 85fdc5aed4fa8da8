package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) drillCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Rehearse a failure on the running gateway and prove it recovers",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.drillOfflineCommand())
	return cmd
}

type drillOptions struct {
	trafficPath string
	headers     []string
	timeout     time.Duration
}

func (a *app) drillOfflineCommand() *cobra.Command {
	var o drillOptions
	cmd := &cobra.Command{
		Use:   "offline",
		Short: "Restart the prod gateway's pods without their configuration endpoint: each must come back from its backup",
		Long: `drill offline proves the prod profile's configuration backup on the cluster. It
takes the configuration endpoint away from the gateway's pods only (its host
resolves to each pod's own loopback, so a connection is refused at once and
nothing else changes), and lets the Deployment restart its pods one at a time
within its rollout bounds while steady traffic runs through the forward. It
reports, for each new pod, how long it took to be ready, what its log said of
the backup, and whether it served the smoke calls made to it alone; then it
gives the endpoint back (the recorded Deployment, applied again), waits for
the pods to be ready with it, and checks that nothing differs from what the
cluster records. The record itself is never written.

It needs the prod profile with its backup volume (apimdev promote). A version
with a known backup problem (2.12.x, issue #418) is named before it starts.
Ctrl-C gives the endpoint back before exiting; a drill a crashed run left is
found and undone by the next run (apimdev up --yes also undoes it).`,
		Example: `  apimdev drill offline
  apimdev drill offline --rate 50 --traffic-path /echo/ping --traffic-header 'Ocp-Apim-Subscription-Key=${KEY}' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.drillOffline(cmd, o) },
	}
	f := cmd.Flags()
	rateFlag(f, "traffic during the drill, requests/s (default 20)")
	f.StringVar(&o.trafficPath, "traffic-path", "", "path requested during the drill (default: the first GET of the smoke spec, else the health path)")
	f.StringArrayVar(&o.headers, "traffic-header", nil, "header for the traffic, NAME=VALUE; ${VAR} takes VALUE from the environment")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long each rollout (without the endpoint, then with it) may take")
	return cmd
}

func (a *app) drillOffline(cmd *cobra.Command, o drillOptions) error {
	headers, err := a.trafficHeaders(o.headers)
	if err != nil {
		return err
	}
	s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
	if err != nil {
		return err
	}
	defer lock.Release()
	res, err := s.DrillOffline(cmd.Context(), pipeline.DrillOptions{Timeout: o.timeout,
		Traffic: pipeline.TrafficOptions{Rate: s.Config.Prod.TrafficRate, Path: o.trafficPath, Header: headers}})
	if res != nil {
		if s.Config.Output == "json" {
			a.printJSON(res)
		} else {
			printDrill(a.streams.Out, res)
		}
	}
	if err != nil && events.WasReported(err) {
		return &shownError{err: err, code: exitOf(err)}
	}
	return err
}

// exitOf is the exit code of a drill's error that its steps already told.
func exitOf(err error) int {
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitFailure
}

// printDrill is the drill's table: a row per restarted pod, then the
// traffic and the give-back.
func printDrill(w io.Writer, res *pipeline.DrillResult) {
	fmt.Fprintf(w, "\ndrill offline: %s profile, image %s, endpoint %s taken away from the pods\n", res.Profile, res.Image, res.Endpoint)
	if res.VersionWarning != "" {
		fmt.Fprintf(w, "version: %s\n", res.VersionWarning)
	}
	if res.Leftover {
		fmt.Fprintln(w, "a drill left by an earlier run was undone first")
	}
	if len(res.Pods) > 0 {
		fmt.Fprintf(w, "%-32s %-8s %-12s %-6s %s\n", "POD", "READY", "FROM BACKUP", "SMOKE", "LOG")
		for _, p := range res.Pods {
			ready, backup := "-", "no"
			if p.ReadyAfter > 0 {
				ready = fmt.Sprintf("%.1fs", p.ReadySecs)
			}
			if p.FromBackup {
				backup = "yes"
			}
			fmt.Fprintf(w, "%-32s %-8s %-12s %d/%-4d %s\n", p.Pod, ready, backup, p.SmokePassed, p.SmokeTotal, p.Log)
			for _, f := range p.SmokeFailed {
				fmt.Fprintf(w, "  failed: %s\n", f)
			}
		}
	}
	fmt.Fprintf(w, "restart without the endpoint: %.1fs; give-back: %.1fs\n", res.RestartSecs, res.RestoreSecs)
	if t := res.Traffic; t != nil {
		fmt.Fprintf(w, "traffic during the drill: %d sent, %d failed, p50 %.1fms, p99 %.1fms, max %.1fms\n", t.Sent, t.Failed, t.P50MS, t.P99MS, t.MaxMS)
		for _, e := range t.Errors {
			fmt.Fprintf(w, "  failure: %s\n", e)
		}
	}
	switch {
	case res.Restored && res.Synced != "":
		fmt.Fprintf(w, "endpoint given back: %s\n", res.Synced)
	case res.Restored:
		fmt.Fprintln(w, "endpoint given back")
	default:
		fmt.Fprintln(w, "the endpoint was NOT given back: run `apimdev drill offline` again (it undoes a left-over drill first) or `apimdev up --yes`")
	}
}
