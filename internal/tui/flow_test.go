package tui

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/apimdev/apimdev/internal/pipeline"
)

// The flows run the real program (renderer, command goroutines, Send) at a
// fixed size with an ASCII colour profile, and wait for what a user would
// see. The renderer writes only the cells that change, so the flows watch
// each rendered screen through a thin wrapper rather than the byte stream.

const flowW, flowH = 100, 34

// screens is what the program showed last, published after every update.
type screens struct {
	mu     sync.Mutex
	screen string
	state  screen
	focus  string
}

type observed struct {
	Model
	s *screens
}

func (o observed) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := o.Model.Update(msg)
	nm := m.(Model)
	screen := ansi.Strip(nm.Render())
	focus := ""
	if nm.state == stateForm {
		focus = nm.form.focused()
	}
	o.s.mu.Lock()
	o.s.screen, o.s.state, o.s.focus = screen, nm.state, focus
	o.s.mu.Unlock()
	return observed{nm, o.s}, cmd
}

type flow struct {
	t  *testing.T
	tm *teatest.TestModel
	s  *screens
}

func startFlow(t *testing.T, opts Options) *flow {
	m := New(opts)
	s := &screens{}
	tm := teatest.NewTestModel(t, observed{m, s},
		teatest.WithInitialTermSize(flowW, flowH),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	m.Attach(tm.Send)
	f := &flow{t: t, tm: tm, s: s}
	f.waitFocus("mode")
	f.wait("How do you want to start?", "I have a gateway token", "Try the demo", "Load a workshop kit")
	f.press("enter") // I have a gateway token
	f.waitFocus("name")
	return f
}

func (f *flow) now() (string, screen, string) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.screen, f.s.state, f.s.focus
}

