package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/helmvalues"
	"github.com/apimdev/apimdev/internal/pipeline"
)

// credentialsCommand is `credentials rotate`; tokenCommand keeps the older
// `token rotate` working, the same command under its first name.
func (a *app) credentialsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Work with the gateway's credentials: its token, or its Entra app's client secret",
	}
	cmd.AddCommand(a.rotateCommand("credentials"))
	return cmd
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Work with the gateway's token (credentials rotate is the same, for every authentication mode)",
	}
	cmd.AddCommand(a.rotateCommand("token"))
	return cmd
}

func (a *app) rotateCommand(parent string) *cobra.Command {
	var o promoteOptions
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Put a new token or client secret into the gateway's Secret and restart the pods without losing a request",
		Long: parent + ` rotate reads the new credential of the gateway's authentication mode, writes
it into the gateway's Secret, and restarts the gateway pods within the
Deployment's rollout bounds while steady traffic flows through the forward,
reporting requests sent, failed and p50/p99.

  token (the default): the new token from --token-file (or - for stdin, or
    APIMDEV_TOKEN). Tokens are valid for at most 30 days: generate the new one
    in the portal (Gateways > Deployment) before the old expires.
  entraApp: the app's new client secret from --client-secret-file (or - for
    stdin, or APIMDEV_CLIENT_SECRET). Add the new secret in Entra ID first,
    rotate, then delete the old one there.
  workloadIdentity: nothing to rotate (no secret).`,
		Example: `  apimdev ` + parent + ` rotate --token-file new.token
  pbpaste | apimdev ` + parent + ` rotate --token-file -
  apimdev ` + parent + ` rotate --client-secret-file new-secret.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, existing: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			cfg := s.Config
			switch cfg.Gateway.Auth.Mode() {
			case config.AuthWorkloadIdentity:
				return &usageError{"this gateway authenticates with workload identity: there is no secret to rotate (the federated credential is Entra ID's)"}
			case config.AuthEntraApp:
				if !cmd.Flags().Changed("client-secret-file") && a.getenv("APIMDEV_CLIENT_SECRET") == "" {
					return &usageError{parent + " rotate needs the Entra app's new client secret: pass --client-secret-file FILE (or - for stdin) or set APIMDEV_CLIENT_SECRET"}
				}
			default:
				if !cmd.Flags().Changed("token-file") && a.getenv("APIMDEV_TOKEN") == "" {
					return &usageError{parent + " rotate needs the new token: pass --token-file FILE (or - for stdin) or set APIMDEV_TOKEN"}
				}
			}
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
	rateFlag(f, "traffic during the restart, requests/s (default 20)")
	f.StringVar(&o.trafficPath, "traffic-path", "", "path requested during the restart (default: the smoke spec's first GET, else the health path)")
	f.StringArrayVar(&o.headers, "traffic-header", nil, "header for the traffic, NAME=VALUE; ${VAR} takes VALUE from the environment")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long the restart may take")
	return rotate
}

func (a *app) exportCommand() *cobra.Command {
	var profile, dir, format, chartVersion string
	var include bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the prod profile as plain manifests and a kustomization for a real cluster",
		Long: `export writes one manifest per object of the prod profile into a directory, with
the production resource requests (never the ones fitted to this machine), a
ReadWriteMany backup volume, the pinned image, and a kustomization.yaml whose
secretGenerator reads the credential: the token from gateway.token, or with
--auth entra-app the client secret from client-secret.env (workload identity
needs none). It is not written unless --include-token (then from --token-file
or APIMDEV_TOKEN, or --client-secret-file or APIMDEV_CLIENT_SECRET).

--format helm-values writes the same profile for Microsoft's Helm chart
(azure-api-management-gateway, --chart-version): values.yaml with all the chart
can express, overlay/ (a kustomization over the chart's render, or a Helm
post-renderer) with the rest, and a README of which is which. No credential
is written: the chart reads it from an existing Secret.`,
		Example: `  apimdev export --profile prod -o ./gateway-prod && kubectl apply -k ./gateway-prod
  apimdev export --format helm-values -o ./gateway-helm --chart-version 1.15.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile != "prod" {
				return &usageError{fmt.Sprintf("--profile %q: only prod is exported (render --profile dev prints dev)", profile)}
			}
			if dir == "" {
				return &usageError{"export needs a directory: -o DIR"}
			}
			switch format {
			case "manifests":
			case "helm-values":
				if include {
					return &usageError{"--include-token: a helm-values export never holds a credential (the chart reads it from an existing Secret; see its README)"}
				}
			default:
				return &usageError{fmt.Sprintf("--format %q: manifests (default) or helm-values", format)}
			}
			if format != "helm-values" && cmd.Flags().Changed("chart-version") {
				return &usageError{"--chart-version goes with --format helm-values"}
			}
			if _, err := helmvalues.AppVersion(chartVersion); err != nil {
				return &usageError{"--chart-version: " + err.Error()}
			}
			s, _, err := a.session(cmd, opening{existing: true})
			if err != nil {
				return err
			}
			if format == "helm-values" {
				files, err := s.ExportHelmValues(cmd.Context(), dir, chartVersion)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "wrote %d files to %s:\n", len(files), dir)
				for _, f := range files {
					fmt.Fprintf(a.streams.Out, "  %s\n", f)
				}
				fmt.Fprintf(a.streams.Out, "values.yaml is for chart %s %s; overlay/ adds what the chart cannot express; see %s\n",
					helmvalues.Chart, chartVersion, filepath.Join(dir, "README.md"))
				if left := s.ExportLeavesOut(cmd.Context()); left != "" {
					fmt.Fprintln(a.streams.Out, left)
				}
				return nil
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
				fmt.Fprintln(a.streams.Out, s.ExportHint(dir))
			}
			if left := s.ExportLeavesOut(cmd.Context()); left != "" {
				fmt.Fprintln(a.streams.Out, left)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "prod", "profile to export: prod")
	// -o names the directory here, as `kubectl`-style export tools do; it
	// shadows the global output-format flag for this command only.
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write (created 0700; files 0600)")
	cmd.Flags().StringVar(&format, "format", "manifests", "what to write: manifests (one file per object and a kustomization) or helm-values (values.yaml for Microsoft's chart and an overlay)")
	cmd.Flags().StringVar(&chartVersion, "chart-version", helmvalues.DefaultChartVersion, "with --format helm-values: the chart version to write for ("+strings.Join(helmvalues.KnownVersions(), ", ")+")")
	cmd.Flags().BoolVar(&include, "include-token", false, "also write the credential into gateway.token or client-secret.env (0600)")
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
