package cluster

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/hostsetup"
	"github.com/apimdev/apimdev/internal/token"
)

var _ Docker = (*enginefake.Engine)(nil)

// engine is an engine with cpus CPUs and mem bytes of memory.
func engine(cpus int, mem int64) *enginefake.Engine {
	e := enginefake.New()
	e.SetInfo(func(i *system.Info) { i.NCPU, i.MemTotal = cpus, mem })
	return e
}

// podmanEngine is engine answering as Podman 4.3.1's compatible API.
func podmanEngine(cpus int, mem int64) *enginefake.Engine {
	e := engine(cpus, mem)
	e.SetVersion(func(v *types.Version) {
		*v = types.Version{Version: "4.3.1", APIVersion: "1.41", Os: "linux", Arch: "amd64", Components: []types.ComponentVersion{{Name: "Podman Engine", Version: "4.3.1"}}}
	})
	return e
}

// downEngine is an engine that does not answer.
func downEngine() *enginefake.Engine {
	e := enginefake.New()
	e.SetDown(true)
	return e
}

func cfg() config.Config {
	c := config.Default()
	c.Gateway.Name = "contoso-gw"
	c.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	return c
}

func tok(t *testing.T, exp time.Time) token.Token {
	tk, err := token.Parse("contoso-gw&" + exp.Format(token.ExpiryLayout) + "&c2ln")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func inspect(st ClusterState) func(context.Context) (ClusterState, string) {
	return func(context.Context) (ClusterState, string) { return st, "" }
}

func freePort(t *testing.T) int {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestPreflightPasses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	c := cfg()
	c.Forward.HTTPPort, c.Forward.HTTPSPort = freePort(t), freePort(t)
	p := &Preflight{Docker: engine(4, 8<<30), Inspect: inspect(ClusterAbsent), Config: c, Token: tok(t, now.Add(20*24*time.Hour)),
		Now: func() time.Time { return now }, LookPath: func(string) (string, error) { return "/usr/bin/docker", nil }}
	res, err := p.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) != 7 || res.Cluster != ClusterAbsent {
		t.Fatalf("checks: %+v", res.Checks)
	}
	w := res.Warnings()
	if len(w) != 1 || w[0].Name != "node image" || !strings.Contains(w[0].Detail, "it is pulled (about 400 MB) before the cluster is made") {
		t.Fatalf("warnings: %+v", w)
	}
}

func TestPreflightReportsEveryProblem(t *testing.T) {
	t.Parallel()
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	c := cfg()
	c.Forward.HTTPPort = busy.Addr().(*net.TCPAddr).Port
	c.Forward.HTTPSPort = freePort(t)
	p := &Preflight{Docker: engine(1, 1<<30), Inspect: inspect(ClusterForeign), Config: c,
		TokenErr: &config.Problem{Field: "token", Message: "the token has 2 part(s)", Fix: "copy the whole token"},
		LookPath: func(string) (string, error) { return "", errors.New("not found") }}
	_, err := p.Run(context.Background(), nil)
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{"5 problem(s); nothing was created", "docker command is not on PATH", "at least 2 GiB", "is already in use", "--http-port",
		"the token has 2 part(s)", "copy the whole token", `"apimdev" exists and was not created by apimdev`, "--recreate"} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
}

func TestPreflightDockerDownSkipsWhatNeedsIt(t *testing.T) {
	t.Parallel()
	c := cfg()
	c.Forward.HTTPPort, c.Forward.HTTPSPort = freePort(t), freePort(t)
	called := false
	p := &Preflight{Docker: downEngine(), Config: c, Token: tok(t, time.Now().Add(48*time.Hour)),
		Inspect: func(context.Context) (ClusterState, string) { called = true; return ClusterBroken, "" }}
	start := time.Now()
	_, err := p.Run(context.Background(), nil)
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != "docker" || !strings.Contains(pe.Failed[0].Fix, "start Docker") {
		t.Fatalf("got %v", err)
	}
	if called {
		t.Fatal("cluster inspected without Docker")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("too slow to fail")
	}
}

func TestPreflightClusterStates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		st       ClusterState
		recreate bool
		ok       bool
		want     string
	}{
		{ClusterOurs, false, true, "will be reused"},
		{ClusterOurs, true, true, "deleted and recreated"},
		{ClusterStopped, false, true, "will be restarted"},
		{ClusterForeign, true, true, "deleted and recreated (--recreate)"},
		{ClusterBroken, false, false, "does not answer"},
	} {
		p := &Preflight{Inspect: inspect(tt.st), Config: cfg(), Recreate: tt.recreate}
		c, _ := p.checkCluster(context.Background())
		if c.OK != tt.ok || !strings.Contains(c.Detail+c.Problem, tt.want) {
			t.Errorf("%s recreate=%v: %+v", tt.st, tt.recreate, c)
		}
	}
}

