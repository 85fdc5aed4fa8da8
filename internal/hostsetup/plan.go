// Package hostsetup is what apimdev changes on a user's machine outside its
// own state directory to get a container engine: Debian's or Ubuntu's own
// docker.io package and the distribution's own service, the user's way to
// reach it (the docker group, or rootless Docker), and only on a machine
// that truly lacks CAP_SYS_RESOURCE, apimdev's runc wrapper.
//
// Every change is planned first, from what this machine is (Detect), and
// shown with how to undo it before anything runs (Plan.Print); Apply then
// runs the same steps and nothing else. The e2e rig's engine settings
// (egress rules, a daemon started by hand, a policy-rc.d) are the rig's
// scripts' (scripts/ci) and never part of a plan.
//
// It imports nothing of apimdev's but the runc wrapper's package, safedir
// and state's file writing, and must not import cli, tui or pipeline.
package hostsetup

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Ways the user who asked reaches the engine.
const (
	AccessGroup    = "group"    // the docker group: root-equivalent, no password
	AccessRootless = "rootless" // Docker as the user, no root daemon
	AccessNone     = "none"     // neither: docker and apimdev through sudo
)

// Where apimdev's runc wrapper goes, and how Docker knows it.
const (
	WrapperPath    = "/usr/local/libexec/apimdev/runc-capdrop"
	WrapperRuntime = "apimdev-capdrop"
	DaemonJSON     = "/etc/docker/daemon.json"
	// PolicyRCD is Debian's hook that can forbid packages to start services.
	PolicyRCD = "/usr/sbin/policy-rc.d"
	// RigPIDFile is where the e2e rig's scripts/ci/ensure-docker.sh (which
	// apimdev docker install ran before it had a plan of its own) records the
	// dockerd it started by hand.
	RigPIDFile = "/run/apimdev-dockerd.pid"
	// DelegateDropIn lets a user's systemd hand cgroup controllers to
	// rootless containers, as kind's rootless mode needs.
	DelegateDropIn = "/etc/systemd/system/user@.service.d/apimdev-delegate.conf"
)

// capSysResource is CAP_SYS_RESOURCE's bit in a capability set.
const capSysResource = 24

// Options are what the user asked of an install.
type Options struct {
	// Access is AccessGroup, AccessRootless, AccessNone, or "" (not asked:
	// nothing is changed for the user, and the plan says what each means).
	Access string
	// RuntimeWrapper installs apimdev's runc wrapper as Docker's default
	// runtime; refused where the machine has CAP_SYS_RESOURCE.
	RuntimeWrapper bool
}

// Step is one change, shown before it runs.
type Step struct {
	// Title says what it changes, in a user's words.
	Title string
	// Show is the command (or the file written) as the user would type or
	// see it.
	Show string
	// Argv runs a program; Env adds to its environment. A step has Argv, a
	// File, or Do.
	Argv []string
	Env  []string
	// File writes a new file (never over one: it must not exist).
	File *File
	// Do is a change made in Go (waiting for a process to stop, say).
	Do func(r Runner) error
	// Undo is how to take the change back, as a command line.
	Undo string
}

// File is a file a step creates.
type File struct {
	Path string
	Data []byte
	// From copies this file's bytes instead of Data (the wrapper: this
	// program itself).
	From string
	Mode uint32
}

// InstallPlan is an install: what was found, the steps, and what the user should
// know. Nothing in it has run.
type InstallPlan struct {
	Facts []string
	Steps []Step
	Notes []string
}

// PlanError says an install cannot be planned here, and what to do instead.
type PlanError struct{ Problem, Fix string }

func (e *PlanError) Error() string { return e.Problem }

// Hint is the fix.
func (e *PlanError) Hint() string { return e.Fix }

