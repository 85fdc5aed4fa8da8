//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tools are what `make e2e` prepared (passed in the environment) and the two
// binaries built once for the whole run (see builtBinaries).
type tools struct {
	nodeImage, gatewayImage, kubectl, kind string
	bin, standin                           string
}

func need(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the suite with `make e2e`, which builds the rig (it never skips)", name)
	}
	return v
}

// The binaries every suite runs are built once per run of the test binary
// and shared by its top-level tests, which only execute them: each suite
// linked its own race build of apimdev before, the same bytes nine times.
// TestMain removes them.
var (
	binOnce        sync.Once
	binDir         string
	binErr         error
	binApimdev     string
	binStandin     string
	binBuildTiming time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func builtBinaries() (apimdev, standin string, err error) {
	binOnce.Do(func() {
		start := time.Now()
		binDir, binErr = os.MkdirTemp("", "apimdev-e2e-bin-")
		if binErr != nil {
			return
		}
		binApimdev = filepath.Join(binDir, "apimdev")
		binStandin = filepath.Join(binDir, "standin-gateway")
		// apimdev is built with the race detector: every suite's lifecycle
		// runs it, and each rig fails on any race report (see raceReports).
		for out, pkg := range map[string]string{binApimdev: "../..", binStandin: "../standin-gateway"} {
			args := []string{"build", "-o", out, pkg}
			if out == binApimdev {
				args = []string{"build", "-race", "-o", out, pkg}
			}
			cmd := exec.Command("go", args...)
			if out == binStandin {
				// Static, as a release archive's: TestPodman's up --demo
				// makes the demo's image (FROM scratch) from it.
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if b, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("building %s: %v\n%s", pkg, err, b)
				return
			}
		}
		binBuildTiming = time.Since(start)
	})
	return binApimdev, binStandin, binErr
}

func buildTools(t *testing.T) *tools {
	tl := &tools{
		nodeImage:    need(t, "APIMDEV_E2E_NODE_IMAGE"),
		gatewayImage: need(t, "APIMDEV_E2E_GATEWAY_IMAGE"),
		kubectl:      need(t, "APIMDEV_E2E_KUBECTL"),
	}
	// kind's CLI sits next to kubectl in the rig's cache.
	tl.kind = filepath.Join(filepath.Dir(tl.kubectl), "kind")
	var err error
	if tl.bin, tl.standin, err = builtBinaries(); err != nil {
		t.Fatal(err)
	}
	t.Logf("apimdev (-race) and the stand-in built once for the run in %s", binBuildTiming.Round(100*time.Millisecond))
	return tl
}

// mintToken has the stand-in sign a token for gwName; expiry is "" for one
// valid 30 days, or a yyyyMMddHHmm (an expired one when it is in the past).
func (tl *tools) mintToken(t *testing.T, expiry string) string {
	t.Helper()
	return tl.mintTokenWithKey(t, expiry, gatewayKey)
}

// mintTokenWithKey signs with key: a key other than the configuration
// service's makes a token it refuses, as Azure refuses a token whose gateway
// key was regenerated in the portal.
func (tl *tools) mintTokenWithKey(t *testing.T, expiry, key string) string {
	t.Helper()
	args := []string{"mint-token", "--id", gwName, "--valid-for", "720h"}
	if expiry != "" {
		args = []string{"mint-token", "--id", gwName, "--expiry", expiry}
	}
	mint := exec.Command(tl.standin, args...)
	mint.Env = append(os.Environ(), "STANDIN_GATEWAY_KEY="+key)
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("minting a token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// rig is one isolated user of apimdev: its own HOME (with a ~/.kube/config of
// the user's own), state directory, cluster name, ports and token file.
type rig struct {
	*tools
	home, state, userKubeconfig string
	kubeconfig                  string
	cluster                     string
	httpPort, httpsPort         string
	token, canary               string
	tokenFile                   string
	// entraSecrets are the two client secrets the stand-in token endpoint
	// accepts for the e2e Entra app (canaries too: never outside a Secret).
	entraSecrets [2]string
	// moreCanaries are the signatures of other tokens a suite used.
	moreCanaries []string
	env          []string
	mu           sync.Mutex
	transcript   bytes.Buffer // every byte apimdev printed
	timings      []timing
}

type timing struct {
	step string
	d    time.Duration
}

type rigOptions struct {
	cluster             string
	httpPort, httpsPort string
	token               string // minted when empty
	tokenFileText       string // what the token file holds; token + "\n" when empty
}

const (
	gwName     = "contoso-gw"
	endpoint   = "standin-config.standin-config.svc.cluster.local:8443"
	gatewayKey = "e2e-signing-key-not-a-secret-of-anyone"
	subKey     = "e2e-subscription-key"
	// The e2e suite's Microsoft Entra app, as the stand-in token endpoint
	// knows it (stand-in, not Microsoft Entra ID).
	entraTenant    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraClient    = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	entraAuthority = "https://" + endpoint
)

// userKubeconfigText is the user's own kubeconfig, with a context of theirs:
// apimdev must leave it byte for byte the same unless told to merge.
const userKubeconfigText = "apiVersion: v1\nkind: Config\ncurrent-context: users-own\ncontexts:\n- name: users-own\n  context: {cluster: users-own, user: users-own}\nclusters:\n- name: users-own\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: users-own\n  user: {}\n"

func newRig(t *testing.T, tl *tools, o rigOptions) *rig {
	tl.removeLeftover(t, o.cluster)
	r := &rig{tools: tl, cluster: o.cluster, httpPort: o.httpPort, httpsPort: o.httpsPort}
	dir := t.TempDir()
	r.home = filepath.Join(dir, "home")
	r.state = filepath.Join(dir, "state")
	r.userKubeconfig = filepath.Join(r.home, ".kube", "config")
	os.MkdirAll(filepath.Dir(r.userKubeconfig), 0o700)
	os.WriteFile(r.userKubeconfig, []byte(userKubeconfigText), 0o600)
	r.kubeconfig = filepath.Join(r.state, "clusters", r.cluster, "kubeconfig")
	r.token = o.token
	if r.token == "" {
		r.token = tl.mintToken(t, "")
	}
	// The canary: the token's signature, which must appear nowhere but the Secret.
	parts := strings.Split(r.token, "&")
	r.canary = parts[len(parts)-1]
	r.tokenFile = filepath.Join(dir, "gw.token")
	text := o.tokenFileText
	if text == "" {
		text = r.token + "\n"
	}
	os.WriteFile(r.tokenFile, []byte(text), 0o600)
	for i := range r.entraSecrets {
		r.entraSecrets[i] = fmt.Sprintf("CANARY~entra%d.%d_%s", i+1, time.Now().UnixNano()%1e6, r.canary[:8])
	}
	races := filepath.Join(dir, "races")
	os.MkdirAll(races, 0o755)
	r.env = append(os.Environ(), "HOME="+r.home, "KUBECONFIG=", "APIMDEV_HOME="+r.state, "APIMDEV_TOKEN=",
		"APIMDEV_CLUSTER_NAME="+r.cluster, "APIMDEV_TOKEN_FILE="+r.tokenFile, "APIM_SUBSCRIPTION_KEY="+subKey,
		// Every apimdev process of this rig (the background forward and the
		// wizard included) writes race reports here, not to its output.
		"GORACE=log_path="+filepath.Join(races, "race")+" halt_on_error=0")
	// `backend add` makes the relay's image from a static Linux apimdev
	// (FROM scratch): the rig's (-race) build is not one, so the rig gives
	// the static build of the same source that made the node image.
	if p := os.Getenv("APIMDEV_E2E_STATIC_APIMDEV"); p != "" {
		r.env = append(r.env, "APIMDEV_RELAY_BINARY="+p)
	}
	t.Cleanup(func() { raceReports(t, races) })
	return r
}

// removeLeftover deletes a cluster of this name that an earlier run of the
// suite left on the rig's engines (Docker, and Podman when the rig has it):
// a run killed midway (a CI job cancelled, a machine stopped) skips its
// cleanups, and the next run's `up` would find that cluster, with the old
// run's record, instead of making its own. The names are the suites' own
// (apimdev-<suite>), never apimdev's default.
func (tl *tools) removeLeftover(t *testing.T, name string) {
	t.Helper()
	providers := []string{"docker"}
	if os.Getenv("APIMDEV_E2E_PODMAN_SOCKET") != "" {
		providers = append(providers, "podman")
	}
	for _, p := range providers {
		env := append(os.Environ(), "KIND_EXPERIMENTAL_PROVIDER="+p)
		get := exec.Command(tl.kind, "get", "clusters")
		get.Env = env
		out, err := get.Output()
		if err != nil || !slices.Contains(strings.Fields(string(out)), name) {
			continue
		}
		del := exec.Command(tl.kind, "delete", "cluster", "--name", name)
		del.Env = env
		if b, err := del.CombinedOutput(); err != nil {
			t.Fatalf("removing cluster %q left on %s by an earlier run: %v\n%s", name, p, err, b)
		}
		t.Logf("removed cluster %q that an earlier, interrupted run left on %s", name, p)
	}
}

// raceReports fails the test for every race report an apimdev process of
// the rig wrote.
func raceReports(t *testing.T, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte("DATA RACE")) {
			t.Errorf("apimdev (race build) reported a data race (%s):\n%s", e.Name(), b)
		}
	}
}

// common are the flags every up of this rig passes.
func (r *rig) common() []string {
	return []string{"--name", gwName, "--endpoint", endpoint, "--image", r.gatewayImage, "--node-image", r.nodeImage,
		"--http-port", r.httpPort, "--https-port", r.httpsPort}
}

func (r *rig) time(step string, start time.Time) {
	r.timings = append(r.timings, timing{step, time.Since(start)})
}

// apimdev runs the binary and returns exit code, stdout and stderr.
func (r *rig) apimdev(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return r.run(t, context.Background(), nil, args...)
}

func (r *rig) apimdevCtx(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	return r.run(t, ctx, nil, args...)
}

// run is apimdev with extra environment (later entries win).
func (r *rig) run(t *testing.T, ctx context.Context, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = append(append([]string(nil), r.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running apimdev %v: %v", args, err)
	}
	r.record(args, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func (r *rig) record(args []string, out, errs string) {
	r.mu.Lock()
	fmt.Fprintf(&r.transcript, "$ apimdev %s\n%s%s", strings.Join(args, " "), out, errs)
	r.mu.Unlock()
}

// proc is an apimdev running in the background whose stderr the test watches
// line by line (to inject a fault at a given step).
type proc struct {
	r      *rig
	args   []string
	cmd    *exec.Cmd
	out    bytes.Buffer
	mu     sync.Mutex
	errb   bytes.Buffer
	lines  chan string
	done   chan struct{}
	code   int
	exited time.Time
}

func (r *rig) start(t *testing.T, ctx context.Context, args ...string) *proc {
	t.Helper()
	p := &proc{r: r, args: args, lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, r.bin, args...)
	p.cmd.Env = r.env
	p.cmd.Stdout = &p.out
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting apimdev %v: %v", args, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.errb.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
		err := p.cmd.Wait()
		p.exited = time.Now()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		r.record(args, p.out.String(), p.stderr())
		close(p.done)
	}()
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// waitLine waits for a stderr line containing s; false if the process ended
// or the time ran out first.
func (p *proc) waitLine(s string, limit time.Duration) bool {
	deadline := time.After(limit)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return false
			}
			if strings.Contains(l, s) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// wait returns the exit code, stdout and stderr once the process ends.
func (p *proc) wait(limit time.Duration) (int, string, string, bool) {
	go func() {
		for range p.lines { // keep the pipe drained
		}
	}()
	select {
	case <-p.done:
		return p.code, p.out.String(), p.stderr(), true
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		return p.code, p.out.String(), p.stderr(), false
	}
}

func (p *proc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

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
	return r.applyConfigService()
}

func (r *rig) applyConfigService() error {
	// The config service runs the stand-in image, which up loads into the node.
	// The Entra app's client secrets go in through a file, not argv: the
	// test's own, next to the token file, outside the home and state
	// directories apimdev writes to (which are scanned for the secrets).
	envFile := filepath.Join(filepath.Dir(r.home), "standin-config.env")
	// (kubectl takes an env file or literals, not both.)
	if err := os.WriteFile(envFile, []byte("STANDIN_GATEWAY_KEY="+gatewayKey+"\nSTANDIN_SUBSCRIPTION_KEYS="+subKey+"\nSTANDIN_ENTRA_TENANT_ID="+entraTenant+"\nSTANDIN_ENTRA_CLIENT_ID="+entraClient+
		"\nSTANDIN_ENTRA_CLIENT_SECRETS="+r.entraSecrets[0]+","+r.entraSecrets[1]+"\nSTANDIN_APIS="+standinAPIs+"\n"), 0o600); err != nil {
		return err
	}
	cmds := [][]string{
		{"apply", "-f", "testdata/standin-config.yaml"},
		{"-n", "standin-config", "create", "secret", "generic", "standin-config", "--from-env-file=" + envFile},
	}
	for _, c := range cmds {
		if b, err := exec.Command(r.kubectl, append([]string{"--kubeconfig", r.kubeconfig}, c...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("kubectl %v: %v: %s", c[:2], err, b)
		}
	}
	return nil
}

// secrets are every secret of the rig that must appear nowhere but a
// Kubernetes Secret: the token's signature and the Entra client secrets.
func (r *rig) secrets() []string {
	return append(append([]string{r.canary}, r.entraSecrets[:]...), r.moreCanaries...)
}

// trafficResult is what a bounded load loop saw.
type trafficResult struct {
	sent, failed int
	lastOK       bool
	// inFlight is how many calls were under way when hook fired at the
	// disruption (the most a hard kill may cost).
	inFlight int
	errors   map[string]int
}

// traffic sends n GET calls at rate/s (bounded by limit) through the forward
// on port to the echo API, calling hook(i) before call i (hook returns true
// when it disrupted something, to record the calls in flight). It counts
// failures and says whether the last ten calls succeeded.
func traffic(t *testing.T, port string, n, rate int, limit time.Duration, hook func(int) bool) trafficResult {
	return trafficUntil(t, port, n, rate, limit, hook, nil)
}

// trafficUntil is traffic that also ends when stop is closed.
func trafficUntil(t *testing.T, port string, n, rate int, limit time.Duration, hook func(int) bool, stop <-chan struct{}) trafficResult {
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	deadline := time.Now().Add(limit)
	var fails, flight atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	res := trafficResult{errors: map[string]int{}}
	results := make([]bool, n)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		if hook != nil && hook(i) {
			res.inFlight = int(flight.Load())
		}
		select {
		case <-stop:
			i = n
			continue
		case <-tick.C:
		}
		res.sent++
		wg.Add(1)
		flight.Add(1)
		go func(i int) {
			defer wg.Done()
			defer flight.Add(-1)
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/echo/traffic", nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", subKey)
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == 200
			why := ""
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				why = resp.Status
			} else {
				why = err.Error()
				if i := strings.LastIndex(why, ": "); i > 0 {
					why = why[i+2:]
				}
			}
			if !ok {
				fails.Add(1)
				mu.Lock()
				res.errors[why]++
				mu.Unlock()
			}
			results[i] = ok
		}(i)
	}
	wg.Wait()
	res.failed = int(fails.Load())
	res.lastOK = res.sent >= 10
	for i := res.sent - 10; i < res.sent && i >= 0; i++ {
		res.lastOK = res.lastOK && results[i]
	}
	return res
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
