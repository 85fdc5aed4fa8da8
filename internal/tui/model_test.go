package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/testdir"
)

const standinEndpoint = "standin-config.standin-config.svc.cluster.local:8443"

// fillForm answers every question: name, endpoint, a pasted token, and the
// prefilled image and ports.
func fillForm(h *harness) {
	h.t.Helper()
	h.key("ctrl+u")
	h.typeText("contoso-gw")
	h.enter("endpoint")
	h.typeText(standinEndpoint)
	h.enter("source")
	h.enter("token") // paste
	h.typeText(canaryToken())
	h.enter("image")
	h.enter("httpPort")
	h.enter("httpsPort")
	h.key("enter")
}

func TestFormPrefilledFromConfig(t *testing.T) {
	t.Parallel()
	o := testOptions(&fakeRunner{}, nil)
	o.Config.Gateway.Name, o.Config.Gateway.Endpoint, o.Config.Forward.HTTPPort = "fabrikam-gw", "fabrikam.configuration.azure-api.net", 9080
	o.ConfigFile = "apimdev.yaml"
	h := newHarness(t, o)
	mustContain(t, h.screen(), "Prefilled from apimdev.yaml", "> fabrikam-gw", "> fabrikam.configuration.azure-api.net", "Your gateway", "? help")
	h.enter("endpoint")
	h.enter("source")
	h.enter("token")
	h.typeText(canaryToken())
	h.enter("image")
	mustContain(t, h.screen(), "On this machine", "> 9080", "> 8443", "> mcr.microsoft.com/azure-api-management/gateway:v2")
}

func TestFormValidatesFieldByField(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testOptions(&fakeRunner{}, nil))
	h.key("ctrl+u")
	h.typeText("Contoso_GW")
	h.key("enter")
	mustContain(t, h.screen(), `"Contoso_GW" is not usable as a Kubernetes name`, "fix: use the gateway's name in lower case, e.g. --name contoso-gw")
	h.key("ctrl+u")
	h.typeText("contoso-gw")
	h.enter("endpoint")
	h.key("enter") // the endpoint is still empty
	mustContain(t, h.screen(), "is empty; fix: set --endpoint to the config.service.endpoint value")
	h.typeText("https://contoso/x")
	h.key("enter")
	mustContain(t, h.screen(), "does not look like a host name")
	h.key("ctrl+u")
	h.typeText(standinEndpoint)
	h.enter("source")
	h.enter("token")
	h.typeText("contoso-gw&2026")
	h.key("enter")
	mustContain(t, h.screen(), "the token has 2 part(s) separated by '&'", "fix: copy the whole token")
	h.key("ctrl+u")
	h.typeText(canaryToken())
	h.enter("image")
	h.enter("httpPort")
	h.key("ctrl+u")
	h.typeText("eighty")
	h.key("enter")
	mustContain(t, h.screen(), `"eighty" is not a port number`)
	h.key("ctrl+u")
	h.typeText("8443")
	h.enter("httpsPort")
	h.key("enter")
	mustContain(t, h.screen(), "is the same as forward.httpPort (8443)")
	if h.m.state != stateForm {
		t.Fatalf("state %s, want form", h.m.state)
	}
}

func TestTokenIsMaskedAndItsExpiryShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testOptions(&fakeRunner{}, nil))
	h.key("ctrl+u")
	h.typeText("contoso-gw")
	h.enter("endpoint")
	h.typeText(standinEndpoint)
	h.enter("source")
	h.enter("token")
	h.typeText(canaryToken())
	screen := h.screen()
	mustContain(t, screen, "Token (masked)", "*****", "token: gateway contoso-gw, expires in 29 days (2026-12-31 00:00 UTC)")
	// Neither the signature nor any other part of the secret text is drawn.
	raw := h.m.Render()
	mustNotContain(t, raw, canarySig, "GatewayKey contoso-gw&", "202612310000&")
}

