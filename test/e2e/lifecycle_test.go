//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// statusJSON is the part of `apimdev status -o json` the lifecycle reads.
type statusJSON struct {
	State    string
	Detail   string
	Profile  string
	Ready    int
	Desired  int
	Recorded *struct{ Profile, Image string }
	Drift    []struct {
		Kind, Name, Action string
		Lines              []string
	}
}

func (r *rig) status(t *testing.T) (statusJSON, string) {
	t.Helper()
	code, out, errs := r.apimdev(t, "status", "-o", "json")
	var st statusJSON
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil {
		t.Fatalf("status -o json exited %d:\n%s\n%s", code, out, errs)
	}
	return st, out
}

// managed lists Kind/name of everything apimdev made in the gateway's
// namespace, sorted.
func (r *rig) managed(t *testing.T) []string {
	t.Helper()
	out := r.kubectlOut(t, "-n=apim-gateway", "get", "serviceaccounts,secrets,configmaps,persistentvolumeclaims,deployments,services,poddisruptionbudgets",
		"-l", "app.kubernetes.io/managed-by=apimdev", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}{"\n"}{end}`)
	ls := strings.Fields(out)
	sort.Strings(ls)
	return ls
}

// TestLifecycle is a user's second day: up, promote, up again (after a
// reboot, as the README says), a gateway scaled by hand, a Docker engine
// restart, a lost state directory. Every command converges to what the
// cluster records apimdev applied.
func TestLifecycle(t *testing.T) {
	r := newRig(t, buildTools(t), rigOptions{cluster: "apimdev-life", httpPort: "18280", httpsPort: "18643"})
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/lifecycle-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	echo := []string{"--traffic-path", "/echo/promote", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}"}
	var prodSet []string
	// The program the developer runs on the laptop, which the gateway calls
	// through `apimdev backend add` (the config service's /orders API).
	laptop := newLaptopBackend(t)

	t.Run("up, then promote", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cfgErr := make(chan error, 1)
		go func() { cfgErr <- r.deployConfigService(t, ctx) }()
		start := time.Now()
		code, out, errs := r.apimdevCtx(t, ctx, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "4m"}, r.common()...)...)
		r.time("up (cold)", start)
		if code != 0 {
			cancel()
			t.Fatalf("up exited %d\n%s\n%s", code, out, errs)
		}
		if err := <-cfgErr; err != nil {
			t.Fatalf("config service: %v", err)
		}

		// The backend on the laptop: added, called every way, stopped and
		// started again.
		start = time.Now()
		code, out, errs = r.apimdev(t, "backend", "add", "orders", "--to", laptop.addr, "--port", "8080")
		r.time("backend add", start)
		if code != 0 || !strings.Contains(out, "http://orders:8080") || !strings.Contains(out, "http://orders.apim-gateway.svc.cluster.local:8080") {
			t.Fatalf("backend add exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("backend add:\n%s\n%s", errs, out)
		t.Logf("the gateway reached the laptop %s after backend add", waitOrders(t, r.httpPort, time.Minute).Round(100*time.Millisecond))
		checkBackendTraffic(t, r.httpPort)
		checkBackendDown(t, r, laptop)

		// promote with the calls going to the laptop's program: none fails.
		start = time.Now()
		code, out, errs = r.apimdev(t, "promote", "--yes", "--rate", "50", "--traffic-path", "/orders/promote")
		r.time("promote", start)
		if code != 0 {
			t.Fatalf("promote exited %d\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(out+errs, " 0 failed") {
			t.Errorf("promote's calls through the laptop's backend failed:\n%s\n%s", out, errs)
		}
		if st := r.backendStates(t)["orders"]; st != "answering" {
			t.Errorf("after promote, backend orders is %q", st)
		}
		r.kubectlOut(t, "-n=apim-gateway", "get", "networkpolicy/apimdev-backends") // prod: the gateway may call its backends
		prodSet = r.managed(t)
		t.Logf("after promote, apimdev's objects: %v", prodSet)
		if st, _ := r.status(t); st.Profile != "prod" || st.Recorded == nil || st.Recorded.Profile != "prod" || len(st.Drift) != 0 {
			t.Fatalf("status after promote: %+v", st)
		}
	})

	t.Run("up again keeps prod and loses no request", func(t *testing.T) {
		// 1000 calls at 100/s through the background forward; the re-run
		// starts at call 100 and must end well inside the window.
		var upCode int
		var upErr string
		var during atomic.Int64
		upDone := make(chan struct{})
		res := traffic(t, r.httpPort, 1000, 100, 30*time.Second, func(i int) bool {
			select {
			case <-upDone:
			default:
				if i > 100 {
					during.Add(1)
				}
			}
			if i == 100 {
				go func() {
					defer close(upDone)
					start := time.Now()
					upCode, _, upErr = r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...)
					r.time("up after promote", start)
				}()
			}
			return false
		})
		select {
		case <-upDone:
		case <-time.After(time.Minute):
			t.Fatal("up after promote did not end")
		}
		if upCode != 0 {
			t.Fatalf("up after promote exited %d\n%s", upCode, upErr)
		}
		for _, w := range []string{"it records the prod profile", "prod profile (0 object(s) changed", "already running in the background"} {
			if !strings.Contains(upErr, w) {
				t.Errorf("up after promote lacks %q:\n%s", w, upErr)
			}
		}
		t.Logf("traffic around up after promote: %d sent (%d while it ran), %d failed %v", res.sent, during.Load(), res.failed, res.errors)
		if res.sent < 500 || res.failed != 0 || during.Load() >= int64(res.sent-101) {
			t.Errorf("traffic: %d sent, %d failed, %d during the re-run; want ≥ 500 sent, 0 failed, the re-run inside the window", res.sent, res.failed, during.Load())
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas} {.spec.template.spec.volumes[*].persistentVolumeClaim.claimName}"); got != "3/3 contoso-gw-config-backup" {
			t.Errorf("after up: %s", got)
		}
		if got := r.managed(t); strings.Join(got, " ") != strings.Join(prodSet, " ") {
			t.Errorf("objects after up: %v, want %v", got, prodSet)
		}
	})

	t.Run("a gateway scaled by hand is drift: shown, refused without --yes, restored with it", func(t *testing.T) {
		r.kubectlOut(t, "-n=apim-gateway", "scale", "deploy/contoso-gw", "--replicas=5")
		st, _ := r.status(t)
		if len(st.Drift) != 1 || st.Drift[0].Kind != "Deployment" || !strings.Contains(strings.Join(st.Drift[0].Lines, "\n"), "replicas: 5") {
			t.Fatalf("status -o json drift: %+v", st.Drift)
		}
		code, text, _ := r.apimdev(t, "status")
		if code != 0 || !strings.Contains(text, "drift") || !strings.Contains(text, "Deployment/contoso-gw") || !strings.Contains(text, "apimdev up --yes") {
			t.Errorf("status text:\n%s", text)
		}
		t.Logf("status with the gateway scaled by hand:\n%s", text)
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...)
		t.Logf("up without --yes:\n%s", errs)
		if code != 1 || !strings.Contains(errs, "nothing was changed") || !strings.Contains(errs, "+   replicas: 3") {
			t.Errorf("up without --yes: exit %d\n%s\n%s", code, out, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.spec.replicas}"); got != "5" {
			t.Errorf("up without --yes changed replicas to %s", got)
		}
		code, out, errs = r.apimdev(t, append([]string{"up", "--detach", "--yes"}, r.common()...)...)
		if code != 0 {
			t.Fatalf("up --yes exited %d\n%s\n%s", code, out, errs)
		}
		r.waitReady(t, "apim-gateway", "contoso-gw", 3, 2*time.Minute)
		if st, _ := r.status(t); len(st.Drift) != 0 {
			t.Errorf("drift after up --yes: %+v", st.Drift)
		}
	})

	t.Run("the Docker engine restarts: starting, then ours; up resumes", func(t *testing.T) {
		if b, err := exec.Command("../../scripts/ci/stop-docker.sh").CombinedOutput(); err != nil {
			t.Fatalf("stopping Docker: %v\n%s", err, b)
		}
		if b, err := exec.Command("../../scripts/ci/ensure-docker.sh", "--isolate-egress").CombinedOutput(); err != nil {
			t.Fatalf("starting Docker: %v\n%s", err, b)
		}
		// A status every 300 ms for the first 12 s (each one may wait on the
		// API server a while), then one at a time until it says ours.
		engine := time.Now()
		type seen struct {
			at    time.Duration
			state string
			text  string
		}
		results := make(chan seen, 64)
		var wg sync.WaitGroup
		for i := 0; i < 40 && time.Since(engine) < 12*time.Second; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _ := r.status(t)
				results <- seen{time.Since(engine), st.State, st.Detail}
			}()
			time.Sleep(300 * time.Millisecond)
		}
		wg.Wait()
		close(results)
		var all []seen
		for x := range results {
			all = append(all, x)
		}
		for st, _ := r.status(t); st.State != "ours" && time.Since(engine) < 3*time.Minute; st, _ = r.status(t) {
			all = append(all, seen{time.Since(engine), st.State, st.Detail})
			time.Sleep(500 * time.Millisecond)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
		var order []string
		starting, ours := false, false
		for _, x := range all {
			if len(order) == 0 || order[len(order)-1] != x.state {
				order = append(order, x.state)
				t.Logf("%5.1fs after the engine answered: status says %s %s", x.at.Seconds(), x.state, x.text)
			}
			starting = starting || x.state == "starting"
			ours = ours || x.state == "ours"
			if x.state == "broken" {
				t.Errorf("status called a starting cluster broken: %s", x.text)
			}
		}
		if !starting {
			t.Errorf("no status said starting: %v", order)
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml"}, r.common()...)...)
		took := time.Since(start)
		r.time("up after engine restart", start)
		if code != 0 || !strings.Contains(out, "0 failed") {
			t.Fatalf("up after the engine restart exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("states seen: %v (ours seen before up: %v); up back to green smoke in %s (%s after the engine answered):\n%s", order, ours, took.Round(100*time.Millisecond), time.Since(engine).Round(100*time.Millisecond), errs)
		if st, _ := r.status(t); st.State != "ours" || st.Profile != "prod" || st.Ready != 3 {
			t.Errorf("after the restart: %+v", st)
		}
		// The relay came back with the node; the background forward's agent
		// dialled it again by itself.
		t.Logf("the laptop's backend answered through the gateway %s after up", waitOrders(t, r.httpPort, time.Minute).Round(100*time.Millisecond))
	})

	t.Run("with the state directory lost, the cluster's record still serves", func(t *testing.T) {
		os.RemoveAll(r.state)
		// No flags at all but the cluster's name (APIMDEV_CLUSTER_NAME).
		st, _ := r.status(t)
		if st.State != "ours" || st.Profile != "prod" || st.Desired != 3 {
			t.Fatalf("status from the cluster's record: %+v", st)
		}
		_, text, _ := r.apimdev(t, "status")
		t.Logf("status with the state directory gone:\n%s", text)
		if st := r.backendStates(t)["orders"]; st != "answering" {
			t.Errorf("with the state directory gone, backend orders is %q", st)
		}
		code, out, errs := r.apimdev(t, append([]string{"promote", "--to", "dev", "--yes"}, echo...)...)
		if code != 0 {
			t.Fatalf("promote --to dev exited %d\n%s\n%s", code, out, errs)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "deploy/contoso-gw", "-o", "jsonpath={.spec.replicas}"); got != "1" {
			t.Errorf("replicas %s after the demotion", got)
		}
		if st, _ := r.status(t); st.Profile != "dev" {
			t.Errorf("status after the demotion: %+v", st)
		}
		start := time.Now()
		if code, out, errs := r.apimdev(t, "down"); code != 0 || !strings.Contains(errs, "deleted cluster") {
			t.Fatalf("down exited %d\n%s\n%s", code, out, errs)
		}
		r.time("down", start)
		if out, _ := exec.Command(r.kind, "get", "clusters").Output(); strings.Contains(string(out), r.cluster) {
			t.Errorf("cluster %s is still there", r.cluster)
		}
		// The background forward was recorded in the lost directory; down
		// found it by its command line and stopped it.
		if portOpen(r.httpPort) {
			t.Errorf("the background forward still holds 127.0.0.1:%s after down", r.httpPort)
		}
	})
}
