package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/diagnose"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/junit"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/apimdev/apimdev/internal/token"
)

// fakeCI is a run's phases without a cluster: up's steps as events, the
// smoke results and the labs' as asked, and a record of what was called.
type fakeCI struct {
	rep *events.Reporter
	// failStep fails up at that step ("cluster", say); smokeFails fails a
	// smoke call; hang makes up wait for its context to end.
	failStep   string
	smokeFails bool
	hang       bool
	labFails   bool
	// leak is text every phase tries to show or write (a canary token).
	leak string
	// onUp runs as up starts (a test cancels the run there).
	onUp func()

	mu        sync.Mutex
	calls     []string
	keep      bool
	torndown  bool
	artifacts string
}

func (f *fakeCI) call(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeCI) Up(ctx context.Context) ([]smoke.Result, error) {
	f.call("up")
	if f.onUp != nil {
		f.onUp()
	}
	for _, name := range []string{"preflight", "cluster", "image", "deploy", "forward", "smoke"} {
		st := f.rep.Start(name, "")
		st.Progress("working %s", f.leak)
		if f.hang && name == "cluster" {
			<-ctx.Done()
			return nil, &pipeline.FailedStep{Step: name, Err: st.Fail(ctx.Err())}
		}
		if name == f.failStep {
			return nil, &pipeline.FailedStep{Step: name, Err: st.Fail(errors.New("the engine went away " + f.leak))}
		}
		if name == "smoke" {
			rs := []smoke.Result{{Name: "health http", Method: "GET", URL: "http://127.0.0.1:1/status-0123456789abcdef", Status: 200, Pass: true}}
			if f.smokeFails {
				rs = append(rs, smoke.Result{Name: "orders", Method: "GET", URL: "http://127.0.0.1:1/orders", Status: 404, Reason: "want 200, got 404 " + f.leak})
				err := &pipeline.SmokeError{Failed: 1, Total: 2}
				return rs, &pipeline.FailedStep{Step: name, Err: st.Fail(err)}
			}
			st.Done("1 call(s) passed")
			return rs, nil
		}
		st.Done("done " + f.leak)
	}
	return nil, nil
}

func (f *fakeCI) Lab(_ context.Context, n int) (labs.Result, error) {
	f.call(fmt.Sprintf("lab %d", n))
	r := labs.Result{Lab: n, Title: "fake", Passed: !f.labFails, Checks: []labs.Check{{Name: "gateway ready", OK: !f.labFails, Detail: "1/1 " + f.leak}}}
	return r, nil
}

func (f *fakeCI) Checks(context.Context) ([]pipeline.CheckResult, error) {
	f.call("checks")
	return []pipeline.CheckResult{{Name: "replicas", OK: true, Detail: "1/1 ready"}}, nil
}

func (f *fakeCI) Artifacts(ctx context.Context, dir string, w *artifactWriter) error {
	f.call("artifacts")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.mu.Lock()
	f.artifacts = dir
	f.mu.Unlock()
	if err := w.write("status.json", []byte(`{"token":"`+f.leak+`"}`)); err != nil {
		return err
	}
	// A writer of its own (the pods' logs) gets the scrub function.
	p := filepath.Join(dir, "pods", "apim-gateway", "gw-1", "gateway.log")
	if err := writeLogFile(p, w.sc.bytes([]byte("starting with "+f.leak+"\n"))); err != nil {
		return err
	}
	w.wrote(p)
	return nil
}

func writeLogFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func (f *fakeCI) Teardown(ctx context.Context, keep bool) (string, error) {
	f.call("teardown")
	if ctx.Err() != nil { // after a timeout or a cancel, the teardown has its own bound
		return "", ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keep, f.torndown = keep, true
	if keep {
		return "kept everything (--keep)", nil
	}
	st := f.rep.Start("down", "")
	st.Done("deleted cluster \"apimdev\"")
	return "deleted cluster \"apimdev\", which this run created", nil
}

// ciRun is one run of ci on f, its output and where it wrote.
type ciResult struct {
	code      int
	sum       ciSummary
	out       string
	junitFile string
	artifacts string
}

func runFake(t *testing.T, ctx context.Context, f *fakeCI, o ciOptions, secrets ...token.Token) ciResult {
	t.Helper()
	dir := testdir.New(t)
	o.junit = filepath.Join(dir, "results", "apimdev.xml")
	o.artifacts = filepath.Join(dir, "artifacts")
	if o.timeout == 0 {
		o.timeout = time.Minute
	}
	sc := newScrubber()
	for _, s := range secrets {
		sc.add(s)
	}
	rec := &ciRecorder{}
	var face bytes.Buffer
	text := events.NewText(&face, true)
	f.rep = events.NewReporter(events.SinkFunc(func(e events.Event) {
		e.Detail, e.Hint = sc.text(e.Detail), sc.text(e.Hint)
		rec.Emit(e)
		text.Emit(e)
	}), nil)
	code, sum := runCI(ctx, o, f, f.rep, rec, sc)
	sum.text(&face)
	return ciResult{code: code, sum: sum, out: face.String(), junitFile: o.junit, artifacts: o.artifacts}
}

func readJUnit(t *testing.T, path string) junit.Suites {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("junit: %v", err)
	}
	var doc junit.Suites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, b)
	}
	return doc
}

