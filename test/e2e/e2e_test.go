//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rig is what `make e2e` prepared, passed in the environment.
type rig struct {
	nodeImage, gatewayImage, kubectl, kind string
	bin, standin                           string // built by the test
	home, state, userKubeconfig            string
	kubeconfig                             string
	cluster                                string
	token, canary                          string
	env                                    []string
	mu                                     sync.Mutex
	transcript                             bytes.Buffer // every byte apimdev printed
	timings                                []timing
}

type timing struct {
	step string
	d    time.Duration
}

const (
	httpPort   = "18080"
	httpsPort  = "18443"
	gwName     = "contoso-gw"
	endpoint   = "standin-config.standin-config.svc.cluster.local:8443"
	gatewayKey = "e2e-signing-key-not-a-secret-of-anyone"
	subKey     = "e2e-subscription-key"
)

func need(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the suite with `make e2e`, which builds the rig (it never skips)", name)
	}
	return v
}

func newRig(t *testing.T) *rig {
	r := &rig{
		nodeImage:    need(t, "APIMDEV_E2E_NODE_IMAGE"),
		gatewayImage: need(t, "APIMDEV_E2E_GATEWAY_IMAGE"),
		kubectl:      need(t, "APIMDEV_E2E_KUBECTL"),
		cluster:      "apimdev-e2e",
	}
	dir := t.TempDir()
	r.bin = filepath.Join(dir, "apimdev")
	r.standin = filepath.Join(dir, "standin-gateway")
	for out, pkg := range map[string]string{r.bin: "../..", r.standin: "../standin-gateway"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
	}
	r.home = filepath.Join(dir, "home")
	r.state = filepath.Join(dir, "state")
	r.userKubeconfig = filepath.Join(r.home, ".kube", "config")
	os.MkdirAll(filepath.Dir(r.userKubeconfig), 0o700)
	// The user's own kubeconfig, with a context of theirs: it must come out
	// of up and down byte for byte the same.
	os.WriteFile(r.userKubeconfig, []byte("apiVersion: v1\nkind: Config\ncurrent-context: users-own\ncontexts:\n- name: users-own\n  context: {cluster: users-own, user: users-own}\nclusters:\n- name: users-own\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: users-own\n  user: {}\n"), 0o600)
	r.kubeconfig = filepath.Join(r.state, "clusters", r.cluster, "kubeconfig")
	// A canary token: a unique signature that must appear nowhere but the Secret.
	mint := exec.Command(r.standin, "mint-token", "--id", gwName, "--valid-for", "720h")
	mint.Env = append(os.Environ(), "STANDIN_GATEWAY_KEY="+gatewayKey)
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("minting a token: %v", err)
	}
	r.token = strings.TrimSpace(string(out))
	parts := strings.Split(r.token, "&")
	r.canary = parts[len(parts)-1]
	tokenFile := filepath.Join(dir, "gw.token")
	os.WriteFile(tokenFile, []byte(r.token+"\n"), 0o600)
	r.env = append(os.Environ(), "HOME="+r.home, "KUBECONFIG=", "APIMDEV_HOME="+r.state, "APIMDEV_TOKEN=",
		"APIMDEV_CLUSTER_NAME="+r.cluster, "APIMDEV_TOKEN_FILE="+tokenFile, "APIM_SUBSCRIPTION_KEY="+subKey)
	return r
}

func (r *rig) time(step string, start time.Time) {
	r.timings = append(r.timings, timing{step, time.Since(start)})
}

// apimdev runs the binary and returns exit code, stdout and stderr.
func (r *rig) apimdev(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return r.apimdevCtx(t, context.Background(), args...)
}

func (r *rig) apimdevCtx(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running apimdev %v: %v", args, err)
	}
	r.mu.Lock()
	fmt.Fprintf(&r.transcript, "$ apimdev %s\n%s%s", strings.Join(args, " "), out.String(), errb.String())
	r.mu.Unlock()
	return code, out.String(), errb.String()
}

