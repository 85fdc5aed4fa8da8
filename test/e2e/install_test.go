//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestInstall is `apimdev docker install` on a real systemd machine, as a
// Debian laptop without Docker would run it: a privileged container of the
// rig's node image (Debian 12, systemd as PID 1, no Docker), whose apt
// reads a local repository of Debian's own packages (the container cannot
// reach a mirror; the repository holds exactly what apt on this machine
// downloaded for it). The product path must install the distribution's
// docker.io, enable and start the distribution's service under systemd, and
// change nothing else: no firewall rule, no policy-rc.d, no daemon started
// by hand, no runtime change unless the machine lacks CAP_SYS_RESOURCE and
// --runtime-wrapper asks for it (this VM lacks it, so that path runs here,
// and a privileged container is started under the installed engine to prove
// it). Then every undo line the plan printed is run, and the machine is as
// before.
func TestInstall(t *testing.T) {
	nodeImage := need(t, "APIMDEV_E2E_NODE_IMAGE")
	cache := filepath.Dir(filepath.Dir(need(t, "APIMDEV_E2E_KUBECTL")))
	dir := t.TempDir()
	// A release-like apimdev: static, as the archives ship it.
	bin := filepath.Join(dir, "apimdev")
	build := exec.Command("go", "build", "-o", bin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building apimdev: %v\n%s", err, b)
	}
	start := time.Now()
	debs := localRepository(t, nodeImage, filepath.Join(cache, "install-debs"))
	t.Logf("local repository of docker.io and its dependencies: %s", time.Since(start).Round(100*time.Millisecond))

	name := "apimdev-install-laptop"
	_ = exec.Command("docker", "rm", "-f", name).Run()
	args := []string{"run", "-d", "--name", name, "--hostname", "laptop", "--privileged", "--tmpfs", "/tmp", "--tmpfs", "/run",
		"-v", "/lib/modules:/lib/modules:ro", "-v", debs + ":/debs:ro", "-v", bin + ":/usr/local/bin/apimdev:ro", nodeImage}
	if b, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, b)
	}
	t.Cleanup(func() {
		// The laptop's Docker made cgroups of its own in a cgroup v1
		// hierarchy this host does not mount (hugetlb), which would stay
		// bound after the container: the rig's node image copes (its
		// entrypoint mounts such a hierarchy), but nothing of the test
		// should outlive it. Its Docker is stopped by the undo steps (or
		// here); its empty cgroups go with it.
		_ = exec.Command("docker", "exec", name, "sh", "-c",
			"systemctl stop docker.service docker.socket 2>/dev/null; for d in /sys/fs/cgroup/*/docker; do find \"$d\" -depth -type d -exec rmdir {} \\; 2>/dev/null; done; true").Run()
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	in := func(t *testing.T, cmd string) (string, error) {
		t.Helper()
		b, err := exec.Command("docker", "exec", name, "sh", "-c", cmd).CombinedOutput()
		return string(b), err
	}
	must := func(t *testing.T, cmd string) string {
		t.Helper()
		out, err := in(t, cmd)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := in(t, "systemctl is-system-running")
		if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd did not come up in the container: %q", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The laptop's apt: Debian's packages from the local repository only.
	must(t, "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; echo 'deb [trusted=yes] file:/debs ./' > /etc/apt/sources.list.d/local.list")
	before := must(t, "iptables -S 2>/dev/null; ls /usr/sbin/policy-rc.d 2>&1; true")
	lacks := !capHasSysResource(must(t, "grep CapBnd /proc/self/status"))

	plan := must(t, "apimdev docker install --dry-run")
	t.Logf("the plan on a laptop without Docker:\n%s", plan)
	mustContain(t, "the plan", plan, "Docker not installed", "systemctl enable --now docker.service", "undo: sudo systemctl disable --now docker.service docker.socket",
		"apt-get install -y --no-install-recommends docker.io", "dry run: nothing was changed")
	mustNotContain(t, "the plan", plan, "iptables -", "nft ", "DOCKER-USER", "REJECT", "runc-capdrop\n", "daemon.json\n")
	if out, _ := in(t, "command -v dockerd"); strings.TrimSpace(out) != "" {
		t.Fatalf("--dry-run installed something: %s", out)
	}

	install := []string{"apimdev", "docker", "install", "--yes"}
	if lacks {
		install = append(install, "--runtime-wrapper")
	}
	start = time.Now()
	out, err := in(t, strings.Join(install, " ")+" 2>&1")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(install, " "), err, out)
	}
	t.Logf("%s took %s (CAP_SYS_RESOURCE missing: %v); its plan and steps:\n%s", strings.Join(install, " "), took.Round(100*time.Millisecond), lacks, lastLines(out, 40))

	t.Run("the distribution's service runs Docker, enabled at boot", func(t *testing.T) {
		if s := strings.TrimSpace(must(t, "systemctl is-enabled docker.service")); s != "enabled" {
			t.Errorf("docker.service is %s", s)
		}
		if s := strings.TrimSpace(must(t, "systemctl is-active docker.service")); s != "active" {
			t.Errorf("docker.service is %s", s)
		}
		pid := strings.TrimSpace(must(t, "systemctl show -p MainPID --value docker.service"))
		if ppid := strings.TrimSpace(must(t, "ps -o ppid= -p "+pid)); ppid != "1" {
			t.Errorf("dockerd (pid %s) is not systemd's child (ppid %s)", pid, ppid)
		}
		if v := strings.TrimSpace(must(t, "docker version --format '{{.Server.Version}}'")); !strings.HasPrefix(v, "20.10") {
			t.Errorf("engine version %q (Debian's docker.io is 20.10)", v)
		}
	})
	t.Run("nothing of the rig: no egress rule, no policy-rc.d, no daemon by hand", func(t *testing.T) {
		rules := must(t, "iptables -S DOCKER-USER 2>&1; true")
		mustNotContain(t, "DOCKER-USER", rules, "REJECT", "DROP")
		for _, p := range []string{"/usr/sbin/policy-rc.d", "/run/apimdev-dockerd.pid"} {
			if out, _ := in(t, "ls "+p+" 2>/dev/null"); strings.TrimSpace(out) != "" {
				t.Errorf("%s exists", p)
			}
		}
		rt := strings.TrimSpace(must(t, "docker info --format '{{.DefaultRuntime}}'"))
		switch {
		case lacks && rt != "apimdev-capdrop":
			t.Errorf("default runtime %q, want apimdev's wrapper (asked, and the machine lacks the capability)", rt)
		case !lacks && rt != "runc":
			t.Errorf("default runtime %q on a machine with the capability", rt)
		}
		if !lacks {
			if out, _ := in(t, "ls /etc/docker/daemon.json 2>/dev/null"); strings.TrimSpace(out) != "" {
				t.Error("daemon.json written on a machine with the capability")
			}
		}
	})
	t.Run("a privileged container starts under the installed engine", func(t *testing.T) {
		if err := importCheckImage(t, dir, name); err != nil {
			t.Fatal(err)
		}
		out := must(t, "docker run --rm --privileged apimdev-install-check:local")
		mustContain(t, "the privileged container", out, "privileged container ok")
		t.Logf("%s", strings.TrimSpace(out))
	})
	t.Run("a second install changes nothing", func(t *testing.T) {
		out := must(t, strings.Join(install, " ")+" 2>&1")
		mustNotContain(t, "the second install", out, "apt-get install", "restart docker.service")
	})
	t.Run("every undo line of the plan takes its change back", func(t *testing.T) {
		var undo []string
		for _, l := range strings.Split(out, "\n") {
			if u, ok := strings.CutPrefix(strings.TrimSpace(l), "undo: "); ok && strings.HasPrefix(u, "sudo ") {
				undo = append(undo, u)
			}
		}
		if len(undo) < 3 {
			t.Fatalf("the plan printed %d undo commands:\n%s", len(undo), out)
		}
		// The last change first, as a user would take them back.
		for i := len(undo) - 1; i >= 0; i-- {
			u := strings.TrimPrefix(strings.ReplaceAll(undo[i], "(with the two files above removed) ", ""), "sudo ")
			u, _, _ = strings.Cut(u, " (") // a note after the command
			u = strings.ReplaceAll(u, "&& sudo ", "&& ")
			u = strings.Replace(u, "apt-get purge", "apt-get purge -y", 1)
			u = strings.Replace(u, "apt-get autoremove", "apt-get autoremove -y", 1)
			if o, err := in(t, u); err != nil {
				t.Errorf("undo %q: %v\n%s", u, err, lastLines(o, 10))
			}
		}
		if out, _ := in(t, "command -v dockerd; dpkg -l docker.io 2>/dev/null | grep ^ii; systemctl is-active docker.service; ls /etc/docker/daemon.json /usr/local/libexec/apimdev/runc-capdrop 2>/dev/null"); strings.TrimSpace(out) != "inactive" {
			t.Errorf("after every undo: %s", out)
		}
		after := must(t, "iptables -S 2>/dev/null; ls /usr/sbin/policy-rc.d 2>&1; true")
		if rulesOf(after) != rulesOf(before) {
			t.Errorf("firewall before:\n%s\nafter:\n%s", before, after)
		}
	})
}