// suite finds the suite whose name starts with name.
func suite(doc junit.Suites, name string) *junit.Suite {
	for i := range doc.Suites {
		if strings.HasPrefix(doc.Suites[i].Name, name) {
			return &doc.Suites[i]
		}
	}
	return nil
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func TestCIExitCodesArtifactsAndTeardown(t *testing.T) {
	for _, tt := range []struct {
		name     string
		f        *fakeCI
		o        ciOptions
		cancel   bool // the pipeline cancels the run (Ctrl-C, SIGTERM)
		code     int
		reason   string
		suites   []string
		failures int
	}{
		{name: "pass", f: &fakeCI{}, o: ciOptions{labs: []int{1}, checks: true}, code: 0,
			suites: []string{"apimdev up", "apimdev smoke", "apimdev lab 1", "apimdev checks", "apimdev teardown"}},
		{name: "smoke fails", f: &fakeCI{smokeFails: true}, o: ciOptions{labs: []int{1}, checks: true}, code: ciTestFailed, reason: "1 of 2 smoke call(s) failed",
			suites: []string{"apimdev up", "apimdev smoke", "apimdev lab 1", "apimdev checks", "apimdev teardown"}, failures: 2},
		{name: "lab fails", f: &fakeCI{labFails: true}, o: ciOptions{labs: []int{2}}, code: ciTestFailed, reason: "lab 2: 1 check(s) failed",
			suites: []string{"apimdev up", "apimdev smoke", "apimdev lab 2", "apimdev teardown"}, failures: 1},
		{name: "up fails", f: &fakeCI{failStep: "cluster"}, o: ciOptions{labs: []int{1}, checks: true}, code: ciEnvFailed, reason: "up failed: the engine went away",
			suites: []string{"apimdev up", "apimdev teardown"}, failures: 1},
		{name: "timeout", f: &fakeCI{hang: true}, o: ciOptions{timeout: 50 * time.Millisecond}, code: ciEnvFailed, reason: "the run took longer than --timeout 50ms",
			suites: []string{"apimdev up", "apimdev teardown"}, failures: 1},
		{name: "cancelled", f: &fakeCI{hang: true}, cancel: true, code: ciEnvFailed, reason: "interrupted",
			suites: []string{"apimdev up", "apimdev teardown"}, failures: 1},
		{name: "keep", f: &fakeCI{smokeFails: true}, o: ciOptions{keep: true}, code: ciTestFailed, reason: "smoke call(s) failed",
			suites: []string{"apimdev up", "apimdev smoke", "apimdev teardown"}, failures: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				tt.f.onUp = cancel // once up is under way, as a CI cancels a job
			}
			r := runFake(t, ctx, tt.f, tt.o)
			if r.code != tt.code || !strings.Contains(r.sum.Reason, tt.reason) {
				t.Fatalf("exit %d (%q), want %d (%q)\n%s", r.code, r.sum.Reason, tt.code, tt.reason, r.out)
			}
			if !tt.f.torndown || tt.f.keep != tt.o.keep {
				t.Errorf("teardown ran %v with keep %v; want it always, keep %v", tt.f.torndown, tt.f.keep, tt.o.keep)
			}
			if last := tt.f.calls[len(tt.f.calls)-1]; last != "teardown" {
				t.Errorf("calls %v: teardown is not last", tt.f.calls)
			}
			doc := readJUnit(t, r.junitFile)
			var names []string
			for _, s := range doc.Suites {
				names = append(names, s.Name)
			}
			if len(names) != len(tt.suites) {
				t.Fatalf("suites %q, want %q", names, tt.suites)
			}
			for i, want := range tt.suites {
				if !strings.HasPrefix(names[i], want) {
					t.Errorf("suite %d is %q, want %q", i, names[i], want)
				}
			}
			if doc.Failures != tt.failures {
				t.Errorf("%d failure(s) in the JUnit file, want %d", doc.Failures, tt.failures)
			}
			up := suite(doc, "apimdev up")
			if tt.code == 0 && (up.Tests != 6 || up.Failures != 0) {
				t.Errorf("up suite: %d case(s), %d failed; want up's 6 steps passing", up.Tests, up.Failures)
			}
			got := files(t, r.artifacts)
			if tt.code == ExitOK {
				if len(got) != 0 {
					t.Errorf("a passing run wrote artifacts: %v", got)
				}
				return
			}
			for _, want := range []string{"status.json", "pods/apim-gateway/gw-1/gateway.log", "events.jsonl"} {
				if !contains(got, want) {
					t.Errorf("artifacts %v lack %s", got, want)
				}
			}
			ev, _ := os.ReadFile(filepath.Join(r.artifacts, "events.jsonl"))
			if !strings.Contains(string(ev), `"step":"down"`) && !tt.o.keep {
				t.Errorf("events.jsonl lacks the teardown:\n%s", ev)
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// A step's failure in up is a failed testcase with its message, so the CI's
// test view shows which step failed and why.
func TestCIJUnitNamesTheFailedStep(t *testing.T) {
	r := runFake(t, context.Background(), &fakeCI{failStep: "deploy"}, ciOptions{})
	up := suite(readJUnit(t, r.junitFile), "apimdev up")
	if up == nil || up.Tests != 4 {
		t.Fatalf("up suite: %+v", up)
	}
	last := up.Cases[len(up.Cases)-1]
	if last.Name != "deploy" || last.Failure == nil || !strings.Contains(last.Failure.Message, "the engine went away") {
		t.Fatalf("last case: %+v", last)
	}
	for _, c := range up.Cases[:3] {
		if c.Failure != nil {
			t.Errorf("case %s failed", c.Name)
		}
	}
}

// The token never reaches a file ci writes, nor its output: the canary goes
// through every phase, the artifact writer and the JUnit writer, and no
// form of it is left anywhere.
func TestCINeverWritesTheToken(t *testing.T) {
	tok, err := token.Parse("GatewayKey contoso-gw&202612301200&" + canary)
	if err != nil {
		t.Fatal(err)
	}
	leak := tok.SecretValue()
	for _, f := range []*fakeCI{{smokeFails: true, leak: leak}, {labFails: true, leak: leak}, {failStep: "image", leak: leak}} {
		r := runFake(t, context.Background(), f, ciOptions{labs: []int{1}}, tok)
		if r.code == ExitOK {
			t.Fatal("the run passed: nothing was written to check")
		}
		written := append(files(t, r.artifacts), "")
		paths := []string{r.junitFile}
		for _, w := range written[:len(written)-1] {
			paths = append(paths, filepath.Join(r.artifacts, w))
		}
		if len(paths) < 4 {
			t.Fatalf("only %v written", paths)
		}
		texts := map[string]string{"output": r.out}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			texts[p] = string(b)
		}
		for name, text := range texts {
			for _, form := range diagnose.Forms(canary) {
				if strings.Contains(text, form) {
					t.Errorf("%s holds the token (as %q)", name, form)
				}
			}
			// "redacted": XML and JSON escape its brackets.
			if name != "output" && !strings.Contains(text, "redacted") {
				t.Errorf("%s: nothing was redacted, so the canary never reached it", name)
			}
		}
	}
}

// The JUnit writer scrubs on its own, whatever its cases hold.
func TestCIJUnitWriterScrubs(t *testing.T) {
	tok, err := token.Parse("GatewayKey contoso-gw&202612301200&" + canary)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScrubber()
	sc.add(tok)
	p := filepath.Join(testdir.New(t), "j.xml")
	c := junit.Case{Name: "raw", SystemOut: "sent " + canary, Failure: &junit.Failure{Message: tok.SecretValue(), Text: canary}}
	if err := writeJUnit(p, sc, junit.NewSuite("s", time.Now(), []junit.Case{c})); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), canary) || !strings.Contains(string(b), "redacted") {
		t.Fatalf("JUnit file:\n%s", b)
	}
}

func TestCITeardownNeverDeletesWhatWasThere(t *testing.T) {
	for _, tt := range []struct {
		opened     bool
		before     cluster.ClusterState
		hadGateway bool
		want       ciTeardown
	}{
		{true, cluster.ClusterAbsent, false, ciDeleteCluster},
		{true, cluster.ClusterOurs, false, ciRemoveGateway},
		{true, cluster.ClusterOurs, true, ciLeave},
		{true, cluster.ClusterForeign, false, ciLeave},
		{true, cluster.ClusterState("starting"), true, ciLeave},
		{false, cluster.ClusterAbsent, false, ciNothingStarted},
	} {
		if got := teardownOf(tt.opened, tt.before, tt.hadGateway); got != tt.want {
			t.Errorf("opened %v, cluster %s before, gateway %v: teardown %d, want %d", tt.opened, tt.before, tt.hadGateway, got, tt.want)
		}
	}
}

func TestCIRefusesBadInput(t *testing.T) {
	home := testdir.New(t)
	out := testdir.New(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"ci", "--demo", "--token", "abc", "--junit", "j.xml", "--artifacts", out}, "unknown flag: --token"},
		{[]string{"ci", "--demo"}, "--junit FILE is required"},
		{[]string{"ci", "--demo", "--junit", filepath.Join(out, "j.xml")}, "--artifacts DIR is required"},
		{[]string{"ci", "--demo", "--lab", "9", "--junit", filepath.Join(out, "j.xml"), "--artifacts", out}, "there is no lab 9"},
		{[]string{"ci", "--demo", "--timeout", "0s", "--junit", filepath.Join(out, "j.xml"), "--artifacts", out}, "--timeout must be more than 0"},
	} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", tt.args...)
		if r.code != ciEnvFailed || !strings.Contains(r.err, tt.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tt.args, r.code, ciEnvFailed, tt.want, r.err)
		}
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("bad input wrote %v", got)
	}
}

