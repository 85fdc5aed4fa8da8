package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) dockerCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "docker", Short: "The Docker engine apimdev needs", Args: cobra.NoArgs}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Exit 0 when the container runtime answers (Docker, or Podman when cluster.runtime or the environment chooses it), printing which; else offer to install Docker (Debian, Ubuntu) or say what to install",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if choice, up := pipeline.RuntimeAnswers(cmd.Context(), cfg, a.getenv); choice.Endpoint.RuntimeIs(cluster.RuntimePodman) {
				if !up {
					return &shownError{err: fmt.Errorf("Podman does not answer at %s (%s): %s", choice.Endpoint.Host, choice.Why, cluster.PodmanFix(runtime.GOOS, os.Geteuid())), code: ExitFailure}
				}
				fmt.Fprintf(a.streams.Err, "Podman answers at %s (%s)\n", choice.Endpoint.Host, choice.Why)
				fmt.Fprintln(a.streams.Out, "podman")
				return nil
			}
			if a.offerDocker(cmd.Context(), "text") {
				fmt.Fprintln(a.streams.Out, "docker")
				return nil
			}
			return &shownError{err: fmt.Errorf("no Docker engine"), code: ExitFailure}
		},
	}, &cobra.Command{
		Use:   "install",
		Short: "Install and start a Docker engine (Debian and Ubuntu: the distribution's docker.io)",
		Long: `install runs apimdev's scripts/ci/ensure-docker.sh (embedded in apimdev): it
installs Debian's docker.io with apt-get when no engine is installed, starts
dockerd, and where this machine's kernel withholds a capability kind's nodes ask
for, makes a small runc wrapper the engine's default runtime. On macOS and
Windows, start Docker Desktop (or Colima, Rancher Desktop, OrbStack) instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return pipeline.InstallDocker(cmd.Context(), a.streams.Err)
		},
	})
	return cmd
}

// offerDocker says whether a Docker engine answers. When none does, on
// Debian or Ubuntu at a terminal, it asks whether to install and start one;
// yes runs `apimdev docker install` (through sudo when needed). Otherwise it
// says what to install for this OS (check only; up leaves that to
// preflight).
func (a *app) offerDocker(ctx context.Context, output string) bool {
	if pipeline.DockerAnswers(ctx) {
		return true
	}
	interactive := output != "json" && a.streams.Terminal && isTerminal(a.streams.In)
	if !interactive || !pipeline.CanInstallDocker() {
		if output == "text" {
			fmt.Fprintf(a.streams.Err, "No Docker engine answers: %s\n", pipeline.DockerFix())
		}
		return false
	}
	fmt.Fprint(a.streams.Err, "No Docker engine answers. Install Debian's docker.io and start it now (apimdev docker install, with sudo)? [y/N] ")
	line, _ := bufio.NewReader(a.streams.In).ReadString('\n')
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		fmt.Fprintf(a.streams.Err, "not installed: %s\n", pipeline.DockerFix())
		return false
	}
	if err := a.installDocker(ctx); err != nil {
		fmt.Fprintf(a.streams.Err, "could not install Docker: %v\n", err)
		return false
	}
	return pipeline.DockerAnswers(ctx)
}

func (a *app) installDocker(ctx context.Context) error {
	if os.Geteuid() == 0 {
		return pipeline.InstallDocker(ctx, a.streams.Err)
	}
	c := sudoSelf(ctx, "docker", "install")
	c.Stdin, c.Stdout, c.Stderr = a.streams.In, a.streams.Err, a.streams.Err
	return c.Run()
}