func TestTokenFromFileIsReadInACommand(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	good := filepath.Join(dir, "gw.token")
	os.WriteFile(good, []byte(canaryToken()+"\n"), 0o600)
	f := &fakeRunner{}
	o := testOptions(f, nil)
	o.Config.Gateway.Name, o.Config.Gateway.Endpoint = "contoso-gw", standinEndpoint
	h := newHarness(t, o)
	h.enter("endpoint")
	h.enter("source")
	h.key("down")
	h.enter("tokenFile")
	mustContain(t, h.screen(), "Token file")
	h.typeText(filepath.Join(dir, "missing"))
	h.waitFor("the missing file's check", func() bool { return strings.Contains(h.screen(), "cannot read") })
	if !testdir.NotFound(strings.Join(strings.Fields(h.screen()), " ")) { // the message may wrap
		t.Errorf("the screen does not say the file is missing:\n%s", h.screen())
	}
	mustContain(t, h.screen(), "fix: save the token")
	h.key("ctrl+u")
	h.typeText(good)
	h.waitFor("the good file's check", func() bool { return strings.Contains(h.screen(), "expires in 29 days") })
	h.enter("image")
	h.enter("httpPort")
	h.enter("httpsPort")
	h.key("enter")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	if got := f.ups[0].Config.Gateway.TokenFile; got != good {
		t.Errorf("tokenFile %q, want %q", got, good)
	}
	if f.ups[0].Token.GatewayID != "contoso-gw" {
		t.Errorf("token not read: %v", f.ups[0].Token)
	}
}

func TestTokenFromEnvironmentIsOfferedWithANote(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	o := testOptions(f, map[string]string{"APIMDEV_TOKEN": canaryToken()})
	o.Config.Gateway.Name, o.Config.Gateway.Endpoint = "contoso-gw", standinEndpoint
	h := newHarness(t, o)
	mustContain(t, h.screen(), "> use APIMDEV_TOKEN from your environment", "token: gateway contoso-gw, expires in 29 days")
	h.enter("endpoint")
	h.enter("source")
	h.enter("")
	mustContain(t, h.screen(), "Token from APIMDEV_TOKEN", "unset it to paste one instead")
	mustNotContain(t, h.m.Render(), canarySig)
	h.enter("image")
	h.enter("httpPort")
	h.enter("httpsPort")
	h.key("enter")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	if f.ups[0].Token.IsZero() {
		t.Fatal("the token from APIMDEV_TOKEN was not passed on")
	}
}

func TestQuestionMarkIsHelpExceptInAPath(t *testing.T) {
	t.Parallel()
	o := testOptions(&fakeRunner{}, nil)
	o.Config.Gateway.Endpoint = standinEndpoint
	h := newHarness(t, o)
	h.key("?")
	mustContain(t, h.screen(), "Keys on this screen", "shift+tab")
	h.key("?")
	h.enter("endpoint")
	h.enter("source")
	h.key("down")
	h.enter("tokenFile")
	h.typeText("/tmp/what?")
	mustNotContain(t, h.screen(), "Keys on this screen")
	if h.m.form.vals.tokenFile != "/tmp/what?" {
		t.Errorf("path %q", h.m.form.vals.tokenFile)
	}
}

