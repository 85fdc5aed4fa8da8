//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gwPod is one gateway pod as kubectl lists it.
type gwPod struct {
	name, node         string
	terminating, ready bool
}

func (r *rig) gatewayPods(t *testing.T, kubeconfig string) []gwPod {
	t.Helper()
	out, err := exec.Command(r.kubectl, "--kubeconfig", kubeconfig, "-n", "apim-gateway", "get", "pods", "-l", "app="+gwName, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`).Output()
	if err != nil {
		t.Fatalf("listing gateway pods: %v", err)
	}
	var pods []gwPod
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		p := gwPod{name: f[0], node: f[1]}
		for _, x := range f[2:] {
			switch {
			case x == "True":
				p.ready = true
			case strings.Contains(x, "T") && strings.Contains(x, ":"):
				p.terminating = true
			}
		}
		pods = append(pods, p)
	}
	return pods
}

// spreadJSON is the part of promote's and status's JSON about placement.
type spreadJSON struct {
	Pods  int
	Even  bool
	Text  string
	Zones []struct {
		Zone  string
		Pods  int
		Nodes map[string]int
	}
}

// promotedSpread is promote -o json's result with its spread.
type promotedSpread struct {
	promoteResult
	Spread *spreadJSON
}

// promoteSpread reads promote -o json's result, fails the test for every
// failed check, and logs the checks named.
func promoteSpread(t *testing.T, out string, logged ...string) promotedSpread {
	t.Helper()
	var res promotedSpread
	lastJSON(t, out, &res)
	for _, c := range res.Checks {
		if !c.OK {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
		if slices.Contains(logged, c.Name) {
			t.Logf("check %s: %s", c.Name, c.Detail)
		}
	}
	return res
}

// TestMultiNode: a control plane and three workers in three zones. The prod
// profile spreads one pod per zone; a drain under traffic loses nothing and
// the disruption budget refuses a second eviction meanwhile; a stopped worker
// is recovered from by itself; down removes everything; and promote
// --context reaches a second multi-node cluster apimdev did not make.
func TestMultiNode(t *testing.T) {
	r := newRig(t, buildTools(t), rigOptions{cluster: "apimdev-multi", httpPort: "18380", httpsPort: "18743"})
	second := "apimdev-second"
	r.removeLeftover(t, second)
	secondKubeconfig := filepath.Join(t.TempDir(), "second.kubeconfig")
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		exec.Command(r.kind, "delete", "cluster", "--name", second, "--kubeconfig", secondKubeconfig).Run()
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/multinode-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	trafficFlags := []string{"--traffic-path", "/echo/multi", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}"}
	workers := []string{"apimdev-multi-worker", "apimdev-multi-worker2", "apimdev-multi-worker3"}

	if !t.Run("up --workers 3", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cfgErr := make(chan error, 1)
		go func() { cfgErr <- r.deployConfigService(t, ctx) }()
		start := time.Now()
		code, out, errs := r.apimdevCtx(t, ctx, append([]string{"up", "--detach", "--workers", "3", "--smoke-file", "testdata/smoke.yaml"}, r.common()...)...)
		r.time("up --workers 3 (cold)", start)
		if err := <-cfgErr; err != nil {
			t.Fatalf("config service: %v", err)
		}
		if code != 0 {
			t.Fatalf("up exited %d\n%s\n%s", code, out, errs)
		}
		mustContain(t, "up", errs, "a control plane and 3 workers over zones local-1, local-2, local-3")
		nodes := r.kubectlOut(t, "get", "nodes", "-L", "topology.kubernetes.io/zone", "--no-headers")
		t.Logf("nodes:\n%s", nodes)
		for i, w := range workers {
			if !strings.Contains(nodes, w) || !strings.Contains(nodes, fmt.Sprintf("local-%d", i+1)) {
				t.Errorf("node %s in zone local-%d missing:\n%s", w, i+1, nodes)
			}
		}
		// kind cannot add nodes: another count is explained, nothing changes.
		code, _, errs = r.apimdev(t, append([]string{"up", "--detach", "--workers", "2"}, r.common()...)...)
		if code == 0 || !strings.Contains(errs, "kind cannot add or remove nodes") || !strings.Contains(errs, "--workers 2 --recreate") {
			t.Errorf("up --workers 2 on three workers: exit %d\n%s", code, errs)
		}
	}) {
		t.FailNow()
	}

	t.Run("promote spreads one pod per zone", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"promote", "--yes", "-o", "json", "--rate", "25"}, trafficFlags...)...)
		r.time("promote (3 zones)", start)
		if code != 0 {
			t.Fatalf("promote exited %d\n%s\n%s", code, out, errs)
		}
		res := promoteSpread(t, out, "spread", "config backup")
		if res.Spread == nil || !res.Spread.Even || res.Spread.Pods != 3 || len(res.Spread.Zones) != 3 {
			t.Fatalf("spread: %+v", res.Spread)
		}
		for _, z := range res.Spread.Zones {
			if z.Pods != 1 {
				t.Errorf("zone %s has %d pods, want 1", z.Zone, z.Pods)
			}
		}
		if res.Traffic.Failed != 0 {
			t.Errorf("promote lost %d of %d requests", res.Traffic.Failed, res.Traffic.Sent)
		}
		t.Logf("kubectl get pods -o wide:\n%s", r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-o", "wide", "-l", "app="+gwName))
		mode := r.kubectlOut(t, "-n=apim-gateway", "get", "pvc/contoso-gw-config-backup", "-o", "jsonpath={.spec.accessModes[0]} {.status.phase}")
		if mode != "ReadWriteMany Bound" {
			t.Errorf("backup claim %q, want ReadWriteMany Bound", mode)
		}
		_, statusText, _ := r.apimdev(t, "status")
		t.Logf("status:\n%s", statusText)
		mustContain(t, "status", statusText, "spread", "1/1/1 over 3 zone(s)", "nodeports", "externalTrafficPolicy Local", "apimdev-multi-control-plane drop(s) them")
	})

	t.Run("a drain under traffic loses nothing; the budget refuses a second eviction", func(t *testing.T) {
		pods := r.gatewayPods(t, r.kubeconfig)
		if len(pods) != 3 {
			t.Fatalf("gateway pods: %+v", pods)
		}
		drained := pods[0].node
		var other gwPod
		for _, p := range pods {
			if p.node != drained {
				other = p
			}
		}
		stop := make(chan struct{})
		var tr trafficResult
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr = trafficUntil(t, r.httpPort, 4000, 25, 3*time.Minute, func(int) bool { return false }, stop)
		}()
		begin := time.Now()
		time.Sleep(2 * time.Second) // traffic flowing first
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		drain := r.start(t, ctx, "drain", drained)
		// As soon as the first gateway pod is on its way out, a second
		// eviction (of a pod on another node) must be refused.
		refused, evictOut := false, ""
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) && !refused {
			gone := false
			for _, p := range r.gatewayPods(t, r.kubeconfig) {
				gone = gone || p.node == drained && p.terminating
			}
			if !gone {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			body := fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":%q,"namespace":"apim-gateway"}}`, other.name)
			f := filepath.Join(t.TempDir(), "eviction.json")
			os.WriteFile(f, []byte(body), 0o600)
			b, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "create", "--raw", "/api/v1/namespaces/apim-gateway/pods/"+other.name+"/eviction", "-f", f).CombinedOutput()
			evictOut = string(b)
			if err == nil {
				t.Fatalf("a second eviction (%s) was allowed while %s drained: %s", other.name, drained, b)
			}
			refused = strings.Contains(evictOut, "disruption budget") || strings.Contains(evictOut, "TooManyRequests") || strings.Contains(evictOut, "429")
			break
		}
		if !refused {
			t.Errorf("the second eviction was not refused by the budget: %s", evictOut)
		} else {
			t.Logf("second eviction refused: %s", strings.TrimSpace(evictOut))
		}
		code, out, errs, ok := drain.wait(5 * time.Minute)
		took := time.Since(begin)
		if !ok || code != 0 {
			t.Fatalf("drain exited %d\n%s\n%s", code, out, errs)
		}
		r.time("drain under traffic", begin)
		t.Logf("drain output:\n%s%s", errs, out)
		// At least 1000 calls at 25/s: keep them flowing past the drain.
		if rest := 44*time.Second - took; rest > 0 {
			time.Sleep(rest)
		}
		close(stop)
		wg.Wait()
		t.Logf("drain of %s: %d calls at 25/s, %d failed %v", drained, tr.sent, tr.failed, tr.errors)
		if tr.sent < 1000 || tr.failed != 0 {
			t.Errorf("traffic during the drain: %d sent, %d failed; want ≥ 1000 and 0", tr.sent, tr.failed)
		}
		for _, p := range r.gatewayPods(t, r.kubeconfig) {
			if p.node == drained && !p.terminating {
				t.Errorf("gateway pod %s still on the drained node", p.name)
			}
		}
		_, statusText, _ := r.apimdev(t, "status")
		mustContain(t, "status after the drain", statusText, drained+" Ready, zone", "cordoned (`apimdev uncordon "+drained+"`)")
		if code, _, errs := r.apimdev(t, "uncordon", drained); code != 0 {
			t.Fatalf("uncordon: %s", errs)
		}
		if got := r.jsonpath(t, "node/"+drained, "{.spec.unschedulable}"); got != "" {
			t.Errorf("%s still unschedulable: %q", drained, got)
		}
	})

	t.Run("a stopped worker is recovered from", func(t *testing.T) {
		pods := r.gatewayPods(t, r.kubeconfig)
		lost := ""
		for _, p := range pods {
			if !p.terminating {
				lost = p.node
			}
		}
		stop := make(chan struct{})
		stopped := make(chan time.Time, 1)
		var tr trafficResult
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr = trafficUntil(t, r.httpPort, 8000, 25, 5*time.Minute, func(i int) bool {
				if i != 100 {
					return false
				}
				go func() {
					if b, err := exec.Command("docker", "stop", lost).CombinedOutput(); err != nil {
						t.Errorf("docker stop %s: %v %s", lost, err, b)
					}
					stopped <- time.Now()
				}()
				return true
			}, stop)
		}()
		// Recovered: three ready gateway pods, none on the lost node.
		var at time.Time
		var recovered time.Duration
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			if at.IsZero() {
				select {
				case at = <-stopped:
				default:
				}
			}
			ready := 0
			for _, p := range r.gatewayPods(t, r.kubeconfig) {
				if p.ready && !p.terminating && p.node != lost {
					ready++
				}
			}
			if !at.IsZero() && ready == 3 {
				recovered = time.Since(at)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(5 * time.Second) // the traffic sees the recovered gateway
		close(stop)
		wg.Wait()
		t.Logf("node loss (%s stopped): %d calls at 25/s, %d failed (%d in flight when it stopped) %v; 3/3 ready again %.1fs after the stop",
			lost, tr.sent, tr.failed, tr.inFlight, tr.errors, recovered.Seconds())
		if recovered == 0 {
			t.Fatalf("the gateway was not 3/3 ready without %s within 4 min", lost)
		}
		r.timings = append(r.timings, timing{"node loss → 3/3 ready", recovered})
		if tr.failed > max(tr.inFlight, 1) {
			t.Errorf("node loss cost %d requests, more than the %d in flight", tr.failed, tr.inFlight)
		}
		if !tr.lastOK {
			t.Error("the last calls after recovery failed")
		}
		// The worker comes back and is a node again.
		if b, err := exec.Command("docker", "start", lost).CombinedOutput(); err != nil {
			t.Fatalf("docker start %s: %v %s", lost, err, b)
		}
		start := time.Now()
		for time.Since(start) < 3*time.Minute {
			out, _ := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "get", "node", lost, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`).Output()
			if string(out) == "True" {
				break
			}
			time.Sleep(time.Second)
		}
		r.time("stopped worker Ready again", start)
	})

	t.Run("down removes everything", func(t *testing.T) {
		code, _, errs := r.apimdev(t, "down")
		if code != 0 {
			t.Fatalf("down: %s", errs)
		}
		out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+r.cluster, "--format", "{{.Names}}").Output()
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("node containers left: %s", out)
		}
		if _, err := os.Stat(filepath.Join(r.state, "shared", r.cluster)); !os.IsNotExist(err) {
			t.Errorf("the shared directory is left: %v", err)
		}
	})

	t.Run("promote --context to a second multi-node cluster", func(t *testing.T) {
		// A cluster apimdev did not make: kind's CLI, a control plane and
		// two workers in two zones, and a "file share" (a host directory
		// every node mounts, served by a ReadWriteMany volume of the test's
		// own) as a real cluster's RWX storage class would be.
		share := filepath.Join(t.TempDir(), "share")
		os.MkdirAll(filepath.Join(share, "backup"), 0o755)
		os.Chown(filepath.Join(share, "backup"), 1001, 1001)
		node := func(role, zone string) string {
			labels := ""
			if zone != "" {
				labels = fmt.Sprintf("\n  labels: {topology.kubernetes.io/zone: %s, topology.kubernetes.io/region: second}", zone)
			}
			return fmt.Sprintf("- role: %s\n  image: %s\n  extraMounts: [{hostPath: %s, containerPath: /e2e-share}]%s\n", role, r.nodeImage, share, labels)
		}
		cfg := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: {apiServerAddress: 127.0.0.1}\nnodes:\n" +
			node("control-plane", "") + node("worker", "second-1") + node("worker", "second-2")
		cfgFile := filepath.Join(t.TempDir(), "kind.yaml")
		os.WriteFile(cfgFile, []byte(cfg), 0o644)
		start := time.Now()
		if b, err := exec.Command(r.kind, "create", "cluster", "--name", second, "--config", cfgFile, "--kubeconfig", secondKubeconfig, "--wait", "3m").CombinedOutput(); err != nil {
			t.Fatalf("kind create: %v\n%s", err, b)
		}
		r.time("kind create (1+2 nodes)", start)
		for _, img := range []string{r.gatewayImage, need(t, "APIMDEV_E2E_STATSD_IMAGE")} {
			if b, err := exec.Command(r.kind, "load", "docker-image", img, "--name", second).CombinedOutput(); err != nil {
				t.Fatalf("kind load %s: %v\n%s", img, err, b)
			}
		}
		kc := func(args ...string) string {
			b, err := exec.Command(r.kubectl, append([]string{"--kubeconfig", secondKubeconfig}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl %v: %v\n%s", args, err, b)
			}
			return string(b)
		}
		// kind's --wait waits for the control plane alone: the workers may
		// still be joining (promote would rightly count no room on them).
		kc("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=2m")
		kc("apply", "-f", "testdata/standin-config.yaml")
		kc("-n", "standin-config", "create", "secret", "generic", "standin-config", "--from-literal=STANDIN_GATEWAY_KEY="+gatewayKey, "--from-literal=STANDIN_SUBSCRIPTION_KEYS="+subKey)
		pv := `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"e2e-share"},"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteMany"],` +
			`"storageClassName":"e2e-share","persistentVolumeReclaimPolicy":"Retain","hostPath":{"path":"/e2e-share/backup","type":"Directory"}}}`
		pvFile := filepath.Join(t.TempDir(), "pv.json")
		os.WriteFile(pvFile, []byte(pv), 0o644)
		kc("apply", "-f", pvFile)

		env := []string{"KUBECONFIG=" + secondKubeconfig}
		ctxName := "kind-" + second
		args := append([]string{"promote", "--context", ctxName, "--yes", "--token-file", r.tokenFile, "--name", gwName, "--endpoint", endpoint, "--image", r.gatewayImage}, trafficFlags...)
		// Production requests (2 CPU / 2Gi a pod) on 2-CPU nodes: refused
		// before anything is made, with the figures.
		code, out, errs := r.run(t, context.Background(), env, args...)
		if code == 0 || !strings.Contains(errs, "can hold") || !strings.Contains(errs, "nothing was changed") {
			t.Fatalf("promote --context with requests the nodes cannot hold: exit %d\n%s\n%s", code, out, errs)
		}
		t.Logf("refused: %s", firstLine(errs, "can hold"))
		if b, err := exec.Command(r.kubectl, "--kubeconfig", secondKubeconfig, "get", "ns", "apim-gateway").CombinedOutput(); err == nil {
			t.Errorf("the refused promote made the namespace: %s", b)
		}
		// Requests the nodes hold, and the cluster's RWX class: applied as
		// given, not fitted.
		conf := filepath.Join(t.TempDir(), "apimdev.yaml")
		os.WriteFile(conf, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\nprod:\n  cpu: 300m\n  memory: 256Mi\n  backup:\n    enabled: true\n    storageClass: e2e-share\n    size: 50Mi\n"), 0o644)
		start = time.Now()
		code, out, errs = r.run(t, context.Background(), env, append(append([]string{"--config", conf}, args...), "-o", "json")...)
		r.time("promote --context", start)
		if code != 0 {
			t.Fatalf("promote --context exited %d\n%s\n%s", code, out, errs)
		}
		res := promoteSpread(t, out)
		if res.FitNote != "" {
			t.Errorf("--context fitted the requests: %s", res.FitNote)
		}
		if got := kc("-n", "apim-gateway", "get", "deploy", gwName, "-o", "jsonpath={.spec.template.spec.containers[0].resources.requests.cpu} {.spec.template.spec.containers[0].resources.requests.memory}"); got != "300m 256Mi" {
			t.Errorf("requests on the second cluster: %q, want 300m 256Mi", got)
		}
		if got := kc("-n", "apim-gateway", "get", "pvc", "contoso-gw-config-backup", "-o", "jsonpath={.spec.accessModes[0]} {.spec.volumeName}"); got != "ReadWriteMany e2e-share" {
			t.Errorf("backup claim on the second cluster: %q", got)
		}
		if res.Spread == nil || res.Spread.Pods != 3 || len(res.Spread.Zones) != 2 || !res.Spread.Even {
			t.Errorf("spread on the second cluster: %+v", res.Spread)
		}
		t.Logf("second cluster: %s; pods:\n%s", res.Spread.Text, kc("-n", "apim-gateway", "get", "pods", "-o", "wide", "-l", "app="+gwName))
	})
}

func firstLine(text, with string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, with) {
			return l
		}
	}
	return ""
}
