package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/state"
)

func (a *app) pauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause",
		Short: "Freeze the cluster's nodes (the engine's pause): no CPU used until `apimdev resume`",
		Long: `pause freezes the node containers of the cluster apimdev made with the container
engine's pause (Docker or Podman: the cgroup freezer). Nothing in them runs and
nothing is lost: memory, pods and their state stay as they are. The background
forward keeps its ports and holds new connections until the cluster is resumed.

apimdev resume thaws it and answers green (smoke) without restarting a pod;
apimdev up resumes a paused cluster first; apimdev down deletes it all the same.
cluster.autoPause (--auto-pause on up) has the background forward pause the
cluster by itself after that long with no connection, and resume it for the next.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, existing: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			res, err := s.Pause(cmd.Context())
			if err != nil {
				return err
			}
			if s.Config.Output == "json" {
				a.printJSON(map[string]any{"paused": true, "nodes": res.Nodes, "since": res.Since, "already": res.Already})
				return nil
			}
			what := "paused"
			if res.Already {
				what = "was paused already"
			}
			fmt.Fprintf(a.streams.Out, "cluster %q %s: %s (since %s)\n", s.Config.Cluster.Name, what, strings.Join(res.Nodes, ", "), res.Since.Local().Format(time.TimeOnly))
			fmt.Fprintf(a.streams.Out, "the background forward holds new connections until `apimdev resume` (or `apimdev up`)\n")
			return nil
		},
	}
}

func (a *app) resumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume",
		Short: "Thaw a paused cluster, wait for the gateway's pods and run the smoke calls",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			started := time.Now()
			s, lock, err := a.session(cmd, opening{lock: true, existing: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			res, err := s.Resume(cmd.Context(), started)
			if s.Config.Output == "json" {
				// One object: the smoke calls and what the resume did.
				out := smokeJSON(s, res.Smoke)
				if err == nil {
					out["resumed"], out["nodes"], out["restarted"], out["greenSeconds"] = !res.NotPaused, res.Nodes, res.Restarted, res.Green.Seconds()
				}
				if err == nil || res.Smoke != nil {
					a.printJSON(out)
				}
				return err
			}
			if res.Smoke != nil {
				a.printSmoke(s, res.Smoke)
			}
			if err != nil {
				return err
			}
			green := res.Green.Round(time.Millisecond)
			if res.NotPaused {
				fmt.Fprintf(a.streams.Out, "cluster %q was not paused; smoke green %s after the command started\n", s.Config.Cluster.Name, green)
			} else {
				fmt.Fprintf(a.streams.Out, "resumed %s; smoke green %s after the command started\n", strings.Join(res.Nodes, ", "), green)
			}
			if len(res.Restarted) > 0 {
				fmt.Fprintf(a.streams.Out, "note: container(s) of %s restarted meanwhile (see `apimdev logs`)\n", strings.Join(res.Restarted, ", "))
			} else {
				fmt.Fprintf(a.streams.Out, "no pod restarted\n")
			}
			return nil
		},
	}
}

// pausedLine says since when and by whom a cluster is paused.
func pausedLine(p *pipeline.PausedState, now time.Time) string {
	if p.Since.IsZero() {
		return "by " + p.By + "; `apimdev resume` thaws it"
	}
	by := p.By
	switch by {
	case state.PausedByCommand:
		by = "apimdev pause"
	case state.PausedByAuto:
		by = "auto-pause (the next call through the forward resumes it)"
	}
	return fmt.Sprintf("since %s (%s ago) by %s; `apimdev resume` thaws it", p.Since.Local().Format(time.DateTime), now.Sub(p.Since).Round(time.Second), by)
}
