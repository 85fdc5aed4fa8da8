package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// The engine is found as the docker CLI finds it, then the desktop
// engines' sockets when the default one is not there.
func TestFindDockerAsTheCLIDoes(t *testing.T) {
	t.Parallel()
	home := testdir.New(t)
	writeContext := func(name, host string) {
		sum := sha256.Sum256([]byte(name))
		dir := filepath.Join(home, ".docker", "contexts", "meta", hex.EncodeToString(sum[:]))
		os.MkdirAll(dir, 0o700)
		b, _ := json.Marshal(map[string]any{"Name": name, "Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": false}}})
		os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o600)
	}
	writeContext("colima", "unix://"+home+"/.colima/default/docker.sock")
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	none := func(string) bool { return false }

	// 1. DOCKER_HOST wins.
	env["DOCKER_HOST"] = "tcp://127.0.0.1:2375"
	if ep := FindDocker(getenv, "darwin", home, none); ep.Host != "tcp://127.0.0.1:2375" || ep.Source != "DOCKER_HOST" {
		t.Errorf("DOCKER_HOST: %+v", ep)
	}
	delete(env, "DOCKER_HOST")
	// 2. The current context of the docker configuration.
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{},"currentContext":"colima"}`), 0o600)
	ep := FindDocker(getenv, "darwin", home, none)
	if ep.Context != "colima" || ep.Engine != "Colima" || !strings.HasSuffix(ep.Host, ".colima/default/docker.sock") || ep.FromSocketFallback() {
		t.Errorf("current context: %+v", ep)
	}
	if d := ep.Describe(); !strings.Contains(d, "Colima") || !strings.Contains(d, "context colima") {
		t.Errorf("describe: %s", d)
	}
	// DOCKER_CONTEXT names another one; "default" is the OS's default.
	env["DOCKER_CONTEXT"] = "default"
	if ep := FindDocker(getenv, "linux", home, func(p string) bool { return p == "/var/run/docker.sock" }); ep.Host != "" {
		t.Errorf("DOCKER_CONTEXT=default: %+v", ep)
	}
	delete(env, "DOCKER_CONTEXT")
	os.Remove(filepath.Join(home, ".docker", "config.json"))
	// 3. No context, no default socket: Docker Desktop's socket under home.
	dd := filepath.Join(home, ".docker", "run", "docker.sock")
	ep = FindDocker(getenv, "darwin", home, func(p string) bool { return p == dd })
	if ep.Host != "unix://"+dd || ep.Engine != "Docker Desktop" || !ep.FromSocketFallback() {
		t.Errorf("Docker Desktop's socket: %+v", ep)
	}
	// The default socket is there: the client's default.
	if ep := FindDocker(getenv, "linux", home, func(p string) bool { return p == "/var/run/docker.sock" || p == dd }); ep.Host != "" {
		t.Errorf("default socket: %+v", ep)
	}
	// Windows: the named pipe is the default.
	if ep := FindDocker(getenv, "windows", home, none); ep.Host != "" || ep.Source != "the default" {
		t.Errorf("windows: %+v", ep)
	}
	if !strings.Contains(ResourceFix("Colima"), "colima start --cpu 4 --memory 8") || !strings.Contains(ResourceFix("Docker Desktop"), "Settings > Resources") {
		t.Error("ResourceFix")
	}
}