func TestRunViewShowsStepsSpinnerElapsedAndDetail(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := &fakeRunner{scripts: []upScript{{block: pipeline.StepCluster, release: release}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the cluster step", func() bool { return strings.Contains(h.screen(), "kind: Starting control-plane") })
	screen := h.screen()
	mustContain(t, screen, `bringing up contoso-gw on kind cluster "apimdev"`, "✓ preflight", "preflight done", "· image", "· deploy", "· smoke",
		"! endpoint: "+standinEndpoint, "l logs", "ctrl+c stop and leave")
	// The running step: spinner frame, its elapsed time, the current detail.
	line := lineWith(screen, "kind: Starting")
	if !strings.Contains(line, "0ms  kind: Starting control-plane") || strings.Contains(line, "✓") {
		t.Errorf("running line: %q", line)
	}
	// Time passes: the elapsed time follows the clock.
	later := testNow.Add(3200 * time.Millisecond)
	h.m.now = func() time.Time { return later }
	mustContain(t, lineWith(h.screen(), "kind: Starting"), "3.2s  kind: Starting control-plane")
	// A long detail is shown whole, wrapped under its step.
	long := "pods ready 0/1 (contoso-gw-5d9c8b7f4-x2x7q: running, readiness probe not passing yet, and more words to wrap)"
	h.send(eventMsg{events.Event{Step: pipeline.StepCluster, State: events.Progress, Detail: long, Time: later}})
	mustContain(t, h.screen(), "running, readiness probe not\n", "passing yet, and more words to wrap)")
	h.key("l")
	mustContain(t, h.screen(), "── logs", "✓ docker: Docker 28 (fake)", "• cluster")
	close(release)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
}

func lineWith(screen, s string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func TestFailureExplainsAndRetries(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{failAt: pipeline.StepDeploy}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the failure", func() bool { return h.m.state == stateFailed })
	screen := h.screen()
	mustContain(t, screen, "✓ image", "✗ deploy", "deploy failed", "ImagePullBackOff: pull access denied",
		"fix: check --image; the node cannot pull it", "r retries from there", "r retry", "e edit settings", "q quit")
	mustNotContain(t, screen, "s smoke again")
	h.key("r")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	mustContain(t, h.screen(), `contoso-gw is up on kind cluster "apimdev"`, "http://127.0.0.1:8080", "https://127.0.0.1:8443")
	if n, _, _ := f.calls(); n != 2 {
		t.Errorf("%d Up calls, want 2", n)
	}
	if f.ups[1].Config.Gateway.Name != "contoso-gw" || f.ups[1].Token.IsZero() {
		t.Errorf("the retry ran with other settings: %+v", f.ups[1].Config.Gateway)
	}
	mustContain(t, strings.Join(h.m.logs.lines, "\n"), "── retry 1: every step reuses what exists ──")
}

func TestEditSettingsAfterAFailure(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{failAt: pipeline.StepPreflight, err: &hinted{msg: "127.0.0.1:8080 is in use by nginx (pid 42)", hint: "use another --http-port"}}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the failure", func() bool { return h.m.state == stateFailed })
	mustContain(t, h.screen(), "preflight failed", "is in use by nginx", "fix: use another --http-port")
	h.key("e")
	if h.m.state != stateForm {
		t.Fatalf("state %s", h.m.state)
	}
	mustContain(t, h.screen(), "How do you want to start?")
	h.enter("name") // the same answer as before
	mustContain(t, h.screen(), "> contoso-gw", "> "+standinEndpoint)
	h.enter("endpoint")
	h.enter("source")
	h.enter("token")
	h.enter("image")
	h.enter("httpPort")
	h.key("ctrl+u")
	h.typeText("9090")
	h.enter("httpsPort")
	h.key("enter")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	if got := f.ups[1].Config.Forward.HTTPPort; got != 9090 {
		t.Errorf("second run on port %d, want 9090", got)
	}
}

func TestSmokeFailureKeepsTheForwardAndSmokesAgain(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{smokeFail: true}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the failure", func() bool { return h.m.state == stateFailed })
	mustContain(t, h.screen(), "smoke failed", "1 of 2 smoke call(s) failed", "FAIL: body is empty", "The forward is up: s runs the smoke calls again", "s smoke again")
	h.key("s")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	mustContain(t, h.screen(), "2 passed, 0 failed")
	if _, smokes, _ := f.calls(); smokes != 1 {
		t.Errorf("%d smoke runs, want 1", smokes)
	}
}

func TestResultKeys(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	screen := h.screen()
	mustContain(t, screen, "✓ contoso-gw answers on 127.0.0.1", "CALL", "health (https)", "2 passed, 0 failed",
		"token    expires in 29 days (2026-12-31 00:00 UTC)", "kubectl  KUBECONFIG=/home/u/.config/apimdev/clusters/apimdev/kubeconfig kubectl -n apim-gateway", "get pods",
		"The forward runs in this window until you quit (q)", "s smoke again", "p promote (not here: use `apimdev promote`)", "q quit")
	h.key("s")
	h.waitFor("the smoke run", func() bool { _, n, _ := f.calls(); return n == 1 && !h.m.busy })
	h.key("p")
	mustContain(t, h.screen(), "promote is not available in this wizard: quit (q), then run `apimdev promote`")
	if h.m.state != stateResult {
		t.Errorf("p without a promoter went to %s", h.m.state)
	}
	h.key("l")
	mustContain(t, h.screen(), "── logs", "2 passed, 0 failed")
	h.key("l", "q")
	h.waitFor("the quit", func() bool { return h.quit })
	if _, _, closed := f.calls(); closed != 1 {
		t.Errorf("Close called %d times, want 1", closed)
	}
	o := h.m.Outcome()
	if !o.Up || o.Interrupted || o.Err != nil {
		t.Errorf("outcome %+v", o)
	}
	mustContain(t, h.m.ClosingNote(o, nil), "✓ deploy", "stopped forwarding; the cluster and the gateway are still running")
}

func TestCtrlCWhileRunningStopsTheStepThenLeaves(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{block: pipeline.StepCluster}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the cluster step", func() bool { return strings.Contains(h.screen(), "kind: Starting control-plane") })
	h.key("ctrl+c")
	h.waitFor("the quit", func() bool { return h.quit })
	o := h.m.Outcome()
	if !o.Interrupted || o.Step != pipeline.StepCluster || !errors.Is(o.Err, context.Canceled) {
		t.Fatalf("outcome %+v", o)
	}
	if _, _, closed := f.calls(); closed != 1 {
		t.Errorf("Close called %d times, want 1", closed)
	}
	note := h.m.ClosingNote(o, func() string { return `cluster "apimdev" exists` })
	mustContain(t, note, "✓ preflight", "■ cluster", "interrupted\n", `interrupted during cluster. Now: cluster "apimdev" exists.`, "Run `apimdev` (or `apimdev up`) again to continue from there")
	mustNotContain(t, note, "context canceled")
}

func TestSecondCtrlCLeavesAtOnce(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	f := &fakeRunner{scripts: []upScript{{block: pipeline.StepDeploy}}}
	h := newHarness(t, testOptions(f, nil))
	fillForm(h)
	h.waitFor("the deploy step", func() bool { return h.m.steps.running() != nil && h.m.steps.running().name == pipeline.StepDeploy })
	// The step does not stop (the fake ignores the first cancel here): a
	// second Ctrl-C leaves without waiting.
	h.m.cancel = func() {}
	h.key("ctrl+c")
	mustContain(t, h.screen(), "stopping … (Ctrl-C again leaves at once)")
	h.key("ctrl+c")
	if !h.quit || !h.m.Outcome().Forced {
		t.Fatalf("not forced out: quit=%v outcome=%+v", h.quit, h.m.Outcome())
	}
	mustContain(t, h.m.ClosingNote(h.m.Outcome(), nil), "left at once while deploy ran")
}

func TestCtrlCInTheFormStartsNothing(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	h := newHarness(t, testOptions(f, nil))
	h.key("ctrl+c")
	h.waitFor("the quit", func() bool { return h.quit })
	o := h.m.Outcome()
	if o.Started {
		t.Errorf("outcome %+v", o)
	}
	mustContain(t, h.m.ClosingNote(o, nil), "nothing was started")
	if n, _, _ := f.calls(); n != 0 {
		t.Errorf("Up ran")
	}
}

func TestParentContextEndingActsLikeCtrlC(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{block: pipeline.StepImage}}}
	ctx, cancel := context.WithCancel(context.Background())
	o := testOptions(f, nil)
	o.Context = ctx
	h := newHarness(t, o)
	fillForm(h)
	h.waitFor("the image step", func() bool { return h.m.steps.running() != nil && h.m.steps.running().name == pipeline.StepImage })
	cancel()
	h.send(interruptMsg{})
	h.waitFor("the quit", func() bool { return h.quit })
	if oc := h.m.Outcome(); !oc.Interrupted || oc.Step != pipeline.StepImage {
		t.Fatalf("outcome %+v", oc)
	}
}

func TestResizeFitsEveryScreen(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{scripts: []upScript{{failAt: pipeline.StepDeploy}}}
	h := newHarness(t, testOptions(f, nil))
	check := func(w, hgt int) {
		t.Helper()
		h.send(tea.WindowSizeMsg{Width: w, Height: hgt})
		ls := strings.Split(h.m.Render(), "\n")
		if len(ls) > hgt {
			t.Errorf("%s at %dx%d: %d lines", h.m.state, w, hgt, len(ls))
		}
		for _, l := range ls {
			if ansi.StringWidth(l) > w {
				t.Errorf("%s at %dx%d: line wider than the window: %q", h.m.state, w, hgt, ansi.Strip(l))
			}
		}
	}
	check(60, 20)
	fillForm(h)
	h.waitFor("the failure", func() bool { return h.m.state == stateFailed })
	check(60, 20)
	check(40, 12)
	h.key("l")
	check(70, 16)
	h.key("r")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	check(50, 14)
	check(120, 40)
	h.key("?")
	check(45, 10)
}

func TestHelpOnEveryScreen(t *testing.T) {
	t.Parallel()
	p := &fakePromoter{diff: "+ replicas: 2\n"}
	o := testOptions(&fakeRunner{}, nil)
	o.Promoter = p
	h := newHarness(t, o)
	seen := map[screen]bool{}
	look := func() {
		t.Helper()
		h.key("?")
		mustContain(t, h.screen(), "Keys on this screen", "? or esc closes this help")
		h.key("esc")
		mustNotContain(t, h.screen(), "Keys on this screen")
		seen[h.m.state] = true
	}
	look()
	fillForm(h)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	look()
	h.key("p")
	h.waitFor("the diff", func() bool { return !h.m.promote.loading })
	look()
	h.key("enter")
	look()
	if len(seen) != 4 {
		t.Errorf("saw %v", seen)
	}
}

func TestPromoteFlow(t *testing.T) {
	t.Parallel()
	diff := "--- dev\n+++ prod\n@@ Deployment/contoso-gw @@\n-  replicas: 1\n+  replicas: 2\n"
	for i := 0; i < 60; i++ {
		diff += "   unchanged line\n"
	}
	o := testOptions(&fakeRunner{}, nil)
	o.Promoter = &fakePromoter{diff: diff}
	h := newHarness(t, o)
	fillForm(h)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	mustContain(t, h.screen(), "p promote")
	mustNotContain(t, h.screen(), "not here")
	h.key("p")
	h.waitFor("the diff", func() bool { return !h.m.promote.loading })
	screen := h.screen()
	mustContain(t, screen, "What promote changes, dev → prod", "-  replicas: 1", "+  replicas: 2", "enter continue")
	h.key("down", "down", "down")
	mustNotContain(t, h.screen(), "--- dev")
	h.key("enter")
	mustContain(t, h.screen(), "Promote to prod now?")
	h.key("n")
	if h.m.state != statePromoteDiff {
		t.Fatalf("n went to %s", h.m.state)
	}
	h.key("enter", "y")
	h.waitFor("the checks", func() bool { return h.m.state == statePromoteDone })
	screen = h.screen()
	mustContain(t, screen, "✓ rollout", "rollout   old 0 · new 2 · ready 2/2", "traffic   sent 200 · failed 0 · p50 7.0ms · p99 40.0ms",
		"p99       ▁▃▅█", "✓ promoted to prod", "checks", "✓ traffic            0 of 200 calls failed")
	h.key("esc")
	if h.m.state != stateResult {
		t.Fatalf("esc went to %s", h.m.state)
	}
}

func TestPromoteFailureShowsTheChecksThatRan(t *testing.T) {
	t.Parallel()
	o := testOptions(&fakeRunner{}, nil)
	o.Promoter = &fakePromoter{diff: "+x\n", fail: &hinted{msg: "rollout: 1/2 new pods ready after 3m", hint: "see `kubectl describe pod`"}}
	h := newHarness(t, o)
	fillForm(h)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	h.key("p")
	h.waitFor("the diff", func() bool { return !h.m.promote.loading })
	h.key("enter", "y")
	h.waitFor("the checks", func() bool { return h.m.state == statePromoteDone })
	mustContain(t, h.screen(), "✗ rollout", "✗ promote failed", "1/2 new pods ready after 3m", "fix: see `kubectl describe pod`", "✗ rollout            1/2 new pods ready")
	// Leaving then says how the promote ended and what to run next.
	h.key("q")
	h.waitFor("the quit", func() bool { return h.quit })
	out := h.m.Outcome()
	if out.Promoted || out.PromoteErr == nil || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	mustContain(t, h.m.ClosingNote(out, nil), "promote failed: rollout: 1/2 new pods ready after 3m", "`apimdev promote --yes` tries again",
		"stopped forwarding; the cluster and the gateway are still running")
}

func TestPromoteNotes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		o    Outcome
		want string
	}{
		{Outcome{}, ""},
		{Outcome{Promoted: true}, "promoted to prod: the gateway runs the prod profile"},
		{Outcome{PromoteErr: fmt.Errorf("rollout: %w", context.Canceled)}, "promote interrupted: what was applied stays"},
		{Outcome{PromoteErr: errors.New("apply: forbidden\nmore")}, "promote failed: apply: forbidden\nWhat was applied stays"},
	} {
		got := promoteNote(tt.o)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%+v: %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestStepListFoldsEvents(t *testing.T) {
	t.Parallel()
	l := newStepList([]string{"a", "b"})
	at := testNow
	for _, e := range []events.Event{
		{Step: "a", State: events.Started, Detail: "starting", Time: at},
		{Step: "a", State: events.Progress, Detail: "half way\nsecond line", Time: at.Add(time.Second), Elapsed: time.Second},
		{Step: "x", State: events.Warning, Detail: "careful", Hint: "do y", Time: at},
		{Step: "a", State: events.Done, Detail: "ok", Elapsed: 2 * time.Second},
		{Step: "b", State: events.Started, Time: at},
		{Step: "b", State: events.Failed, Detail: "bad\nmore", Hint: "fix it", Elapsed: time.Second},
		{Step: "c", State: events.Started, Time: at},
	} {
		l.apply(e)
	}
	if r := l.rows[0]; r.status != stepDone || r.elapsed != 2*time.Second || r.detail != "ok" {
		t.Errorf("a: %+v", r)
	}
	if r := l.rows[1]; r.status != stepFailed || r.hint != "fix it" || r.detail != "bad\nmore" {
		t.Errorf("b: %+v", r)
	}
	if len(l.rows) != 3 || l.running().name != "c" {
		t.Errorf("rows %+v", l.rows)
	}
	if len(l.warnings) != 1 || l.warnings[0] != "x: careful (fix: do y)" {
		t.Errorf("warnings %q", l.warnings)
	}
}

func TestSparkline(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   []float64
		w    int
		want string
	}{
		{nil, 5, ""},
		{[]float64{1, 1, 1}, 5, "▁▁▁"},
		{[]float64{0, 7}, 5, "▁█"},
		{[]float64{9, 0, 1, 2, 3, 4, 5, 6, 7}, 8, "▁▂▃▄▅▆▇█"},
	} {
		if got := sparkline(tt.in, tt.w); got != tt.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tt.in, tt.w, got, tt.want)
		}
	}
}

