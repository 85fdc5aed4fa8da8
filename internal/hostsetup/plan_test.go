package hostsetup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

const debian12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

// laptop is a Debian laptop with systemd and every capability, Docker not
// installed, asked by alice through sudo.
func laptop() Host {
	return Host{GOOS: "linux", OSRelease: debian12, Systemd: true, CapBnd: 0x1ffffffffff, CapKnown: true, CgroupV2: true,
		Tools: map[string]bool{}, User: "alice", Self: "/usr/local/bin/apimdev"}
}

// recorder is a Runner that only writes down what it was asked.
type recorder struct {
	ran     []string
	created []string
	stopped []int
	failOn  string
}

func (r *recorder) Run(argv, env []string) error {
	line := strings.Join(argv, " ")
	r.ran = append(r.ran, line)
	if r.failOn != "" && strings.Contains(line, r.failOn) {
		return errors.New("exit status 100")
	}
	return nil
}
func (r *recorder) Create(f File) error { r.created = append(r.created, f.Path); return nil }
func (r *recorder) StopProcess(pid int, _ string) error {
	r.stopped = append(r.stopped, pid)
	return nil
}

func apply(t *testing.T, p *InstallPlan) *recorder {
	t.Helper()
	r := &recorder{}
	if err := p.Apply(context.Background(), r, func(int, Step, error, bool) {}); err != nil {
		t.Fatal(err)
	}
	return r
}

func printed(p *InstallPlan) string {
	var b strings.Builder
	p.Print(&b, "plan")
	return b.String()
}

// The product's install on a normal laptop: the distribution's package and
// service, and nothing of the rig: no firewall rule, no runtime change, no
// policy-rc.d, no daemon started by hand.
func TestPlanOnANormalLaptopIsPackageAndServiceOnly(t *testing.T) {
	p, err := PlanDocker(laptop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, p)
	want := []string{"apt-get update", "apt-get install -y --no-install-recommends docker.io", "systemctl enable --now docker.service"}
	if strings.Join(r.ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("ran:\n%s\nwant:\n%s", strings.Join(r.ran, "\n"), strings.Join(want, "\n"))
	}
	if len(r.created) != 0 || len(r.stopped) != 0 {
		t.Errorf("created %v, stopped %v: a normal laptop gets neither", r.created, r.stopped)
	}
	out := printed(p)
	for _, banned := range []string{"iptables", "nft ", "policy-rc.d\n", "daemon.json", "runc-capdrop", "dockerd "} {
		for _, s := range p.Steps {
			if strings.Contains(s.Show, banned) {
				t.Errorf("step %q shows %q", s.Title, banned)
			}
		}
	}
	for _, s := range p.Steps {
		if s.Undo == "" {
			t.Errorf("step %q has no undo", s.Title)
		}
	}
	if !strings.Contains(out, "undo: sudo systemctl disable --now docker.service docker.socket") || !strings.Contains(out, "no firewall rule") {
		t.Errorf("the plan does not say how to undo the service or what it leaves alone:\n%s", out)
	}
	if !strings.Contains(out, "choose with --access") {
		t.Errorf("the plan does not explain the ways to reach Docker:\n%s", out)
	}
}

