package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/diagnose"
)

func (a *app) doctorCommand() *cobra.Command {
	var bundle string
	var nodeLogs bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Write a redacted diagnostics bundle (tar.gz): version, preflight, events, pods, logs, kind's node logs",
		Long: `doctor collects what it takes to understand a problem into one tar.gz file,
readable by you only (0600): apimdev's version, the preflight checks, the state
of the cluster and of the background forward, the gateway namespace's events,
a describe-like summary of its pods and workloads, their logs, and the nodes'
logs (journal, kubelet, containerd, /var/log), streamed straight into the
bundle.

The gateway token and client secret, and anything shaped like a secret
(tokens, private keys, JWTs, Entra client secrets, passwords in URLs,
kubeconfig credentials, Authorization and subscription-key headers), are
replaced by <redacted> in every file, so the bundle can be attached to an
issue. doctor only reads: it changes nothing, and it works when Docker or the
cluster is down (the bundle then says what could not be collected).`,
		Example: `  apimdev doctor
  apimdev doctor --bundle /tmp/apimdev-doctor.tar.gz --node-logs=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.doctor(cmd, bundle, nodeLogs) },
	}
	cmd.Flags().StringVar(&bundle, "bundle", "", "where to write the bundle (default ./apimdev-doctor-<cluster>-<time>.tar.gz)")
	cmd.Flags().BoolVar(&nodeLogs, "node-logs", true, "include the nodes' logs (takes a few seconds)")
	return cmd
}

func (a *app) doctor(cmd *cobra.Command, bundle string, nodeLogs bool) error {
	s, _, err := a.session(cmd, opening{existing: true})
	if err != nil {
		return err
	}
	cfg := s.Config
	ctx := cmd.Context()
	now := time.Now()
	if bundle == "" {
		bundle = diagnose.DefaultPath(cfg.Cluster.Name, now)
	}
	if abs, err := filepath.Abs(bundle); err == nil {
		bundle = abs
	}
	userTok, _ := a.loadToken(cfg)
	c := s.Diagnostics(ctx, Version, nodeLogs, now, userTok)
	st := s.Rep.Start("doctor", "collecting diagnostics for cluster "+cfg.Cluster.Name)
	c.Progress = st.Progress
	sum, err := c.Write(ctx, bundle)
	if err != nil {
		return st.Fail(fmt.Errorf("writing the diagnostics bundle: %w", err))
	}
	incomplete := 0
	for _, sec := range sum.Sections {
		if sec.Error != "" {
			incomplete++
		}
	}
	detail := fmt.Sprintf("wrote %s (%d files, %d KiB, %d redaction(s))", sum.Path, sum.Files, (sum.Bytes+1023)/1024, sum.Redactions)
	if incomplete > 0 {
		detail += fmt.Sprintf("; %d section(s) incomplete, see README.txt in the bundle", incomplete)
	}
	st.Done(detail)
	if cfg.Output == "json" {
		a.printJSON(sum)
	} else {
		fmt.Fprintln(a.streams.Out, sum.Path)
	}
	return nil
}