// PlanDocker plans `apimdev docker install` for h.
func PlanDocker(h Host, o Options) (*InstallPlan, error) {
	if err := check(h, o); err != nil {
		return nil, err
	}
	p := &InstallPlan{Facts: h.facts()}
	p.rigDaemon(h)
	p.packages(h, o)
	p.service(h, o)
	if err := p.wrapper(h, o); err != nil {
		return nil, err
	}
	p.access(h, o)
	if h.PolicyRCD != "" {
		p.Notes = append(p.Notes, PolicyRCD+" exists and forbids packages to start their services (an interrupted apt step of an earlier apimdev's install script could have left it, and container images carry one): "+
			"if you did not put it there, remove it (`sudo rm "+PolicyRCD+"`), or later upgrades will not restart what they update")
	}
	p.Notes = append(p.Notes, "nothing else: no firewall rule, no daemon started by hand, no other Docker setting, no "+PolicyRCD)
	return p, nil
}

func check(h Host, o Options) error {
	if h.GOOS != "linux" {
		return &PlanError{Problem: "apimdev installs a Docker engine on Debian and Ubuntu only; this is " + h.GOOS,
			Fix: "install Docker Desktop (or Colima, Rancher Desktop, OrbStack) and start it"}
	}
	if !DebianLike(h.OSRelease) {
		return &PlanError{Problem: "apimdev installs a Docker engine on Debian and Ubuntu only; this is " + h.osName(),
			Fix: "install your distribution's Docker package (see https://docs.docker.com/engine/install/) and start its service"}
	}
	switch o.Access {
	case "", AccessGroup, AccessNone:
	case AccessRootless:
		if !h.CgroupV2 {
			return &PlanError{Problem: "rootless Docker cannot run kind's nodes on this machine: it has cgroup v1, and kind's rootless mode needs cgroup v2",
				Fix: "choose --access group (root-equivalent) or none, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)"}
		}
		if h.User == "" || h.User == "root" {
			return &PlanError{Problem: "rootless Docker is set up for a user, and no user but root asked (run it with sudo from your own account)",
				Fix: "sudo apimdev docker install --access rootless, from the account that will run apimdev"}
		}
	default:
		return &PlanError{Problem: fmt.Sprintf("--access %q is not a way to reach Docker", o.Access), Fix: "use --access group, rootless or none"}
	}
	if o.Access == AccessGroup && (h.User == "" || h.User == "root") {
		return &PlanError{Problem: "--access group adds a user to the docker group, and no user but root asked",
			Fix: "run it with sudo from the account that will run apimdev, or leave out --access"}
	}
	if o.RuntimeWrapper && h.HasCapSysResource() {
		return &PlanError{Problem: "--runtime-wrapper: this machine's capability bounding set has CAP_SYS_RESOURCE, so Docker needs no wrapper",
			Fix: "leave out --runtime-wrapper"}
	}
	return nil
}

// rigDaemon stops a dockerd that an earlier apimdev started by hand (the
// e2e rig's script it used to run), so the distribution's service can take
// over, and removes the egress rules that script added.
func (p *InstallPlan) rigDaemon(h Host) {
	if h.RigDaemon == 0 {
		return
	}
	pid := strconv.Itoa(h.RigDaemon)
	p.Steps = append(p.Steps, Step{
		Title: "stop the dockerd an earlier apimdev started by hand (pid " + pid + "): the distribution's service replaces it",
		Show:  "kill -TERM " + pid + "; rm " + RigPIDFile,
		Do:    func(r Runner) error { return r.StopProcess(h.RigDaemon, RigPIDFile) },
		Undo:  "nothing to undo: the distribution's service runs Docker instead",
	})
	if len(h.RigRules) > 0 {
		p.Steps = append(p.Steps, Step{
			Title: "remove the rules that rejected containers' traffic out of this machine (an earlier apimdev added them; they stop the gateway reaching Azure)",
			Show:  "iptables -D " + strings.Join(h.RigRules, "; iptables -D "),
			Do: func(r Runner) error {
				var errs []error
				for _, rule := range h.RigRules {
					errs = append(errs, r.Run(append([]string{"iptables", "-D"}, strings.Fields(rule)...), nil))
				}
				return errors.Join(errs...)
			},
			Undo: "nothing to undo",
		})
	}
}