// wait waits until the screen shows every one of wants.
func (f *flow) wait(wants ...string) string {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		screen, _, _ := f.now()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the screen never showed %q; last screen:\n%s", missing, screen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFocus waits for the form's focus on the field key: keys typed before
// huh moved on would land in the previous field.
func (f *flow) waitFocus(key string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		screen, _, focus := f.now()
		if focus == key {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("focus never reached %q (at %q); last screen:\n%s", key, focus, screen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *flow) press(keys ...string) {
	for _, k := range keys {
		f.tm.Send(keyPress(k))
	}
}

// fill answers the form as a user would, field by field.
func (f *flow) fill() {
	f.t.Helper()
	f.press("ctrl+u")
	f.tm.Type("contoso-gw")
	f.press("enter")
	f.waitFocus("endpoint")
	f.tm.Type(standinEndpoint)
	f.press("enter")
	f.waitFocus("source")
	f.press("enter")
	f.waitFocus("token")
	f.tm.Type(canaryToken())
	f.wait("token: gateway contoso-gw, expires in 29 days")
	f.press("enter")
	f.waitFocus("image")
	f.press("enter")
	f.waitFocus("httpPort")
	f.press("ctrl+u")
	f.tm.Type("28080")
	f.press("enter")
	f.waitFocus("httpsPort")
	f.press("ctrl+u")
	f.tm.Type("28443")
	f.press("enter")
}

func (f *flow) finish() (observed, []byte) {
	f.t.Helper()
	f.tm.WaitFinished(f.t, teatest.WithFinalTimeout(5*time.Second))
	out, err := io.ReadAll(f.tm.FinalOutput(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	return f.tm.FinalModel(f.t).(observed), out
}

var sgr = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colours reports the colour parameters in the output's SGR sequences.
func colours(out []byte) []string {
	var found []string
	for _, m := range sgr.FindAllSubmatch(out, -1) {
		for _, p := range strings.FieldsFunc(string(m[1]), func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107) {
				found = append(found, string(m[0]))
			}
		}
	}
	return found
}

func TestFlowFormRunResult(t *testing.T) {
	release := make(chan struct{})
	fr := &fakeRunner{scripts: []upScript{{block: pipeline.StepDeploy, release: release}}}
	f := startFlow(t, testOptions(fr, nil))
	f.wait("Your gateway", "Gateway name", "Configuration endpoint", "Gateway token")
	f.fill()

	run := f.wait(`bringing up contoso-gw on kind cluster "apimdev"`, "pods ready 0/1 (ContainerCreating)")
	mustContain(t, run, "✓ preflight", "✓ cluster", "✓ image", "· forward", "· smoke", "! endpoint:")
	if l := lineWith(run, "pods ready"); !strings.Contains(l, "deploy") || strings.Contains(l, "✓") {
		t.Errorf("the running step: %q", l)
	}
	f.press("l")
	f.wait("── logs", "Deployment/contoso-gw created")
	f.press("l")
	close(release)

	result := f.wait("✓ contoso-gw answers on 127.0.0.1", "http://127.0.0.1:28080", "https://127.0.0.1:28443")
	mustContain(t, result, "health (http)", "2 passed, 0 failed", "token    expires in 29 days",
		"The forward runs in this window until you quit (q)", "s smoke again", "q quit")
	f.press("s")
	deadline := time.Now().Add(5 * time.Second)
	for _, n, _ := fr.calls(); n != 1; _, n, _ = fr.calls() {
		if time.Now().After(deadline) {
			t.Fatal("s did not run the smoke calls again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.press("?")
	f.wait("Keys on this screen", "smoke again")
	f.press("esc", "q")

	final, out := f.finish()
	if o := final.Outcome(); !o.Up || o.Err != nil || o.Interrupted {
		t.Errorf("outcome %+v", o)
	}
	if ups, _, closed := fr.calls(); ups != 1 || closed != 1 {
		t.Errorf("Up %d, Close %d; want 1 and 1", ups, closed)
	}
	if got := fr.ups[0].Config; got.Gateway.Name != "contoso-gw" || got.Gateway.Endpoint != standinEndpoint || got.Forward.HTTPPort != 28080 || got.Forward.HTTPSPort != 28443 {
		t.Errorf("Up ran with %+v", got)
	}
	if bytes.Contains(out, []byte(canarySig)) {
		t.Error("the token's signature reached the terminal")
	}
	if c := colours(out); len(c) > 0 {
		t.Errorf("colours on an ASCII terminal: %q", c[:min(len(c), 5)])
	}
}

func TestFlowFailureThenRetry(t *testing.T) {
	fr := &fakeRunner{scripts: []upScript{{failAt: pipeline.StepImage, err: &hinted{msg: "image apimdev-e2e/gw:1 is not on this machine and the node cannot pull it", hint: "docker pull it first, or check --image"}}}}
	f := startFlow(t, testOptions(fr, nil))
	f.fill()
	failed := f.wait("✗ image", "image failed", "fix: docker pull it first, or check --image", "r retry")
	mustContain(t, failed, "✓ preflight", "✓ cluster", "· deploy", "r retries from there: every step reuses what exists")
	f.press("r")
	f.wait("✓ contoso-gw answers on 127.0.0.1")
	f.press("q")
	final, out := f.finish()
	if o := final.Outcome(); !o.Up {
		t.Errorf("outcome %+v", o)
	}
	if ups, _, closed := fr.calls(); ups != 2 || closed != 1 {
		t.Errorf("Up %d, Close %d; want 2 and 1", ups, closed)
	}
	if bytes.Contains(out, []byte(canarySig)) {
		t.Error("the token's signature reached the terminal")
	}
}

func TestFlowCtrlCDuringRun(t *testing.T) {
	fr := &fakeRunner{scripts: []upScript{{block: pipeline.StepCluster}}}
	f := startFlow(t, testOptions(fr, nil))
	f.fill()
	f.wait("kind: Starting control-plane")
	f.press("ctrl+c")
	final, _ := f.finish()
	o := final.Outcome()
	if !o.Interrupted || o.Step != pipeline.StepCluster {
		t.Fatalf("outcome %+v", o)
	}
	if _, _, closed := fr.calls(); closed != 1 {
		t.Errorf("Close %d, want 1", closed)
	}
	mustContain(t, final.ClosingNote(o, func() string { return "nothing was created" }),
		"✓ preflight", "interrupted during cluster. Now: nothing was created.", "again to continue from there")
}
