package hostsetup

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/apimdev/apimdev/scripts/ci/runc-capdrop/capdrop"
)

// Host is what this machine is, as far as an engine install goes. Detect
// reads it; tests build it.
type Host struct {
	GOOS      string
	OSRelease string // /etc/os-release
	// Systemd says systemd runs as init (/run/systemd/system exists).
	Systemd bool
	// CapBnd is this process's capability bounding set; CapKnown says it
	// could be read (Linux).
	CapBnd   uint64
	CapKnown bool
	CgroupV2 bool
	// Tools are the programs on PATH or in the system directories.
	Tools map[string]bool
	// DockerdMajor is the installed dockerd's major version (0: unknown).
	DockerdMajor int
	// User is who asked: SUDO_USER under sudo, else the current user.
	User            string
	InDockerGroup   bool
	DBusUserSession bool
	DelegateFound   bool
	// PolicyRCD is /usr/sbin/policy-rc.d's text when it exists.
	PolicyRCD string
	// DaemonJSON is /etc/docker/daemon.json's text when DaemonJSONFound.
	DaemonJSON      []byte
	DaemonJSONFound bool
	// RigDaemon is the pid of a dockerd an earlier apimdev started by hand
	// (the e2e rig's script), 0 for none; RigRules are the DOCKER-USER
	// rules it added (iptables -S form without -A), when readable (root).
	RigDaemon int
	RigRules  []string
	// Self is this program, which the runtime wrapper is a copy of.
	Self string
}

// Has says the program is on this machine.
func (h Host) Has(tool string) bool { return h.Tools[tool] }

// HasCapSysResource says the machine can give privileged containers
// CAP_SYS_RESOURCE (unknown counts as yes: no wrapper on a guess).
func (h Host) HasCapSysResource() bool { return !h.CapKnown || h.CapBnd&(1<<capSysResource) != 0 }

func (h Host) osName() string {
	if v := osField(h.OSRelease, "PRETTY_NAME"); v != "" {
		return v
	}
	if v := osField(h.OSRelease, "NAME"); v != "" {
		return v
	}
	return "this distribution"
}

func (h Host) facts() []string {
	f := []string{h.osName()}
	if h.Systemd {
		f = append(f, "systemd")
	} else {
		f = append(f, "no systemd")
	}
	if h.Has("dockerd") {
		v := "Docker installed"
		if h.DockerdMajor > 0 {
			v += " (" + strconv.Itoa(h.DockerdMajor) + ".x)"
		}
		f = append(f, v)
	} else {
		f = append(f, "Docker not installed")
	}
	switch {
	case !h.CapKnown:
	case h.HasCapSysResource():
		f = append(f, "CAP_SYS_RESOURCE present")
	default:
		f = append(f, "CAP_SYS_RESOURCE missing")
	}
	if h.CgroupV2 {
		f = append(f, "cgroup v2")
	} else {
		f = append(f, "cgroup v1")
	}
	return f
}

// DebianLike says /etc/os-release names Debian or Ubuntu (or a derivative).
func DebianLike(osRelease string) bool {
	for _, k := range []string{"ID", "ID_LIKE"} {
		for _, id := range strings.Fields(osField(osRelease, k)) {
			if id == "debian" || id == "ubuntu" {
				return true
			}
		}
	}
	return false
}

func osField(osRelease, key string) string {
	for _, l := range strings.Split(osRelease, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// Detect reads this machine. It changes nothing and needs no root (what
// only root can read, the rig's firewall rules, is left out without it).
func Detect(ctx context.Context, getenv func(string) string) Host {
	h := Host{GOOS: runtime.GOOS, Tools: map[string]bool{}}
	if h.GOOS != "linux" {
		return h
	}
	b, _ := os.ReadFile("/etc/os-release")
	h.OSRelease = string(b)
	h.Systemd = isDir("/run/systemd/system")
	bnd, err := capdrop.BoundingSet()
	h.CapBnd, h.CapKnown = bnd, err == nil
	h.CgroupV2 = exists("/sys/fs/cgroup/cgroup.controllers")
	for _, t := range []string{"dockerd", "docker", "newuidmap", "rootlesskit", "slirp4netns"} {
		h.Tools[t] = findTool(t) != ""
	}
	h.DockerdMajor = dockerdMajor(ctx)
	h.User = getenv("SUDO_USER")
	if h.User == "" {
		if u, err := user.Current(); err == nil {
			h.User = u.Username
		}
	}
	h.InDockerGroup = inGroup(h.User, "docker")
	h.DBusUserSession = exists("/usr/lib/systemd/user/dbus.socket") || exists("/lib/systemd/user/dbus.socket")
	h.DelegateFound = exists(DelegateDropIn)
	if p, err := os.ReadFile(PolicyRCD); err == nil {
		h.PolicyRCD = string(p)
	}
	if b, err := os.ReadFile(DaemonJSON); err == nil {
		h.DaemonJSON, h.DaemonJSONFound = b, true
	}
	h.RigDaemon = rigDaemon()
	if h.RigDaemon != 0 && os.Geteuid() == 0 {
		h.RigRules = rigRules(ctx)
	}
	h.Self, _ = os.Executable()
	return h
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func isDir(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }

// findTool looks on PATH, then in the system directories sudo's secure
// path would search.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if p := filepath.Join(d, name); exists(p) {
			return p
		}
	}
	return ""
}

var versionRE = regexp.MustCompile(`version (\d+)\.`)

func dockerdMajor(ctx context.Context) int {
	p := findTool("dockerd")
	if p == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	if err != nil {
		return 0
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func inGroup(name, group string) bool {
	if name == "" {
		return false
	}
	u, err := user.Lookup(name)
	if err != nil {
		return false
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	ids, _ := u.GroupIds()
	for _, id := range ids {
		if id == g.Gid {
			return true
		}
	}
	return false
}

// rigDaemon is the pid recorded in RigPIDFile when that process is a
// dockerd still running; 0 otherwise.
func rigDaemon() int {
	b, err := os.ReadFile(RigPIDFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
		return 0
	}
	return pid
}

// rigRuleRE matches the egress rules scripts/ci/ensure-docker.sh added.
var rigRuleRE = regexp.MustCompile(`^-A (DOCKER-USER -i (docker0|br-\+) -o \S+ -j REJECT --reject-with icmp-net-unreachable)$`)

func rigRules(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iptables", "-S", "DOCKER-USER").Output()
	if err != nil {
		return nil
	}
	return RigRules(string(out))
}

// RigRules picks, from `iptables -S DOCKER-USER`, the rules the rig's
// script added (each without its -A, ready for -D).
func RigRules(listing string) []string {
	var rules []string
	for _, l := range strings.Split(listing, "\n") {
		if m := rigRuleRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			rules = append(rules, m[1])
		}
	}
	return rules
}