func (r *rig) kubectlOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(r.kubectl, append([]string{"--kubeconfig", r.kubeconfig}, args...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, b)
	}
	return string(b)
}

func (r *rig) jsonpath(t *testing.T, obj, path string) string {
	return r.kubectlOut(t, "get", obj, "-o", "jsonpath="+path)
}

// deployConfigService puts the stand-in configuration endpoint into the
// cluster as soon as `up` has made it, the way Azure's exists before a
// gateway is deployed.
func (r *rig) deployConfigService(t *testing.T, ctx context.Context) error {
	for ctx.Err() == nil {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			cmd := exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "get", "--raw", "/readyz")
			if cmd.Run() == nil {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The config service runs the stand-in image, which up loads into the node.
	cmds := [][]string{
		{"apply", "-f", "testdata/standin-config.yaml"},
		{"-n", "standin-config", "create", "secret", "generic", "standin-config", "--from-literal=STANDIN_GATEWAY_KEY=" + gatewayKey, "--from-literal=STANDIN_SUBSCRIPTION_KEYS=" + subKey},
	}
	for _, c := range cmds {
		if b, err := exec.Command(r.kubectl, append([]string{"--kubeconfig", r.kubeconfig}, c...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("kubectl %v: %v: %s", c[:2], err, b)
		}
	}
	return nil
}

func TestE2E(t *testing.T) {
	r := newRig(t)
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
	common := []string{"--name", gwName, "--endpoint", endpoint, "--image", r.gatewayImage, "--node-image", r.nodeImage,
		"--http-port", httpPort, "--https-port", httpsPort}

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
		t.Logf("warm re-run took %s", d)
	})

	t.Run("forward follows a deleted pod while calls flow", func(t *testing.T) {
		start := time.Now()
		old := r.kubectlOut(t, "-n=apim-gateway", "get", "pods", "-l", "app="+gwName, "-o", "jsonpath={.items[0].metadata.name}")
		sent, failed, lastOK := traffic(t, 400, 20, 60*time.Second, func(i int) {
			if i == 60 {
				go exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "-n=apim-gateway", "delete", "pod", old, "--wait=false").Run()
			}
		})
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

	t.Run("the token appears nowhere but the Secret", func(t *testing.T) {
		if strings.Contains(r.transcript.String(), r.canary) {
			t.Errorf("the canary is in apimdev's output")
		}
		filepath.Walk(r.state, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(r.canary)) {
					t.Errorf("the canary is in %s", p)
				}
			}
			return nil
		})
		t.Logf("scanned %d bytes of output and the state directory", r.transcript.Len())
	})
}

// traffic sends n GET calls at rate/s (bounded by limit) through the forward
// to the echo API, calling hook(i) before call i. It counts failures and says
// whether the last ten calls succeeded.
func traffic(t *testing.T, n, rate int, limit time.Duration, hook func(int)) (sent, failed int, lastOK bool) {
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	deadline := time.Now().Add(limit)
	var fails atomic.Int64
	var wg sync.WaitGroup
	results := make([]bool, n)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		hook(i)
		<-tick.C
		sent++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+httpPort+"/echo/traffic", nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", subKey)
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == 200
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if !ok {
				fails.Add(1)
			}
			results[i] = ok
		}(i)
	}
	wg.Wait()
	lastOK = sent >= 10
	for i := sent - 10; i < sent && i >= 0; i++ {
		lastOK = lastOK && results[i]
	}
	return sent, int(fails.Load()), lastOK
}

func portOpen(port string) bool {
	c, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (r *rig) table() string {
	var b strings.Builder
	b.WriteString("e2e step durations:\n")
	for _, tm := range r.timings {
		fmt.Fprintf(&b, "  %-28s %8.1fs\n", tm.step, tm.d.Seconds())
	}
	return b.String()
}
