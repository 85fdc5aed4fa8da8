package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/tui"
)

// wizardFlags are the root command's own flags, for the wizard.
func (a *app) wizardFlags(root *cobra.Command) {
	root.Flags().Bool("accessible", false, "wizard: one question at a time and plain lines, for screen readers (or set ACCESSIBLE=1)")
}

// runRoot is `apimdev` with no command: the wizard when a person is at a
// terminal (stdin and stderr), help otherwise.
func (a *app) runRoot(cmd *cobra.Command, _ []string) error {
	noTUI, _ := cmd.Flags().GetBool("no-tui")
	if noTUI || !a.streams.Terminal || !isTerminal(a.streams.In) {
		return cmd.Help()
	}
	return a.wizard(cmd)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// wizard runs the terminal wizard over the same pipeline as `up`. Settings
// prefill the form (defaults or what up last applied, then apimdev.yaml,
// APIMDEV_*, flags); problems in them are for the form to show, field by
// field.
func (a *app) wizard(cmd *cobra.Command) error {
	// What up last applied to this cluster (the state directory's copy of
	// the cluster's record) is the base, so running apimdev again to resume
	// needs no typing but the token.
	first, err := a.overlay(cmd, config.Default())
	if err != nil {
		return err
	}
	cfg, err := a.overlay(cmd, pipeline.Remembered(a.getenv, first.Cluster.Name))
	if err != nil {
		return err
	}
	// Problems in the settings are for the form to show, field by field.
	file := a.configFile
	if _, err := os.Stat(config.DefaultFile); file == "" && err == nil {
		file = config.DefaultFile
	}
	self, _ := os.Executable()
	runner := &tui.PipelineRunner{Getenv: a.getenv, Version: Version, Self: self, ConfigFile: a.configFile,
		DeployTimeout: 3 * time.Minute, PromoteTimeout: 5 * time.Minute}
	opts := tui.Options{
		Config:     cfg,
		ConfigFile: file,
		Getenv:     a.getenv,
		Runner:     runner,
		Promoter:   runner.Promoter(),
		Sampler:    runner.Sampler(),
	}
	run := tui.Run
	accessible, _ := cmd.Flags().GetBool("accessible")
	if accessible || a.getenv("ACCESSIBLE") != "" || a.getenv("TERM") == "dumb" {
		run = tui.RunAccessible
	}
	o, err := run(cmd.Context(), opts, a.streams.In, a.streams.Err)
	switch {
	case err != nil:
		return err
	case o.Interrupted:
		return &shownError{err: context.Canceled, code: ExitInterrupted}
	case o.Err != nil:
		return &shownError{err: o.Err, code: ExitFailure}
	case errors.Is(o.PromoteErr, context.Canceled):
		return &shownError{err: o.PromoteErr, code: ExitInterrupted}
	case o.PromoteErr != nil:
		return &shownError{err: o.PromoteErr, code: ExitFailure}
	}
	return nil
}
