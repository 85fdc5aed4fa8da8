package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"
)

// checkPodman is the runtime check on Podman: its API service answers (the
// Docker-compatible one apimdev reads images, containers and resources
// through), the podman CLI is there (kind drives Podman through it), the
// version is one kind supports, and rootless Podman has what kind's
// rootless mode needs: cgroup v2 with the CPU and memory controllers
// delegated to the user.
func (p *Preflight) checkPodman(ctx context.Context, look func(string) (string, error)) (Check, bool) {
	ep := p.Endpoint
	if p.Docker == nil {
		return Check{Problem: "no Podman API client", Fix: PodmanFix(p.goos(), os.Geteuid())}, false
	}
	if _, err := p.Docker.Ping(ctx); err != nil {
		return Check{Problem: fmt.Sprintf("Podman's API service does not answer at %s: %s", ep.Host, shortErr(err)), Fix: PodmanFix(p.goos(), os.Geteuid())}, false
	}
	v, err := p.Docker.ServerVersion(ctx)
	if err != nil {
		return Check{Problem: "Podman answered ping but not version: " + shortErr(err), Fix: "restart Podman's API service (" + PodmanFix(p.goos(), os.Geteuid()) + ")"}, false
	}
	if _, err := look("podman"); err != nil {
		return Check{Problem: "the podman command is not on PATH (kind drives Podman through it)", Fix: "install Podman (podman.io; Debian and Ubuntu: `sudo apt-get install podman`) or add it to PATH"}, true
	}
	ver := podmanVersion(v.Version, v.Components)
	if major, ok := majorOf(ver); ok && major < 3 {
		return Check{Problem: fmt.Sprintf("Podman %s is older than kind supports (3.0 or later; 4.0 or later for rootless)", ver), Fix: "upgrade Podman (podman.io/docs/installation)"}, true
	}
	info, ierr := p.Docker.Info(ctx)
	if ierr == nil {
		p.info = &info // the resources check's too: Podman takes 0.2 s to answer it
	}
	mode := "rootful"
	if ierr == nil && rootless(info) {
		mode = "rootless"
		if c, ok := rootlessProblem(info, ver, p.goos(), ep, os.Geteuid(), os.ReadFile); !ok {
			return c, true
		}
	}
	detail := fmt.Sprintf("Podman %s (%s, API %s, %s/%s)", ver, mode, v.APIVersion, v.Os, v.Arch)
	if ep.Host != "" {
		detail += " via " + ep.Host
	}
	if p.RuntimeWhy != "" {
		detail += " (" + p.RuntimeWhy + ")"
	}
	return Check{OK: true, Detail: detail}, true
}

func (p *Preflight) goos() string {
	if p.GOOS != "" {
		return p.GOOS
	}
	return currentGOOS
}

// podmanVersion is Podman's own version: the compatible API's Version is
// Podman's on Podman 4 and later, its Podman Engine component says it too.
func podmanVersion(v string, comps []types.ComponentVersion) string {
	for _, c := range comps {
		if strings.Contains(strings.ToLower(c.Name), "podman") && c.Version != "" {
			return c.Version
		}
	}
	return v
}

func majorOf(v string) (int, bool) {
	m, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, err := strconv.Atoi(m)
	return n, err == nil
}

// rootless says whether the engine runs rootless: its security options say
// so, on Docker and on Podman.
func rootless(info system.Info) bool {
	for _, o := range info.SecurityOptions {
		if strings.Contains(o, "rootless") {
			return true
		}
	}
	return false
}