func (p *InstallPlan) packages(h Host, o Options) {
	var pkgs []string
	if !h.Has("dockerd") {
		pkgs = append(pkgs, "docker.io")
	}
	if o.Access == AccessRootless {
		for tool, pkg := range map[string]string{"newuidmap": "uidmap", "rootlesskit": "rootlesskit", "slirp4netns": "slirp4netns"} {
			if !h.Has(tool) {
				pkgs = append(pkgs, pkg)
			}
		}
		if !h.DBusUserSession {
			pkgs = append(pkgs, "dbus-user-session")
		}
	}
	if len(pkgs) == 0 {
		return
	}
	slices.Sort(pkgs)
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	p.Steps = append(p.Steps,
		Step{Title: "refresh the package lists", Show: "apt-get update", Argv: []string{"apt-get", "update"}, Env: env, Undo: "nothing to undo"},
		Step{Title: "install " + strings.Join(pkgs, ", ") + " from " + h.osName() + "'s own packages (with what they need: containerd, runc, iptables)",
			Show: "apt-get install -y --no-install-recommends " + strings.Join(pkgs, " "),
			Argv: append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...), Env: env,
			Undo: "sudo apt-get purge " + strings.Join(pkgs, " ") + " && sudo apt-get autoremove --purge (the engine's own data stays in /var/lib/docker and /etc/docker: remove them too for nothing left)"})
}

func (p *InstallPlan) service(h Host, o Options) {
	switch {
	case o.Access == AccessRootless && h.Systemd:
		// Rootless Docker is the user's daemon; the system's would be a
		// second, root-owned engine nobody asked for.
		p.Steps = append(p.Steps, Step{Title: "keep the system-wide (root) Docker service off: rootless Docker is your own daemon",
			Show: "systemctl disable --now docker.service docker.socket", Argv: []string{"systemctl", "disable", "--now", "docker.service", "docker.socket"},
			Undo: "sudo systemctl enable --now docker.service"})
	case h.Systemd:
		p.Steps = append(p.Steps, Step{Title: "enable and start the distribution's Docker service (it starts at every boot)",
			Show: "systemctl enable --now docker.service", Argv: []string{"systemctl", "enable", "--now", "docker.service"},
			Undo: "sudo systemctl disable --now docker.service docker.socket"})
	default:
		p.Steps = append(p.Steps, Step{Title: "start the distribution's Docker service (its init script: this machine does not run systemd)",
			Show: "service docker start", Argv: []string{"service", "docker", "start"}, Undo: "sudo service docker stop"})
		p.Notes = append(p.Notes, "this machine does not run systemd, so Docker will not start at boot by itself: `sudo service docker start` after each boot (on WSL 2, set [boot] systemd=true in /etc/wsl.conf instead)")
	}
}

// wrapper adds apimdev's runc wrapper where the machine lacks
// CAP_SYS_RESOURCE and the user asked for it; elsewhere it says why kind's
// nodes would not start.
func (p *InstallPlan) wrapper(h Host, o Options) error {
	if h.HasCapSysResource() {
		return nil
	}
	why := "this machine's capability bounding set lacks CAP_SYS_RESOURCE (seen in some VMs and containers), which every privileged container asks for: kind's nodes cannot start under a stock Docker here"
	if !o.RuntimeWrapper {
		p.Notes = append(p.Notes, why+"; `apimdev docker install --runtime-wrapper` makes apimdev's runc wrapper Docker's default runtime (it takes out of each container's spec the capabilities this machine does not have)")
		return nil
	}
	cfg := fmt.Sprintf("{\n  \"runtimes\": {\"%s\": {\"path\": \"%s\"}},\n  \"default-runtime\": \"%s\"", WrapperRuntime, WrapperPath, WrapperRuntime)
	if h.DockerdMajor == 0 || h.DockerdMajor < 25 {
		// Lowering dockerd's own OOM score needs the capability too (the
		// option is gone from Docker 25 on).
		cfg += ",\n  \"oom-score-adjust\": 0"
	}
	cfg += "\n}\n"
	install := Step{Title: "install apimdev's runc wrapper (this apimdev, run under the name runc-capdrop)", Show: "install -m 0755 " + h.Self + " " + WrapperPath,
		File: &File{Path: WrapperPath, From: h.Self, Mode: 0o755}, Undo: "sudo rm " + WrapperPath}
	if h.DaemonJSONFound {
		if string(h.DaemonJSON) != cfg {
			return &PlanError{Problem: DaemonJSON + " exists: apimdev does not rewrite a Docker configuration it did not create",
				Fix: fmt.Sprintf(`add "runtimes": {"%s": {"path": "%s"}} and "default-runtime": "%s" to it yourself, copy apimdev to %s, and restart Docker`, WrapperRuntime, WrapperPath, WrapperRuntime, WrapperPath)}
		}
		// An earlier install made it: only the wrapper itself may be newer.
		p.Notes = append(p.Notes, why+": Docker already uses apimdev's runc wrapper ("+DaemonJSON+" is apimdev's)")
		p.Steps = append(p.Steps, install)
		return nil
	}
	restart := Step{Title: "restart Docker so it uses the wrapper", Show: "systemctl restart docker.service", Argv: []string{"systemctl", "restart", "docker.service"},
		Undo: "(with the two files above removed) sudo systemctl restart docker.service"}
	if !h.Systemd {
		restart.Show, restart.Argv, restart.Undo = "service docker restart", []string{"service", "docker", "restart"}, "(with the two files above removed) sudo service docker restart"
	}
	p.Notes = append(p.Notes, why+": apimdev's runc wrapper becomes Docker's default runtime, as you asked")
	p.Steps = append(p.Steps, install,
		Step{Title: "make it Docker's default runtime (" + DaemonJSON + ", a new file)", Show: "write " + DaemonJSON + ":\n" + cfg,
			File: &File{Path: DaemonJSON, Data: []byte(cfg), Mode: 0o644}, Undo: "sudo rm " + DaemonJSON},
		restart)
	return nil
}

