//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestE2E's ports; the fault suite uses its own (26080 and up).
const (
	httpPort  = "18080"
	httpsPort = "18443"
)

func TestE2E(t *testing.T) {
	r := newRig(t, buildTools(t), rigOptions{cluster: "apimdev-e2e", httpPort: httpPort, httpsPort: httpsPort})
	userBefore, _ := os.ReadFile(r.userKubeconfig)
	// Whatever happens, leave no cluster behind.
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	common := r.common()

	t.Run("up creates the cluster and the gateway", func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cfgErr := make(chan error, 1)
		go func() { cfgErr <- r.deployConfigService(t, ctx) }()
		code, out, errs := r.apimdevCtx(t, ctx, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "4m"}, common...)...)
		r.time("up (cold)", start)
		if err := <-cfgErr; err != nil {
			t.Errorf("config service: %v", err)
		}
		if code != 0 {
			t.Fatalf("up exited %d\n%s\n%s", code, out, errs)
		}
		for _, w := range []string{"✓ preflight", "✓ cluster", "created apimdev-e2e", "✓ image", "loaded into the node", "✓ deploy", "✓ forward", "✓ smoke"} {
			if !strings.Contains(errs, w) {
				t.Errorf("up output lacks %q:\n%s", w, errs)
			}
		}
		if !strings.Contains(out, "5 passed, 0 failed") {
			t.Errorf("smoke table: %s", out)
		}
		t.Logf("cold up, as the user sees it:\n%s%s", errs, out)
	})

	t.Run("objects are what the portal YAML makes", func(t *testing.T) {
		ns := "-n=apim-gateway"
		secret := r.kubectlOut(t, ns, "get", "secret", gwName+"-token", "-o", "jsonpath={.data.value}")
		if secret == "" {
			t.Fatal("Secret <gw>-token has no key value")
		}
		checks := map[string][2]string{
			"configmap endpoint":  {"configmap/" + gwName + "-env", "{.data.config\\.service\\.endpoint}"},
			"configmap discovery": {"configmap/" + gwName + "-env", "{.data.neighborhood\\.host}"},
			"replicas":            {"deployment/" + gwName, "{.spec.replicas}"},
			"maxUnavailable":      {"deployment/" + gwName, "{.spec.strategy.rollingUpdate.maxUnavailable}"},
			"grace":               {"deployment/" + gwName, "{.spec.template.spec.terminationGracePeriodSeconds}"},
			"probe":               {"deployment/" + gwName, "{.spec.template.spec.containers[0].readinessProbe.httpGet.path}"},
			"auth from secret":    {"deployment/" + gwName, "{.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name}"},
			"service type":        {"service/" + gwName + "-live-traffic", "{.spec.type}"},
			"external policy":     {"service/" + gwName + "-live-traffic", "{.spec.externalTrafficPolicy}"},
			"service ports":       {"service/" + gwName + "-live-traffic", "{range .spec.ports[*]}{.port}>{.targetPort} {end}"},
			"headless":            {"service/" + gwName + "-instance-discovery", "{.spec.clusterIP}"},
			"discovery ports":     {"service/" + gwName + "-instance-discovery", "{range .spec.ports[*]}{.port}/{.protocol} {end}"},
		}
		want := map[string]string{
			"configmap endpoint": endpoint, "configmap discovery": gwName + "-instance-discovery", "replicas": "1", "maxUnavailable": "0",
			"grace": "60", "probe": "/status-0123456789abcdef", "auth from secret": gwName + "-token", "service type": "LoadBalancer",
			"external policy": "Local", "service ports": "80>8080 443>8081 ", "headless": "None", "discovery ports": "4290/UDP 4291/UDP ",
		}
		for name, c := range checks {
			if got := r.kubectlOut(t, ns, "get", c[0], "-o", "jsonpath="+c[1]); got != want[name] {
				t.Errorf("%s: got %q, want %q", name, got, want[name])
			}
		}
	})

	t.Run("smoke through the forward, HTTP and HTTPS", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, "smoke", "--smoke-file", "testdata/smoke.yaml")
		r.time("smoke", start)
		if code != 0 || !strings.Contains(out, "5 passed, 0 failed") || !strings.Contains(out, "echo over https") {
			t.Fatalf("smoke exited %d\n%s\n%s", code, out, errs)
		}
	})

	t.Run("re-running up is a fast no-op", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach"}, common...)...)
		d := time.Since(start)
		r.time("up (warm re-run)", start)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		for _, w := range []string{"reused apimdev-e2e", "already on the node", "0 object(s) changed, 6 unchanged", "already running in the background"} {
			if !strings.Contains(errs, w) {
				t.Errorf("re-run lacks %q:\n%s", w, errs)
			}
		}
		t.Logf("warm re-run took %s:\n%s", d, errs)
	})

	t.Run("forward follows a deleted pod while calls flow", func(t *testing.T) {
		start := time.Now()
		old := r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app="+gwName, "-o", "jsonpath={.items[0].metadata.name}")
		tr := traffic(t, httpPort, 400, 20, 60*time.Second, func(i int) bool {
			if i == 60 {
				go exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n=apim-gateway", "delete", "pod", old, "--wait=false").Run()
				return true
			}
			return false
		})
		sent, failed, lastOK := tr.sent, tr.failed, tr.lastOK
		r.time("pod delete under traffic", start)
		t.Logf("pod %s deleted under traffic: %d sent, %d failed", old, sent, failed)
		now := r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app="+gwName, "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
		if strings.Contains(now, old) && !strings.Contains(now, " ") {
			t.Errorf("the pod was not replaced: %s", now)
		}
		if !lastOK {
			t.Errorf("the forward did not recover: the last calls failed")
		}
		// A graceful delete drains the old pod; at most the calls in flight
		// at the moment of the switch may fail.
		if failed > 2 {
			t.Errorf("%d of %d calls failed during a graceful pod delete", failed, sent)
		}
	})

	t.Run("a rebuilt image under the same tag restarts the pods", func(t *testing.T) {
		// A developer rebuilds their image and keeps its tag: the spec does
		// not change, yet up must roll the pods onto the new image.
		ref := "apimdev-e2e/standin-gateway:e2e-rebuild"
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
		rebuild := func(n int) string {
			b := exec.Command("docker", "build", "-q", "-t", ref, "-")
			b.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
			b.Stdin = strings.NewReader(fmt.Sprintf("FROM %s\nLABEL io.apimdev.e2e.rebuild=%d\n", r.gatewayImage, n))
			out, err := b.CombinedOutput()
			if err != nil {
				t.Fatalf("docker build: %v\n%s", err, out)
			}
			id, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Id}}", ref).Output()
			return strings.TrimSpace(string(id))
		}
		podImage := func() (string, string) { // the running pod not being deleted
			out := r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app="+gwName, "--field-selector=status.phase=Running",
				"-o", "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].imageID} {.metadata.deletionTimestamp}{\"\\n\"}{end}")
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) == 2 {
					return f[0], f[1]
				}
			}
			t.Errorf("no running gateway pod: %q", out)
			return "", ""
		}
		args := append(append([]string{"up", "--detach"}, common...), "--image", ref)
		first := rebuild(1)
		// Another image than the one running is a change up asks about.
		if code, _, errs := r.apimdev(t, args...); code != 1 || !strings.Contains(errs, "differs from these settings") || !strings.Contains(errs, "+         image: "+ref) {
			t.Fatalf("up with another --image and no --yes: exit %d\n%s", code, errs)
		}
		if code, out, errs := r.apimdev(t, append(args, "--yes")...); code != 0 {
			t.Fatalf("up --yes with %s: exit %d\n%s\n%s", ref, code, out, errs)
		}
		pod1, id1 := podImage()
		second := rebuild(2)
		if second == first {
			t.Fatalf("the rebuild kept the image ID %s", first)
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, args...)
		r.time("up after a rebuild, same tag", start)
		if code != 0 {
			t.Fatalf("up after the rebuild: exit %d\n%s\n%s", code, out, errs)
		}
		mustContain(t, "up after the rebuild", errs, "replacing an older image of the same name",
			"the image changed under the same name: restarting the gateway pods", "0 object(s) changed")
		pod2, id2 := podImage()
		t.Logf("pod %s (%s) → %s (%s) in %s", pod1, id1, pod2, id2, time.Since(start).Round(100*time.Millisecond))
		if pod2 == pod1 || pod2 == "" {
			t.Errorf("the pod was not replaced: %q → %q", pod1, pod2)
		}
		// The node names an image by its digest there; ask it which digests
		// the tag now has: the new pod's must be one of them.
		_, digest, _ := strings.Cut(id2, "@")
		node, _ := exec.Command("docker", "exec", r.cluster+"-control-plane", "crictl", "inspecti", ref).CombinedOutput()
		if id2 == id1 || digest == "" || !strings.Contains(string(node), digest) {
			t.Errorf("the new pod runs image %s (the old ran %s); the node's %s is:\n%s", id2, id1, ref, node)
		}
		// And back to the rig's image for the rest of the suite (a change
		// of what runs, so with --yes).
		if code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--yes"}, common...)...); code != 0 {
			t.Fatalf("up with the rig image: exit %d\n%s\n%s", code, out, errs)
		}
	})

	t.Run("status -o json", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "status", "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var st struct {
			State, Node    string
			Ready, Desired int
			Forward        struct{ Running bool }
			TokenExpiry    struct{ State string }
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if st.State != "ours" || st.Ready != 1 || st.Desired != 1 || !st.Forward.Running || st.TokenExpiry.State != "ok" || !strings.Contains(st.Node, "Ready") {
			t.Fatalf("status: %+v", st)
		}
		if got := linkStates(t, r); !slices.Equal(got, []string{"synced"}) {
			t.Errorf("status' link on a healthy gateway: %v, want [synced]", got)
		}
	})

	// A token the configuration endpoint refuses (as after its gateway key
	// was regenerated in the portal): the real gateway's pod runs and its
	// status path answers 200 (public issue #287), so readiness and the
	// default smoke call are green. The pods' logs say refused, and up fails
	// naming it, with the fix. The good token brings the gateway back.
	t.Run("a revoked token: up fails naming refused although the status path answers 200", func(t *testing.T) {
		revokedTok := r.mintTokenWithKey(t, "", "another-key-as-if-regenerated-in-the-portal")
		parts := strings.Split(revokedTok, "&")
		r.moreCanaries = append(r.moreCanaries, parts[len(parts)-1])
		revoked := filepath.Join(t.TempDir(), "revoked.token")
		if err := os.WriteFile(revoked, []byte(revokedTok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--yes", "--token-file", revoked}, common...)...)
		r.time("up, refused token", start)
		t.Logf("up with a token the configuration endpoint refuses (exit %d, %s):\n%s%s", code, time.Since(start).Round(100*time.Millisecond), errs, out)
		if code == 0 {
			t.Fatalf("up passed with a refused token")
		}
		// Ready, the health calls pass, the spec's calls get 200 with an
		// empty body; the error names the cause and the fix.
		mustContain(t, "up's stderr", errs, "✓ deploy", "✗ smoke", "configuration endpoint is refused on every pod", "ConfigurationApiV2NotAvailable", "apimdev token rotate")
		if !regexp.MustCompile(`health \(http\)\s+200\s+\S+\s+pass`).MatchString(out) {
			t.Errorf("the health call did not pass with the refused token:\n%s", out)
		}
		resp, err := http.Get("http://127.0.0.1:" + httpPort + "/status-0123456789abcdef")
		if err != nil {
			t.Fatalf("the status path: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the status path answered %d, want 200 (the gateway's host runs without its configuration)", resp.StatusCode)
		}
		if got := linkStates(t, r); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "refused" }) {
			t.Errorf("status' links with the refused token: %v, want refused on every pod", got)
		}
		// The gateway's text format (dev's default), read by level: the
		// refusal is a warning; the start's Info entries are below it.
		code, logs, logErrs := r.apimdev(t, "logs", "--level", "warn")
		t.Logf("apimdev logs --level warn (exit %d):\n%s%s", code, logs, logErrs)
		mustContain(t, "logs --level warn", logs, "WARN", "[ConfigurationApiV2NotAvailable]", "StatusCode: Unauthorized")
		mustNotContain(t, "logs --level warn", logs, "[ConfigInitialSyncStarted]", "\x1b[")
		start = time.Now()
		code, out, errs = r.apimdev(t, append([]string{"up", "--detach", "--yes"}, common...)...)
		r.time("up, good token again", start)
		if code != 0 || !strings.Contains(errs, "configuration link synced") {
			t.Fatalf("up with the good token again: exit %d\n%s\n%s", code, out, errs)
		}
		if got := linkStates(t, r); !slices.Equal(got, []string{"synced"}) {
			t.Errorf("status' links after the good token: %v", got)
		}
	})

	// Microsoft Entra app authentication against the stand-in token
	// endpoint (stand-in, not Microsoft Entra ID), on the running gateway.
	entra := []string{"--auth", "entra-app", "--tenant-id", entraTenant, "--client-id", entraClient, "--authority", entraAuthority}
	secretFile := func(t *testing.T, name, secret string) string {
		f := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Run("entra app: a wrong client secret is refused and explained, the right one serves", func(t *testing.T) {
		wrong := secretFile(t, "wrong.secret", "CANARY~wrong."+r.canary[:8])
		start := time.Now()
		code, out, errs := r.apimdev(t, append(append([]string{"up", "--detach", "--yes", "--timeout", "25s", "--client-secret-file", wrong}, entra...), common...)...)
		r.time("up, wrong client secret", start)
		t.Logf("up with a wrong client secret (exit %d, %s):\n%s", code, time.Since(start).Round(100*time.Millisecond), errs)
		if code == 0 || !strings.Contains(errs, "AADSTS7000215") || !strings.Contains(errs, "--client-secret-file FILE") {
			t.Fatalf("a wrong client secret: exit %d\n%s\n%s", code, out, errs)
		}
		if strings.Contains(out+errs, "CANARY~wrong") {
			t.Error("the wrong secret is in apimdev's output")
		}
		// The gateway colours its log; the lines apimdev quotes are plain.
		if !strings.Contains(errs, "last log lines:") || strings.Contains(errs, "\x1b[") {
			t.Errorf("the quoted log lines are missing or keep the gateway's colour escapes:\n%q", errs)
		}
		// The pod with the token still serves while the new one cannot start.
		if tr := traffic(t, httpPort, 20, 20, 10*time.Second, nil); tr.failed != 0 {
			t.Errorf("calls during the refused rollout: %d of %d failed %v", tr.failed, tr.sent, tr.errors)
		}
		right := secretFile(t, "right.secret", r.entraSecrets[0])
		start = time.Now()
		code, out, errs = r.apimdev(t, append(append([]string{"up", "--detach", "--yes", "--smoke-file", "testdata/smoke.yaml", "--client-secret-file", right}, entra...), common...)...)
		r.time("up, right client secret", start)
		if code != 0 || !strings.Contains(out, "0 failed") {
			t.Fatalf("up with the right client secret: exit %d\n%s\n%s", code, out, errs)
		}
		t.Logf("up with the right client secret, %s:\n%s", time.Since(start).Round(100*time.Millisecond), errs)
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-env", "-o", `jsonpath={.data.config\.service\.auth} {.data.config\.service\.auth\.azureAd\.clientId} {.data.gateway\.name}`); got != "azureAdApp "+entraClient+" "+gwName {
			t.Errorf("ConfigMap: %q", got)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "secret", gwName+"-token", "-o", `go-template={{range $k, $v := .data}}{{$k}} {{end}}`); strings.TrimSpace(got) != "azure-ad-app-secret" {
			t.Errorf("Secret keys: %q", got)
		}
		code, text, _ := r.apimdev(t, "status")
		if code != 0 || !strings.Contains(text, "Microsoft Entra app "+entraClient) {
			t.Errorf("status:\n%s", text)
		}
		// A plain up keeps Entra ID and the cluster's secret: nothing changes.
		code, _, errs = r.apimdev(t, append([]string{"up", "--detach"}, common...)...)
		if code != 0 || !strings.Contains(errs, "client secret: the one in Secret") || !strings.Contains(errs, "0 object(s) changed") {
			t.Errorf("a plain up on the Entra gateway: exit %d\n%s", code, errs)
		}
	})

	t.Run("entra app: the client secret rotates under traffic with none lost", func(t *testing.T) {
		next := secretFile(t, "next.secret", r.entraSecrets[1])
		start := time.Now()
		code, out, errs := r.apimdev(t, "credentials", "rotate", "--client-secret-file", next, "-o", "json", "--rate", "50",
			"--traffic-path", "/echo/rotate", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}")
		r.time("credentials rotate (Entra)", start)
		if code != 0 {
			t.Fatalf("credentials rotate exited %d\n%s\n%s", code, out, errs)
		}
		var res promoteResult
		lastJSON(t, out, &res)
		t.Logf("client secret rotation: restart %.1fs, traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms", res.RolloutSeconds, res.Traffic.Sent, res.Traffic.Failed, res.Traffic.P50Ms, res.Traffic.P99Ms)
		if res.Traffic.Sent < 50 || res.Traffic.Failed != 0 {
			t.Errorf("rotation traffic: %+v", res.Traffic)
		}
		if code, _, errs := r.apimdev(t, "smoke", "--smoke-file", "testdata/smoke.yaml"); code != 0 {
			t.Errorf("smoke after the rotation: %s", errs)
		}
	})

	t.Run("private CA: without it the deploy names a certificate problem, with --ca-cert it serves", func(t *testing.T) {
		caCert, caKey := privateCA(t)
		r.deployPrivateConfigService(t, caCert, caKey)
		private := append(append([]string{}, common...), "--endpoint", privateEndpoint)
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--yes", "--timeout", "25s"}, private...)...)
		r.time("up, private CA not given", start)
		t.Logf("up against an endpoint signed by a private CA, no --ca-cert (exit %d, %s):\n%s", code, time.Since(start).Round(100*time.Millisecond), errs)
		if code == 0 || !strings.Contains(errs, "certificate problem") || !strings.Contains(errs, "--ca-cert ca.pem") {
			t.Fatalf("the missing CA: exit %d\n%s\n%s", code, out, errs)
		}
		if tr := traffic(t, httpPort, 20, 20, 10*time.Second, nil); tr.failed != 0 {
			t.Errorf("calls during the refused rollout: %d of %d failed %v", tr.failed, tr.sent, tr.errors)
		}

		caFile := filepath.Join(t.TempDir(), "contoso-root.pem")
		if err := os.WriteFile(caFile, caCert, 0o644); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		code, out, errs = r.apimdev(t, append([]string{"up", "--detach", "--yes", "--smoke-file", "testdata/smoke.yaml", "--ca-cert", caFile}, private...)...)
		r.time("up, private CA given", start)
		if code != 0 || !strings.Contains(out, "0 failed") {
			t.Fatalf("up with --ca-cert: exit %d\n%s\n%s", code, out, errs)
		}
		t.Logf("up with --ca-cert, %s:\n%s", time.Since(start).Round(100*time.Millisecond), errs)
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-ca-certificates", "-o", `go-template={{range $k, $v := .data}}{{$k}} {{end}}`); strings.TrimSpace(got) != "contoso-root.crt" {
			t.Errorf("CA ConfigMap keys: %q", got)
		}
		if got := r.kubectlOut(t, "-n=apim-gateway", "get", "configmap", gwName+"-env", "-o", `jsonpath={.data.certificates\.local\.ca\.enabled}`); got != "true" {
			t.Errorf("certificates.local.ca.enabled = %q", got)
		}
		code, text, _ := r.apimdev(t, "status")
		if code != 0 || !strings.Contains(text, "trusts CA") || !strings.Contains(text, "Contoso Private Root CA (e2e)") {
			t.Errorf("status:\n%s", text)
		}
		// The CA is the cluster's record now: a plain up, with the file
		// gone, changes nothing.
		os.Remove(caFile)
		code, _, errs = r.apimdev(t, append([]string{"up", "--detach"}, private...)...)
		if code != 0 || !strings.Contains(errs, "0 object(s) changed") {
			t.Errorf("a plain up with the CA file gone: exit %d\n%s", code, errs)
		}
		// Back to the well-known endpoint, without the CA: its ConfigMap goes.
		code, out, errs = r.apimdev(t, append([]string{"up", "--detach", "--yes", "--ca-cert", "none", "--smoke-file", "testdata/smoke.yaml"}, common...)...)
		if code != 0 || !strings.Contains(out, "0 failed") {
			t.Fatalf("up --ca-cert none: exit %d\n%s\n%s", code, out, errs)
		}
		if b, err := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n=apim-gateway", "get", "configmap", gwName+"-ca-certificates").CombinedOutput(); err == nil {
			t.Errorf("the CA ConfigMap is still there after --ca-cert none: %s", b)
		}
	})

	// Scanned while every file apimdev wrote still exists (down removes the
	// state directory): the state directory (kubeconfig, records, the
	// forward's log), the home directory apimdev ran with, and a doctor
	// bundle written into it. What may hold a secret is outside them: the
	// token file and the client-secret files are the test's inputs, in
	// temporary directories of their own; the private CA's key is the test's,
	// in its temporary directory and the cluster's Secret. The kubeconfig's
	// client-key-data is kind's admin credential, base64 (no PEM text), in
	// the 0600 file that exists to hold it: not looked for.
	t.Run("no file holds the token, a client secret or a private key", func(t *testing.T) {
		bundle := filepath.Join(r.home, "apimdev-doctor.tar.gz")
		if code, out, errs := r.apimdev(t, "doctor", "--bundle", bundle, "--node-logs=false"); code != 0 {
			t.Fatalf("doctor: exit %d\n%s\n%s", code, out, errs)
		}
		for _, f := range []string{r.kubeconfig, filepath.Join(r.state, "clusters", r.cluster, "forward.log"), filepath.Join(r.state, "clusters", r.cluster, "forward.json"), r.userKubeconfig, bundle} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s is not there to be scanned: %v", f, err)
			}
		}
		sc := newScanner(append(r.secrets(), "CANARY~wrong")...)
		sc.privateKeys = true
		sc.tree(r.state)
		sc.tree(r.home)
		for _, h := range sc.hits {
			t.Error(h)
		}
		t.Logf("scanned %d files (the doctor bundle's one by one), %d bytes, under %s and %s", sc.files, sc.bytes, r.state, r.home)
		// The scan finds what it looks for: the token file holds the
		// canary, and a PEM key block is one.
		probe := newScanner(r.canary)
		probe.privateKeys = true
		probe.file(r.tokenFile)
		probe.scan("a key", []byte("x\n-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n"))
		if hits := strings.Join(probe.hits, "\n"); !strings.Contains(hits, r.tokenFile+" holds canary") || !strings.Contains(hits, "a key holds a private key") {
			t.Errorf("the scan does not find the canary in the token file and a private key: %v", probe.hits)
		}
	})

	t.Run("down removes the cluster and leaves the user's kubeconfig alone", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, "down")
		r.time("down", start)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		b, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+r.cluster, "--format", "{{.Names}}").Output()
		if strings.TrimSpace(string(b)) != "" {
			t.Errorf("node containers left: %s", b)
		}
		if _, err := os.Stat(r.kubeconfig); !os.IsNotExist(err) {
			t.Errorf("apimdev's kubeconfig left behind: %v", err)
		}
		after, _ := os.ReadFile(r.userKubeconfig)
		if !bytes.Equal(userBefore, after) {
			t.Errorf("~/.kube/config changed:\n%s", after)
		}
		if portOpen(httpPort) {
			t.Errorf("the background forward still holds %s", httpPort)
		}
	})

	t.Run("the token and the client secrets appear nowhere in apimdev's output", func(t *testing.T) {
		// Every command's output, down's included; what down left of the
		// state directory and home directory is scanned again.
		sc := newScanner(append(r.secrets(), "CANARY~wrong")...)
		sc.privateKeys = true
		sc.scan("apimdev's output", r.transcript.Bytes())
		sc.tree(r.state)
		sc.tree(r.home)
		for _, h := range sc.hits {
			t.Error(h)
		}
		t.Logf("scanned %d bytes of output and %d files left after down", r.transcript.Len(), sc.files-1)
	})
}

// linkStates are the states of status' links, pod by pod.
func linkStates(t *testing.T, r *rig) []string {
	t.Helper()
	code, out, errs := r.apimdev(t, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st struct {
		Links []struct{ Pod, State, Event string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var states []string
	for _, l := range st.Links {
		states = append(states, l.State)
	}
	t.Logf("status' links: %+v", st.Links)
	return states
}
