package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/tui"
)

func (a *app) topCommand() *cobra.Command {
	var (
		once     bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live view of the gateway's traffic from its local metrics: requests/s, status classes, p50/p99 with sparklines, pod readiness",
		Long: `top refreshes every second a view of the gateway's traffic, read from its local
metrics (the prod profile's statsd exporter or OpenTelemetry Collector, through a
port-forward): requests/s, status classes, p50/p99 latency with sparklines over the
last two minutes, and each pod's readiness. The dev profile, as the portal's YAML,
sends no local metrics: top says so and shows the pods (apimdev promote adds them).
--once prints one sample (two reads --interval apart, for the rates); with -o json,
for scripts. q or Ctrl-C quits.`,
		Example: `  apimdev top
  apimdev top --once -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := a.session(cmd, opening{connect: true})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !once && a.streams.Terminal && s.Config.Output != "json" {
				return tui.RunTop(ctx, s.Top, interval, a.streams.In, a.streams.Out)
			}
			first := s.Top(ctx)
			var next pipeline.TopSample
			if first.Metrics != nil {
				select {
				case <-time.After(interval):
				case <-ctx.Done():
					return ctx.Err()
				}
				next = s.Top(ctx)
				pipeline.RatesBetween(&first, &next)
			} else {
				next = first
			}
			if s.Config.Output == "json" {
				a.printJSON(next)
				return nil
			}
			w := a.streams.Out
			ready := 0
			for _, p := range next.Pods {
				if p.Ready {
					ready++
				}
			}
			fmt.Fprintf(w, "gateway %s (%s profile): %d/%d pod(s) ready\n", next.Gateway, next.Profile, ready, len(next.Pods))
			if next.Links != nil {
				fmt.Fprintf(w, "configuration link: %s\n", pipeline.LinkSummary(next.Links, next.Time))
			}
			if next.Metrics == nil {
				fmt.Fprintln(w, next.Missing)
				return nil
			}
			fmt.Fprintf(w, "%s\n", next.Metrics)
			if next.Rate != nil {
				fmt.Fprintf(w, "%.1f requests/s over the last %.1fs\n", next.Rate.Requests, next.Rate.Seconds)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "print one sample and exit (for scripts; -o json)")
	f.DurationVar(&interval, "interval", time.Second, "how often the view refreshes (and --once's two reads apart)")
	return cmd
}