func (p *InstallPlan) access(h Host, o Options) {
	user := h.User
	groupMeans := "the docker group: docker and apimdev work without sudo, but whoever is in it can start privileged containers, which is root on this machine without a password"
	rootlessMeans := "rootless Docker: Docker runs as your user, with no root daemon; kind supports it on cgroup v2 with the cpu, cpuset, memory and pids controllers delegated (apimdev's preflight checks them)"
	switch o.Access {
	case AccessGroup:
		if h.InDockerGroup {
			p.Notes = append(p.Notes, user+" is already in the docker group")
			return
		}
		p.Steps = append(p.Steps, Step{Title: "add " + user + " to the docker group (" + groupMeans + ")",
			Show: "usermod -aG docker " + user, Argv: []string{"usermod", "-aG", "docker", user}, Undo: "sudo gpasswd -d " + user + " docker"})
		p.Notes = append(p.Notes, "log out and back in (or run `newgrp docker`) for the docker group to take effect")
	case AccessRootless:
		if !h.DelegateFound {
			p.Steps = append(p.Steps, Step{Title: "let your user's systemd delegate the cgroup controllers kind's rootless nodes need (" + DelegateDropIn + ", a new file)",
				Show: "write " + DelegateDropIn + ":\n[Service]\nDelegate=yes\n", File: &File{Path: DelegateDropIn, Data: []byte("# Written by apimdev docker install --access rootless (kind's rootless mode).\n[Service]\nDelegate=yes\n"), Mode: 0o644},
				Undo: "sudo rm " + DelegateDropIn + " && sudo systemctl daemon-reload"},
				Step{Title: "reload systemd's units", Show: "systemctl daemon-reload", Argv: []string{"systemctl", "daemon-reload"}, Undo: "nothing to undo"})
		}
		p.Notes = append(p.Notes, "then, as "+user+" (not root): `dockerd-rootless-setuptool.sh install` (Debian and Ubuntu ship it in /usr/share/docker.io/contrib/), log out and back in, and `export DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock`; apimdev finds that socket by itself")
	case AccessNone:
		p.Notes = append(p.Notes, "no change for "+orSomeone(user)+": Docker's socket is root's, so run docker and apimdev with sudo")
	default:
		p.Notes = append(p.Notes, "nothing is changed for "+orSomeone(user)+" (Docker's socket is root's: docker and apimdev need sudo); choose with --access: group is "+groupMeans+"; rootless is "+rootlessMeans)
	}
}

func orSomeone(user string) string {
	if user == "" {
		return "your user"
	}
	return user
}
