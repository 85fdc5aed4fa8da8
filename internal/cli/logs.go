package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/podlogs"
)

func (a *app) logsCommand() *cobra.Command {
	var (
		follow, previous bool
		since            time.Duration
		pod, level       string
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Every gateway pod's logs, interleaved in time order with the pod's name; -f follows pods as a rollout replaces them",
		Long: `logs shows the logs of every pod of the gateway (kubectl logs deployment/<gateway>
shows one pod, chosen at random), in time order, each line with the pod it came from.
JSON lines (the prod profile's telemetry.logs.std=json) are shown as time, pod, level,
message and fields; -o json prints one JSON object per line (time, pod, log) for
scripts. -f follows: pods that start during a rollout are picked up, pods that go
end their stream, and Ctrl-C stops cleanly. The token and the client secret are
never shown: they are scrubbed from every line.`,
		Example: `  apimdev logs
  apimdev logs -f --level warn
  apimdev logs --since 10m --pod contoso-gw-6b88cf6cf4-8kxb2
  apimdev logs --previous            # the container before a crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			min, err := podlogs.Level(level)
			if err != nil {
				return &usageError{err.Error()}
			}
			s, _, err := a.session(cmd, opening{connect: true})
			if err != nil {
				return err
			}
			// The credential is scrubbed from every line, whatever logs it.
			redact := func(x string) string { return x }
			if tok, err := s.ClusterToken(cmd.Context()); err == nil && !tok.IsZero() {
				redact = pipeline.Redactor(tok)
			}
			p := s.Names
			painter := &podlogs.Painter{}
			colour := a.streams.Terminal && s.Config.Output != "json" && a.getenv("NO_COLOR") == ""
			var werr error
			emit := func(l podlogs.Line) {
				l.Text = redact(l.Text)
				e := podlogs.Read(l.Text)
				if !e.AtLeast(min) || werr != nil {
					return
				}
				if s.Config.Output == "json" {
					b, err := e.JSONLine(l)
					if err == nil {
						_, werr = fmt.Fprintln(a.streams.Out, string(b))
					}
					return
				}
				name := podlogs.Short(l.Pod, p.DeploymentName())
				if colour {
					name = painter.Paint(l.Pod, name)
				}
				_, werr = fmt.Fprintln(a.streams.Out, e.Text(l, name))
			}
			o := podlogs.Options{Client: s.Client, Namespace: p.Namespace, Selector: "app=" + p.Gateway, Container: p.Gateway,
				Pod: pod, Follow: follow, Since: since, Previous: previous}
			if follow && s.Config.Output != "json" {
				o.Events = func(name string, started bool) {
					what := "ended"
					if started {
						what = "following"
					}
					fmt.Fprintf(a.streams.Err, "# %s %s\n", what, name)
				}
			}
			if err := podlogs.Stream(cmd.Context(), o, emit); err != nil {
				return err
			}
			return werr
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the logs, and the pods as they come and go, until Ctrl-C")
	f.DurationVar(&since, "since", 0, "only lines newer than this, e.g. 10m (default: all the kubelet keeps)")
	f.StringVar(&pod, "pod", "", "only this pod")
	f.StringVar(&level, "level", "", "only lines at this level or above: debug, info, warn or error (lines without a level are kept)")
	f.BoolVar(&previous, "previous", false, "the logs of each pod's previous container (after a crash)")
	return cmd
}
