package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Runtime is the container runtime kind runs the cluster's nodes on.
type Runtime string

const (
	// RuntimeDocker is a Docker engine (Docker Desktop, Colima, dockerd...):
	// kind's docker provider, which drives it through the docker CLI.
	RuntimeDocker Runtime = "docker"
	// RuntimePodman is Podman (Podman Desktop, a Podman machine, podman on
	// Linux): kind's podman provider, which drives it through the podman
	// CLI.
	RuntimePodman Runtime = "podman"
)

// Title is the runtime's name in a sentence.
func (r Runtime) Title() string {
	if r == RuntimePodman {
		return "Podman"
	}
	return "Docker"
}

// CLI is the command kind drives the runtime through.
func (r Runtime) CLI() string {
	if r == RuntimePodman {
		return "podman"
	}
	return "docker"
}

// Runtimes are the values cluster.runtime takes.
var Runtimes = []string{"auto", string(RuntimeDocker), string(RuntimePodman)}

// RuntimeEnv is what runtime detection reads of the machine; tests fake it.
type RuntimeEnv struct {
	Getenv func(string) string
	GOOS   string
	Home   string
	Euid   int
	Exists func(string) bool
	// LookPath finds a command (nil: exec.LookPath).
	LookPath func(string) (string, error)
	// PodmanMachine asks the podman CLI for its machine's API socket or
	// pipe (macOS and Windows); "" when there is none.
	PodmanMachine func() string
}

// LocalRuntimeEnv is this process's machine.
func LocalRuntimeEnv() RuntimeEnv {
	home, _ := os.UserHomeDir()
	return RuntimeEnv{Getenv: os.Getenv, GOOS: runtime.GOOS, Home: home, Euid: os.Geteuid(), Exists: fileExists, LookPath: exec.LookPath, PodmanMachine: podmanMachineSocket}
}

func (e RuntimeEnv) look(name string) bool {
	look := e.LookPath
	if look == nil {
		look = exec.LookPath
	}
	_, err := look(name)
	return err == nil
}

// FindPodman finds Podman's API socket as the podman CLI would reach it:
// CONTAINER_HOST (a unix socket or a named pipe), DOCKER_HOST when it names
// a Podman socket, else the machine's (macOS, Windows), else on Linux the
// rootful socket for root and the user's rootless one otherwise, which are
// what `podman` run by the same user talks to. The socket must serve
// Podman's API service: `systemctl enable --now podman.socket` (with
// --user for rootless), or a Podman machine, which serves it always.
func FindPodman(env RuntimeEnv) Endpoint {
	ep := Endpoint{Runtime: RuntimePodman, Engine: "Podman"}
	if h := env.Getenv("CONTAINER_HOST"); strings.HasPrefix(h, "unix://") || strings.HasPrefix(h, "npipe://") {
		ep.Host, ep.Source = h, "CONTAINER_HOST"
		return ep
	}
	if h := env.Getenv("DOCKER_HOST"); strings.Contains(strings.ToLower(h), "podman") {
		ep.Host, ep.Source = h, "DOCKER_HOST"
		return ep
	}
	switch env.GOOS {
	case "linux":
		if env.Euid == 0 {
			ep.Host, ep.Source = "unix:///run/podman/podman.sock", "Podman's rootful socket"
			return ep
		}
		rt := env.Getenv("XDG_RUNTIME_DIR")
		if rt == "" {
			rt = "/run/user/" + strconv.Itoa(env.Euid)
		}
		ep.Host, ep.Source, ep.Engine = "unix://"+path.Join(rt, "podman", "podman.sock"), "Podman's rootless socket", "rootless Podman"
		return ep
	case "darwin", "windows":
		if env.PodmanMachine != nil {
			if s := env.PodmanMachine(); s != "" {
				ep.Host, ep.Source, ep.Engine = s, "the Podman machine", "Podman machine"
				if !strings.Contains(s, "://") {
					ep.Host = "unix://" + s
					if env.GOOS == "windows" {
						ep.Host = "npipe://" + filepath.ToSlash(s)
					}
				}
				return ep
			}
		}
		ep.Engine, ep.Source = "Podman machine", "the Podman machine's default"
		if env.GOOS == "windows" {
			ep.Host = "npipe:////./pipe/podman-machine-default"
			return ep
		}
		for _, p := range []string{
			path.Join(env.Getenv("TMPDIR"), "podman", "podman-machine-default-api.sock"), // Podman 5
			path.Join(env.Home, ".local", "share", "containers", "podman", "machine", "podman.sock"),
			path.Join(env.Home, ".local", "share", "containers", "podman", "machine", "qemu", "podman.sock"),
		} {
			if env.Exists(p) {
				ep.Host = "unix://" + p
				return ep
			}
		}
		ep.Host = "unix://" + path.Join(env.Home, ".local", "share", "containers", "podman", "machine", "podman.sock")
		return ep
	}
	ep.Host, ep.Source = "unix:///run/podman/podman.sock", "Podman's rootful socket"
	return ep
}

// podmanMachineSocket asks `podman machine inspect` where the running
// machine serves its API; "" when podman or a machine is missing.
func podmanMachineSocket() string {
	if _, err := exec.LookPath("podman"); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	format := "{{.ConnectionInfo.PodmanSocket.Path}}"
	if runtime.GOOS == "windows" {
		format = "{{.ConnectionInfo.PodmanPipe.Path}}"
	}
	out, err := exec.CommandContext(ctx, "podman", "machine", "inspect", "--format", format).Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if s == "<no value>" {
		return ""
	}
	return s
}

// RuntimeChoice is the runtime apimdev uses and why.
type RuntimeChoice struct {
	Endpoint Endpoint
	// Why says what chose it, for preflight's line.
	Why string
}