// capHasSysResource reads a "CapBnd:\t<hex>" line.
func capHasSysResource(line string) bool {
	f := strings.Fields(line)
	if len(f) < 2 {
		return true
	}
	var v uint64
	fmt.Sscanf(f[1], "%x", &v)
	return v&(1<<24) != 0
}

// rulesOf is an iptables listing without what dockerd itself made (its
// chains stay until a reboot, as after any Docker; what matters is that no
// rule of apimdev's is left).
func rulesOf(listing string) string {
	var keep []string
	for _, l := range strings.Split(listing, "\n") {
		if strings.HasPrefix(l, "-A ") && !strings.Contains(strings.ToLower(l), "docker") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// localRepository is an apt repository (a directory with Packages) of
// docker.io and what it needs beyond what the node image has, as apt on
// this machine resolves it against the image's own package database;
// cached by that database's hash.
func localRepository(t *testing.T, image, cacheDir string) string {
	t.Helper()
	ctr, err := exec.Command("docker", "create", image).Output()
	if err != nil {
		t.Fatalf("docker create: %v", err)
	}
	id := strings.TrimSpace(string(ctr))
	defer exec.Command("docker", "rm", id).Run()
	status := filepath.Join(t.TempDir(), "status")
	if b, err := exec.Command("docker", "cp", id+":/var/lib/dpkg/status", status).CombinedOutput(); err != nil {
		t.Fatalf("docker cp: %v\n%s", err, b)
	}
	sum := sha256.Sum256(readFile(t, status))
	repo := filepath.Join(cacheDir, hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(filepath.Join(repo, "Packages")); err == nil {
		return repo
	}
	if err := os.MkdirAll(filepath.Join(repo, "partial"), 0o755); err != nil {
		t.Fatal(err)
	}
	download := func() ([]byte, error) {
		return exec.Command("apt-get", "install", "--download-only", "-y", "-qq", "--no-install-recommends",
			"-o", "Dir::State::status="+status, "-o", "Dir::Cache::archives="+repo, "-o", "Debug::NoLocking=1", "docker.io").CombinedOutput()
	}
	if b, err := download(); err != nil {
		// This machine's package lists may be older than the mirror.
		if u, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			t.Fatalf("apt-get update: %v\n%s", uerr, u)
		}
		if b, err = download(); err != nil {
			t.Fatalf("downloading docker.io for the node image: %v\n%s", err, b)
		}
	}
	_ = os.RemoveAll(filepath.Join(repo, "partial"))
	writePackages(t, repo)
	return repo
}

// writePackages writes the repository's Packages index: each .deb's control
// fields (dpkg-deb -f) with its Filename, Size and SHA256.
func writePackages(t *testing.T, repo string) {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(repo, "*.deb"))
	sort.Strings(debs)
	if len(debs) == 0 {
		t.Fatal("no .deb was downloaded")
	}
	var idx bytes.Buffer
	for _, d := range debs {
		ctl, err := exec.Command("dpkg-deb", "-f", d).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", d, err)
		}
		b := readFile(t, d)
		sum := sha256.Sum256(b)
		idx.Write(bytes.TrimRight(ctl, "\n"))
		fmt.Fprintf(&idx, "\nFilename: ./%s\nSize: %d\nSHA256: %s\n\n", filepath.Base(d), len(b), hex.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), idx.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// importCheckImage puts a FROM-scratch image with a static program that
// prints its capabilities into the container's own engine.
func importCheckImage(t *testing.T, dir, ctr string) error {
	t.Helper()
	src := filepath.Join(dir, "check")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	prog := `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			fmt.Println("privileged container ok,", l)
		}
	}
}
`
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(prog), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module check\n\ngo 1.24\n"), 0o644); err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", "rootfs/check", ".")
	build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the check program: %v\n%s", err, b)
	}
	tarball, err := exec.Command("tar", "-C", filepath.Join(src, "rootfs"), "-c", ".").Output()
	if err != nil {
		return err
	}
	imp := exec.Command("docker", "exec", "-i", ctr, "docker", "import", "--change", `ENTRYPOINT ["/check"]`, "-", "apimdev-install-check:local")
	imp.Stdin = bytes.NewReader(tarball)
	if b, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import in the container: %v\n%s", err, b)
	}
	return nil
}