func TestPlanWithDockerInstalledOnlyStartsTheService(t *testing.T) {
	h := laptop()
	h.Tools["dockerd"] = true
	p, err := PlanDocker(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply(t, p); strings.Join(r.ran, "|") != "systemctl enable --now docker.service" {
		t.Errorf("ran %q", r.ran)
	}
}

func TestPlanWithoutSystemdUsesTheInitScriptAndSaysSo(t *testing.T) {
	h := laptop()
	h.Systemd = false
	p, err := PlanDocker(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, p)
	if r.ran[len(r.ran)-1] != "service docker start" {
		t.Errorf("ran %q", r.ran)
	}
	if !strings.Contains(printed(p), "will not start at boot") {
		t.Errorf("no word on boot:\n%s", printed(p))
	}
}

func TestPlanOutsideDebianIsRefusedWithTheFix(t *testing.T) {
	h := laptop()
	h.OSRelease = "NAME=Fedora Linux\nID=fedora\n"
	_, err := PlanDocker(h, Options{})
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(pe.Problem, "Fedora") || !strings.Contains(pe.Fix, "docs.docker.com") {
		t.Fatalf("err = %v", err)
	}
	h.GOOS = "darwin"
	if _, err := PlanDocker(h, Options{}); !errors.As(err, &pe) || !strings.Contains(pe.Fix, "Docker Desktop") {
		t.Fatalf("darwin: err = %v", err)
	}
}

// The wrapper only where the capability is truly missing, only when asked,
// and with how to undo it.
func TestRuntimeWrapperOnlyWhereTheCapabilityIsMissing(t *testing.T) {
	h := laptop()
	if _, err := PlanDocker(h, Options{RuntimeWrapper: true}); err == nil || !strings.Contains(err.Error(), "has CAP_SYS_RESOURCE") {
		t.Fatalf("wrapper asked where the capability is present: err = %v", err)
	}
	h.CapBnd &^= 1 << capSysResource
	p, err := PlanDocker(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply(t, p); len(r.created) != 0 {
		t.Errorf("not asked, yet created %v", r.created)
	}
	if !strings.Contains(printed(p), "--runtime-wrapper") {
		t.Errorf("the missing capability is not explained:\n%s", printed(p))
	}
	p, err = PlanDocker(h, Options{RuntimeWrapper: true})
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, p)
	if strings.Join(r.created, ",") != WrapperPath+","+DaemonJSON || r.ran[len(r.ran)-1] != "systemctl restart docker.service" {
		t.Errorf("created %v, ran %v", r.created, r.ran)
	}
	out := printed(p)
	for _, want := range []string{"undo: sudo rm " + WrapperPath, "undo: sudo rm " + DaemonJSON, `"default-runtime": "apimdev-capdrop"`} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

func TestRuntimeWrapperNeverRewritesADaemonJSONItDidNotWrite(t *testing.T) {
	h := laptop()
	h.CapBnd &^= 1 << capSysResource
	h.DaemonJSON, h.DaemonJSONFound = []byte(`{"log-driver": "journald"}`), true
	if _, err := PlanDocker(h, Options{RuntimeWrapper: true}); err == nil || !strings.Contains(err.Error(), "does not rewrite") {
		t.Fatalf("err = %v", err)
	}
	// Its own, from an earlier install: only the wrapper may be renewed.
	first := laptop()
	first.CapBnd = h.CapBnd
	fresh, err := PlanDocker(first, Options{RuntimeWrapper: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fresh.Steps {
		if s.File != nil && s.File.Path == DaemonJSON {
			h.DaemonJSON = s.File.Data
		}
	}
	p, err := PlanDocker(h, Options{RuntimeWrapper: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply(t, p); strings.Join(r.created, ",") != WrapperPath || strings.Contains(strings.Join(r.ran, ","), "restart") {
		t.Errorf("created %v, ran %v", r.created, r.ran)
	}
}

func TestAccessChoices(t *testing.T) {
	p, err := PlanDocker(laptop(), Options{Access: AccessGroup})
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, p)
	if r.ran[len(r.ran)-1] != "usermod -aG docker alice" || !strings.Contains(printed(p), "root on this machine without a password") {
		t.Errorf("ran %v\n%s", r.ran, printed(p))
	}
	h := laptop()
	h.User = "root"
	if _, err := PlanDocker(h, Options{Access: AccessGroup}); err == nil {
		t.Error("the docker group for root was planned")
	}
	h = laptop()
	h.CgroupV2 = false
	if _, err := PlanDocker(h, Options{Access: AccessRootless}); err == nil || !strings.Contains(err.Error(), "cgroup v1") {
		t.Errorf("rootless on cgroup v1: err = %v", err)
	}
	p, err = PlanDocker(laptop(), Options{Access: AccessRootless})
	if err != nil {
		t.Fatal(err)
	}
	r = apply(t, p)
	ran := strings.Join(r.ran, "\n")
	for _, want := range []string{"dbus-user-session", "rootlesskit", "uidmap", "systemctl disable --now docker.service docker.socket", "systemctl daemon-reload"} {
		if !strings.Contains(ran, want) {
			t.Errorf("rootless: %q not run:\n%s", want, ran)
		}
	}
	if strings.Contains(ran, "enable --now") || strings.Join(r.created, ",") != DelegateDropIn {
		t.Errorf("rootless enabled the root service or wrote %v", r.created)
	}
	if _, err := PlanDocker(laptop(), Options{Access: "sudo"}); err == nil {
		t.Error("an unknown access was planned")
	}
}

// A laptop where an earlier apimdev started the rig's dockerd by hand and
// added its egress rules: both are taken out, and the distribution's
// service takes over.
func TestPlanReplacesTheDaemonAnEarlierApimdevStartedByHand(t *testing.T) {
	h := laptop()
	h.Tools["dockerd"] = true
	h.RigDaemon = 4242
	h.RigRules = RigRules("-P DOCKER-USER ACCEPT\n-A DOCKER-USER -i br-+ -o eth0 -j REJECT --reject-with icmp-net-unreachable\n" +
		"-A DOCKER-USER -i docker0 -o eth0 -j REJECT --reject-with icmp-net-unreachable\n-A DOCKER-USER -j RETURN\n")
	if len(h.RigRules) != 2 {
		t.Fatalf("rig rules = %q", h.RigRules)
	}
	p, err := PlanDocker(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, p)
	want := "iptables -D DOCKER-USER -i br-+ -o eth0 -j REJECT --reject-with icmp-net-unreachable|" +
		"iptables -D DOCKER-USER -i docker0 -o eth0 -j REJECT --reject-with icmp-net-unreachable|systemctl enable --now docker.service"
	if len(r.stopped) != 1 || r.stopped[0] != 4242 || strings.Join(r.ran, "|") != want {
		t.Errorf("stopped %v, ran:\n%s", r.stopped, strings.Join(r.ran, "\n"))
	}
}

func TestAFailedStepSaysWhatHadChanged(t *testing.T) {
	p, err := PlanDocker(laptop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{failOn: "systemctl"}
	err = p.Apply(context.Background(), r, func(int, Step, error, bool) {})
	var se *StepError
	if !errors.As(err, &se) || se.Step != 3 || len(se.Done) != 2 || !strings.Contains(se.Hint(), "sudo apt-get purge docker.io") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = &recorder{}
	if err := p.Apply(ctx, r, func(int, Step, error, bool) {}); !errors.Is(err, context.Canceled) || len(r.ran) != 0 {
		t.Errorf("cancelled: err = %v, ran %v", err, r.ran)
	}
}

func TestSystemCreateNeverOverwritesWhatItDidNotWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("System.Create refuses directories root does not own; run as root (CI does)")
	}
	dir := testdir.New(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := System{Ctx: context.Background(), Out: new(strings.Builder)}
	p := filepath.Join(dir, "daemon.json")
	if err := s.Create(File{Path: p, Data: []byte("{}\n"), Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := s.Create(File{Path: p, Data: []byte("{}\n"), Mode: 0o644}); err != nil {
		t.Errorf("the same bytes again: %v", err)
	}
	if err := s.Create(File{Path: p, Data: []byte(`{"x":1}`), Mode: 0o644}); err == nil {
		t.Error("overwrote a file with other contents")
	}
	if b, _ := os.ReadFile(p); string(b) != "{}\n" {
		t.Errorf("file now %q", b)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(open, 0o777)
	if err := s.Create(File{Path: filepath.Join(open, "runc-capdrop"), Data: []byte("x"), Mode: 0o755}); err == nil {
		t.Error("wrote a root program into a world-writable directory")
	}
}

func TestDebianLike(t *testing.T) {
	for osr, want := range map[string]bool{debian12: true, "ID=ubuntu\n": true, "ID=pop\nID_LIKE=\"ubuntu debian\"\n": true, "ID=fedora\n": false, "": false} {
		if DebianLike(osr) != want {
			t.Errorf("DebianLike(%q) = %v", osr, !want)
		}
	}
}
