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
	"github.com/apimdev/apimdev/internal/hostsetup"
	"github.com/apimdev/apimdev/internal/pipeline"
)

// installOptions are `apimdev docker install`'s flags.
type installOptions struct {
	dryRun, yes bool
	hostsetup.Options
}

func (a *app) dockerCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "docker", Short: "The Docker engine apimdev needs", Args: cobra.NoArgs}
	var o installOptions
	install := &cobra.Command{
		Use:   "install",
		Short: "Install and start your distribution's Docker engine (Debian, Ubuntu), showing every change and its undo first",
		Long: `install plans, then makes, what a Docker engine takes on Debian or Ubuntu, and
nothing else:

  - your distribution's docker.io package (apt-get), when Docker is not installed;
  - its own service, enabled and started (systemd; the init script without it);
  - with --access: group adds you to the docker group (docker and apimdev without
    sudo; root-equivalent), rootless sets up the packages and systemd delegation
    for rootless Docker (your own daemon, no root one), none changes nothing;
  - only on a machine whose capability bounding set lacks CAP_SYS_RESOURCE (some
    VMs), and only with --runtime-wrapper: apimdev's runc wrapper as Docker's
    default runtime (in a new /etc/docker/daemon.json).

No firewall rule, no daemon started by hand, no other setting. The plan is
printed first, each step with its undo; --dry-run stops there. At a terminal
it asks before changing anything (--yes does not ask); run as a user, it runs
the same plan through sudo. On macOS and Windows, start Docker Desktop (or
Colima, Rancher Desktop, OrbStack) instead.`,
		Example: `  apimdev docker install --dry-run
  sudo apimdev docker install --yes --access group`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.dockerInstall(cmd.Context(), o) },
	}
	f := install.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan (every change and its undo) and change nothing")
	f.BoolVarP(&o.yes, "yes", "y", false, "make the changes without asking")
	f.StringVar(&o.Access, "access", "", "how you reach Docker: group (the docker group: no sudo, root-equivalent), rootless (Docker as your user) or none (sudo)")
	f.BoolVar(&o.RuntimeWrapper, "runtime-wrapper", false, "where this machine lacks CAP_SYS_RESOURCE (some VMs): make apimdev's runc wrapper Docker's default runtime, so kind's privileged nodes can start")
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
	}, install)
	return cmd
}

// interactive says a person can answer questions here.
func (a *app) interactive() bool { return a.streams.Terminal && isTerminal(a.streams.In) }

// dockerInstall plans the install, shows it, and makes it with consent:
// directly as root, else by running the same command through sudo with
// the answers given here.
func (a *app) dockerInstall(ctx context.Context, o installOptions) error {
	h := hostsetup.Detect(ctx, a.getenv)
	if o.Access == "" && !o.dryRun && !o.yes && a.interactive() {
		o.Access = a.askAccess(h)
	}
	plan, err := hostsetup.PlanDocker(h, o.Options)
	if err != nil {
		return err
	}
	plan.Print(a.streams.Out, "apimdev docker install: what it changes on this machine")
	if o.dryRun {
		fmt.Fprintln(a.streams.Out, "dry run: nothing was changed")
		return nil
	}
	if len(plan.Steps) == 0 {
		return nil
	}
	if !o.yes {
		if !a.interactive() {
			return &usageError{"no terminal to ask whether to make these changes: pass --yes (after reading the plan: apimdev docker install --dry-run)"}
		}
		if !a.ask("Make these changes? [y/N] ") {
			fmt.Fprintln(a.streams.Err, "nothing was changed")
			return &shownError{err: fmt.Errorf("not confirmed"), code: ExitFailure}
		}
	}
	if os.Geteuid() != 0 {
		args := []string{"docker", "install", "--yes"}
		if o.Access != "" {
			args = append(args, "--access", o.Access)
		}
		if o.RuntimeWrapper {
			args = append(args, "--runtime-wrapper")
		}
		fmt.Fprintf(a.streams.Err, "running it as root: sudo apimdev %s\n", strings.Join(args, " "))
		c := sudoSelf(ctx, args...)
		c.Stdin, c.Stdout, c.Stderr = a.streams.In, a.streams.Err, a.streams.Err
		if err := c.Run(); err != nil {
			return &shownError{err: fmt.Errorf("sudo apimdev docker install: %w", err), code: ExitFailure}
		}
		return nil
	}
	return a.applyInstall(ctx, plan)
}

