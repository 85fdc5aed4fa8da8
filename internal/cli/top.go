package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/tui"
)

func (a *app) topCommand() *cobra.Command {
	var (
		once     bool
		interval time.Duration
		window   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live view of the gateway's traffic from its local metrics: requests/s, status classes, p50/p99 with sparklines, pod readiness",
		Long: `top refreshes every second a view of the gateway's traffic, read from its local
metrics (the prod profile's statsd exporter or OpenTelemetry Collector, through a
port-forward): requests/s, status classes, p50/p99 latency with sparklines over the
last two minutes, and each pod's readiness. The dev profile, as the portal's YAML,
sends no local metrics: top says so and shows the pods (apimdev promote adds them).
On every profile it shows each pod's CPU and memory (the gateway's and its metrics
sink's), read every 10 s from the kubelets' stats summary through the API server (no
metrics-server), with the memory's slope over the last 5 minutes, and a warning when
the memory kept growing over all of them while requests/s did not rise.
--once prints one sample (two reads --interval apart, for the rates); with -o json,
for scripts; --window 3m samples that long first, for the memory's slope.
q or Ctrl-C quits.`,
		Example: `  apimdev top
  apimdev top --once -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window > 0 && !once {
				return &usageError{fmt.Sprintf("--window goes with --once (the live view keeps the last %s)", pipeline.ShortSpan(pipeline.TopMemoryWindow))}
			}
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
			if window > 0 {
				if next = sampleWindow(ctx, s, first, interval, window); ctx.Err() != nil {
					return ctx.Err()
				}
			} else if first.Metrics != nil {
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
			} else {
				fmt.Fprintf(w, "%s\n", next.Metrics)
				if next.Rate != nil {
					fmt.Fprintf(w, "%.1f requests/s over the last %.1fs\n", next.Rate.Requests, next.Rate.Seconds)
				}
			}
			printResources(w, next)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "print one sample and exit (for scripts; -o json)")
	f.DurationVar(&interval, "interval", time.Second, "how often the view refreshes (and --once's two reads apart)")
	f.DurationVar(&window, "window", 0, "with --once: sample this long (every --interval) before printing, for the memory's slope over it and the growth warning")
	return cmd
}

// sampleWindow samples every interval for window from first, the rates
// between consecutive samples and the memory's slopes over all of them, and
// returns the last (the one before ctx ended when it did).
func sampleWindow(ctx context.Context, s *pipeline.Session, first pipeline.TopSample, interval, window time.Duration) pipeline.TopSample {
	w := pipeline.NewTopWindow(window)
	w.Observe(&first)
	last := first
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for end := time.Now().Add(window); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
		next := s.Top(ctx)
		pipeline.RatesBetween(&last, &next)
		w.Observe(&next)
		last = next
	}
	return last
}

// printResources is top --once's lines for the pods' CPU and memory.
func printResources(w io.Writer, s pipeline.TopSample) {
	for _, r := range s.Resources {
		line := r.Pod + ":"
		if r.CPUMillicores != nil {
			line += fmt.Sprintf(" cpu %.0fm", *r.CPUMillicores)
		}
		if r.MemoryMiB != nil {
			line += fmt.Sprintf(" memory %.1f MiB", *r.MemoryMiB)
		}
		if r.MemorySlopeMiBPerMin != nil {
			line += fmt.Sprintf(" (%+.2f MiB/min)", *r.MemorySlopeMiBPerMin)
		}
		fmt.Fprintln(w, line)
	}
	if s.ResourcesMissing != "" {
		fmt.Fprintln(w, "resources: "+s.ResourcesMissing)
	}
	if s.MemoryWarning != "" {
		fmt.Fprintln(w, "warning: "+s.MemoryWarning)
	}
}