func TestPipelineRunnerBeforeUp(t *testing.T) {
	t.Parallel()
	r := &PipelineRunner{Getenv: func(string) string { return "" }}
	if _, err := r.Smoke(context.Background()); err == nil {
		t.Error("Smoke before Up did not fail")
	}
	if got := r.Exists(context.Background()); got != "nothing was started" {
		t.Errorf("Exists: %q", got)
	}
	if (r.Where() != Where{}) {
		t.Errorf("Where: %+v", r.Where())
	}
	r.Close()
	r.Close()
}

// The live panel says the rollout has not begun while only traffic has
// been sampled, and draws the recent p99 once samples carry it.
func TestLivePanel(t *testing.T) {
	t.Parallel()
	m := New(testOptions(&fakeRunner{}, nil))
	m.promote.samples = []PromoteSample{{Traffic: TrafficSample{Sent: 20, P50: time.Millisecond, P99: 50 * time.Millisecond}}}
	panel := ansi.Strip(strings.Join(m.livePanel(), "\n"))
	mustContain(t, panel, "rollout   not started: traffic settles on the running pods first", "sent 20 · failed 0")
	m.promote.samples = append(m.promote.samples,
		PromoteSample{Rollout: RolloutStatus{Desired: 3, Old: 1, New: 3, Ready: 3}, Traffic: TrafficSample{Sent: 40, P99: 50 * time.Millisecond, RecentP99: 90 * time.Millisecond}},
		PromoteSample{Rollout: RolloutStatus{Desired: 3, New: 3, Ready: 3}, Traffic: TrafficSample{Sent: 60, P99: 50 * time.Millisecond, RecentP99: 10 * time.Millisecond}})
	panel = ansi.Strip(strings.Join(m.livePanel(), "\n"))
	// 50, 90, 10 ms: the middle one highest, the last lowest.
	mustContain(t, panel, "old 0 · new 3 · ready 3/3", "▄█▁")
}

