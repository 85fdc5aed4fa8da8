package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
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
		backend          string
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Every gateway pod's logs, interleaved in time order with the pod's name; -f follows pods as a rollout replaces them",
		Long: `logs shows the logs of every pod of the gateway (kubectl logs deployment/<gateway>
shows one pod, chosen at random), in time order, each entry with the pod it came from.
The gateway's text and JSON formats (the prod profile's telemetry.logs.std=json) are
read: each entry is shown as time, pod, level, [event], message and fields, its
exception's lines indented under it, the gateway's colours removed; -o json prints
one JSON object per entry (time, pod, level, event, source, message, exception,
fields, lines, log) for scripts. --level keeps entries at that level or above
(entries without a level are kept). When nothing is shown, logs says why on stderr.
-f follows: pods that start during a rollout are picked up, pods that go end their
stream, and Ctrl-C stops cleanly. The token and the client secret are never shown:
they are scrubbed from every line.`,
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
			p := s.Names
			o := podlogs.Options{Client: s.Client, Namespace: p.Namespace, Selector: "app=" + p.Gateway, Container: p.Gateway,
				Pod: pod, Follow: follow, Since: since, Previous: previous}
			// The credential is scrubbed from every line, whatever logs it.
			if tok, err := s.ClusterToken(cmd.Context()); err == nil && !tok.IsZero() {
				o.Redact = pipeline.Redactor(tok)
			}
			dep := p.DeploymentName()
			if backend != "" {
				if o.Selector, o.Container, dep, err = s.BackendLogs(backend); err != nil {
					return err
				}
			}
			v := logView{
				min: min, json: s.Config.Output == "json", deployment: dep,
				colour: a.streams.Terminal && s.Config.Output != "json" && a.getenv("NO_COLOR") == "",
			}
			if r := s.Recorded; r != nil {
				v.profile, v.profileLevel = r.Profile, r.Spec.LogLevel
			}
			return v.show(cmd.Context(), a.streams.Out, a.streams.Err, o, podlogs.Entries)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the logs, and the pods as they come and go, until Ctrl-C")
	f.DurationVar(&since, "since", 0, "only lines newer than this, e.g. 10m (default: all the kubelet keeps)")
	f.StringVar(&pod, "pod", "", "only this pod")
	f.StringVar(&level, "level", "", "only entries at this level or above: verbose, debug, info, warn (or warning) or error (entries without a level are kept)")
	f.BoolVar(&previous, "previous", false, "the logs of each pod's previous container (after a crash)")
	f.StringVar(&backend, "backend", "", "the logs of a backend added with `apimdev backend add --image` (for one on this machine: the relay's)")
	return cmd
}

// logView is how `apimdev logs` shows entries.
type logView struct {
	min        string // the level filter, normalised ("" none)
	json       bool
	colour     bool
	deployment string
	// profile and profileLevel are the profile applied and its
	// telemetry.logs.std.level, when the cluster records them.
	profile, profileLevel string
}

// show streams the entries o selects through entries (podlogs.Entries;
// tests give canned ones) to out, and says on errw why nothing was shown
// when a dump shows nothing.
func (v logView) show(ctx context.Context, out, errw io.Writer, o podlogs.Options, entries func(context.Context, podlogs.Options, func(podlogs.Logged)) error) error {
	pods := map[string]bool{}
	o.Events = func(name string, started bool) {
		pods[name] = true
		if o.Follow && !v.json {
			what := "ended"
			if started {
				what = "following"
			}
			fmt.Fprintf(errw, "# %s %s\n", what, name)
		}
	}
	painter := &podlogs.Painter{}
	var read, shown int
	var werr error
	err := entries(ctx, o, func(e podlogs.Logged) {
		read++
		if !e.AtLeast(v.min) || werr != nil {
			return
		}
		shown++
		if v.json {
			b, err := e.JSON()
			if err == nil {
				_, werr = fmt.Fprintln(out, string(b))
			}
			return
		}
		name := podlogs.Short(e.Pod, v.deployment)
		if v.colour {
			name = painter.Paint(e.Pod, name)
		}
		_, werr = fmt.Fprintln(out, e.Text(name))
	})
	if err != nil {
		return err
	}
	if shown == 0 && !o.Follow {
		fmt.Fprintln(errw, v.nothing(o, len(pods), read))
	}
	return werr
}

// nothing says why a dump showed no entry: no pod to read, no line in the
// window, or every line below the level asked, and what to try.
func (v logView) nothing(o podlogs.Options, pods, read int) string {
	if pods == 0 {
		switch {
		case o.Previous:
			return "no line: no pod of the gateway has a previous container (none has restarted)"
		case o.Pod != "":
			return fmt.Sprintf("no line: pod %s has no container to read yet; see apimdev status", o.Pod)
		}
		return "no line: no pod of the gateway has a container to read yet; see apimdev status"
	}
	var b strings.Builder
	b.WriteString("no line")
	if v.min != "" {
		fmt.Fprintf(&b, " at %s or above", v.min)
	}
	if o.Since > 0 {
		fmt.Fprintf(&b, " in the last %s", short(o.Since))
	}
	fmt.Fprintf(&b, " from %d pod(s)", pods)
	quiet := v.profileLevel == "warn" || v.profileLevel == "error" || v.profileLevel == "fatal"
	switch {
	case read > 0:
		fmt.Fprintf(&b, " (%d entries below it); try --level %s", read, below(v.min))
	case quiet:
		fmt.Fprintf(&b, "; the %s profile logs at %s (telemetry.logs.std.level), so a quiet gateway prints nothing: try --level info on dev", orUnnamed(v.profile), v.profileLevel)
		if o.Since > 0 {
			b.WriteString(", or a longer --since")
		}
	case o.Since > 0:
		b.WriteString("; try a longer --since")
	}
	return b.String()
}

// below is the level under l, for the hint.
func below(l string) string {
	switch l {
	case "error":
		return "warn"
	case "warn":
		return "info"
	}
	return "verbose"
}

func orUnnamed(profile string) string {
	if profile == "" {
		return "applied"
	}
	return profile
}

// short prints 5m0s as 5m and 1h0m0s as 1h.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
