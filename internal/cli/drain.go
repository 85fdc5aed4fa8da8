package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) drainCommand() *cobra.Command {
	var o pipeline.DrainOptions
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node and move its pods elsewhere through the Eviction API, honouring the disruption budget",
		Long: `drain does what a node upgrade does to a node: it cordons it (no new pods go there)
and evicts its pods through the Eviction API, which refuses an eviction the
gateway's PodDisruptionBudget does not allow (the prod profile's allows one
gateway pod down at a time). Refused evictions are retried until the budget
allows them; drain reports the pods as they move and returns once the gateway
is whole again on the other nodes. DaemonSet and static pods stay.

It needs a cluster of several nodes: apimdev up --workers 3 --recreate.
'apimdev uncordon NODE' lets pods back.`,
		Example: `  apimdev drain apimdev-worker2
  apimdev uncordon apimdev-worker2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			o.Node = args[0]
			res, err := s.Drain(cmd.Context(), o)
			if err != nil {
				return &shownError{err: err, code: ExitFailure}
			}
			if s.Config.Output == "json" {
				a.printJSON(res)
				return nil
			}
			fmt.Fprintf(a.streams.Out, "drained %s in %.1fs: %d pod(s) evicted, %d eviction(s) refused by a disruption budget and retried\n",
				res.Node, res.Seconds, len(res.Evicted), res.Refused)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "also evict pods no controller replaces (they are lost)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long evictions and the move may take")
	return cmd
}

func (a *app) uncordonCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "uncordon NODE",
		Short: "Let the scheduler put pods on a drained node again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			if err := s.Uncordon(cmd.Context(), args[0]); err != nil {
				return &shownError{err: err, code: ExitFailure}
			}
			return nil
		},
	}
}