// The first question's demo answer asks only the ports, runs the demo's
// steps, and the result shows the demo's key and a curl line.
func TestTheDemoAnswerRunsTheDemo(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{demoKey: "demo-key-0123456789abcdef", backends: []pipeline.BackendState{{
		Backend:  gateway.Backend{Name: "orders", Port: 8080, Target: "127.0.0.1:3000"},
		ShortURL: "http://orders:8080", State: "down", Reason: "nothing accepts connections on 127.0.0.1:3000"}}}
	h := newHarnessAtStart(t, testOptions(f, nil))
	mustContain(t, h.screen(), "How do you want to start?", "Try the demo: no Azure, a stand-in gateway")
	h.key("down")
	h.enter("httpPort")
	h.enter("httpsPort")
	h.key("enter")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	if len(f.ups) != 1 || !f.ups[0].Workshop.IsDemo() || f.ups[0].Config.Gateway.Endpoint != "standin-config.apimdev-demo.svc.cluster.local:8443" || !f.ups[0].Token.IsZero() {
		t.Fatalf("up %+v", f.ups)
	}
	screen := strings.Join(strings.Fields(h.screen()), " ") // the curl line may wrap
	mustContain(t, screen, "stand-in, not Azure API Management", "demo-key-0123456789abcdef",
		`curl -H "Ocp-Apim-Subscription-Key: demo-key-0123456789abcdef" http://127.0.0.1:8080/echo/hello`,
		// The backends the cluster records, as status shows them.
		"backend orders http://orders:8080 → 127.0.0.1:3000 on this machine: down (nothing accepts connections on 127.0.0.1:3000)")
}