// Probe says whether the engine at an endpoint answers, and whether it is
// Podman (its version names the Podman Engine); see IsPodman.
type Probe func(ctx context.Context, ep Endpoint) (answers, podman bool)

// ChooseRuntime picks the runtime for want ("auto", "", "docker" or
// "podman"). A named one is taken as asked. auto takes what the user's
// environment names (KIND_EXPERIMENTAL_PROVIDER, DOCKER_HOST,
// CONTAINER_HOST, a docker context other than the default), else the one
// the cluster was made on (remembered), answering or not, else the first
// that answers of Docker then Podman; when both answer, the one holding the
// cluster (hasCluster, may be nil) wins, so a lost state directory still
// finds it.
// An endpoint that answers as Podman is driven as Podman whatever its
// address says (podman-docker, Podman Desktop's Docker compatibility).
func ChooseRuntime(ctx context.Context, want string, env RuntimeEnv, remembered Runtime, probe Probe, hasCluster func(Endpoint) bool) (RuntimeChoice, error) {
	docker := FindDocker(env.Getenv, env.GOOS, env.Home, env.Exists)
	docker.Runtime = RuntimeDocker
	podman := FindPodman(env)
	// identify turns an answering endpoint into the runtime it really is.
	identify := func(ep Endpoint, why string) RuntimeChoice {
		ok, isPodman := probe(ctx, ep)
		return choiceOf(ep, why, ok && isPodman)
	}
	switch strings.TrimSpace(want) {
	case string(RuntimeDocker):
		return identify(docker, "cluster.runtime docker"), nil
	case string(RuntimePodman):
		return RuntimeChoice{Endpoint: podman, Why: "cluster.runtime podman"}, nil
	case "", "auto":
	default:
		return RuntimeChoice{}, fmt.Errorf("cluster.runtime %q is not a container runtime apimdev drives: use auto, docker or podman", want)
	}
	switch p := strings.TrimSpace(env.Getenv("KIND_EXPERIMENTAL_PROVIDER")); p {
	case "":
	case "podman":
		return RuntimeChoice{Endpoint: podman, Why: "KIND_EXPERIMENTAL_PROVIDER=podman"}, nil
	case "docker":
		return identify(docker, "KIND_EXPERIMENTAL_PROVIDER=docker"), nil
	default:
		return RuntimeChoice{}, fmt.Errorf("KIND_EXPERIMENTAL_PROVIDER=%s: apimdev runs kind on Docker or Podman only; unset it, or set cluster.runtime (--runtime) to docker or podman", p)
	}
	if env.Getenv("DOCKER_HOST") != "" {
		if podman.Source == "DOCKER_HOST" {
			return RuntimeChoice{Endpoint: podman, Why: "DOCKER_HOST names a Podman socket"}, nil
		}
		return identify(docker, "DOCKER_HOST"), nil
	}
	if podman.Source == "CONTAINER_HOST" {
		return RuntimeChoice{Endpoint: podman, Why: "CONTAINER_HOST"}, nil
	}
	if docker.Context != "" && docker.Context != "default" {
		return identify(docker, "the docker context "+docker.Context), nil
	}
	// The cluster was made on one: it is there, answering or not (a
	// stopped engine is started, not replaced by the other one, which
	// would make a second cluster).
	switch remembered {
	case RuntimePodman:
		return RuntimeChoice{Endpoint: podman, Why: "the cluster was made on it"}, nil
	case RuntimeDocker:
		return identify(docker, "the cluster was made on it"), nil
	}
	// Both candidates, asked at once: each is a local socket, so an absent
	// one answers at once too.
	cands := []Endpoint{docker, podman}
	type answer struct{ ok, podman bool }
	answers := make([]answer, len(cands))
	var wg sync.WaitGroup
	for i, ep := range cands {
		if ep.Runtime == RuntimePodman && !env.look("podman") {
			continue // kind needs the CLI; without it Podman is not a choice
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			ok, isPodman := probe(pctx, ep)
			answers[i] = answer{ok, isPodman}
		}()
	}
	wg.Wait()
	var up []RuntimeChoice
	for i, ep := range cands {
		if !answers[i].ok {
			continue
		}
		if answers[i].podman && ep.Runtime == RuntimeDocker && answers[1-i].ok && cands[1-i].Runtime == RuntimePodman {
			continue // Podman's Docker-compatible socket next to its own: one engine
		}
		up = append(up, choiceOf(ep, "it answers", answers[i].podman))
	}
	switch {
	case len(up) == 1:
		return up[0], nil
	case len(up) > 1:
		if hasCluster != nil {
			for _, c := range up {
				if hasCluster(c.Endpoint) {
					c.Why = "the cluster is there"
					return c, nil
				}
			}
		}
		up[0].Why += fmt.Sprintf("; %s answers too: --runtime %s takes it", up[1].Endpoint.Runtime.Title(), up[1].Endpoint.Runtime)
		return up[0], nil
	}
	// Nothing answers: preflight says how to start what this machine has.
	if !env.look("docker") && env.look("podman") {
		return RuntimeChoice{Endpoint: podman, Why: "no engine answers; podman is installed"}, nil
	}
	return RuntimeChoice{Endpoint: docker, Why: "no engine answers"}, nil
}

// choiceOf is ep chosen for why; an endpoint that answered as Podman
// (isPodman) is driven as Podman whatever its address says.
func choiceOf(ep Endpoint, why string, isPodman bool) RuntimeChoice {
	if isPodman && ep.Runtime != RuntimePodman {
		ep.Runtime, ep.Engine = RuntimePodman, "Podman"
		why += "; the engine there is Podman"
	}
	return RuntimeChoice{Endpoint: ep, Why: why}
}
