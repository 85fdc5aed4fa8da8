package tui

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
)

// canarySig is a token signature that must never be shown.
const canarySig = "Q0FOQVJZLXR1aS10ZXN0LTc3NzctZG8tbm90LWxlYWs="

// testNow is the fixed clock of the model tests.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func canaryToken() string { return "GatewayKey contoso-gw&202612310000&" + canarySig }

// upScript is what one call of the fake's Up does.
type upScript struct {
	failAt    string // step that fails ("" = none)
	smokeFail bool   // the smoke calls fail; the forward stays up
	err       error  // its error (default: a hinted one)
	block     string // step that waits for ctx to end
	smoke     []smoke.Result
	pause     time.Duration // between steps, so a flow can look at the screen
	release   chan struct{} // when set, the blocked step waits for it as well
}

// fakeRunner plays the pipeline's events without Docker, and records what it
// was asked.
type fakeRunner struct {
	mu      sync.Mutex
	scripts []upScript
	ups     []UpRequest
	smokes  int
	closed  int
	smokeRs []smoke.Result
	afterUp func() // called as Up returns
	demoKey string // what a demo run's result carries
	// backends are what a run's result lists (`apimdev backend add`'s).
	backends []pipeline.BackendState
}

var _ Runner = (*fakeRunner)(nil)

type hinted struct{ msg, hint string }

func (e *hinted) Error() string { return e.msg }
func (e *hinted) Hint() string  { return e.hint }

func passing() []smoke.Result {
	return []smoke.Result{
		{Name: "health (http)", Status: 200, LatencyMS: 4.2, Pass: true},
		{Name: "health (https)", Status: 200, LatencyMS: 5.1, Pass: true, Note: "TLS verification off for this check"},
	}
}

// Steps is up's plain list, as the pipeline names it for a run with no kit
// and no demo.
func (f *fakeRunner) Steps(UpRequest) []string {
	return []string{pipeline.StepPreflight, pipeline.StepCluster, pipeline.StepImage, pipeline.StepDeploy, pipeline.StepForward, pipeline.StepSmoke}
}

func (f *fakeRunner) Up(ctx context.Context, req UpRequest, rep *events.Reporter) (*pipeline.UpResult, error) {
	f.mu.Lock()
	n := len(f.ups)
	f.ups = append(f.ups, req)
	if f.afterUp != nil {
		defer f.afterUp()
	}
	sc := upScript{}
	if n < len(f.scripts) {
		sc = f.scripts[n]
	}
	f.mu.Unlock()
	details := map[string][]string{
		pipeline.StepPreflight: {"✓ docker: Docker 28 (fake)"},
		pipeline.StepCluster:   {"kind: Preparing nodes", "kind: Starting control-plane"},
		pipeline.StepImage:     {"loading " + req.Config.Gateway.Image + " (6 MB) into the node"},
		pipeline.StepDeploy:    {"Deployment/" + req.Config.Gateway.Name + " created", "pods ready 0/1 (ContainerCreating)"},
	}
	for _, name := range f.Steps(req) {
		st := rep.Start(name, "")
		for _, d := range details[name] {
			st.Progress("%s", d)
		}
		if name == pipeline.StepPreflight && !strings.HasSuffix(req.Config.Gateway.Endpoint, ".azure-api.net") {
			rep.Warn("endpoint", req.Config.Gateway.Endpoint+" (not an azure-api.net host)", "")
		}
		if sc.block == name {
			select {
			case <-ctx.Done():
			case <-sc.release:
			}
			if ctx.Err() != nil {
				return nil, &pipeline.FailedStep{Step: name, Err: st.Fail(ctx.Err())}
			}
		}
		if name == pipeline.StepSmoke && sc.smokeFail {
			rs := []smoke.Result{{Name: "health (http)", Status: 200, LatencyMS: 3, Pass: true}, {Name: "echo with key", Status: 200, Pass: false, Reason: "body is empty"}}
			res := &pipeline.UpResult{HTTPPort: req.Config.Forward.HTTPPort, HTTPSPort: req.Config.Forward.HTTPSPort, Smoke: rs, Stop: func() {}}
			return res, &pipeline.FailedStep{Step: name, Err: st.Fail(&pipeline.SmokeError{Failed: 1, Total: 2})}
		}
		if sc.failAt == name {
			err := sc.err
			if err == nil {
				err = &hinted{msg: "pod contoso-gw-1: ImagePullBackOff: pull access denied", hint: "check --image; the node cannot pull it"}
			}
			return nil, &pipeline.FailedStep{Step: name, Err: st.Fail(err)}
		}
		if sc.pause > 0 {
			time.Sleep(sc.pause)
		}
		st.Done(name + " done")
	}
	rs := sc.smoke
	if rs == nil {
		rs = passing()
	}
	res := &pipeline.UpResult{HTTPPort: req.Config.Forward.HTTPPort, HTTPSPort: req.Config.Forward.HTTPSPort, Smoke: rs,
		TokenExpiry: req.Token.ExpiryAt(testNow), Stop: func() {}}
	if req.Workshop.IsDemo() {
		res.DemoKey = f.demoKey
	}
	res.Backends = f.backends
	return res, nil
}

func (f *fakeRunner) Smoke(context.Context) ([]smoke.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.smokes++
	if f.smokeRs != nil {
		return f.smokeRs, nil
	}
	return passing(), nil
}

func (f *fakeRunner) Where() Where {
	return Where{Cluster: "apimdev", Kubeconfig: "/home/u/.config/apimdev/clusters/apimdev/kubeconfig", Namespace: "apim-gateway"}
}