// A kit that holds only the demo's stand-in runs the demo from it.
func TestTheKitAnswerReadsTheKit(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	h := newHarnessAtStart(t, testOptions(f, nil))
	h.key("down", "down")
	h.enter("kit")
	h.typeText(filepath.Join(testdir.New(t), "no-such-kit.tar"))
	h.key("enter")
	mustContain(t, h.screen(), "no-such-kit.tar")
	if h.m.form.focused() != "kit" {
		t.Fatalf("a missing kit was taken (focus %s)", h.m.form.focused())
	}
}

// The Entra answer asks the app's ids and its client secret (masked), and
// runs up with Entra app authentication and the secret as the credential.
func TestTheEntraAnswerAsksTheAppAndItsSecret(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	h := newHarnessAtStart(t, testOptions(f, nil))
	h.key("down", "down", "down")
	h.enter("name")
	h.key("ctrl+u")
	h.typeText("contoso-gw")
	h.enter("endpoint")
	h.typeText(standinEndpoint)
	h.enter("source")
	mustContain(t, h.screen(), "Client secret", "Certificates & secrets")
	h.enter("tenantId")
	h.typeText("not-a-guid")
	h.key("enter")
	mustContain(t, h.screen(), "is not a GUID")
	h.key("ctrl+u")
	h.typeText("72f988bf-86f1-41af-91ab-2d7cd011db47")
	h.enter("clientId")
	h.typeText("0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9")
	h.enter("token")
	const secret = "CANARY~wizard.secret_42"
	h.typeText(secret)
	mustContain(t, h.screen(), "Client secret (masked)", "client secret given")
	mustNotContain(t, h.m.Render(), secret)
	h.enter("image")
	h.enter("httpPort")
	h.enter("httpsPort")
	h.key("enter")
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	if len(f.ups) != 1 {
		t.Fatalf("ups: %d", len(f.ups))
	}
	u := f.ups[0]
	if a := u.Config.Gateway.Auth; a.Mode() != "entraApp" || a.ClientID != "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9" || !u.Token.IsAppSecret() || u.Token.SecretValue() != secret {
		t.Fatalf("up with auth %+v, app secret %v", u.Config.Gateway.Auth, u.Token.IsAppSecret())
	}
}
