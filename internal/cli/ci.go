package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/diagnose"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/junit"
	"github.com/apimdev/apimdev/internal/labs"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// ci's exit codes: a test failed (smoke, lab, check), or the environment
// did (up, the cluster, the engine, the time budget, an interruption, bad
// input).
const (
	ciTestFailed = 1
	ciEnvFailed  = 2
)

// ciTeardownBound bounds the artifacts and the teardown after the run's own
// budget is spent, or after it was interrupted.
const ciTeardownBound = 3 * time.Minute

type ciOptions struct {
	demo      bool
	kit       string
	labs      []int
	checks    bool
	junit     string
	artifacts string
	keep      bool
	timeout   time.Duration
}

func (a *app) ciCommand() *cobra.Command {
	var o ciOptions
	var labArgs []string
	cmd := &cobra.Command{
		Use:   "ci",
		Short: "One command for pipelines: up, smoke, labs and checks, JUnit XML, artifacts on failure, always torn down",
		Long: `ci runs what a pipeline needs in one command, with no terminal and no questions:
up (as 'up --yes' does, the forward in this process), the smoke calls (the
health path and your --smoke-spec), the labs' checks (--lab N) and the
production checks of the deployed profile (--checks). It writes one JUnit XML
file (--junit) with a testsuite per phase, up's steps included, so a failed up
shows in the CI's test view.

On any failure it writes under --artifacts: the doctor bundle (scrubbed of
secrets), every pod's logs in the gateway's and the demo's namespaces as files,
status.json ('apimdev status -o json') and events.jsonl, the run's event
stream. Then it tears down what it made: 'down' on a cluster it created; on a
cluster that existed before, it removes nothing that was there and says what
it left. --keep keeps everything.

The gateway token comes from APIMDEV_TOKEN or a file (APIMDEV_TOKEN_FILE,
--token-file), never from a flag value; --demo needs none.

Exit codes: 0 everything passed; 1 a test failed (smoke, lab, check);
2 the environment failed (up, the cluster, the engine, --timeout, an
interruption, bad input). --timeout bounds the whole run; the artifacts and
the teardown have a bound of their own after it.`,
		Example: `  apimdev ci --demo --junit results/apimdev.xml --artifacts results/apimdev
  APIMDEV_TOKEN="$GATEWAY_TOKEN" apimdev ci --name contoso-gw --endpoint contoso.configuration.azure-api.net \
      --smoke-spec smoke.yaml --checks --junit results/apimdev.xml --artifacts results/apimdev
  apimdev ci --demo --lab 1 --lab 2 --junit lab.xml --artifacts out --timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(labArgs); err != nil {
				return err
			}
			sc := newScrubber()
			rec := &ciRecorder{}
			face := a.faceSink(cmd)
			rep := events.NewReporter(events.SinkFunc(func(e events.Event) {
				e.Detail, e.Hint = sc.text(e.Detail), sc.text(e.Hint)
				rec.Emit(e)
				face.Emit(e)
			}), nil)
			env := &sessionCI{a: a, cmd: cmd, o: o, rep: rep, sc: sc}
			code, sum := runCI(cmd.Context(), o, env, rep, rec, sc)
			if out, _ := cmd.Flags().GetString("output"); out == "json" || (!cmd.Flags().Changed("output") && a.getenv("APIMDEV_OUTPUT") == "json") {
				a.printJSON(sum)
			} else {
				sum.text(a.streams.Out)
			}
			if code != ExitOK {
				return &shownError{err: fmt.Errorf("ci: exit %d", code), code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.demo, "demo", false, "run apimdev's stand-in gateway (stand-in, not Azure API Management) with its own configuration service: no Azure, no token")
	f.StringVar(&o.kit, "kit", "", "load this offline kit (apimdev kit create) first, its signature (--trust) and checksums verified")
	kitTrustFlags(f)
	f.String("smoke-spec", "", "YAML file of smoke calls (kind: SmokeSpec) that must pass after the health calls (smoke.file)")
	fieldFlag(f, "smoke-spec", "smoke.file")
	f.StringArrayVar(&labArgs, "lab", nil, "also check lab N's outcome (apimdev lab check N); repeatable")
	f.BoolVar(&o.checks, "checks", false, "also run the production checks on the deployed profile (what promote proves)")
	f.StringVar(&o.junit, "junit", "", "write the results as JUnit XML to this file (required)")
	f.StringVar(&o.artifacts, "artifacts", "", "on failure, write the doctor bundle, the pods' logs, status and the event stream into this directory (required)")
	f.BoolVar(&o.keep, "keep", false, "keep what the run made (cluster, gateway) instead of tearing it down")
	f.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound of the whole run; the artifacts and the teardown have their own after it")
	return cmd
}

// check refuses bad input before anything starts.
func (o *ciOptions) check(labArgs []string) error {
	var problems []string
	if o.junit == "" {
		problems = append(problems, "--junit FILE is required: where the JUnit XML goes")
	}
	if o.artifacts == "" {
		problems = append(problems, "--artifacts DIR is required: where a failure's doctor bundle and logs go")
	}
	if o.timeout <= 0 {
		problems = append(problems, "--timeout must be more than 0 (e.g. 15m)")
	}
	for _, s := range labArgs {
		l, err := labArg(s)
		if err != nil {
			problems = append(problems, "--lab "+err.Error())
			continue
		}
		o.labs = append(o.labs, l.N)
	}
	if len(problems) > 0 {
		return &usageError{strings.Join(problems, "\n")}
	}
	return nil
}

// faceSink is the event stream's face for the output format: text on
// stderr, or JSON lines on stdout.
func (a *app) faceSink(cmd *cobra.Command) events.Sink {
	if o, _ := cmd.Flags().GetString("output"); o == "json" || (!cmd.Flags().Changed("output") && a.getenv("APIMDEV_OUTPUT") == "json") {
		return events.NewJSON(a.streams.Out)
	}
	t := events.NewText(a.streams.Err, true)
	t.ASCII = !a.streams.Terminal && a.getenv("APIMDEV_ASCII") == "1"
	return t
}

// ciEnv is what ci runs: each phase of the run. The session's is the real
// one (sessionCI); tests give a fake. Each phase reports through the run's
// reporter.
type ciEnv interface {
	// Up brings the gateway up and runs the smoke calls (the health path
	// and the user's spec); the results come back with a smoke failure.
	Up(ctx context.Context) ([]smoke.Result, error)
	Lab(ctx context.Context, n int) (labs.Result, error)
	Checks(ctx context.Context) ([]pipeline.CheckResult, error)
	// Artifacts writes what explains a failure into dir, every file
	// through w (which scrubs it).
	Artifacts(ctx context.Context, dir string, w *artifactWriter) error
	// Teardown removes what the run made and says what it did and left;
	// keep removes nothing.
	Teardown(ctx context.Context, keep bool) (string, error)
}

// ciSummary is what ci prints last.
type ciSummary struct {
	Exit      int      `json:"exit"`
	Result    string   `json:"result"`
	Reason    string   `json:"reason,omitempty"`
	JUnit     string   `json:"junit"`
	Artifacts []string `json:"artifacts,omitempty"`
	Teardown  string   `json:"teardown"`
	Elapsed   float64  `json:"elapsed"`
}

func (s ciSummary) text(w io.Writer) {
	fmt.Fprintf(w, "\nci: %s (exit %d) in %.1fs", s.Result, s.Exit, s.Elapsed)
	if s.Reason != "" {
		fmt.Fprintf(w, ": %s", s.Reason)
	}
	fmt.Fprintf(w, "\njunit: %s\n", s.JUnit)
	if len(s.Artifacts) > 0 {
		fmt.Fprintf(w, "artifacts:\n")
		for _, f := range s.Artifacts {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	fmt.Fprintf(w, "teardown: %s\n", s.Teardown)
}

// runCI is ci's run: the phases in order while each passes, within
// o.timeout; then, on any failure, the artifacts; then the teardown; then
// the JUnit file. It returns the exit code.
func runCI(parent context.Context, o ciOptions, env ciEnv, rep *events.Reporter, rec *ciRecorder, sc *scrubber) (int, ciSummary) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, o.timeout)
	defer cancel()
	var suites []junit.Suite
	code, reason := ExitOK, ""
	fail := func(c int, why string) {
		// The first failure is the reason; an environment failure
		// outranks a test's.
		if code == ExitOK || (c == ciEnvFailed && code != ciEnvFailed) {
			code, reason = c, why
		}
	}
	// A phase that ends because the run's budget is spent or it was
	// interrupted is the environment's failure, whatever it was doing.
	stopped := func() bool {
		switch {
		case parent.Err() != nil:
			fail(ciEnvFailed, "interrupted")
		case ctx.Err() != nil:
			fail(ciEnvFailed, fmt.Sprintf("the run took longer than --timeout %s", o.timeout))
		default:
			return false
		}
		return true
	}

	// up, with the smoke calls as its last step.
	upStart := time.Now()
	rs, err := env.Up(ctx)
	upCases := rec.cut()
	if err != nil && len(upCases) == 0 {
		upCases = []junit.Case{{Name: "up", Classname: "apimdev.up", Failure: &junit.Failure{Message: sc.text(err.Error()), Type: "UpFailed", Text: sc.text(events.HintOf(err))}}}
	}
	suites = append(suites, junit.NewSuite("apimdev up", upStart, upCases))
	if rs != nil {
		suites = append(suites, smokeSuite(rs, upStart, sc))
	}
	var se *pipeline.SmokeError
	switch {
	case err == nil:
	case stopped():
	case errors.As(err, &se) && rs != nil:
		fail(ciTestFailed, se.Error())
	default:
		fail(ciEnvFailed, "up failed: "+firstLine(err.Error()))
	}

	// After a failed smoke call the gateway still runs: the labs and the
	// checks still tell something.
	if code != ciEnvFailed {
		for _, n := range o.labs {
			t0 := time.Now()
			r, err := env.Lab(ctx, n)
			if err != nil {
				if !stopped() {
					fail(ciEnvFailed, fmt.Sprintf("lab %d: %s", n, firstLine(err.Error())))
				}
				suites = append(suites, junit.NewSuite(fmt.Sprintf("apimdev lab %d", n), t0, []junit.Case{{Name: fmt.Sprintf("lab %d", n), Classname: fmt.Sprintf("apimdev.lab%d", n), Failure: &junit.Failure{Message: sc.text(err.Error()), Type: "LabError"}}}))
				break
			}
			suites = append(suites, labSuite(r, t0, sc))
			if !r.Passed {
				fail(ciTestFailed, fmt.Sprintf("lab %d: %d check(s) failed", n, r.Failed()))
			}
			if stopped() {
				break
			}
		}
	}
	if code != ciEnvFailed && o.checks {
		t0 := time.Now()
		cs, err := env.Checks(ctx)
		rec.cut() // the checks' own step: its results are the cases
		suites = append(suites, checksSuite(cs, err, t0, sc))
		switch {
		case stopped():
		case len(cs) > 0 && err != nil:
			fail(ciTestFailed, "checks: "+firstLine(err.Error()))
		case err != nil:
			fail(ciEnvFailed, "checks: "+firstLine(err.Error()))
		}
	}

	// After the budget: the artifacts and the teardown have their own.
	after, cancelAfter := context.WithTimeout(context.WithoutCancel(parent), ciTeardownBound)
	defer cancelAfter()
	sum := ciSummary{JUnit: o.junit}
	w := &artifactWriter{dir: o.artifacts, sc: sc}
	if code != ExitOK {
		st := rep.Start("artifacts", "writing what explains the failure to "+o.artifacts)
		if err := env.Artifacts(after, o.artifacts, w); err != nil {
			st.Warn("some artifacts could not be collected: "+firstLine(err.Error()), "")
		}
		st.Done(fmt.Sprintf("%d file(s) in %s", len(w.files), o.artifacts))
	}
	rec.cut() // the artifacts step is no test
	tdStart := time.Now()
	what, err := env.Teardown(after, o.keep)
	tdCases := rec.cut()
	if err != nil {
		fail(ciEnvFailed, "teardown failed: "+firstLine(err.Error()))
		what = "failed: " + err.Error()
		if len(tdCases) == 0 {
			tdCases = []junit.Case{{Name: "teardown", Classname: "apimdev.teardown", Failure: &junit.Failure{Message: sc.text(err.Error()), Type: "TeardownFailed"}}}
		}
	}
	if len(tdCases) == 0 {
		tdCases = []junit.Case{{Name: "teardown", Classname: "apimdev.teardown", SystemOut: sc.text(what)}}
	}
	suites = append(suites, junit.NewSuite("apimdev teardown", tdStart, tdCases))
	rep.Info("teardown", what)
	if code != ExitOK {
		// The event stream last: it holds the teardown too.
		if err := w.write("events.jsonl", rec.jsonLines()); err != nil {
			rep.Warn("artifacts", "events.jsonl: "+err.Error(), "")
		}
	}
	if err := writeJUnit(o.junit, sc, suites...); err != nil {
		rep.Warn("junit", err.Error(), "")
		fail(ciEnvFailed, "writing the JUnit file: "+err.Error())
	}
	sum.Exit, sum.Reason, sum.Teardown, sum.Artifacts = code, sc.text(reason), sc.text(what), w.files
	sum.Result = map[int]string{ExitOK: "passed", ciTestFailed: "a test failed", ciEnvFailed: "the environment failed"}[code]
	sum.Elapsed = junit.Seconds(time.Since(start))
	return code, sum
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func smokeSuite(rs []smoke.Result, at time.Time, sc *scrubber) junit.Suite {
	var cases []junit.Case
	for _, r := range rs {
		c := junit.Case{Name: r.Name, Classname: "apimdev.smoke", Time: junit.Seconds(r.Latency), SystemOut: sc.text(fmt.Sprintf("%s %s -> %d", r.Method, r.URL, r.Status))}
		if !r.Pass {
			c.Failure = &junit.Failure{Message: sc.text(r.Reason), Type: "SmokeCallFailed", Text: sc.text(fmt.Sprintf("%s %s answered %d: %s", r.Method, r.URL, r.Status, r.Reason))}
		}
		cases = append(cases, c)
	}
	return junit.NewSuite("apimdev smoke", at, cases)
}

func labSuite(r labs.Result, at time.Time, sc *scrubber) junit.Suite {
	var cases []junit.Case
	for _, c := range r.Checks {
		jc := junit.Case{Name: c.Name, Classname: fmt.Sprintf("apimdev.lab%d", r.Lab), Time: junit.Seconds(c.Elapsed), SystemOut: sc.text(c.Detail)}
		if !c.OK {
			jc.Failure = &junit.Failure{Message: sc.text(c.Detail), Type: "LabCheckFailed", Text: sc.text("hint: " + c.Hint)}
		}
		cases = append(cases, jc)
	}
	return junit.NewSuite(fmt.Sprintf("apimdev lab %d: %s", r.Lab, r.Title), at, cases, junit.Property{Name: "lab", Value: strconv.Itoa(r.Lab)})
}

func checksSuite(cs []pipeline.CheckResult, err error, at time.Time, sc *scrubber) junit.Suite {
	var cases []junit.Case
	for _, c := range cs {
		jc := junit.Case{Name: c.Name, Classname: "apimdev.checks", SystemOut: sc.text(c.Detail)}
		if !c.OK {
			jc.Failure = &junit.Failure{Message: sc.text(c.Detail), Type: "CheckFailed"}
		}
		cases = append(cases, jc)
	}
	if len(cs) == 0 && err != nil {
		cases = append(cases, junit.Case{Name: "checks", Classname: "apimdev.checks", Failure: &junit.Failure{Message: sc.text(err.Error()), Type: "ChecksError"}})
	}
	return junit.NewSuite("apimdev checks", at, cases)
}

// writeJUnit writes the report through the scrubber, whole or not at all.
func writeJUnit(path string, sc *scrubber, suites ...junit.Suite) error {
	var b bytes.Buffer
	if err := junit.Encode(&b, suites...); err != nil {
		return err
	}
	return writeAtomic(path, sc.bytes(b.Bytes()), 0o644)
}

// writeAtomic writes b to path through a temporary file beside it.
func writeAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Chmod(perm), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// scrubber replaces the run's secrets, and anything shaped like one, in
// every text ci shows or writes. It learns secrets as the run finds them
// (the demo mints its token mid-run).
type scrubber struct {
	r *diagnose.Redactor
}

func newScrubber() *scrubber { return &scrubber{r: diagnose.NewRedactor()} }

func (s *scrubber) add(t token.Token) {
	for _, v := range diagnose.TokenSecrets(t) {
		s.r.Add(v)
	}
	if t.IsAppSecret() {
		s.r.Add(t.SecretValue())
	}
}

func (s *scrubber) addValue(v string) { s.r.Add(v) }

func (s *scrubber) text(t string) string {
	if t == "" {
		return t
	}
	return s.r.String(t)
}

func (s *scrubber) bytes(b []byte) []byte { return s.r.Scrub(b) }

// artifactWriter writes the files of --artifacts, each scrubbed.
type artifactWriter struct {
	dir   string
	sc    *scrubber
	mu    sync.Mutex
	files []string
}

// write writes name (relative to the directory) scrubbed.
func (w *artifactWriter) write(name string, b []byte) error {
	p := filepath.Join(w.dir, name)
	if err := writeAtomic(p, w.sc.bytes(b), 0o644); err != nil {
		return err
	}
	w.wrote(p)
	return nil
}

// wrote records a file written by another writer (the doctor bundle, the
// pods' logs), which scrubbed it itself.
func (w *artifactWriter) wrote(paths ...string) {
	w.mu.Lock()
	w.files = append(w.files, paths...)
	w.mu.Unlock()
}

// ciRecorder keeps the run's events: for the JUnit cases of each phase's
// steps, and as events.jsonl.
type ciRecorder struct {
	mu   sync.Mutex
	all  []events.Event
	next int // first event of the phase running now
}

func (r *ciRecorder) Emit(e events.Event) {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
}

// cut returns the steps that ended since the last cut as JUnit cases: one
// per named step, failed with its message and hint, its progress as output.
func (r *ciRecorder) cut() []junit.Case {
	r.mu.Lock()
	evs := r.all[r.next:]
	r.next = len(r.all)
	r.mu.Unlock()
	var cases []junit.Case
	out := map[string]*strings.Builder{}
	for _, e := range evs {
		switch e.State {
		case events.Started:
			out[e.Step] = &strings.Builder{}
		case events.Progress, events.Warning:
			if b := out[e.Step]; b != nil {
				fmt.Fprintf(b, "%s\n", e.Detail)
			}
		case events.Done, events.Failed:
			c := junit.Case{Name: e.Step, Classname: "apimdev.up", Time: junit.Seconds(e.Elapsed)}
			var log string
			if b := out[e.Step]; b != nil {
				log = b.String()
			}
			if e.State == events.Done {
				c.SystemOut = log + e.Detail
			} else {
				c.SystemOut = log
				c.Failure = &junit.Failure{Message: e.Detail, Type: "StepFailed", Text: e.Hint}
			}
			if e.Step == "down" {
				c.Classname = "apimdev.teardown"
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// jsonLines is every event of the run, one JSON object a line.
func (r *ciRecorder) jsonLines() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, e := range r.all {
		if j, err := json.Marshal(e); err == nil {
			b.Write(append(j, '\n'))
		}
	}
	return b.Bytes()
}

// sessionCI runs ci's phases on the real session.
type sessionCI struct {
	a   *app
	cmd *cobra.Command
	o   ciOptions
	rep *events.Reporter
	sc  *scrubber

	s    *pipeline.Session
	lock *state.Lock
	ws   *pipeline.Workshop
	res  *pipeline.UpResult
	// before is the cluster as the run found it, and whether it recorded
	// a gateway then: what teardown must leave.
	before     cluster.ClusterState
	hadGateway bool
	opened     bool
}

func (e *sessionCI) Up(ctx context.Context) ([]smoke.Result, error) {
	a, cmd := e.a, e.cmd
	ws, err := a.prepareWorkshop(cmd, upOptions{kit: e.o.kit, demo: e.o.demo})
	if err != nil {
		return nil, err
	}
	e.ws = ws
	s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait})
	if err != nil {
		return nil, err
	}
	e.s, e.lock = s, lock
	s.Rep = e.rep
	read, cancel := context.WithTimeout(ctx, 10*time.Second)
	e.before, _ = s.Cluster.Inspect(read)
	cancel()
	e.opened = true
	if err := s.Resolve(ctx); err != nil {
		return nil, err
	}
	e.hadGateway = e.before == cluster.ClusterOurs && s.Recorded != nil
	if ws == nil && s.IsDemo() {
		ws = &pipeline.Workshop{Demo: true}
		e.ws = ws
	}
	cfg := s.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	uo := pipeline.UpOptions{Self: self(), ConfigFile: a.configFile, Yes: true, Workshop: ws}
	if !ws.IsDemo() {
		uo.Token, uo.TokenFrom, uo.TokenErr = a.loadTokenFrom(cmd, cfg)
		if config.IsNoToken(uo.TokenErr) {
			uo.NoToken, uo.TokenErr = true, nil
		}
		e.sc.add(uo.Token)
	}
	if ws.IsDemo() {
		e.rep.Info("demo", "the gateway is apimdev's stand-in ("+demo.Label+"): it serves an echo API with a key made on this machine; no Azure is involved")
	}
	if a.kitNote != "" {
		e.rep.Info("kit", a.kitNote)
	}
	res, err := s.Up(ctx, uo)
	ws.Close()
	if res != nil && res.Smoke != nil {
		a.printSmoke(s, res.Smoke)
	}
	if res != nil {
		e.res = res
		if res.DemoKey != "" {
			e.sc.addValue(res.DemoKey)
		}
		if ctx.Err() == nil {
			if t, terr := s.ClusterToken(ctx); terr == nil {
				e.sc.add(t)
			}
		}
		return res.Smoke, err
	}
	return nil, err
}

func (e *sessionCI) Lab(ctx context.Context, n int) (labs.Result, error) {
	env := e.s.LabEnv(ctx, n, "")
	if e.res != nil && e.res.Stop != nil {
		port := e.res.HTTPPort
		env.Forward = func() (bool, int) { return true, port } // this process forwards
	}
	r, err := labs.Run(ctx, n, env)
	if err == nil {
		if e.s.Config.Output == "json" {
			e.a.printJSON(r)
		} else {
			e.a.printLab(r)
		}
	}
	return r, err
}

func (e *sessionCI) Checks(ctx context.Context) ([]pipeline.CheckResult, error) {
	return e.s.CheckDeployed(ctx)
}

func (e *sessionCI) Artifacts(ctx context.Context, dir string, w *artifactWriter) error {
	if e.s == nil {
		return errors.New("no session: nothing was started")
	}
	s := e.s
	var errs []error
	if s.Connect() == nil { // the token the cluster runs: what logs could quote
		read, cancel := context.WithTimeout(ctx, 10*time.Second)
		if t, err := s.ClusterToken(read); err == nil {
			e.sc.add(t)
		}
		cancel()
	}
	st := s.Status(ctx)
	if b, err := json.MarshalIndent(st, "", "  "); err == nil {
		errs = append(errs, w.write("status.json", append(b, '\n')))
	}
	logs, err := s.WritePodLogs(ctx, filepath.Join(dir, "pods"), e.sc.bytes)
	w.wrote(logs...)
	errs = append(errs, err)
	userTok, _ := e.a.loadToken(s.Config)
	c := s.Diagnostics(ctx, Version, true, time.Now(), userTok)
	c.NodeLogTimeout = time.Minute
	bundle := filepath.Join(dir, "doctor.tar.gz")
	if _, err := os.Stat(dir); err != nil {
		errs = append(errs, os.MkdirAll(dir, 0o755))
	}
	if _, err := c.Write(ctx, bundle); err != nil {
		errs = append(errs, fmt.Errorf("doctor bundle: %w", err))
	} else {
		w.wrote(bundle)
	}
	return errors.Join(errs...)
}

// ciTeardown is what the teardown does with the cluster as the run found it.
type ciTeardown int

const (
	ciLeave          ciTeardown = iota // remove nothing: all of it was there before
	ciRemoveGateway                    // the cluster was there, the gateway is the run's
	ciDeleteCluster                    // the run made the cluster
	ciNothingStarted                   // the run never opened a session
)

func teardownOf(opened bool, before cluster.ClusterState, hadGateway bool) ciTeardown {
	switch {
	case !opened:
		return ciNothingStarted
	case before == cluster.ClusterAbsent:
		return ciDeleteCluster
	case before == cluster.ClusterOurs && !hadGateway:
		return ciRemoveGateway
	}
	return ciLeave
}

func (e *sessionCI) Teardown(ctx context.Context, keep bool) (string, error) {
	if e.res != nil && e.res.Stop != nil {
		e.res.Stop()
		e.res.Stop = nil
	}
	defer e.lock.Release()
	if e.s == nil {
		return "nothing was started", nil
	}
	name := e.s.Config.Cluster.Name
	gw := e.s.Names.Namespace + "/" + e.s.Names.Gateway
	if keep {
		return fmt.Sprintf("kept cluster %q and gateway %s (--keep); `apimdev up --detach` forwards again, `apimdev down` removes them", name, gw), nil
	}
	switch teardownOf(e.opened, e.before, e.hadGateway) {
	case ciDeleteCluster:
		if err := e.s.Down(ctx, false); err != nil {
			return "", err
		}
		return fmt.Sprintf("deleted cluster %q, which this run created", name), nil
	case ciRemoveGateway:
		if err := e.s.Down(ctx, true); err != nil {
			return "", err
		}
		return fmt.Sprintf("removed gateway %s, which this run deployed; left cluster %q, which existed before it", gw, name), nil
	case ciNothingStarted:
		return "nothing was started", nil
	}
	if e.hadGateway {
		return fmt.Sprintf("left cluster %q (%s when this run started) and gateway %s as they are: they were there before this run, and ci removes only what it made", name, e.before, gw), nil
	}
	return fmt.Sprintf("left cluster %q as it is (%s when this run started): it was there before this run, and ci removes only what it made", name, e.before), nil
}
