//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPodman is a Podman user's day, on this machine's rootful Podman
// (scripts/ci/ensure-podman.sh; rootless cannot work here: kind's rootless
// nodes need cgroup v2 and this host has v1): `up --demo --runtime podman`
// makes the cluster with kind's podman provider and the demo's image with
// Podman's API (no Docker involved: the image is made from the stand-in's
// program), smoke, status and doctor find it on Podman by themselves (the
// state directory remembers the runtime, and Docker answers here too),
// promote loses no request, and down leaves nothing in Podman.
func TestPodman(t *testing.T) {
	tl := buildTools(t)
	socket := need(t, "APIMDEV_E2E_PODMAN_SOCKET")
	const cluster = "apimdev-podman"
	r := newRig(t, tl, rigOptions{cluster: cluster, httpPort: "19080", httpsPort: "19443"})
	podman := func(args ...string) (string, error) {
		b, err := exec.Command("podman", args...).CombinedOutput()
		return strings.TrimSpace(string(b)), err
	}
	nodes := func() string {
		out, _ := podman("ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+cluster, "--format", "{{.Names}}")
		return out
	}
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		if n := nodes(); n != "" {
			exec.Command("env", "KIND_EXPERIMENTAL_PROVIDER=podman", tl.kind, "delete", "cluster", "--name", cluster).Run()
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/podman-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // each step builds on the one before
		}
	}
	demoImage := "apimdev-e2e/standin-gateway:2.11.1-standin"
	// The demo's image must be made on Podman from the program, not copied:
	// remove it from Podman first (the rig's copy is Docker's).
	podman("rmi", "-f", demoImage)

	step("up --demo --runtime podman", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, "up", "--demo", "--detach", "--runtime", "podman", "--node-image", tl.nodeImage,
			"--http-port", r.httpPort, "--https-port", r.httpsPort, "--timeout", "5m")
		r.time("up --demo (Podman, cold)", start)
		t.Logf("up --demo on Podman, %s:\n%s%s", time.Since(start).Round(100*time.Millisecond), errs, out)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, "up's progress", errs, "✓ podman: Podman ", "rootful", socket, "cluster.runtime podman",
			"memory for Podman", "created "+cluster, "✓ demo", "✓ smoke")
		mustContain(t, "up's summary", out, "0 failed", "demo subscription key for the echo API: ")
		if n := nodes(); n != cluster+"-control-plane" {
			t.Fatalf("Podman's kind nodes: %q", n)
		}
		if b, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+cluster, "-q").Output(); len(strings.TrimSpace(string(b))) > 0 {
			t.Fatalf("a node of %s is in Docker: %s", cluster, b)
		}
		// The demo's image was made in Podman from the stand-in's program.
		info, err := podman("image", "inspect", "--format", `{{.Created}} {{index .Labels "org.opencontainers.image.title"}}`, demoImage)
		if err != nil || !strings.HasPrefix(info, "2026-01-01") || !strings.Contains(info, "apimdev stand-in gateway") {
			t.Errorf("the demo image in Podman: %s %v", info, err)
		}
		// The forward takes the node's published ports (Podman's port
		// bindings, read through its API) on 127.0.0.1.
		deadline := time.Now().Add(20 * time.Second)
		var fwd []byte
		for time.Now().Before(deadline) {
			fwd, _ = os.ReadFile(filepath.Join(r.state, "clusters", cluster, "forward.log"))
			if strings.Contains(string(fwd), "direct path up") {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		mustContain(t, "forward.log", string(fwd), "direct through the node's ports 127.0.0.1:", "direct path up")
	})

	step("smoke and status find the cluster on Podman by themselves", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "smoke")
		if code != 0 || !strings.Contains(out, "0 failed") {
			t.Fatalf("smoke: exit %d\n%s\n%s", code, out, errs)
		}
		code, out, errs = r.apimdev(t, "status")
		if code != 0 {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
		}
		mustContain(t, "status", out, "Podman at "+socket+" (the cluster was made on it)", "1/1 ready")
	})

	// Podman's pause (its compatible API's, the cgroup freezer): a call made
	// while paused waits, resume thaws with no pod restarted.
	step("pause and resume on Podman", func(t *testing.T) {
		node := cluster + "-control-plane"
		if code, out, errs := r.apimdev(t, "pause"); code != 0 || !strings.Contains(out, "paused") {
			t.Fatalf("pause: exit %d\n%s\n%s", code, out, errs)
		}
		if st, _ := podman("inspect", "-f", "{{.State.Status}}", node); strings.TrimSpace(st) != "paused" {
			t.Fatalf("Podman says the node is %q after pause", st)
		}
		if code, out, _ := r.apimdev(t, "status", "-o", "json"); code != 0 || !strings.Contains(out, `"state":"paused"`) {
			t.Fatalf("status while paused (exit %d): %s", code, out)
		}
		type answer struct {
			code int
			err  error
		}
		got := make(chan answer, 1)
		go func() {
			c, err := probe(context.Background(), r.httpPort)
			got <- answer{c, err}
		}()
		select {
		case a := <-got:
			t.Fatalf("a call through the paused cluster answered %d (%v) before the resume", a.code, a.err)
		case <-time.After(2 * time.Second):
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, "resume")
		r.time("resume (Podman)", start)
		if code != 0 || !strings.Contains(out, "no pod restarted") {
			t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
		}
		if a := <-got; a.err != nil || a.code != http.StatusOK {
			t.Fatalf("the call that waited through the pause: %d, %v", a.code, a.err)
		}
		if st, _ := podman("inspect", "-f", "{{.State.Status}}", node); strings.TrimSpace(st) != "running" {
			t.Fatalf("Podman says the node is %q after resume", st)
		}
		t.Logf("resume on Podman:\n%s", out)
	})

	// The developer's loop on Podman: the relay's image is made in Podman
	// from apimdev's program, and an image backend is loaded from Podman's
	// store into the node.
	step("backends: a program on the laptop and an image, on Podman", func(t *testing.T) {
		laptop := newLaptopBackend(t)
		start := time.Now()
		code, out, errs := r.apimdev(t, "backend", "add", "orders", "--to", laptop.addr, "--port", "8080")
		r.time("backend add (Podman)", start)
		if code != 0 {
			t.Fatalf("backend add exited %d\n%s\n%s", code, out, errs)
		}
		if img, err := podman("images", "--filter", "reference=apimdev.local/relay", "--format", "{{.Repository}}"); err != nil || !strings.Contains(img, "apimdev.local/relay") {
			t.Errorf("the relay's image is not in Podman: %q %v", img, err)
		}
		if code, out, errs := r.apimdev(t, "demo", "api", "add", "orders", "--path", "/orders", "--backend", "http://orders:8080", "--no-subscription"); code != 0 {
			t.Fatalf("demo api add exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("the laptop's program answered through the gateway %s after demo api add", waitOrders(t, r.httpPort, time.Minute).Round(100*time.Millisecond))

		code, out, errs = r.apimdev(t, "backend", "add", "stock", "--image", demoImage, "--port", "8080")
		if code != 0 {
			t.Fatalf("backend add --image exited %d\n%s\n%s", code, out, errs)
		}
		if code, out, errs := r.apimdev(t, "demo", "api", "add", "stock", "--path", "/stock", "--backend", "http://stock:8080", "--no-subscription"); code != 0 {
			t.Fatalf("demo api add exited %d\n%s\n%s", code, out, errs)
		}
		// The image is the stand-in gateway with no configuration of its
		// own: its status path answers 503. Any answer but the proxy's own
		// 502/504 (backend unreachable, or silent) comes from the backend.
		deadline := time.Now().Add(time.Minute)
		var last string
		for {
			resp, err := http.Get("http://127.0.0.1:" + r.httpPort + "/stock/status-0123456789abcdef")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout && resp.StatusCode != http.StatusNotFound {
					t.Logf("the image backend answered %s through the gateway", resp.Status)
					break
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("the image backend did not answer through the gateway: %s", last)
			}
			time.Sleep(250 * time.Millisecond)
		}
		code, out, _ = r.apimdev(t, "logs", "--backend", "stock")
		if code != 0 || !strings.Contains(out, "stand-in") {
			t.Errorf("logs --backend stock exited %d:\n%s", code, out)
		}
		code, out, _ = r.apimdev(t, "backend", "list")
		t.Logf("backend list on Podman:\n%s", out)
		if code != 0 || !strings.Contains(out, "answering") || !strings.Contains(out, "ready") {
			t.Errorf("backend list exited %d", code)
		}
		for _, name := range []string{"stock", "orders"} {
			if code, out, errs := r.apimdev(t, "backend", "remove", name); code != 0 {
				t.Errorf("backend remove %s exited %d\n%s\n%s", name, code, out, errs)
			}
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy,svc", "-l", "apimdev.io/backend", "-o", "name"); strings.Contains(got, "/") {
			t.Errorf("left after backend remove: %s", got)
		}
	})

	step("promote loses no request", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, "promote", "--yes", "-o", "json", "--rate", "50", "--timeout", "6m")
		r.time("promote (Podman)", start)
		if code != 0 {
			t.Fatalf("promote exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		t.Logf("promote on Podman: rollout %.1fs, traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms",
			res.RolloutSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms)
		if res.Traffic.Sent < 200 || res.Traffic.Failed != 0 {
			t.Errorf("traffic: %d sent, %d failed; want ≥ 200 sent and 0 failed", res.Traffic.Sent, res.Traffic.Failed)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/apimdev-gw", "-o", "jsonpath={.status.readyReplicas}"); got != "3" {
			t.Errorf("ready replicas after promote: %s", got)
		}
	})

	// A laptop's power cut: the node dies (Podman has no daemon to restart
	// it) and comes back, at the next up, with another address on kind's
	// network, which the node's entrypoint writes into its Kubernetes
	// files. up starts it, keeps the prod profile it records, and is green.
	step("after the node died, up brings it back as it was", func(t *testing.T) {
		node := cluster + "-control-plane"
		before, _ := podman("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node)
		if out, err := podman("kill", node); err != nil {
			t.Fatalf("podman kill: %v %s", err, out)
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, "up", "--demo", "--detach", "--http-port", r.httpPort, "--https-port", r.httpsPort, "--timeout", "5m")
		r.time("up after the node died (Podman)", start)
		t.Logf("up after the node died, %s:\n%s%s", time.Since(start).Round(100*time.Millisecond), errs, out)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, "up's progress", errs, "✓ podman: Podman ", "the cluster was made on it", "starting stopped node "+node, "✓ smoke")
		mustContain(t, "up's summary", out, "profile: prod", "0 failed")
		after, _ := podman("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node)
		logs, _ := podman("logs", node)
		t.Logf("node address %s → %s", before, after)
		if before != after && !strings.Contains(logs, "the node's address changed from "+before+" to "+after) {
			t.Errorf("the node's address changed (%s → %s) and its entrypoint did not say it rewrote it:\n%s", before, after, logs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/apimdev-gw", "-o", "jsonpath={.status.readyReplicas}"); got != "3" {
			t.Errorf("ready replicas after the restart: %s", got)
		}
	})

	step("doctor collects through Podman", func(t *testing.T) {
		bundle := filepath.Join(t.TempDir(), "bundle.tar.gz")
		code, out, errs := r.apimdev(t, "doctor", "--bundle", bundle)
		if code != 0 {
			t.Fatalf("doctor: exit %d\n%s\n%s", code, out, errs)
		}
		b, err := exec.Command("tar", "-xzOf", bundle).Output()
		if err != nil {
			t.Fatalf("reading the bundle: %v", err)
		}
		mustContain(t, "the bundle", string(b), "podman engine ", socket)
		if strings.Contains(string(b), r.canary) {
			t.Error("the doctor bundle holds the token")
		}
	})

	step("down leaves nothing in Podman", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "down")
		if code != 0 {
			t.Fatalf("down: exit %d\n%s\n%s", code, out, errs)
		}
		if n := nodes(); n != "" {
			t.Fatalf("Podman still has %s", n)
		}
		if _, err := os.Stat(r.kubeconfig); !os.IsNotExist(err) {
			t.Errorf("the kubeconfig survived down: %v", err)
		}
	})
}
