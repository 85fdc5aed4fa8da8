//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// chartReplacesGateway is issue 29's round trip on a real cluster: what
// `apimdev export --format helm-values` wrote, rendered with Microsoft's
// published chart (test/helmchart's render), is applied next to apimdev's
// prod gateway while calls flow through apimdev's background forward; once
// the chart's pods serve behind the Service the forward follows, apimdev's
// own gateway Deployment is removed, and no call fails. It leaves the chart's
// objects in place: the suite's `down` deletes the cluster.
func (r *rig) chartReplacesGateway(t *testing.T) {
	const ns = "apim-gateway"
	phase := time.Now()
	lap := func(name string) time.Duration {
		d := time.Since(phase)
		r.time(name, phase)
		phase = time.Now()
		return d
	}

	// 1. Export, as a team would take the laptop's profile to its chart.
	dir := filepath.Join(t.TempDir(), "gateway-helm")
	code, out, errs := r.apimdev(t, "export", "--format", "helm-values", "-o", dir)
	if code != 0 {
		t.Fatalf("export --format helm-values exited %d\n%s\n%s", code, out, errs)
	}
	running := r.kubectlOut(t, "-n="+ns, "get", "deploy/"+gwName, "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	img, _ := values["image"].(map[string]any)
	if got := fmt.Sprintf("%v:%v", img["repository"], img["tag"]); got != running {
		t.Fatalf("values.yaml's image is %s, the gateway runs %s", got, running)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	secretCmd := "create secret generic " + gwName + "-token --from-file=gateway-key=gateway.token"
	if !strings.Contains(string(readme), secretCmd) {
		t.Fatalf("the export's README does not say to create the Secret with %q:\n%s", secretCmd, readme)
	}

	// Two values a laptop cannot honour as production writes them, changed
	// in a copy (the export itself is what was checked above): kind's one
	// node has no ReadWriteMany class (apimdev's own claim here is
	// ReadWriteOnce, the same adaptation), and the production requests (2
	// CPUs and 2Gi a pod) do not fit three times beside apimdev's three pods
	// on a 2-CPU node. The memory limit and everything else stay.
	backup := dig(t, values, "gateway", "configuration", "backup", "persistentVolumeClaim")
	t.Logf("values adapted for the rig's node: backup accessMode %v → ReadWriteOnce; requests %v → cpu 100m, memory 128Mi",
		backup["accessMode"], dig(t, values, "resources", "requests"))
	backup["accessMode"] = "ReadWriteOnce"
	req := dig(t, values, "resources", "requests")
	req["cpu"], req["memory"] = "100m", "128Mi"
	adapted, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	rigValues := filepath.Join(dir, "values-rig.yaml")
	if err := os.WriteFile(rigValues, adapted, 0o600); err != nil {
		t.Fatal(err)
	}

	// Render Microsoft's chart with it and the overlay (test/helmchart; the
	// chart is read in place, ../shared/reference/charts from the repository
	// or APIMDEV_CHARTS_DIR, which the environment passes through).
	render := exec.Command("go", "-C", "../helmchart", "run", "./cmd/render",
		"-values", rigValues, "-overlay", filepath.Join(dir, "overlay"), "-release", gwName, "-namespace", ns)
	var renderErr strings.Builder
	render.Stderr = &renderErr
	rendered, err := render.Output()
	if err != nil {
		t.Fatalf("rendering the chart: %v\n%s", err, renderErr.String())
	}
	renderFile := filepath.Join(dir, "rendered.yaml")
	os.WriteFile(renderFile, rendered, 0o600)
	exportD := lap("chart: export + render")

	// The chart's Secret, as the README says (key gateway-key, one line
	// "GatewayKey <token>"), from the rig's token file through a file: the
	// token is never in argv. apimdev's Secret of the same name exists (key
	// value), so the README's object is applied onto it, server-side.
	tok, err := os.ReadFile(r.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(tok))
	if !strings.HasPrefix(line, "GatewayKey ") {
		line = "GatewayKey " + line
	}
	tokFile := filepath.Join(dir, "gateway.token")
	if err := os.WriteFile(tokFile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	secret, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n", ns, "create", "secret", "generic", gwName+"-token",
		"--from-file=gateway-key="+tokFile, "--dry-run=client", "-o", "yaml").Output()
	if err != nil {
		t.Fatalf("kubectl create secret --dry-run: %v", err)
	}
	os.Remove(tokFile)
	apply := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "apply", "--server-side", "--field-manager=chart-e2e", "-f", "-")
	apply.Stdin = strings.NewReader(string(secret))
	if b, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("applying the chart's Secret: %v\n%s", err, b)
	}

	// What apimdev runs now, and the Services the forward follows: the live
	// Service (its tunnel) and the NodePort one (its direct path).
	forwarded := []string{gwName + "-live-traffic", gwName + "-direct"}
	for _, svc := range forwarded {
		if sel := r.kubectlOut(t, "-n="+ns, "get", "svc/"+svc, "-o", "jsonpath={.spec.selector}"); sel != `{"app":"`+gwName+`"}` {
			t.Fatalf("apimdev's Service %s selects %s, want app=%s", svc, sel, gwName)
		}
	}
	apimdevSelector := r.kubectlOut(t, "-n="+ns, "get", "deploy/"+gwName, "-o", "jsonpath={.spec.selector.matchLabels}")
	oldRS := strings.Fields(r.kubectlOut(t, "-n="+ns, "get", "rs", "-l", "app="+gwName, "-o", "jsonpath={.items[*].metadata.name}"))
	oldPods := strings.Fields(r.kubectlOut(t, "-n="+ns, "get", "pods", "-l", "app="+gwName, "-o", "jsonpath={.items[*].metadata.name}"))
	t.Logf("apimdev's gateway: Deployment %s selecting %s, ReplicaSets %v, pods %v", gwName, apimdevSelector, oldRS, oldPods)

	// 2. Traffic through the forward for the whole replacement.
	stop := make(chan struct{})
	done := make(chan trafficResult, 1)
	go func() { done <- trafficUntil(t, r.httpPort, 100000, 50, 8*time.Minute, nil, stop) }()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-done
		}
	}()

	// The chart names its Deployment after the release, as apimdev does, but
	// selects its own labels, and a Deployment's selector cannot change: the
	// chart's cannot be applied onto apimdev's. apimdev's Deployment is
	// deleted with its pods left running (orphaned, still behind the live
	// Service), which is how an object is handed over to another owner.
	if b, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n", ns, "delete", "deploy/"+gwName, "--cascade=orphan").CombinedOutput(); err != nil {
		t.Fatalf("deleting apimdev's Deployment, pods kept: %v\n%s", err, b)
	}
	apply = exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=chart-e2e", "-f", renderFile)
	b, err := apply.CombinedOutput()
	if err != nil {
		t.Fatalf("applying the chart's render: %v\n%s", err, b)
	}
	t.Logf("kubectl apply --server-side of the chart's render:\n%s", b)
	ready := r.waitReady(t, ns, gwName, 3, 4*time.Minute)
	applyD := lap("chart: apply, 3/3 ready")
	chartSel := r.kubectlOut(t, "-n="+ns, "get", "deploy/"+gwName, "-o", "jsonpath={.spec.selector.matchLabels}")
	chartPods := strings.Fields(r.kubectlOut(t, "-n="+ns, "get", "pods", "-l", labelSelector(t, chartSel), "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
	t.Logf("chart's Deployment selecting %s: 3/3 ready after %.1fs, pods %v", chartSel, ready.Seconds(), chartPods)
	if len(chartPods) != 3 {
		t.Fatalf("want 3 running pods of the chart, got %v", chartPods)
	}
	for _, p := range chartPods {
		if slices.Contains(oldPods, p) {
			t.Fatalf("pod %s is apimdev's and the chart's", p)
		}
	}

	// The chart's pods are behind the Services the forward follows (the
	// overlay gives them the app label), beside apimdev's.
	endpoints := func(svc string) map[string]bool {
		out := r.kubectlOut(t, "-n="+ns, "get", "endpointslice", "-l", "kubernetes.io/service-name="+svc, "-o",
			`jsonpath={range .items[*].endpoints[*]}{.targetRef.name} {.conditions.ready}{"\n"}{end}`)
		m := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if name, ok, found := strings.Cut(l, " "); found {
				m[name] = ok == "true"
			}
		}
		return m
	}
	waitEndpoints := func(what string, want func(map[string]bool) bool) {
		for _, svc := range forwarded {
			deadline := time.Now().Add(time.Minute)
			for {
				eps := endpoints(svc)
				if want(eps) {
					t.Logf("EndpointSlice of %s, %s: %v", svc, what, eps)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("EndpointSlice of %s: %s not seen within a minute: %v", svc, what, eps)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	waitEndpoints("the chart's 3 pods ready", func(eps map[string]bool) bool {
		for _, p := range chartPods {
			if !eps[p] {
				return false
			}
		}
		return true
	})

	// 3. apimdev's gateway goes: the ReplicaSets its Deployment left.
	if b, err := exec.Command(r.kubectl, append([]string{"--kubeconfig", r.kubeconfig, "-n", ns, "delete", "rs"}, oldRS...)...).CombinedOutput(); err != nil {
		t.Fatalf("deleting apimdev's ReplicaSets: %v\n%s", err, b)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := strings.Fields(r.kubectlOut(t, "-n="+ns, "get", "pods", "-l", labelSelector(t, apimdevSelector), "-o", "jsonpath={.items[*].metadata.name}"))
		var old []string
		for _, p := range left {
			if slices.Contains(oldPods, p) {
				old = append(old, p)
			}
		}
		if len(old) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apimdev's pods %v still there 2 minutes after their ReplicaSets were deleted", old)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitEndpoints("only the chart's pods", func(eps map[string]bool) bool {
		for _, p := range oldPods {
			if _, ok := eps[p]; ok {
				return false
			}
		}
		return len(eps) == len(chartPods)
	})
	removeD := lap("chart: apimdev's pods gone")

	// Calls keep flowing with only the chart's pods: a bounded run of its
	// own, with the background traffic still going, then both are counted.
	after := traffic(t, r.httpPort, 250, 50, 30*time.Second, nil)
	close(stop)
	stopped = true
	during := <-done
	t.Logf("chart replaces apimdev's gateway: export + render %.1fs, apply to 3/3 ready %.1fs, apimdev's pods gone %.1fs; traffic through the forward %d sent, %d failed %v; then on the chart's pods alone %d sent, %d failed %v",
		exportD.Seconds(), applyD.Seconds(), removeD.Seconds(), during.sent, during.failed, during.errors, after.sent, after.failed, after.errors)
	if during.failed != 0 || during.sent < 500 || after.failed != 0 || after.sent != 250 {
		t.Errorf("traffic: %d sent, %d failed during the replacement (want ≥ 500, 0 failed); %d sent, %d failed after (want 250, 0)",
			during.sent, during.failed, after.sent, after.failed)
	}

	code, out, errs = r.apimdev(t, "smoke", "--smoke-file", "testdata/smoke.yaml")
	lap("chart: smoke")
	t.Logf("apimdev smoke against the chart's pods: exit %d\n%s%s", code, out, errs)
	if code != 0 {
		t.Errorf("smoke against the chart's pods exited %d", code)
	}
	code, out, errs = r.apimdev(t, "status")
	t.Logf("apimdev status with the chart's gateway in place of its own: exit %d\n%s%s", code, out, errs)

	// What the chart made differently, as the cluster has it.
	t.Logf("the chart's objects on the cluster:\n%s", r.kubectlOut(t, "-n="+ns, "get", "deploy,rs,pods,svc,pvc,pdb,cm,sa,networkpolicy", "-o", "wide"))
	t.Logf("a chart pod: %s", r.kubectlOut(t, "-n="+ns, "get", "pod", chartPods[0], "-o",
		`jsonpath=labels {.metadata.labels}; container {.spec.containers[0].name}; image {.spec.containers[0].image}; requests {.spec.containers[0].resources.requests}; limits {.spec.containers[0].resources.limits}; env names {.spec.containers[0].env[*].name}; envFrom {.spec.containers[0].envFrom}; volumes {.spec.volumes}`))
}

// dig returns the map at path in values.
func dig(t *testing.T, values map[string]any, path ...string) map[string]any {
	t.Helper()
	m := values
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("values.yaml has no map at %s", strings.Join(path, "."))
		}
		m = next
	}
	return m
}

// labelSelector turns a jsonpath'd matchLabels ({"a":"b",...}) into a=b,...
func labelSelector(t *testing.T, matchLabels string) string {
	t.Helper()
	var m map[string]string
	if err := yaml.Unmarshal([]byte(matchLabels), &m); err != nil || len(m) == 0 {
		t.Fatalf("matchLabels %q: %v", matchLabels, err)
	}
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}
