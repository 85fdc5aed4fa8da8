//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The wizard's suite: its own cluster and ports, so it never meets the others.
const (
	tuiCluster   = "apimdev-tui"
	tuiHTTPPort  = "28080"
	tuiHTTPSPort = "28443"
	tuiWidth     = 100
	tuiHeight    = 36
)

// terminal is a real terminal: a tmux server of the test's own, a pane
// running the wizard. send-keys types, capture-pane reads the screen.
type terminal struct {
	t       *testing.T
	socket  string
	session string
	screens []string // every screen captured, for the canary scan
}

func (tm *terminal) tmux(args ...string) (string, error) {
	b, err := exec.Command("tmux", append([]string{"-L", tm.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	return string(b), err
}

// newTerminal starts the test's tmux server; open runs a script in a new pane.
func newTerminal(t *testing.T) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed (apt-get install -y tmux): %v", err)
	}
	tm := &terminal{t: t, socket: fmt.Sprintf("apimdev-tui-%d", os.Getpid())}
	t.Cleanup(func() { tm.tmux("kill-server") })
	return tm
}

func (tm *terminal) open(session, script string, w, h int) {
	tm.t.Helper()
	tm.session = session
	if out, err := tm.tmux("new-session", "-d", "-s", session, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh "+script); err != nil {
		tm.t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
}

// keys sends tmux key names (Enter, C-u, …); text types s literally.
func (tm *terminal) keys(keys ...string) {
	tm.t.Helper()
	if out, err := tm.tmux(append([]string{"send-keys", "-t", tm.session}, keys...)...); err != nil {
		tm.t.Fatalf("send-keys %v: %v\n%s", keys, err, out)
	}
}

func (tm *terminal) text(s string) {
	tm.t.Helper()
	if out, err := tm.tmux("send-keys", "-t", tm.session, "-l", s); err != nil {
		tm.t.Fatalf("send-keys -l: %v\n%s", err, out)
	}
}

func (tm *terminal) screen() string {
	// -J joins the lines the terminal wrapped (the notes printed after the
	// wizard leaves the screen are plain lines).
	out, err := tm.tmux("capture-pane", "-p", "-J", "-t", tm.session)
	if err != nil {
		tm.t.Fatalf("capture-pane: %v\n%s", err, out)
	}
	ls := strings.Split(out, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, " ")
	}
	out = strings.Join(ls, "\n")
	tm.screens = append(tm.screens, out)
	return out
}

// waitFor polls the screen until it shows every one of wants.
func (tm *terminal) waitFor(limit time.Duration, wants ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := tm.screen()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			tm.save("last-screen", s)
			tm.t.Fatalf("after %s the screen does not show %q:\n%s", limit, missing, s)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// save keeps a captured screen as a test artifact.
func (tm *terminal) save(name, screen string) {
	os.MkdirAll("artifacts", 0o755)
	p := filepath.Join("artifacts", "tui-"+name+".txt")
	if err := os.WriteFile(p, []byte(screen), 0o644); err != nil {
		tm.t.Errorf("saving %s: %v", p, err)
	}
	tm.t.Logf("screen %s (%s):\n%s", name, p, screen)
}

// fill types the form as a person would; "┃" marks the focused field. The
// token is pasted into the masked field.
func (tm *terminal) fill(r *rig, save bool) {
	tm.t.Helper()
	// The first question: the user's own gateway (the default answer).
	first := tm.waitFor(15*time.Second, "How do you want to start?", "I have a gateway token", "Try the demo", "Load a workshop kit")
	if save {
		tm.save("0-start", first)
	}
	tm.keys("Enter")
	tm.waitFor(15*time.Second, "Your gateway", "┃ Gateway name")
	tm.keys("C-u")
	tm.text(gwName)
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Configuration endpoint")
	tm.keys("C-u")
	tm.text(endpoint)
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Gateway token", "> paste it here (masked)")
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Token (masked)")
	tm.text(r.token)
	form := tm.waitFor(5*time.Second, "token: gateway "+gwName+", expires in 29 days", "> ****")
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Gateway image")
	tm.keys("C-u")
	tm.text(r.gatewayImage)
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Local HTTP port")
	tm.keys("C-u")
	tm.text(tuiHTTPPort)
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Local HTTPS port")
	tm.keys("C-u")
	tm.text(tuiHTTPSPort)
	local := tm.waitFor(5*time.Second, "> "+tuiHTTPSPort, "> "+r.gatewayImage)
	if save {
		tm.save("1-form-token", form)
		tm.save("2-form-local", local)
	}
	tm.keys("Enter")
}

func lineWith(screen, s string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestTUI is the wizard as a person uses it: `apimdev` with no command in a
// real terminal, the form typed key by key (the token pasted into the masked
// field), the run watched step by step, the result with the forward serving,
// then q. Every screen is saved under artifacts/ and scanned for the token.
func TestTUI(t *testing.T) {
	tl := buildTools(t)
	r := newRig(t, tl, rigOptions{cluster: tuiCluster, httpPort: tuiHTTPPort, httpsPort: tuiHTTPSPort})
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/tui-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	smokeFile, _ := filepath.Abs("testdata/smoke.yaml")

	// The pane's shell: the rig's environment, no token file (the token is
	// pasted), the offline node image and the smoke calls; the exit code is
	// printed after apimdev leaves, and the pane stays for the last capture.
	writeScript := func(name string, env []string, args ...string) string {
		var script strings.Builder
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !envName.MatchString(k) || k == "TERM" || k == "TMUX" || k == "TMUX_PANE" {
				continue
			}
			fmt.Fprintf(&script, "export %s=%s\n", k, shellQuote(v))
		}
		cmd := shellQuote(r.bin)
		for _, a := range args {
			cmd += " " + shellQuote(a)
		}
		fmt.Fprintf(&script, "%s\necho \"apimdev exited $?\"\nsleep 600\n", cmd)
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(script.String()), 0o700)
		return p
	}
	env := append(append([]string(nil), r.env...), "APIMDEV_TOKEN_FILE=", "APIMDEV_NODE_IMAGE="+r.nodeImage, "APIMDEV_SMOKE_FILE="+smokeFile)
	scriptPath := writeScript("wizard.sh", env)

	tm := newTerminal(t)

	// 1. A first run, cold: the form, then the steps one by one. The
	// configuration service is not there yet, so deploy waits for the
	// gateway to become ready, and Ctrl-C stops it there.
	start := time.Now()
	tm.open("first", scriptPath, tuiWidth, tuiHeight)
	tm.fill(r, true)
	r.time("tui: form", start)
	start = time.Now()
	tm.waitFor(30*time.Second, "bringing up "+gwName+` on kind cluster "`+tuiCluster+`"`, "✓ preflight")
	run := tm.waitFor(4*time.Minute, "✓ cluster", "created "+tuiCluster)
	tm.save("3-run-cluster", run)
	tm.keys("l")
	tm.save("4-run-logs", tm.waitFor(10*time.Second, "── logs", "✓ cluster"))
	tm.keys("l")
	// Without its configuration the gateway runs but never gets ready.
	deploy := tm.waitFor(2*time.Minute, "✓ image", "loaded into the node", "pods ready 0/1", "readiness probe")
	if l := lineWith(deploy, "pods ready 0/1"); !strings.Contains(l, "deploy") || strings.Contains(l, "✓") {
		t.Errorf("deploy is not the running step: %q", l)
	}
	tm.save("5-run-deploy", deploy)
	r.time("tui: cold run to deploy", start)
	tm.keys("C-c")
	stopped := tm.waitFor(30*time.Second, "■ deploy", "interrupted during deploy. Now: cluster \""+tuiCluster+"\" exists, gateway apim-gateway/"+gwName+" deployed (0/1 ready).",
		"Run `apimdev` (or `apimdev up`) again to continue from there", "apimdev exited 130")
	tm.save("6-interrupted", stopped)
	if portOpen(tuiHTTPPort) {
		t.Errorf("port %s open after Ctrl-C", tuiHTTPPort)
	}

	// 2. The configuration endpoint appears, and apimdev again resumes:
	// every step reuses what exists.
	if err := r.applyConfigService(); err != nil {
		t.Fatalf("config service: %v", err)
	}
	start = time.Now()
	tm.open("again", scriptPath, tuiWidth, tuiHeight)
	tm.fill(r, false)
	result := tm.waitFor(4*time.Minute, "✓ "+gwName+" answers on 127.0.0.1", "http://127.0.0.1:"+tuiHTTPPort, "https://127.0.0.1:"+tuiHTTPSPort)
	r.time("tui: resumed run to result", start)
	for _, w := range []string{"5 passed, 0 failed", "echo over https", "token    expires in 29 days", "The forward runs in this window until you quit (q)",
		"✓ deploy", "✓ smoke", "s smoke again", "q quit"} {
		if !strings.Contains(result, w) {
			t.Errorf("the result lacks %q", w)
		}
	}
	tm.save("7-result", result)

	// The forward serves while the wizard is open.
	resp, err := http.Get("http://127.0.0.1:" + tuiHTTPPort + "/status-0123456789abcdef")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("the forward does not answer: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}

	// s runs the smoke calls again; ? shows the keys; p is promote.
	tm.keys("s")
	tm.waitFor(30*time.Second, "5 passed, 0 failed")
	tm.keys("?")
	tm.save("8-help", tm.waitFor(5*time.Second, "Keys on this screen", "smoke again"))
	// ? closes it again (a lone Escape followed at once by a key reads as
	// Alt+key to a terminal application).
	tm.keys("?")
	tm.waitFor(10*time.Second, "✓ "+gwName+" answers on 127.0.0.1", "p promote")

	// 3. p promotes the same gateway to the prod profile from the wizard:
	// the diff object by object, a confirmation, then the rollout's pods and
	// the traffic through a forward live, then the checks.
	start = time.Now()
	tm.keys("p")
	diff := tm.waitFor(2*time.Minute, "What promote changes, dev → prod", "= Namespace/apim-gateway", "+ ServiceAccount/"+gwName, "lines,")
	tm.save("9-promote-diff", diff)
	// The diff scrolls: page down to the objects only prod has.
	for i := 0; i < 12 && !strings.Contains(tm.screen(), "+ PodDisruptionBudget/"+gwName); i++ {
		tm.keys("PgDn")
		time.Sleep(300 * time.Millisecond)
	}
	tm.save("9-promote-diff-end", tm.waitFor(5*time.Second, "+ PodDisruptionBudget/"+gwName))
	tm.keys("Enter")
	tm.waitFor(10*time.Second, "Promote to prod now?")
	tm.keys("y")
	live := tm.waitFor(3*time.Minute, "rollout   old", "traffic   sent", "rollout  ")
	tm.save("10-promote-live", live)
	done := tm.waitFor(5*time.Minute, "✓ promoted to prod", "✓ replicas", "3/3 ready", "✓ disruption budget")
	r.time("tui: promote, p to checks", start)
	tm.save("11-promoted", done)
	traffic := lineWith(done, "traffic   sent")
	if !strings.Contains(traffic, "failed 0 ") {
		t.Errorf("requests failed during the wizard's promote: %q", traffic)
	}
	if sent := regexp.MustCompile(`sent (\d+)`).FindStringSubmatch(traffic); len(sent) < 2 || sent[1] == "0" {
		t.Errorf("no traffic during the wizard's promote: %q", traffic)
	} else {
		t.Logf("wizard promote traffic: %s", strings.TrimSpace(traffic))
	}
	for _, l := range strings.Split(done, "\n") {
		if strings.Contains(l, "✗") {
			t.Errorf("a failed line after promote: %q", l)
		}
	}
	tm.keys("Escape")
	tm.waitFor(10*time.Second, "✓ "+gwName+" answers on 127.0.0.1")
	// The wizard's own forward follows the gateway to its new pods.
	resp, err = http.Get("http://127.0.0.1:" + tuiHTTPPort + "/status-0123456789abcdef")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("the forward does not answer after promote: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}

	// q stops the forward and leaves the cluster; the note says what is left.
	tm.keys("q")
	exit := tm.waitFor(30*time.Second, "reused "+tuiCluster, "already on the node", "promoted to prod: the gateway runs the prod profile",
		"stopped forwarding; the cluster and the gateway are still running", "apimdev exited 0")
	tm.save("12-exit", exit)
	if portOpen(tuiHTTPPort) {
		t.Errorf("port %s still open after q", tuiHTTPPort)
	}
	if got := r.kubectlOut(t, "-n", "apim-gateway", "get", "deployment/"+gwName, "-o", "jsonpath={.status.readyReplicas} {.metadata.labels}"); !strings.HasPrefix(got, "3 ") || !strings.Contains(got, `"prod"`) {
		t.Errorf("the gateway after q: readyReplicas and labels %q, want 3 and the prod profile", got)
	}

	// 4. The demo from the wizard's first question, on a new cluster: no
	// token, no endpoint; the result shows the demo's key and a curl line,
	// and promote works from there.
	if code, out, errs := r.apimdev(t, "down"); code != 0 {
		t.Fatalf("down before the demo: %d\n%s\n%s", code, out, errs)
	}
	demoScript := writeScript("wizard-demo.sh", append(append([]string(nil), r.env...), "APIMDEV_TOKEN_FILE=", "APIMDEV_NODE_IMAGE="+r.nodeImage, "APIMDEV_SMOKE_FILE="))
	start = time.Now()
	tm.open("demo", demoScript, tuiWidth, tuiHeight)
	tm.waitFor(15*time.Second, "How do you want to start?", "Try the demo")
	tm.keys("Down")
	tm.save("13-start-demo", tm.waitFor(5*time.Second, "> Try the demo"))
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Local HTTP port")
	tm.keys("C-u")
	tm.text(tuiHTTPPort)
	tm.keys("Enter")
	tm.waitFor(5*time.Second, "┃ Local HTTPS port")
	tm.keys("C-u")
	tm.text(tuiHTTPSPort)
	tm.keys("Enter")
	demoRun := tm.waitFor(4*time.Minute, "✓ demo", "configuration service ready")
	tm.save("14-demo-run", demoRun)
	demoResult := tm.waitFor(4*time.Minute, "answers on 127.0.0.1", "stand-in, not Azure API Management", "key      ", "curl -H \"Ocp-Apim-Subscription-Key: ")
	r.time("tui: demo to result", start)
	tm.save("15-demo-result", demoResult)
	key := strings.Fields(lineWith(demoResult, "key      "))
	if len(key) < 2 || len(key[1]) < 32 {
		t.Fatalf("no demo key on the result screen:\n%s", demoResult)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+tuiHTTPPort+"/echo/hello", nil)
	req.Header.Set("Ocp-Apim-Subscription-Key", key[1])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("the demo's echo API with the key shown: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	start = time.Now()
	tm.keys("p")
	tm.waitFor(2*time.Minute, "What promote changes, dev → prod", "lines,")
	tm.keys("Enter")
	tm.waitFor(10*time.Second, "Promote to prod now?")
	tm.keys("y")
	demoDone := tm.waitFor(5*time.Minute, "✓ promoted to prod", "✓ replicas", "3/3 ready", "✓ local metrics")
	r.time("tui: demo promote", start)
	tm.save("16-demo-promoted", demoDone)
	if traffic := lineWith(demoDone, "traffic   sent"); !strings.Contains(traffic, "failed 0 ") {
		t.Errorf("requests failed during the demo's promote: %q", traffic)
	}
	tm.keys("Escape")
	tm.waitFor(10*time.Second, "answers on 127.0.0.1")
	tm.keys("q")
	tm.waitFor(30*time.Second, "promoted to prod", "apimdev exited 0")

	// 5. apimdev top on the promoted demo: the pods and the exporter's
	// figures, live; q leaves.
	topScript := writeScript("top.sh", append(append([]string(nil), r.env...), "APIMDEV_TOKEN_FILE="), "top")
	tm.open("top", topScript, tuiWidth, tuiHeight)
	tm.waitFor(30*time.Second, "apimdev top", "pods      3/3 ready", "requests", "counted by the statsd exporter", "p99")
	time.Sleep(3 * time.Second)
	tm.save("17-top", tm.screen())
	tm.keys("q")
	tm.waitFor(10*time.Second, "apimdev exited 0")

	// The token appears on no screen and in no file but the Secret.
	for _, s := range tm.screens {
		if strings.Contains(s, r.canary) {
			t.Fatalf("the token's signature was on the screen:\n%s", s)
		}
	}
	filepath.Walk(r.state, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), r.canary) {
				t.Errorf("the canary is in %s", p)
			}
		}
		return nil
	})
	t.Logf("%d screens captured and scanned", len(tm.screens))
}
