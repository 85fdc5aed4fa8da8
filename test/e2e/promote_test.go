//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// promoteResult is the part of `apimdev promote -o json` the test reads.
type promoteResult struct {
	Profile, Image, PinnedHow, FitNote string
	Diff, VersionWarning               string
	RolloutSeconds                     float64
	Traffic                            struct {
		Sent, Failed int
		P50Ms, P99Ms float64
	}
	Checks []struct {
		Name   string
		OK     bool
		Detail string
	}
}

// lastJSON decodes the last line of -o json output (events come before it).
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("decoding %q: %v", lines[len(lines)-1], err)
	}
}

func (r *rig) waitReady(t *testing.T, ns, deploy string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		out, _ := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n", ns, "get", "deploy", deploy,
			"-o", "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}/{.status.replicas}").Output()
		w := strings.Repeat(itoa(want)+"/", 3)
		if string(out)+"/" == w {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s/%s not %d/%d ready within %s", ns, deploy, want, want, limit)
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestPromote: up with a floating tag, promote to prod with ≥ 1000 requests
// flowing and none lost, each production feature proved, the backup proof,
// token rotation under traffic, export checked by the API server, --context,
// and the way back to dev.
func TestPromote(t *testing.T) {
	r := newRig(t, buildTools(t), rigOptions{cluster: "apimdev-promote", httpPort: "18180", httpsPort: "18543"})
	userBefore, _ := os.ReadFile(r.userKubeconfig)
	floating := strings.Split(r.gatewayImage, ":")[0] + ":v2"
	if b, err := exec.Command("docker", "tag", r.gatewayImage, floating).CombinedOutput(); err != nil {
		t.Fatalf("tagging %s: %v %s", floating, err, b)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/promote-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	traffic := []string{"--traffic-path", "/echo/promote", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}"}

	t.Run("up with the floating v2 tag", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cfgErr := make(chan error, 1)
		// The config service (test infrastructure) runs the pinned stand-in
		// tag, which up does not load (it loads the gateway's v2): load it here.
		go func() {
			for ctx.Err() == nil {
				if _, err := os.Stat(r.kubeconfig); err == nil && exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "get", "--raw", "/readyz").Run() == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if b, err := exec.Command(r.kind, "load", "docker-image", r.gatewayImage, "--name", r.cluster).CombinedOutput(); err != nil {
				cfgErr <- fmt.Errorf("kind load: %v: %s", err, b)
				return
			}
			cfgErr <- r.applyConfigService()
		}()
		start := time.Now()
		code, out, errs := r.apimdevCtx(t, ctx, append(append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml"}, r.common()...), "--image", floating)...)
		r.time("up (cold)", start)
		if err := <-cfgErr; err != nil {
			t.Fatalf("config service: %v", err)
		}
		if code != 0 {
			t.Fatalf("up exited %d\n%s\n%s", code, out, errs)
		}
		// The dev profile sends no local metrics: top says so and how.
		code, out, errs = r.apimdev(t, "top", "--once")
		if code != 0 || !strings.Contains(out, "1/1 pod(s) ready") || !strings.Contains(out, "`apimdev promote` adds a statsd exporter") {
			t.Errorf("top on the dev profile: exit %d\n%s\n%s", code, out, errs)
		}
	})

	t.Run("promote without --yes and without a terminal changes nothing", func(t *testing.T) {
		code, _, errs := r.apimdev(t, "promote")
		if code != 1 || !strings.Contains(errs, "run again with --yes") || !strings.Contains(errs, "~ Deployment/contoso-gw") {
			t.Fatalf("exit %d\n%s", code, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.spec.replicas}"); got != "1" {
			t.Fatalf("declined promote changed replicas to %s", got)
		}
	})

	// Before promotion: the API server validates the export as an upgrade of
	// what runs, as on a cluster that has the dev gateway (the backup claim's
	// access mode could not change once made).
	t.Run("export passes the API server's validation", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "prod")
		code, out, errs := r.apimdev(t, "export", "--profile", "prod", "-o", dir)
		if code != 0 {
			t.Fatalf("export exited %d\n%s\n%s", code, out, errs)
		}
		deploys, _ := filepath.Glob(filepath.Join(dir, "*-deployment.yaml"))
		if len(deploys) != 2 {
			t.Fatalf("want the gateway's and the exporter's Deployment, got %v", deploys)
		}
		b, _ := os.ReadFile(deploys[0])
		if !strings.Contains(string(b), "cpu: \"2\"") || !strings.Contains(string(b), "memory: 2Gi") {
			t.Errorf("export does not keep the production requests:\n%s", b)
		}
		if _, err := os.Stat(filepath.Join(dir, "gateway.token")); !os.IsNotExist(err) {
			t.Error("the token was written without --include-token")
		}
		os.WriteFile(filepath.Join(dir, "gateway.token"), []byte(r.token+"\n"), 0o600)
		if b, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "apply", "-k", dir, "--dry-run=server").CombinedOutput(); err != nil {
			t.Fatalf("server-side dry run: %v\n%s", err, b)
		}
	})

	t.Run("promote to prod loses no request", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"promote", "--yes", "-o", "json", "--rate", "100"}, traffic...)...)
		r.time("promote", start)
		if code != 0 {
			t.Fatalf("promote exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		t.Logf("promote: rollout %.1fs, traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms; image %s (%s)",
			res.RolloutSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms, res.Image, res.PinnedHow)
		if res.Traffic.Sent < 1000 || res.Traffic.Failed != 0 {
			t.Errorf("traffic: %d sent, %d failed; want ≥ 1000 sent and 0 failed", res.Traffic.Sent, res.Traffic.Failed)
		}
		// The traffic went through the background forward on the cluster
		// apimdev created: the direct path, paused while the pods changed
		// (the tunnel took those connections) and back once they settled.
		fwdLog, _ := os.ReadFile(filepath.Join(r.state, "clusters", r.cluster, "forward.log"))
		for _, want := range []string{"direct through the node's ports 127.0.0.1:", "direct path up", "direct path paused"} {
			if !strings.Contains(string(fwdLog), want) {
				t.Errorf("forward log has no %q:\n%s", want, fwdLog)
			}
		}
		if i := strings.LastIndex(string(fwdLog), "direct path "); i < 0 || !strings.HasPrefix(string(fwdLog)[i:], "direct path up") {
			// Settled pods: the last word is the path's being up again.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				fwdLog, _ = os.ReadFile(filepath.Join(r.state, "clusters", r.cluster, "forward.log"))
				if i = strings.LastIndex(string(fwdLog), "direct path "); i >= 0 && strings.HasPrefix(string(fwdLog)[i:], "direct path up") {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if i < 0 || !strings.HasPrefix(string(fwdLog)[i:], "direct path up") {
				t.Errorf("the direct path is not up again 10 s after the rollout:\n%s", fwdLog)
			}
		}
		if res.Image != r.gatewayImage || !strings.Contains(res.PinnedHow, "tag of the same local image") {
			t.Errorf("v2 pinned to %s (%s), want %s", res.Image, res.PinnedHow, r.gatewayImage)
		}
		if !strings.Contains(res.FitNote, "fitted to") {
			t.Errorf("no fitting note on a 2-CPU node: %q", res.FitNote)
		}
		want := map[string]bool{"replicas": false, "image pinned": false, "disruption budget": false, "config backup": false, "local metrics": false, "token expiry": false, "network policy": false}
		for _, c := range res.Checks {
			if _, ok := want[c.Name]; ok {
				want[c.Name] = c.OK
			}
			if !c.OK {
				t.Errorf("check %s: %s", c.Name, c.Detail)
			}
		}
		for name, ok := range want {
			if !ok {
				t.Errorf("check %s missing or failed", name)
			}
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}"); got != "3/3" {
			t.Errorf("ready %s", got)
		}
		r.kubectlOut(t, "-n=apim-gateway", "get", "pdb/contoso-gw")
		// The rig's CNI is a static bridge: the policies are accepted, and
		// promote must say that nothing enforces them.
		for _, c := range res.Checks {
			if c.Name == "network policy" && !strings.Contains(c.Detail, "nothing in this cluster enforces NetworkPolicy") {
				t.Errorf("network policy check on a cluster that does not enforce policies: %s", c.Detail)
			}
		}
		if got := strings.TrimSpace(r.kubectlOut(t, "-n=apim-gateway", "get", "networkpolicy", "-o", "name")); got != "networkpolicy.networking.k8s.io/contoso-gw\nnetworkpolicy.networking.k8s.io/contoso-gw-statsd" {
			t.Errorf("network policies: %q", got)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o",
			`jsonpath={.spec.template.spec.containers[0].resources.limits.memory} {.spec.template.spec.containers[0].resources.requests.ephemeral-storage} {.spec.template.spec.containers[0].livenessProbe.failureThreshold}x{.spec.template.spec.containers[0].livenessProbe.periodSeconds} {.spec.template.spec.containers[0].readinessProbe.failureThreshold}x{.spec.template.spec.containers[0].readinessProbe.periodSeconds}`); got != "2Gi 1Gi 12x10 3x5" {
			t.Errorf("memory limit, ephemeral-storage request, liveness and readiness windows: %q", got)
		}
		code, out, _ = r.apimdev(t, "status")
		if code != 0 || !strings.Contains(out, "3/3 ready") || !strings.Contains(out, "requests seen by the statsd exporter") {
			t.Errorf("status after promote:\n%s", out)
		}
		// top --once -o json: the count the exporter has, a rate over its
		// second, the pods.
		code, out, errs = r.apimdev(t, "top", "--once", "-o", "json")
		var top struct {
			Metrics *struct{ Requests float64 }
			Rate    *struct{ RequestsPerSecond float64 }
			Pods    []struct{ Ready bool }
			Missing string
		}
		if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &top) != nil || top.Metrics == nil || top.Metrics.Requests < 1 || top.Rate == nil || len(top.Pods) != 3 {
			t.Errorf("top --once -o json after promote: exit %d\n%s\n%s", code, out, errs)
		} else {
			t.Logf("top --once: %.0f requests counted, %.1f/s now, %d pods", top.Metrics.Requests, top.Rate.RequestsPerSecond, len(top.Pods))
		}
	})

	t.Run("a busy pod leaves rotation within readiness' window and liveness does not restart it", func(t *testing.T) {
		// The stand-in's test hook fails the status endpoint of the pod the
		// forward reaches for 45 s while its APIs keep serving: longer than
		// the old liveness window (3 × 10 s), shorter than the new (12 × 10 s).
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+r.httpPort+"/standin/busy?for=45s", nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", subKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var busy struct{ Pod string }
		json.NewDecoder(resp.Body).Decode(&busy)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || busy.Pod == "" {
			t.Fatalf("busy hook: %d %+v", resp.StatusCode, busy)
		}
		start := time.Now()
		state := func() (string, string) {
			out := r.kubectlOut(t, "-n=apim-gateway", "get", "pod", busy.Pod, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[0].restartCount}`)
			ready, restarts, _ := strings.Cut(out, " ")
			return ready, restarts
		}
		var outAt, backAt time.Duration
		for time.Since(start) < 90*time.Second && backAt == 0 {
			ready, restarts := state()
			if restarts != "0" {
				t.Fatalf("pod %s restarted (%s) %.0fs after its status began failing", busy.Pod, restarts, time.Since(start).Seconds())
			}
			switch {
			case ready == "False" && outAt == 0:
				outAt = time.Since(start)
			case ready == "True" && outAt > 0:
				backAt = time.Since(start)
			}
			time.Sleep(time.Second)
		}
		t.Logf("pod %s: out of rotation after %.1fs, ready again after %.1fs, restarts 0", busy.Pod, outAt.Seconds(), backAt.Seconds())
		if outAt == 0 || outAt > 25*time.Second || backAt < 45*time.Second {
			t.Errorf("out of rotation after %s (want within readiness' 15 s and a probe), back after %s (want after the 45 s)", outAt, backAt)
		}
	})

	t.Run("upgrade rolls another stand-in version under traffic with none lost, and warns of its known problem", func(t *testing.T) {
		// A second stand-in version: the same binary, reporting 2.12.1-standin,
		// as a new image (a layer and a label of its own).
		next := strings.TrimSuffix(r.gatewayImage, ":2.11.1-standin") + ":2.12.1-standin"
		build := exec.Command("docker", "build", "-q", "-t", next, "-")
		build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		build.Stdin = strings.NewReader("FROM " + r.gatewayImage + "\nENV STANDIN_VERSION=2.12.1-standin\nLABEL org.opencontainers.image.version=2.12.1-standin\n")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", next, err, b)
		}
		// apimdev logs -f follows the rollout: lines of the old pods and of
		// the new, and a clean stop on Ctrl-C.
		oldPods := strings.Fields(r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app=contoso-gw", "-o", "jsonpath={.items[*].metadata.name}"))
		logs := r.start(t, context.Background(), "logs", "-f", "-o", "json")
		time.Sleep(2 * time.Second)
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"upgrade", "--image-tag", "2.12.1-standin", "--yes", "-o", "json", "--rate", "100"}, traffic...)...)
		r.time("upgrade 2.11.1 → 2.12.1 (stand-in)", start)
		var newPods []string
		for _, p := range strings.Fields(r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app=contoso-gw", "-o", "jsonpath={.items[*].metadata.name}")) {
			if !slices.Contains(oldPods, p) {
				newPods = append(newPods, p)
			}
		}
		// The prod profile logs at warn: a new pod says something when the
		// busy hook is called on it (a warning).
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+r.httpPort+"/standin/busy?for=1s", nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", subKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		time.Sleep(2 * time.Second)
		logs.signal(syscall.SIGINT)
		lcode, lout, lerrs, exited := logs.wait(15 * time.Second)
		seen := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(lout), "\n") {
			var l struct{ Pod string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Pod != "" {
				seen[l.Pod]++
			}
		}
		in := func(pods []string) int {
			n := 0
			for _, p := range pods {
				n += seen[p]
			}
			return n
		}
		t.Logf("logs -f through the upgrade: exit %d, %d line(s): %d from the %d old pod(s), %d from the %d new", lcode, strings.Count(lout, "\n"), in(oldPods), len(oldPods), in(newPods), len(newPods))
		t.Logf("logs -f -o json through the upgrade:\n%s", lout)
		if _, text, _ := r.apimdev(t, "logs", "--since", "5m"); text != "" {
			t.Logf("apimdev logs --since 5m after the upgrade (text):\n%s", text)
		}
		if !exited || lcode != 0 || in(oldPods) == 0 || in(newPods) == 0 {
			t.Errorf("logs -f: exited %v, code %d, old-pod lines %d, new-pod lines %d\n%s", exited, lcode, in(oldPods), in(newPods), lerrs)
		}
		if code != 0 {
			t.Fatalf("upgrade exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		t.Logf("upgrade: rollout %.1fs, traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms; image %s", res.RolloutSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms, res.Image)
		if res.Traffic.Sent < 1000 || res.Traffic.Failed != 0 {
			t.Errorf("traffic: %d sent, %d failed; want ≥ 1000 sent and 0 failed", res.Traffic.Sent, res.Traffic.Failed)
		}
		if res.Image != next || !strings.Contains(res.VersionWarning, "issues/418") {
			t.Errorf("image %s, warning %q", res.Image, res.VersionWarning)
		}
		if !strings.Contains(res.Diff, "2.12.1-standin") || !strings.Contains(res.Diff, "Deployment/contoso-gw") {
			t.Errorf("no diff of the image:\n%s", res.Diff)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas} {.spec.template.spec.containers[0].image}"); got != "3/3 "+next {
			t.Errorf("after the upgrade: %q", got)
		}
		req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:"+r.httpPort+"/echo/version", nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", subKey)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Error(err)
		} else {
			var echo struct{ Version string }
			json.NewDecoder(resp.Body).Decode(&echo)
			resp.Body.Close()
			if echo.Version != "2.12.1-standin" {
				t.Errorf("the gateway answers as version %q after the upgrade", echo.Version)
			}
		}
		// A re-run changes nothing: the version is the cluster's record now.
		if code, _, errs := r.apimdev(t, "up", "--detach"); code != 0 || !strings.Contains(errs, "0 object(s) changed") {
			t.Errorf("up after the upgrade: exit %d\n%s", code, errs)
		}
	})

	t.Run("with backup, pods restart Ready while the configuration endpoint is down", func(t *testing.T) {
		recordBefore := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-apimdev", "-o", "jsonpath={.data}")
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"drill", "offline", "-o", "json", "--rate", "50"}, traffic...)...)
		r.time("drill offline", start)
		if code != 0 {
			t.Fatalf("drill offline exited %d\n%s\n%s", code, out, errs)
		}
		var res struct {
			Endpoint, VersionWarning, Synced string
			Restored                         bool
			RestartSeconds, RestoreSeconds   float64
			Pods                             []struct {
				Pod                     string
				ReadySeconds            float64
				FromBackup              bool
				Log, Link               string
				SmokePassed, SmokeTotal int
			}
			Links   []struct{ Pod, Link, Evidence string }
			Traffic struct {
				Sent, Failed int
				P50Ms, P99Ms float64
			}
			Drift []any
		}
		lastJSON(t, out, &res)
		t.Logf("drill offline: %s taken away; restart %.1fs, give-back %.1fs; traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms; %s",
			res.Endpoint, res.RestartSeconds, res.RestoreSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms, res.Synced)
		for _, p := range res.Pods {
			t.Logf("  pod %s ready after %.1fs, from backup %v, link %s, smoke %d/%d: %s", p.Pod, p.ReadySeconds, p.FromBackup, p.Link, p.SmokePassed, p.SmokeTotal, p.Log)
			if !p.FromBackup || !strings.Contains(p.Log, "from backup") || p.SmokeTotal == 0 || p.SmokePassed != p.SmokeTotal {
				t.Errorf("pod %s did not come back from its backup and serve the smoke calls: %+v", p.Pod, p)
			}
		}
		for _, l := range res.Links {
			t.Logf("  after the give-back, pod %s: %s", l.Pod, l.Evidence)
		}
		if len(res.Pods) != 3 || res.Endpoint != strings.Split(endpoint, ":")[0] || !res.Restored || len(res.Drift) != 0 || len(res.Links) != 3 {
			t.Errorf("drill: %d pod(s), endpoint %q, restored %v, drift %v", len(res.Pods), res.Endpoint, res.Restored, res.Drift)
		}
		if res.Traffic.Sent < 1000 || res.Traffic.Failed != 0 {
			t.Errorf("traffic: %d sent, %d failed; want ≥ 1000 sent and 0 failed", res.Traffic.Sent, res.Traffic.Failed)
		}
		// The upgrade before put 2.12.1 in place: the drill names #418 first.
		if !strings.Contains(res.VersionWarning, "issues/418") {
			t.Errorf("no word of #418 on 2.12.1: %q", res.VersionWarning)
		}
		// No trace: the pod template is the record's again, the record is
		// as it was, and up finds nothing to change.
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", `jsonpath={.spec.template.spec.hostAliases}{.spec.template.metadata.annotations.apimdev\.io/drill}`); got != "" {
			t.Errorf("the drill is still on the Deployment: %q", got)
		}
		if after := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-apimdev", "-o", "jsonpath={.data}"); after != recordBefore {
			t.Errorf("the record changed:\n%s\n%s", recordBefore, after)
		}
		if code, _, errs := r.apimdev(t, "up", "--detach"); code != 0 || !strings.Contains(errs, "0 object(s) changed") {
			t.Errorf("up after the drill: exit %d\n%s", code, errs)
		}
	})

	t.Run("drill offline interrupted during the restart gives the endpoint back before it exits", func(t *testing.T) {
		p := r.start(t, context.Background(), "drill", "offline")
		if !p.waitLine("→ 127.0.0.1 in the pods of", 2*time.Minute) {
			code, _, errs, _ := p.wait(5 * time.Second)
			t.Fatalf("the drill never took the endpoint away: exit %d\n%s", code, errs)
		}
		// Ctrl-C once a pod started without the endpoint is ready: the
		// rollout is half done, and the give-back is a rollout of its own.
		deadline := time.Now().Add(2 * time.Minute)
		for ready := false; !ready; {
			out := r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app=contoso-gw", "-o",
				`jsonpath={range .items[*]}{.metadata.annotations.apimdev\.io/drill} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			ready = strings.Contains(out, "offline True")
			if !ready && time.Now().After(deadline) {
				t.Fatalf("no pod of the drill ready within 2 minutes:\n%s", out)
			}
			time.Sleep(500 * time.Millisecond)
		}
		start := time.Now()
		p.signal(syscall.SIGINT)
		code, out, errs, exited := p.wait(6 * time.Minute)
		t.Logf("Ctrl-C with a pod of the drill ready: exit %d after %s", code, time.Since(start).Round(100*time.Millisecond))
		t.Logf("apimdev drill offline, Ctrl-C during the restart:\n%s%s", errs, out)
		if !exited || code != 130 || !strings.Contains(errs, "interrupted: giving the configuration endpoint back before exiting") {
			t.Errorf("interrupted drill: exited %v, code %d\n%s", exited, code, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", `jsonpath={.spec.template.spec.hostAliases}{.spec.template.metadata.annotations.apimdev\.io/drill}`); got != "" {
			t.Errorf("the drill is still on the Deployment after Ctrl-C: %q", got)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}"); got != "3/3" {
			t.Errorf("ready %s after the interrupted drill", got)
		}
	})

	t.Run("token rotation loses no request", func(t *testing.T) {
		before := r.kubectlOut(t, "-n=apim-gateway", "get", "secret/contoso-gw-token", "-o", "jsonpath={.data.value}")
		newTok := filepath.Join(t.TempDir(), "new.token")
		os.WriteFile(newTok, []byte(r.mintToken(t, time.Now().UTC().Add(20*24*time.Hour).Format("200601021504"))+"\n"), 0o600)
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"token", "rotate", "--token-file", newTok, "-o", "json", "--rate", "50"}, traffic...)...)
		r.time("token rotate", start)
		if code != 0 {
			t.Fatalf("rotate exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		t.Logf("rotate: restart %.1fs, traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms", res.RolloutSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms)
		if res.Traffic.Failed != 0 || res.Traffic.Sent < 100 {
			t.Errorf("rotation traffic: %d sent, %d failed", res.Traffic.Sent, res.Traffic.Failed)
		}
		if after := r.kubectlOut(t, "-n=apim-gateway", "get", "secret/contoso-gw-token", "-o", "jsonpath={.data.value}"); after == before {
			t.Error("the Secret did not change")
		}
	})

	t.Run("promote --context applies prod to an existing cluster of the user's", func(t *testing.T) {
		// The user's own kubeconfig, with a context naming this cluster.
		raw, _ := os.ReadFile(r.kubeconfig)
		userCfg := filepath.Join(t.TempDir(), "config")
		os.WriteFile(userCfg, []byte(strings.ReplaceAll(string(raw), "kind-"+r.cluster, "existing-cluster")), 0o600)
		code, out, errs := r.run(t, context.Background(), []string{"KUBECONFIG=" + userCfg},
			append([]string{"promote", "--yes", "--context", "existing-cluster", "--namespace", "apim-remote", "--token-file", r.tokenFile,
				"--cpu", "50m", "--memory", "64Mi", "--rate", "20"}, traffic...)...)
		if code != 0 {
			t.Fatalf("promote --context exited %d\n%s\n%s", code, out, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-remote", "get", "deploy/contoso-gw", "-o", "jsonpath={.status.readyReplicas}/{.spec.template.spec.containers[0].resources.requests.cpu}"); got != "3/50m" {
			t.Errorf("remote deployment: %s", got)
		}
	})

	t.Run("promote --to dev goes back", func(t *testing.T) {
		code, out, errs := r.apimdev(t, append([]string{"promote", "--to", "dev", "--yes"}, traffic...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.spec.replicas}"); got != "1" {
			t.Errorf("replicas %s after demotion", got)
		}
		if b, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n=apim-gateway", "get", "pdb/contoso-gw").CombinedOutput(); err == nil {
			t.Errorf("the PDB is still there: %s", b)
		}
	})

	t.Run("promote with metrics to an OpenTelemetry Collector, read by status", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"promote", "--metrics", "opentelemetry", "--yes", "-o", "json", "--rate", "50"}, traffic...)...)
		r.time("promote, metrics to OpenTelemetry", start)
		if code != 0 {
			t.Fatalf("promote --metrics opentelemetry exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		ok := false
		for _, c := range res.Checks {
			if c.Name == "local metrics" {
				ok = c.OK && strings.Contains(c.Detail, "seen by the OpenTelemetry Collector")
				t.Logf("local metrics: %s (%s after the promote began)", c.Detail, time.Since(start).Round(100*time.Millisecond))
			}
			if !c.OK {
				t.Errorf("check %s: %s", c.Name, c.Detail)
			}
		}
		if !ok {
			t.Errorf("no OpenTelemetry metrics in the checks: %+v", res.Checks)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-env", "-o", `jsonpath={.data.observability\.opentelemetry\.collector\.uri}`); got != "http://contoso-gw-otel:4317" {
			t.Errorf("collector uri %q", got)
		}
		code, text, _ := r.apimdev(t, "status")
		if code != 0 || !strings.Contains(text, "requests seen by the OpenTelemetry Collector") {
			t.Errorf("status with OpenTelemetry:\n%s", text)
		}
	})

	// Last: it removes apimdev's own gateway Deployment, which every step
	// above works on.
	t.Run("Microsoft's chart rendered from the export replaces apimdev's gateway under traffic", r.chartReplacesGateway)

	t.Run("down; the user's kubeconfig untouched; the token nowhere", func(t *testing.T) {
		if code, out, errs := r.apimdev(t, "down"); code != 0 {
			t.Fatalf("down exited %d\n%s\n%s", code, out, errs)
		}
		after, _ := os.ReadFile(r.userKubeconfig)
		if string(after) != string(userBefore) {
			t.Error("~/.kube/config changed")
		}
		if strings.Contains(r.transcript.String(), r.canary) {
			t.Error("the canary token is in apimdev's output")
		}
	})
}