// rootlessProblem is what kind's rootless mode needs and this machine lacks
// (kind's docs, "Rootless"): Podman 4 or later, cgroup v2, and on Linux the
// user's systemd slice delegating the cpu, cpuset, memory and pids
// controllers. ok is true when nothing is missing.
func rootlessProblem(info system.Info, ver, goos string, ep Endpoint, euid int, read func(string) ([]byte, error)) (Check, bool) {
	if major, ok := majorOf(ver); ok && major < 4 {
		return Check{Problem: fmt.Sprintf("rootless Podman %s: kind needs Podman 4.0 or later for rootless clusters", ver), Fix: "upgrade Podman, or run apimdev as root (sudo) for rootful Podman"}, false
	}
	if info.CgroupVersion != "" && info.CgroupVersion != "2" {
		fix := "run apimdev as root (sudo apimdev …) so Podman runs rootful, or boot with cgroup v2 (kernel option systemd.unified_cgroup_hierarchy=1)"
		if goos != "linux" {
			fix = "use a Podman machine with cgroup v2 (the default of `podman machine init`), or make it rootful: `podman machine set --rootful`"
		}
		return Check{Problem: fmt.Sprintf("rootless Podman on cgroup v%s: kind's rootless clusters need cgroup v2", info.CgroupVersion), Fix: fix}, false
	}
	if goos != "linux" || !strings.HasPrefix(ep.Host, "unix:///run/user/") && !strings.Contains(ep.Host, "/podman/podman.sock") {
		return Check{}, true // a machine's: its own systemd delegates
	}
	f := fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%d.slice/user@%d.service/cgroup.controllers", euid, euid)
	b, err := read(f)
	if err != nil {
		return Check{}, true // cannot tell: kind will say
	}
	have := strings.Fields(string(b))
	var missing []string
	for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
		if !contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return Check{}, true
	}
	return Check{
		Problem: fmt.Sprintf("rootless Podman: systemd does not delegate the %s cgroup controller(s) to your user (%s has %q), and kind's rootless nodes need them", strings.Join(missing, ", "), f, strings.TrimSpace(string(b))),
		Fix:     "delegate them: `sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=yes\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload`, then log out and in; or run apimdev as root for rootful Podman",
	}, false
}

// PodmanFix says how to get Podman's API service answering on this OS, for
// the user it runs as.
func PodmanFix(goos string, euid int) string {
	switch goos {
	case "darwin", "windows":
		return "start the Podman machine: `podman machine start` (none yet? `podman machine init --cpus 4 --memory 8192` first; Podman Desktop does both)"
	case "linux":
		if euid == 0 {
			return "start Podman's API service: `systemctl enable --now podman.socket` (or `podman system service --time=0 unix:///run/podman/podman.sock &`); no Podman? `apt-get install podman`"
		}
		return "start your Podman API service: `systemctl --user enable --now podman.socket`; rootless kind also needs cgroup v2 — or run apimdev with sudo for rootful Podman"
	}
	return "start Podman's API service (`podman system service`)"
}

// PodmanResourceFix says where a Podman machine's CPUs and memory are set.
func PodmanResourceFix(engine string) string {
	if strings.Contains(engine, "machine") {
		return "give the Podman machine more: `podman machine stop && podman machine set --cpus 4 --memory 8192 && podman machine start`"
	}
	return "free CPUs and memory on this machine (Podman's containers use the host's)"
}

// podmanLocalName is the name kind's podman provider finds ref under.
// kind qualifies a name without a registry as docker.io/<name> and pulls
// it when Podman has none; Podman names what it built or loaded without a
// registry localhost/<name>. So when Podman holds ref only as
// localhost/<name>, that is the name to give kind.
func (m *Manager) podmanLocalName(ctx context.Context, ref string) string {
	if strings.Contains(ref, "@") || hasDomain(ref) {
		return ref
	}
	info, err := m.Docker.ImageInspect(ctx, ref)
	if err != nil {
		return ref
	}
	local := ""
	for _, t := range info.RepoTags {
		switch t {
		case "docker.io/" + ref, "docker.io/library/" + ref:
			return ref
		case "localhost/" + ref:
			local = t
		}
	}
	if local != "" {
		return local
	}
	return ref
}

// hasDomain says whether an image name starts with a registry host.
func hasDomain(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// killNodes kills the cluster's node containers before kind deletes them.
// kind's podman provider removes a node with `podman rm -f`, which first
// asks it to stop with its stop signal (SIGRTMIN+3, systemd's) and waits
// the whole 10 s timeout for a node's systemd that does not exit on it;
// the cluster is being deleted, so nothing in it needs a clean stop.
// Errors are kind's to report: it deletes whatever is left.
func (m *Manager) killNodes(ctx context.Context) {
	ns, err := m.listNodes()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Docker.ContainerKill(ctx, n.String(), "SIGKILL")
		}()
	}
	wg.Wait()
}