func (f *fakeRunner) Exists(context.Context) string { return `cluster "apimdev" exists` }

func (f *fakeRunner) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
}

func (f *fakeRunner) calls() (ups, smokes, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ups), f.smokes, f.closed
}

// fakePromoter plays a promote.
type fakePromoter struct {
	diff    string
	diffErr error
	fail    error
}

func (p *fakePromoter) Diff(context.Context) (string, error) { return p.diff, p.diffErr }

func (p *fakePromoter) Promote(ctx context.Context, rep *events.Reporter, live func(PromoteSample)) (PromoteResult, error) {
	st := rep.Start("rollout", "prod profile")
	for i := 1; i <= 4; i++ {
		live(PromoteSample{
			Rollout: RolloutStatus{Desired: 2, Old: 2 - i/2, New: i / 2, Ready: i / 2},
			Traffic: TrafficSample{Sent: 50 * i, Failed: 0, P50: time.Duration(3+i) * time.Millisecond, P99: time.Duration(10*i) * time.Millisecond},
		})
	}
	if p.fail != nil {
		return PromoteResult{Checks: []PromoteCheck{{Name: "rollout", OK: false, Detail: "1/2 new pods ready"}}}, st.Fail(p.fail)
	}
	st.Done("2/2 new pods ready")
	return PromoteResult{Checks: []PromoteCheck{{Name: "rollout", OK: true, Detail: "2/2 new pods ready"}, {Name: "traffic", OK: true, Detail: "0 of 200 calls failed"}}}, nil
}

// testOptions are a wizard over a fake runner, prefilled from the defaults.
func testOptions(r Runner, env map[string]string) Options {
	cfg := config.Default()
	return Options{Config: cfg, Getenv: func(k string) string { return env[k] }, Runner: r, Now: func() time.Time { return testNow }}
}

// harness drives a Model the way the program does: a message, then the
// commands it returned, whose messages go back in. A command that does not
// answer at once (a tick, a blocked Up) keeps running; its message is fed in
// by a later drain.
type harness struct {
	t    *testing.T
	m    Model
	sent chan tea.Msg // through the link: events, samples, late command results
	quit bool
}

// newHarness starts the wizard and answers its first question with "I have
// a gateway token": the form's focus is on the gateway's name.
func newHarness(t *testing.T, opts Options) *harness {
	h := newHarnessAtStart(t, opts)
	h.enter("name")
	return h
}

// newHarnessAtStart starts the wizard on its first question.
func newHarnessAtStart(t *testing.T, opts Options) *harness {
	h := &harness{t: t, m: New(opts), sent: make(chan tea.Msg, 4096)}
	h.m.Attach(func(msg tea.Msg) { h.sent <- msg })
	h.do(h.m.Init())
	h.send(tea.WindowSizeMsg{Width: 100, Height: 40})
	return h
}

func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	h.update(msg)
	h.drain()
}

func (h *harness) update(msg tea.Msg) {
	if _, quit := msg.(tea.QuitMsg); quit {
		h.quit = true
		return
	}
	// Batches and sequences are slices of commands.
	if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().Elem() == reflect.TypeOf(tea.Cmd(nil)) {
		for i := 0; i < v.Len(); i++ {
			h.do(v.Index(i).Interface().(tea.Cmd))
		}
		return
	}
	if _, tick := msg.(spinner.TickMsg); tick {
		return // the spinner's frames do not matter here
	}
	nm, cmd := h.m.Update(msg)
	h.m = nm.(Model)
	h.do(cmd)
}

// drain feeds in whatever has arrived.
func (h *harness) drain() {
	for {
		select {
		case msg := <-h.sent:
			h.update(msg)
		default:
			return
		}
	}
}

// waitFor drains until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case msg := <-h.sent:
			h.update(msg)
		case <-deadline:
			h.t.Fatalf("waiting for %s; screen:\n%s", what, h.screen())
		}
	}
}

// do runs cmd; its message goes in behind whatever it sent on the way (the
// events of an Up come before its result, as in the program).
func (h *harness) do(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		if msg != nil {
			h.sent <- msg
		}
		h.drain()
	case <-time.After(5 * time.Millisecond):
		go func() {
			if msg := <-done; msg != nil {
				h.sent <- msg
			}
		}()
	}
}

// enter presses enter in the form and waits until huh has moved the focus
// to field (it does so in a command of its own).
func (h *harness) enter(field string) {
	h.t.Helper()
	h.key("enter")
	h.waitFor("the focus on "+field, func() bool { return h.m.state == stateForm && h.m.form.focused() == field })
}

func (h *harness) key(keys ...string) {
	h.t.Helper()
	for _, k := range keys {
		h.send(keyPress(k))
	}
}

func (h *harness) typeText(s string) {
	for _, r := range s {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// screen is the view as plain text.
func (h *harness) state() string { return h.m.State() }

func (h *harness) screen() string { return ansi.Strip(h.m.Render()) }

func keyPress(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	}
	r := []rune(k)
	if len(r) != 1 {
		panic(fmt.Sprintf("key %q", k))
	}
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

func mustContain(t *testing.T, screen string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(screen, w) {
			t.Errorf("screen lacks %q:\n%s", w, screen)
		}
	}
}

func mustNotContain(t *testing.T, screen string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(screen, b) {
			t.Errorf("screen has %q:\n%s", b, screen)
		}
	}
}

var errBoom = errors.New("boom")
