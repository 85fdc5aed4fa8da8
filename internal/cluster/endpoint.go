package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// Endpoint is the Docker engine apimdev talks to, found the way the docker
// CLI finds it, and how it was found.
type Endpoint struct {
	// Host is the engine's address (unix:///…, npipe:////./pipe/…, tcp://…);
	// "" means the client's default for this OS.
	Host string
	// Context is the docker context it came from ("" when none).
	Context string
	// Source says where it came from: DOCKER_HOST, a context, or a socket
	// that a desktop engine made (Docker Desktop, Colima, Rancher Desktop,
	// OrbStack) when the default one is not there.
	Source string
	// Engine names the engine product when the socket or context says it.
	Engine string
	// Runtime is what runs there: Docker, or Podman through its
	// Docker-compatible API. "" reads as Docker.
	Runtime Runtime
}

// RuntimeIs says whether the endpoint is r's.
func (e Endpoint) RuntimeIs(r Runtime) bool {
	if e.Runtime == "" {
		return r == RuntimeDocker
	}
	return e.Runtime == r
}

// Runs is the endpoint's runtime, Docker when unset.
func (e Endpoint) Runs() Runtime {
	if e.Runtime == "" {
		return RuntimeDocker
	}
	return e.Runtime
}

// Describe is the endpoint in a few words, for preflight.
func (e Endpoint) Describe() string {
	var parts []string
	if e.Engine != "" {
		parts = append(parts, e.Engine)
	}
	if e.Context != "" {
		parts = append(parts, "context "+e.Context)
	}
	if e.Host != "" {
		parts = append(parts, e.Host)
	} else {
		parts = append(parts, "the default socket")
	}
	return strings.Join(parts, ", ")
}

// FromSocketFallback says the endpoint is a desktop engine's socket that
// the docker CLI would not find by itself: kind's docker commands need
// DOCKER_HOST set to it.
func (e Endpoint) FromSocketFallback() bool { return strings.HasPrefix(e.Source, "the socket") }

// desktopSockets are where the desktop engines put their sockets, under
// the home directory, in the order they are tried.
var desktopSockets = []struct{ path, engine string }{
	{".docker/run/docker.sock", "Docker Desktop"},
	{".colima/default/docker.sock", "Colima"},
	{".colima/docker.sock", "Colima"},
	{".rd/docker.sock", "Rancher Desktop"},
	{".orbstack/run/docker.sock", "OrbStack"},
}

// FindDocker finds the engine as the docker CLI does: DOCKER_HOST; else
// the context DOCKER_CONTEXT names, or the current one of the docker
// configuration (DOCKER_CONFIG, else ~/.docker); else the OS's default
// socket, and when that is not there (not on Windows, whose named pipe is
// the default), a desktop engine's socket under home.
func FindDocker(getenv func(string) string, goos, home string, exists func(string) bool) Endpoint {
	if h := getenv("DOCKER_HOST"); h != "" {
		return Endpoint{Host: h, Source: "DOCKER_HOST", Engine: engineOf("", h)}
	}
	cfgDir := getenv("DOCKER_CONFIG")
	if cfgDir == "" && home != "" {
		cfgDir = filepath.Join(home, ".docker")
	}
	name := getenv("DOCKER_CONTEXT")
	source := "DOCKER_CONTEXT"
	if name == "" && cfgDir != "" {
		var c struct {
			CurrentContext string `json:"currentContext"`
		}
		if b, err := os.ReadFile(filepath.Join(cfgDir, "config.json")); err == nil && json.Unmarshal(b, &c) == nil {
			name, source = c.CurrentContext, "the current docker context"
		}
	}
	if name != "" && name != "default" && cfgDir != "" {
		sum := sha256.Sum256([]byte(name))
		var meta struct {
			Endpoints map[string]struct {
				Host string `json:"Host"`
			} `json:"Endpoints"`
		}
		if b, err := os.ReadFile(filepath.Join(cfgDir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")); err == nil && json.Unmarshal(b, &meta) == nil {
			if d, ok := meta.Endpoints["docker"]; ok && d.Host != "" {
				return Endpoint{Host: d.Host, Context: name, Source: source, Engine: engineOf(name, d.Host)}
			}
		}
	}
	if goos == "windows" || home == "" {
		return Endpoint{Source: "the default"}
	}
	if exists("/var/run/docker.sock") {
		return Endpoint{Source: "the default"}
	}
	for _, s := range desktopSockets {
		p := filepath.Join(home, s.path)
		if exists(p) {
			return Endpoint{Host: "unix://" + p, Source: "the socket " + s.engine + " made", Engine: s.engine}
		}
	}
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" && exists(filepath.Join(rt, "docker.sock")) {
		return Endpoint{Host: "unix://" + filepath.Join(rt, "docker.sock"), Source: "the socket rootless Docker made", Engine: "rootless Docker"}
	}
	return Endpoint{Source: "the default"}
}

// engineOf names the engine from a context's name or its socket's path.
func engineOf(context, host string) string {
	s := strings.ToLower(context + " " + host)
	switch {
	case strings.Contains(s, "desktop-linux"), strings.Contains(s, ".docker/run/docker.sock"), strings.Contains(s, "dockerdesktop"), strings.Contains(s, "docker_engine"):
		return "Docker Desktop"
	case strings.Contains(s, "colima"):
		return "Colima"
	case strings.Contains(s, "rancher-desktop"), strings.Contains(s, ".rd/"):
		return "Rancher Desktop"
	case strings.Contains(s, "orbstack"):
		return "OrbStack"
	case strings.Contains(s, "podman"):
		return "Podman"
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
