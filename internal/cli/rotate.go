package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Work with the gateway's token",
	}
	var o promoteOptions
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Put a new token into the gateway's Secret and restart the pods without losing a request",
		Long: `token rotate reads the new token from --token-file (or - for stdin, or APIMDEV_TOKEN),
writes it into the gateway's Secret, and restarts the gateway pods within the
Deployment's rollout bounds while steady traffic flows through the forward,
reporting requests sent, failed and p50/p99. Tokens are valid for at most 30 days:
generate the new one in the portal (Gateways > Deployment) before the old expires.`,
		Example: `  apimdev token rotate --token-file new.token
  pbpaste | apimdev token rotate --token-file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("token-file") && a.getenv("APIMDEV_TOKEN") == "" {
				return &usageError{"token rotate needs the new token: pass --token-file FILE (or - for stdin) or set APIMDEV_TOKEN"}
			}
			a.adjust = o.apply
			s, lock, err := a.existing(cmd, true)
			if err != nil {
				return err
			}
			defer lock.Release()
			cfg := s.Config
			tok, err := a.loadToken(cfg)
			if err != nil {
				return err
			}
			headers, err := a.trafficHeaders(o.headers)
			if err != nil {
				return err
			}
			res, err := s.RotateToken(cmd.Context(), tok, pipeline.PromoteOptions{Context: o.context, Timeout: o.timeout,
				Traffic: pipeline.TrafficOptions{Rate: cfg.Prod.TrafficRate, Path: o.trafficPath, Header: headers}})
			return a.finishRollout(cfg.Output, res, err)
		},
	}
	f := rotate.Flags()
	f.StringVar(&o.context, "context", "", "rotate on this context of your kubeconfig instead of the local cluster")
	f.IntVar(&o.rate, "rate", 0, "traffic during the restart, requests/s (default 20)")
	f.StringVar(&o.trafficPath, "traffic-path", "", "path requested during the restart (default: the smoke spec's first GET, else the health path)")
	f.StringArrayVar(&o.headers, "traffic-header", nil, "header for the traffic, NAME=VALUE; ${VAR} takes VALUE from the environment")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long the restart may take")
	cmd.AddCommand(rotate)
	return cmd
}

func (a *app) exportCommand() *cobra.Command {
	var profile, dir string
	var include bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the prod profile as plain manifests and a kustomization for a real cluster",
		Long: `export writes one manifest per object of the prod profile into a directory, with
the production resource requests (never the ones fitted to this machine), a
ReadWriteMany backup volume, the pinned image, and a kustomization.yaml whose
secretGenerator reads the token from gateway.token. The token is not written
unless --include-token (then from --token-file or APIMDEV_TOKEN).`,
		Example: `  apimdev export --profile prod -o ./gateway-prod && kubectl apply -k ./gateway-prod`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile != "prod" {
				return &usageError{fmt.Sprintf("--profile %q: only prod is exported (render --profile dev prints dev)", profile)}
			}
			if dir == "" {
				return &usageError{"export needs a directory: -o DIR"}
			}
			s, _, err := a.existing(cmd, false)
			if err != nil {
				return err
			}
			tok, tokErr := a.loadToken(s.Config)
			if include && tokErr != nil {
				return tokErr
			}
			files, err := s.Export(cmd.Context(), dir, tok, include)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "wrote %d files to %s:\n", len(files), dir)
			for _, f := range files {
				fmt.Fprintf(a.streams.Out, "  %s\n", f)
			}
			if !include {
				fmt.Fprintf(a.streams.Out, "the token is not in them: copy %s.example to %s, paste your token, then `kubectl apply -k %s`\n", pipeline.TokenFileName, pipeline.TokenFileName, dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "prod", "profile to export: prod")
	// -o names the directory here, as `kubectl`-style export tools do; it
	// shadows the global output-format flag for this command only.
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write (created 0700; files 0600)")
	cmd.Flags().BoolVar(&include, "include-token", false, "also write the token into gateway.token (0600)")
	return cmd
}

// finishRollout prints a promote or rotate result and turns failed checks
// into the exit code.
func (a *app) finishRollout(output string, res *pipeline.PromoteResult, err error) error {
	if res != nil && output == "json" {
		a.printJSON(res)
	} else if res != nil && !res.Declined {
		a.printPromote(res)
	}
	if err != nil && !events.WasReported(err) {
		return err // not told by any step yet: the top level shows it
	}
	if err != nil {
		return &shownError{err: err, code: ExitFailure}
	}
	for _, c := range res.Checks {
		if !c.OK {
			return &shownError{err: fmt.Errorf("check %s failed: %s", c.Name, c.Detail), code: ExitFailure}
		}
	}
	return nil
}