func (a *app) applyInstall(ctx context.Context, plan *hostsetup.InstallPlan) error {
	rep := a.reporter(config.Default())
	var st = rep.Start("install", fmt.Sprintf("%d change(s)", len(plan.Steps)))
	err := plan.Apply(ctx, hostsetup.System{Ctx: ctx, Out: a.streams.Err}, func(i int, s hostsetup.Step, err error, done bool) {
		switch {
		case !done:
			st.Progress("%d. %s", i+1, s.Title)
		case err == nil:
			st.Progress("✓ %d. %s", i+1, s.Title)
		}
	})
	if err != nil {
		st.Fail(err)
		return &shownError{err: err, code: ExitFailure}
	}
	st.Done("Docker installed and started as planned; each step's undo is in the plan above")
	return nil
}

// askAccess asks how the user who ran this reaches Docker; "" when there is
// nobody to ask about (root) or they are in the docker group already.
func (a *app) askAccess(h hostsetup.Host) string {
	if h.GOOS != "linux" || !hostsetup.DebianLike(h.OSRelease) || h.User == "" || h.User == "root" || h.InDockerGroup {
		return ""
	}
	fmt.Fprintf(a.streams.Err, "How should %s reach Docker?\n", h.User)
	fmt.Fprintln(a.streams.Err, "  g  the docker group: docker and apimdev without sudo; whoever is in it is root on this machine without a password")
	if h.CgroupV2 {
		fmt.Fprintln(a.streams.Err, "  r  rootless Docker: Docker runs as you, no root daemon (you finish its setup as yourself)")
	}
	fmt.Fprintln(a.streams.Err, "  n  neither: docker and apimdev through sudo")
	fmt.Fprint(a.streams.Err, "[g/r/N] ")
	line, _ := bufio.NewReader(a.streams.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "g", "group":
		return hostsetup.AccessGroup
	case "r", "rootless":
		if h.CgroupV2 {
			return hostsetup.AccessRootless
		}
	}
	return hostsetup.AccessNone
}

func (a *app) ask(question string) bool {
	fmt.Fprint(a.streams.Err, question)
	line, _ := bufio.NewReader(a.streams.In).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

// offerDocker says whether a Docker engine answers. When none does, on
// Debian or Ubuntu at a terminal, it shows the install plan and makes it
// with consent (through sudo when needed). Otherwise it says what to
// install for this OS (check only; up leaves that to preflight).
func (a *app) offerDocker(ctx context.Context, output string) bool {
	if cluster.DockerAnswers(ctx) {
		return true
	}
	osr, _ := os.ReadFile("/etc/os-release")
	if output == "json" || !a.interactive() || runtime.GOOS != "linux" || !hostsetup.DebianLike(string(osr)) {
		if output == "text" {
			fmt.Fprintf(a.streams.Err, "No Docker engine answers: %s\n", cluster.DockerFixHere())
		}
		return false
	}
	fmt.Fprintln(a.streams.Err, "No Docker engine answers. apimdev can install your distribution's Docker and start its service; here is the plan.")
	if err := a.dockerInstall(ctx, installOptions{}); err != nil {
		fmt.Fprintf(a.streams.Err, "Docker was not installed: %v\n%s\n", err, cluster.DockerFixHere())
		return false
	}
	if cluster.DockerAnswers(ctx) {
		return true
	}
	fmt.Fprintln(a.streams.Err, "Docker runs, but not for you yet: if you chose the docker group, log out and back in (or run `newgrp docker`), then run this again")
	return false
}
