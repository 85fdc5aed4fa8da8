package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// A machine for runtime detection: env, which commands exist, and which
// endpoints answer as what.
type rtMachine struct {
	mu      sync.Mutex
	env     map[string]string
	cmds    map[string]bool
	answers map[string]string // host ("" for Docker's default) → "docker" or "podman"
	asked   []string
}

func (m *rtMachine) runtimeEnv(goos string, euid int) RuntimeEnv {
	return RuntimeEnv{Getenv: func(k string) string { return m.env[k] }, GOOS: goos, Home: "/home/u", Euid: euid,
		Exists: func(p string) bool { return p == "/var/run/docker.sock" && m.answers[""] != "" },
		LookPath: func(c string) (string, error) {
			if m.cmds[c] {
				return "/usr/bin/" + c, nil
			}
			return "", errors.New("not found")
		}}
}

func (m *rtMachine) probe(_ context.Context, ep Endpoint) (bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, ep.Host)
	what, ok := m.answers[ep.Host]
	return ok, what == "podman"
}

func TestChooseRuntime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const rootful = "unix:///run/podman/podman.sock"
	cases := []struct {
		name       string
		want       string
		env        map[string]string
		cmds       []string
		answers    map[string]string
		euid       int
		remembered Runtime
		holds      string // the host holding the cluster
		rt         Runtime
		host       string
		why        string
	}{
		{name: "docker answers", answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, rt: RuntimeDocker, host: "", why: "it answers"},
		{name: "only podman answers", answers: map[string]string{rootful: "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: rootful, why: "it answers"},
		{name: "podman without its CLI is no choice", answers: map[string]string{rootful: "podman"}, cmds: []string{"docker"}, rt: RuntimeDocker, why: "no engine answers"},
		{name: "nothing answers, only podman installed", cmds: []string{"podman"}, rt: RuntimePodman, host: rootful, why: "podman is installed"},
		{name: "nothing answers, docker installed", cmds: []string{"docker", "podman"}, rt: RuntimeDocker, why: "no engine answers"},
		{name: "both answer, docker first", answers: map[string]string{"": "docker", rootful: "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimeDocker, why: "--runtime podman takes it"},
		{name: "both answer, the cluster is on podman", answers: map[string]string{"": "docker", rootful: "podman"}, cmds: []string{"docker", "podman"}, holds: rootful, rt: RuntimePodman, host: rootful, why: "the cluster is there"},
		{name: "remembered podman", answers: map[string]string{"": "docker", rootful: "podman"}, cmds: []string{"docker", "podman"}, remembered: RuntimePodman, rt: RuntimePodman, host: rootful, why: "the cluster was made on it"},
		{name: "remembered docker, stopped, podman answers: still docker", answers: map[string]string{rootful: "podman"}, cmds: []string{"docker", "podman"}, remembered: RuntimeDocker, rt: RuntimeDocker, why: "the cluster was made on it"},
		{name: "remembered podman, stopped", answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, remembered: RuntimePodman, rt: RuntimePodman, host: rootful, why: "the cluster was made on it"},
		{name: "docker's socket is podman's", answers: map[string]string{"": "podman", rootful: "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: rootful, why: "it answers"},
		{name: "podman-docker alone", answers: map[string]string{"": "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: "", why: "the engine there is Podman"},
		{name: "KIND_EXPERIMENTAL_PROVIDER", env: map[string]string{"KIND_EXPERIMENTAL_PROVIDER": "podman"}, answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: rootful, why: "KIND_EXPERIMENTAL_PROVIDER=podman"},
		{name: "DOCKER_HOST names podman", env: map[string]string{"DOCKER_HOST": "unix:///run/user/1000/podman/podman.sock"}, answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, euid: 1000, rt: RuntimePodman, host: "unix:///run/user/1000/podman/podman.sock", why: "DOCKER_HOST names a Podman socket"},
		{name: "DOCKER_HOST elsewhere", env: map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"}, answers: map[string]string{rootful: "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimeDocker, host: "tcp://127.0.0.1:2375", why: "DOCKER_HOST"},
		{name: "CONTAINER_HOST", env: map[string]string{"CONTAINER_HOST": "unix:///tmp/p.sock"}, answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: "unix:///tmp/p.sock", why: "CONTAINER_HOST"},
		{name: "asked podman", want: "podman", answers: map[string]string{"": "docker"}, cmds: []string{"docker", "podman"}, rt: RuntimePodman, host: rootful, why: "cluster.runtime podman"},
		{name: "asked docker", want: "docker", answers: map[string]string{rootful: "podman"}, cmds: []string{"docker", "podman"}, rt: RuntimeDocker, why: "cluster.runtime docker"},
		{name: "rootless user", answers: map[string]string{"unix:///run/user/1000/podman/podman.sock": "podman"}, env: map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, cmds: []string{"podman"}, euid: 1000, rt: RuntimePodman, host: "unix:///run/user/1000/podman/podman.sock", why: "it answers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := &rtMachine{env: c.env, cmds: map[string]bool{}, answers: c.answers}
			if m.env == nil {
				m.env = map[string]string{}
			}
			for _, x := range c.cmds {
				m.cmds[x] = true
			}
			holds := func(ep Endpoint) bool { return c.holds != "" && ep.Host == c.holds }
			got, err := ChooseRuntime(ctx, c.want, m.runtimeEnv("linux", c.euid), c.remembered, m.probe, holds)
			if err != nil {
				t.Fatal(err)
			}
			if got.Endpoint.Runs() != c.rt || got.Endpoint.Host != c.host || !strings.Contains(got.Why, c.why) {
				t.Fatalf("got %s at %q (%s), want %s at %q (…%s…)", got.Endpoint.Runs(), got.Endpoint.Host, got.Why, c.rt, c.host, c.why)
			}
		})
	}
}

func TestChooseRuntimeRefusesWhatItCannotDrive(t *testing.T) {
	t.Parallel()
	m := &rtMachine{env: map[string]string{"KIND_EXPERIMENTAL_PROVIDER": "nerdctl"}, cmds: map[string]bool{}}
	_, err := ChooseRuntime(context.Background(), "", m.runtimeEnv("linux", 0), "", m.probe, nil)
	if err == nil || !strings.Contains(err.Error(), "nerdctl") || !strings.Contains(err.Error(), "--runtime") {
		t.Fatalf("nerdctl: %v", err)
	}
	if _, err := ChooseRuntime(context.Background(), "containerd", m.runtimeEnv("linux", 0), "", m.probe, nil); err == nil || !strings.Contains(err.Error(), "auto, docker or podman") {
		t.Fatalf("containerd: %v", err)
	}
	if len(m.asked) != 0 {
		t.Errorf("asked engines before refusing: %v", m.asked)
	}
}

func TestFindPodmanOnEachOS(t *testing.T) {
	t.Parallel()
	m := &rtMachine{env: map[string]string{}, cmds: map[string]bool{}}
	env := m.runtimeEnv("darwin", 501)
	env.PodmanMachine = func() string { return "/Users/u/.local/share/containers/podman/machine/qemu/podman.sock" }
	if ep := FindPodman(env); ep.Host != "unix:///Users/u/.local/share/containers/podman/machine/qemu/podman.sock" || ep.Engine != "Podman machine" {
		t.Errorf("macOS machine: %+v", ep)
	}
	env = m.runtimeEnv("windows", 0)
	if ep := FindPodman(env); ep.Host != "npipe:////./pipe/podman-machine-default" {
		t.Errorf("windows default: %+v", ep)
	}
	env.PodmanMachine = func() string { return `\\.\pipe\podman-machine-default` }
	if ep := FindPodman(env); !strings.HasPrefix(ep.Host, "npipe://") {
		t.Errorf("windows machine: %+v", ep)
	}
	if ep := FindPodman(m.runtimeEnv("linux", 1000)); ep.Host != "unix:///run/user/1000/podman/podman.sock" || ep.Engine != "rootless Podman" {
		t.Errorf("linux rootless without XDG_RUNTIME_DIR: %+v", ep)
	}
}

func TestIsPodman(t *testing.T) {
	t.Parallel()
	p := types.Version{Version: "4.3.1", Components: []types.ComponentVersion{{Name: "Podman Engine", Version: "4.3.1"}}}
	if !IsPodman(p) || IsPodman(types.Version{Version: "28.0.1", Components: []types.ComponentVersion{{Name: "Engine", Version: "28.0.1"}}}) {
		t.Fatal("IsPodman")
	}
	if podmanVersion("4.3.1", p.Components) != "4.3.1" {
		t.Fatal("podmanVersion")
	}
}

// Rootless Podman needs Podman 4, cgroup v2 and the controllers delegated;
// each missing piece is named with its fix.
func TestRootlessPodmanNeeds(t *testing.T) {
	t.Parallel()
	ep := Endpoint{Host: "unix:///run/user/1000/podman/podman.sock", Runtime: RuntimePodman}
	read := func(have string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if p != "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers" {
				return nil, errors.New("no such file " + p)
			}
			return []byte(have + "\n"), nil
		}
	}
	v2 := system.Info{CgroupVersion: "2", SecurityOptions: []string{"name=rootless"}}
	if _, ok := rootlessProblem(v2, "4.3.1", "linux", ep, 1000, read("cpuset cpu io memory pids")); !ok {
		t.Error("a delegated cgroup v2 user was refused")
	}
	c, ok := rootlessProblem(v2, "4.3.1", "linux", ep, 1000, read("memory pids"))
	if ok || !strings.Contains(c.Problem, "cpu, cpuset") || !strings.Contains(c.Fix, "Delegate=yes") {
		t.Errorf("undelegated: %+v", c)
	}
	c, ok = rootlessProblem(system.Info{CgroupVersion: "1"}, "4.3.1", "linux", ep, 1000, read(""))
	if ok || !strings.Contains(c.Problem, "cgroup v1") || !strings.Contains(c.Fix, "sudo") {
		t.Errorf("cgroup v1: %+v", c)
	}
	if c, ok = rootlessProblem(v2, "3.4.4", "linux", ep, 1000, read("")); ok || !strings.Contains(c.Problem, "4.0") {
		t.Errorf("podman 3 rootless: %+v", c)
	}
	if _, ok := rootlessProblem(v2, "5.2.0", "darwin", Endpoint{Host: "unix:///tmp/podman/podman-machine-default-api.sock"}, 501, read("")); !ok {
		t.Error("a Podman machine was checked for this host's delegation")
	}
	if !rootless(v2) || rootless(system.Info{SecurityOptions: []string{"name=seccomp,profile=default"}}) {
		t.Error("rootless")
	}
}

// taggedDocker answers for short names as Podman does: with the names it
// holds the image under.
type taggedDocker struct {
	*enginefake.Engine
	tags map[string][]string
}

func (d *taggedDocker) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if t, ok := d.tags[ref]; ok {
		return image.InspectResponse{ID: "sha256:abc", RepoTags: t}, nil
	}
	return image.InspectResponse{}, errdefs.NotFound(errors.New("no such image"))
}

// kind qualifies a bare name as docker.io/<name>; Podman holds what it
// loaded as localhost/<name>: kind is given the name Podman has.
func TestPodmanNodeImageName(t *testing.T) {
	t.Parallel()
	m := &Manager{Runtime: RuntimePodman, Docker: &taggedDocker{Engine: enginefake.New(), tags: map[string][]string{
		"apimdev-e2e/kind-node:v1.34.4": {"localhost/apimdev-e2e/kind-node:v1.34.4"},
		"kindest/node:v1.34.0":          {"docker.io/kindest/node:v1.34.0", "localhost/kindest/node:v1.34.0"},
	}}}
	ctx := context.Background()
	for ref, want := range map[string]string{
		"apimdev-e2e/kind-node:v1.34.4":            "localhost/apimdev-e2e/kind-node:v1.34.4",
		"kindest/node:v1.34.0":                     "kindest/node:v1.34.0",
		"absent/node:v1":                           "absent/node:v1",
		"registry.example.com/node:v1":             "registry.example.com/node:v1",
		"kindest/node:v1.34.0@sha256:0123456789ab": "kindest/node:v1.34.0@sha256:0123456789ab",
	} {
		if got := m.podmanLocalName(ctx, ref); got != want {
			t.Errorf("%s: got %s, want %s", ref, got, want)
		}
	}
}

// On Podman, down kills the nodes before kind removes them (podman rm -f
// would wait out its stop timeout on each); on Docker kind's rm -f kills.
func TestDeleteKillsPodmanNodesFirst(t *testing.T) {
	t.Parallel()
	for _, rt := range []Runtime{RuntimePodman, RuntimeDocker} {
		d := enginefake.New()
		d.AddContainer("apimdev-control-plane", enginefake.Running)
		m := &Manager{Kind: startingKind{server: "https://127.0.0.1:1"}, Docker: d, Runtime: rt, Name: "apimdev", Kubeconfig: testdir.New(t) + "/kubeconfig"}
		if err := m.Delete(); err != nil {
			t.Fatal(err)
		}
		// On Docker apimdev leaves the node to kind (a fake here), so the
		// engine's container is untouched.
		want, state := "", enginefake.Running
		if rt == RuntimePodman {
			want, state = "kill apimdev-control-plane SIGKILL", enginefake.Exited
		}
		var killed []string
		for _, c := range d.Calls() {
			if strings.HasPrefix(c, "kill ") {
				killed = append(killed, c)
			}
		}
		if got := strings.Join(killed, ","); got != want {
			t.Errorf("%s: killed %q, want %q", rt, got, want)
		}
		if got, _ := d.ContainerState("apimdev-control-plane"); got != state {
			t.Errorf("%s: the node is %s after down, want %s", rt, got, state)
		}
	}
}