// The real session with no engine: up fails in preflight, so the run is the
// environment's failure (exit 2), the JUnit file names the failed step,
// the artifacts are written (the doctor bundle says what it could not
// collect), and the token given in APIMDEV_TOKEN is in none of it.
func TestCIWithoutAnEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(testdir.New(t), "no-docker.sock"))
	home, out := testdir.New(t), testdir.New(t)
	env := map[string]string{"APIMDEV_HOME": home, "APIMDEV_TOKEN": "GatewayKey contoso-gw&202612301200&" + canary}
	junitFile, artifacts := filepath.Join(out, "ci.xml"), filepath.Join(out, "artifacts")
	r := apimdev(t, env, "", "ci", "--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net", "--cluster-name", "apimdev-clitest-ci",
		"--http-port", "18933", "--https-port", "18934", "--junit", junitFile, "--artifacts", artifacts)
	if r.code != ciEnvFailed || !strings.Contains(r.out, "ci: the environment failed (exit 2)") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	up := suite(readJUnit(t, junitFile), "apimdev up")
	if up == nil || len(up.Cases) == 0 || up.Cases[0].Name != "preflight" || up.Cases[0].Failure == nil || !strings.Contains(up.Cases[0].Failure.Message, "Docker engine does not answer") {
		t.Fatalf("up suite: %+v", up)
	}
	got := files(t, artifacts)
	for _, want := range []string{"doctor.tar.gz", "status.json", "events.jsonl"} {
		if !contains(got, want) {
			t.Errorf("artifacts %v lack %s", got, want)
		}
	}
	texts := map[string][]byte{"stdout": []byte(r.out), "stderr": []byte(r.err)}
	texts[junitFile], _ = os.ReadFile(junitFile)
	for _, f := range got {
		b, _ := os.ReadFile(filepath.Join(artifacts, f))
		texts[f] = b
		if strings.HasSuffix(f, ".tar.gz") {
			gz, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(gz)
			n := 0
			for h, err := tr.Next(); err == nil; h, err = tr.Next() {
				body, _ := io.ReadAll(tr)
				texts[f+":"+h.Name] = body
				n++
			}
			if n < 3 {
				t.Errorf("the doctor bundle holds %d file(s)", n)
			}
		}
	}
	for name, text := range texts {
		for _, form := range diagnose.Forms(canary) {
			if bytes.Contains(text, []byte(form)) {
				t.Errorf("%s holds the token (as %q)", name, form)
			}
		}
	}
}