func TestDockerFixNamesWhatToInstallPerOS(t *testing.T) {
	t.Parallel()
	debian := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
	mint := "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n"
	fedora := "ID=fedora\n"
	for _, tt := range []struct{ goos, rel, want string }{
		{"darwin", "", "Docker Desktop (or `colima start`, Rancher Desktop, OrbStack)"},
		{"windows", "", "Docker Desktop (WSL 2 backend)"},
		{"linux", debian, "`apimdev docker install`"},
		{"linux", mint, "`apimdev docker install`"},
		{"linux", fedora, "docs.docker.com/engine/install"},
	} {
		if got := DockerFix(tt.goos, tt.rel); !strings.Contains(got, tt.want) || !strings.Contains(got, "start") {
			t.Errorf("%s %q: %s", tt.goos, tt.rel, got)
		}
	}
	if hostsetup.DebianLike(fedora) || !hostsetup.DebianLike(debian) {
		t.Error("DebianLike")
	}
}

// On Podman the runtime check is Podman's: its version and mode, the
// podman CLI kind needs, rootless Podman's needs; the other checks run on
// its compatible API as on Docker's.
func TestPreflightOnPodman(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	c := cfg()
	c.Forward.HTTPPort, c.Forward.HTTPSPort = freePort(t), freePort(t)
	ep := Endpoint{Host: "unix:///run/podman/podman.sock", Runtime: RuntimePodman, Engine: "Podman"}
	var looked []string
	look := func(c string) (string, error) { looked = append(looked, c); return "/usr/bin/" + c, nil }
	p := &Preflight{Docker: podmanEngine(4, 8<<30), Inspect: inspect(ClusterAbsent), Config: c, Token: tok(t, now.Add(20*24*time.Hour)),
		Now: func() time.Time { return now }, LookPath: look, Endpoint: ep, RuntimeWhy: "cluster.runtime podman", GOOS: "linux"}
	res, err := p.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := res.Checks[0]
	if rt.Name != "podman" || !strings.Contains(rt.Detail, "Podman 4.3.1 (rootful") || !strings.Contains(rt.Detail, "unix:///run/podman/podman.sock") || !strings.Contains(rt.Detail, "cluster.runtime podman") {
		t.Errorf("runtime check: %+v", rt)
	}
	if strings.Join(looked, ",") != "podman" {
		t.Errorf("looked for %v, want podman only", looked)
	}
	if r := res.Checks[1]; !strings.Contains(r.Detail, "memory for Podman") {
		t.Errorf("resources: %+v", r)
	}

	// Rootless on cgroup v1: named, with the way out.
	rootless := podmanEngine(4, 8<<30)
	rootless.SetInfo(func(i *system.Info) { i.CgroupVersion, i.SecurityOptions = "1", []string{"name=rootless"} })
	p.Docker = rootless
	_, err = p.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "rootless Podman on cgroup v1") || !strings.Contains(err.Error(), "sudo") {
		t.Errorf("rootless on v1: %v", err)
	}

	// Its API service down: the fix starts it, and nothing needing it runs.
	down := podmanEngine(0, 0)
	down.SetDown(true)
	p.Docker = down
	_, err = p.Run(context.Background(), nil)
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != "podman" || !strings.Contains(pe.Failed[0].Fix, "podman.socket") {
		t.Fatalf("podman down: %v", err)
	}
	p.GOOS = "darwin"
	if _, err = p.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "podman machine start") {
		t.Fatalf("podman machine down: %v", err)
	}
}

// The platform check runs beside the others, learns what exists once the
// cluster check knows, and shares the engine's Info with the resources
// check; its problem fails preflight like any other.
func TestPreflightPlatformCheckSeesTheClusterAndTheEngine(t *testing.T) {
	t.Parallel()
	c := cfg()
	c.Forward.HTTPPort, c.Forward.HTTPSPort = freePort(t), freePort(t)
	d := engine(4, 8<<30)
	d.SetInfo(func(i *system.Info) { i.Architecture = "aarch64" })
	slow := func(context.Context) (ClusterState, string) {
		time.Sleep(50 * time.Millisecond)
		return ClusterOurs, ""
	}
	var seen ClusterState
	var arch string
	p := &Preflight{Docker: d, Inspect: slow, Config: c, Token: tok(t, time.Now().Add(20*24*time.Hour)),
		LookPath: func(string) (string, error) { return "/usr/bin/docker", nil },
		Platform: func(ctx context.Context, in PlatformInputs) Check {
			seen = in.Cluster()
			arch, _ = in.EngineArch(ctx)
			return Check{Problem: "gw:1 is built for linux/amd64 only, not linux/arm64", Fix: "use a tag built for linux/arm64"}
		}}
	res, err := p.Run(context.Background(), nil)
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != "platform" || !strings.Contains(err.Error(), "fix: use a tag built for linux/arm64") {
		t.Fatalf("%v", err)
	}
	if seen != ClusterOurs || arch != "aarch64" || res.Checks[len(res.Checks)-1].Name != "platform" {
		t.Fatalf("the check saw cluster %q, engine %q; checks %+v", seen, arch, res.Checks)
	}
	if n := d.Count("info"); n != 1 {
		t.Fatalf("Info asked %d times, want once", n)
	}
	// Without an engine there is nothing to hold the images to.
	called := false
	p.Docker = downEngine()
	p.Platform = func(context.Context, PlatformInputs) Check { called = true; return Check{OK: true} }
	res, _ = p.Run(context.Background(), nil)
	if called || !strings.Contains(res.Checks[len(res.Checks)-1].Detail, "not checked") {
		t.Fatalf("platform ran without an engine: %+v", res.Checks)
	}
}
