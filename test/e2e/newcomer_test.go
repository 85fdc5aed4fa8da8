//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNewcomer is a first run as the README tells it: a fresh HOME, a fresh
// clone of this repository, and only the README's first command, `make
// demo`. Nothing says which node image to use (kind's cannot be pulled
// here): apimdev must find the one built on this machine. The clone is of
// the repository's committed HEAD, which is what CI runs.
//
// Go's own module and build caches are shared with the rig (a new machine
// would download and compile once more); apimdev's state, kubeconfig and
// everything else start empty.
func TestNewcomer(t *testing.T) {
	tl := buildTools(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	clone := filepath.Join(t.TempDir(), "apimdev")
	if b, err := exec.Command("git", "clone", "-q", "--no-hardlinks", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, b)
	}
	goEnv := func(name string) string {
		b, _ := exec.Command("go", "env", name).Output()
		return strings.TrimSpace(string(b))
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GOCACHE=" + goEnv("GOCACHE"), "GOMODCACHE=" + goEnv("GOMODCACHE"),
		"GOFLAGS=", "GOTOOLCHAIN=local", "TERM=dumb", "LANG=C.UTF-8"}
	run := func(ctx context.Context, dir string, name string, args ...string) (int, string, string, time.Duration) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return code, out.String(), errb.String(), time.Since(start)
	}
	apimdev := filepath.Join(clone, "apimdev")
	t.Cleanup(func() {
		if _, err := os.Stat(apimdev); err == nil {
			run(context.Background(), clone, apimdev, "down")
		}
		exec.Command(tl.kind, "delete", "cluster", "--name", "apimdev").Run()
	})

	t.Run("a node image that cannot be pulled: the registry is named with the ways out, nothing is made", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if code, out, errs, _ := run(ctx, clone, "make", "build"); code != 0 {
			t.Fatalf("make build: %d\n%s\n%s", code, out, errs)
		}
		if code, out, errs, _ := run(ctx, root, "scripts/e2e/standin-image.sh"); code != 0 {
			t.Fatalf("the stand-in image: %d\n%s\n%s", code, out, errs)
		}
		code, out, errs, d := run(ctx, clone, apimdev, "up", "--demo", "--detach", "--cluster-name", "apimdev-nopull", "--http-port", "27080", "--https-port", "27443",
			"--node-image", "127.0.0.1:1/kindest/node:v9.9.9")
		t.Logf("up with a node image that cannot be pulled, %s:\n%s%s", d.Round(time.Millisecond), out, errs)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		mustContain(t, "up's stderr", errs, "✗ cluster", "the node image 127.0.0.1:1/kindest/node:v9.9.9 could not be pulled",
			"the registry 127.0.0.1:1 could not be reached", "nothing was created", "--kit", "--node-image NAME", "apimdev node-image build")
		if n := nodeContainers(t, "apimdev-nopull"); len(n) > 0 {
			t.Errorf("node containers were made: %v", n)
		}
		for _, f := range []string{"kubeconfig", "record.json", "forward.json"} {
			if _, err := os.Stat(filepath.Join(home, ".config", "apimdev", "clusters", "apimdev-nopull", f)); !os.IsNotExist(err) {
				t.Errorf("%s exists after the failed pull", f)
			}
		}
	})

	t.Run("make demo: a working demo gateway, its URLs, key and a curl line", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		code, out, errs, d := run(ctx, clone, "make", "demo")
		t.Logf("make demo on a fresh HOME and clone, %s:\n%s%s", d.Round(100*time.Millisecond), errs, out)
		if code != 0 {
			t.Fatalf("make demo exited %d", code)
		}
		mustContain(t, "make demo's output", out, "0 failed", "http://127.0.0.1:8080", "https://127.0.0.1:8443",
			"demo subscription key for the echo API: ", "curl -H \"Ocp-Apim-Subscription-Key: ", "stand-in, not Azure API Management")
		mustContain(t, "make demo's progress", errs, "using apimdev-e2e/kind-node:v1.34.4, built here", "✓ demo", "✓ smoke")
		// The curl line, as printed, works.
		m := regexp.MustCompile(`curl -H "([^:]+): ([0-9a-f]+)" (http://127\.0\.0\.1:\d+/echo/hello)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no curl line in:\n%s", out)
		}
		req, _ := http.NewRequest(http.MethodGet, m[3], nil)
		req.Header.Set(m[1], m[2])
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("the curl line: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "echo") {
			t.Fatalf("the curl line answered %s: %s", resp.Status, body)
		}
		t.Logf("the printed curl line answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
		// A second `make demo` changes nothing and is fast.
		code, _, errs, d = run(ctx, clone, "make", "demo")
		if code != 0 || !strings.Contains(errs, "0 object(s) changed") {
			t.Fatalf("make demo again: exit %d\n%s", code, errs)
		}
		t.Logf("make demo again: %s", d.Round(100*time.Millisecond))
	})

	t.Run("a binary user with no clone: up --demo makes the demo's image from the stand-in next to apimdev", func(t *testing.T) {
		// A release archive's layout: apimdev and the stand-in's Linux program.
		bin := t.TempDir()
		for out, pkg := range map[string]string{"apimdev": ".", "standin-gateway": "./test/standin-gateway"} {
			b := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, out), pkg)
			b.Dir, b.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
			if o, err := b.CombinedOutput(); err != nil {
				t.Fatalf("building %s: %v\n%s", pkg, err, o)
			}
		}
		// The demo's image is not on this machine (the rig's stays under its
		// source-hash tag and is tagged back afterwards).
		ref := tl.gatewayImage
		tags, _ := exec.Command("docker", "images", strings.Split(ref, ":")[0], "--format", "{{.Repository}}:{{.Tag}}").Output()
		rigTag := ""
		for _, tag := range strings.Fields(string(tags)) {
			if strings.Contains(tag, ":src-") {
				rigTag = tag
			}
		}
		if rigTag == "" {
			t.Fatalf("the rig's stand-in image has no source-hash tag: %s", tags)
		}
		t.Cleanup(func() { exec.Command("docker", "tag", rigTag, ref).Run() })
		if b, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
			t.Fatalf("docker rmi %s: %v %s", ref, err, b)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		args := []string{"up", "--demo", "--detach", "--cluster-name", "apimdev-bin", "--http-port", "27180", "--https-port", "27543"}
		t.Cleanup(func() {
			run(context.Background(), bin, filepath.Join(bin, "apimdev"), "down", "--cluster-name", "apimdev-bin")
		})
		code, out, errs, d := run(ctx, bin, filepath.Join(bin, "apimdev"), args...)
		t.Logf("a binary user's up --demo, %s:\n%s%s", d.Round(100*time.Millisecond), errs, out)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, "the binary user's up", out, "0 failed", "demo subscription key for the echo API: ")
		created, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Created}} {{.Config.User}} {{index .Config.Labels \"org.opencontainers.image.title\"}}", ref).Output()
		if !strings.HasPrefix(string(created), "2026-01-01") || !strings.Contains(string(created), "1001 apimdev stand-in gateway") {
			t.Errorf("the demo's image was not made from the stand-in's program: %s", created)
		}
	})

	t.Run("version and help say how to start", func(t *testing.T) {
		_, out, _, _ := run(context.Background(), clone, apimdev, "version")
		mustContain(t, "apimdev version", out, "commit", "built", "go1.", "kind", "v0.33.0", "kubernetes", "v1.34.4")
		_, out, _, _ = run(context.Background(), clone, apimdev, "up", "--help")
		if !strings.HasPrefix(out, "Two ways to start:") || !strings.Contains(out, "apimdev up --demo --detach") {
			t.Errorf("up --help opens with:\n%s", out[:min(len(out), 400)])
		}
	})
}
