//go:build !windows

// Command bench measures apimdev against the manual path it replaces, on the
// e2e rig, in one run: `make bench` (under the machine-wide rig lock:
// `flock /tmp/apimdev-rig.lock make bench`).
//
// Each round runs both arms, alternating which goes first:
//
//	A  apimdev up --detach (cold) → first green call; then warm re-runs of
//	   up, status/version start-up, a backend on the laptop vs the same
//	   program in the cluster (backends.go), promote with traffic, down.
//	B  scripts/bench/manual.sh (kind create, kind load, kubectl apply,
//	   rollout status, port-forward, curl) → first green call; then the
//	   forward comparison on that cluster: NodePort vs kubectl port-forward
//	   vs apimdev forward, keep-alive and new-connection loads.
//
// It prints medians and ratios and, with -write, replaces the generated part
// of BENCHMARKS.md. All traffic goes to 127.0.0.1; every cluster it makes is
// apimdev-bench-* and is deleted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	rounds, requests, newConnRequests, conc, warm int
	write, cache, apimdev, compare, compareLabel  string
	args                                          string // as given, for the report
	timeout                                       time.Duration
	skipPromote, skipLoad, skipRestart            bool
	skipBackends, onlyBackends                    bool
	idle                                          time.Duration // idle.go
	skipIdle                                      bool
}

func main() {
	var o options
	home, _ := os.UserHomeDir()
	flag.IntVar(&o.rounds, "rounds", 5, "A/B rounds (at least 3 for a median worth quoting)")
	flag.IntVar(&o.requests, "requests", 5000, "requests per keep-alive load run")
	flag.IntVar(&o.newConnRequests, "newconn-requests", 1000, "requests per new-connection load run")
	flag.IntVar(&o.conc, "concurrency", 16, "concurrent clients in the load runs")
	flag.IntVar(&o.warm, "warm", 3, "warm re-runs of up per round")
	flag.StringVar(&o.write, "write", "", "update the generated part of this markdown file (BENCHMARKS.md)")
	flag.StringVar(&o.apimdev, "apimdev", "", "use this apimdev binary instead of building the working tree (before/after comparisons)")
	flag.StringVar(&o.compare, "compare", "", "also measure cold and warm up of this apimdev binary in every round (arm C: before/after figures)")
	flag.StringVar(&o.compareLabel, "compare-label", "before", "what to call the -compare binary in the table")
	flag.StringVar(&o.cache, "cache", envOr("APIMDEV_E2E_CACHE", filepath.Join(home, ".cache", "apimdev-e2e")), "the e2e rig's cache")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.skipPromote, "skip-promote", false, "skip promote (quicker runs while tuning)")
	flag.BoolVar(&o.skipLoad, "skip-load", false, "skip the forward load runs (quicker runs while tuning)")
	flag.BoolVar(&o.skipRestart, "skip-restart", false, "skip the Docker engine restart (it stops every container on the machine)")
	flag.BoolVar(&o.skipBackends, "skip-backends", false, "skip the backends phase (a backend on the laptop vs the same program in the cluster)")
	flag.BoolVar(&o.onlyBackends, "only-backends", false, "run only apimdev up and the backends phase (no manual arm, warm runs, restart or promote); prints its table, writes nothing")
	flag.DurationVar(&o.idle, "idle", 3*time.Minute, "each idle window (dev, paused, prod, plain kind), once, in round 1")
	flag.BoolVar(&o.skipIdle, "skip-idle", false, "skip the idle, pause and auto-pause phase")
	flag.Parse()
	o.args = strings.Join(os.Args[1:], " ")
	keepInheritedFDs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := mainErr(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func mainErr(ctx context.Context, o options) error {
	if o.rounds < 1 || o.requests < 1 || o.conc < 1 {
		return errors.New("-rounds, -requests and -concurrency must be positive")
	}
	if o.onlyBackends && o.skipBackends {
		return errors.New("-only-backends and -skip-backends together leave nothing to run")
	}
	if o.onlyBackends {
		// A partial run: the generated part of BENCHMARKS.md is one report
		// of a whole run, which this would replace by a fragment.
		o.warm, o.skipRestart, o.skipPromote, o.write, o.compare = 0, true, true, "", ""
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	release, err := takeLock(ctx)
	if err != nil {
		return err
	}
	defer release()
	if _, err := os.Stat(filepath.Join(root, "scripts", "bench", "manual.sh")); err != nil {
		return errors.New("run from the repository root (make bench)")
	}
	tmp, err := os.MkdirTemp("", "apimdev-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r, err := prepare(ctx, root, tmp, o.cache, o.apimdev, logf)
	if err != nil {
		return err
	}
	b := &bench{o: o, r: r}
	desc := machine(ctx, r)
	for _, c := range []string{clusterUp, clusterManual} { // leftovers of an interrupted run
		r.deleteCluster(c)
	}
	if err := r.startConfigService(ctx); err != nil {
		return fmt.Errorf("config service: %w", err)
	}
	defer r.stopConfigService()
	defer b.cleanup()
	started := time.Now()
	arms := "AB"
	if o.onlyBackends {
		arms = "A"
	} else if o.compare != "" {
		arms = "ACB"
	}
	for i := 1; i <= o.rounds; i++ {
		k := (i - 1) % len(arms) // a different arm goes first each round
		rd := &round{N: i, Order: arms[k:] + arms[:k]}
		b.rounds = append(b.rounds, rd)
		for _, arm := range rd.Order {
			var err error
			switch arm {
			case 'A':
				err = b.upArm(ctx, rd)
			case 'C':
				err = b.compareArm(ctx, rd)
			default:
				err = b.manualArm(ctx, rd)
			}
			if err != nil {
				return fmt.Errorf("round %d, arm %c: %w", i, arm, err)
			}
		}
	}
	if o.onlyBackends {
		fmt.Println(b.backendTable())
		return nil
	}
	rep := b.report(desc, time.Since(started))
	fmt.Println(rep)
	if o.write != "" {
		return writeSection(o.write, rep)
	}
	return nil
}

type bench struct {
	o      options
	r      *rig
	rounds []*round
	bgs    []*bg
	homes  []string // apimdev state directories whose forward may still run
}

// cleanup stops every process the bench started and deletes its clusters.
func (b *bench) cleanup() {
	for _, p := range b.bgs {
		p.stop()
	}
	for _, h := range b.homes {
		b.down(h)
	}
	b.r.deleteCluster(clusterUp)
	b.r.deleteCluster(clusterManual)
}

// stage is one named part of a cold run.
type stage struct {
	Name string
	Dur  time.Duration
}

// coldRun is one arm's cold start: from nothing to the first green call.
type coldRun struct {
	Total  time.Duration // start → the bench's own call answered 200
	Cmd    time.Duration // the command alone
	Stages []stage
	RSSKB  int64
	K8s    k8sTimes // ttk8s.go: API server and DNS answering
}

type promoteRun struct {
	Wall        time.Duration
	Rollout     float64 // seconds, as promote reports it
	Sent, Fail  int
	P50, P99    float64 // ms
	RSSKB       int64
	ChecksOK    int
	ChecksTotal int
}

// upRun is one binary's cold `up` and its warm re-runs.
type upRun struct {
	coldRun
	Warm      []time.Duration
	WarmRSSKB int64
	WarmNotes []string // anything a warm re-run did not find unchanged
	WarmSteps []stage
}

type round struct {
	N            int
	Order        string
	Up, Cmp      upRun
	Manual       coldRun
	Status, Ver  []time.Duration
	StatusRSSKB  int64
	Promote      *promoteRun
	Restart      *restartRun
	Down         time.Duration
	CmpRestart   *restartRun   // the -compare binary's setup through the same engine restart
	CmpDown      time.Duration // and its `down`
	KindDelete   time.Duration // `kind delete cluster` of the manual arm's cluster: down's floor
	Loads        []namedLoad
	Backends     *backendRun
	FwdRSSKB     int64
	KubectlRSSKB int64
	Idle         *idleRun // idle.go, round 1
}

type namedLoad struct {
	Via string
	loadResult
}

var keyHeader = http.Header{"Ocp-Apim-Subscription-Key": {subKey}}

func echoURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/echo/bench", port) }

// green is the bench's own check that the gateway answers through port, with
// its configuration loaded: the stand-in's echo API behind a subscription key.
func green(ctx context.Context, port int) error {
	_, err := waitHTTP(ctx, echoURL(port), keyHeader, 200, 30*time.Second)
	return err
}

func (b *bench) upHome(n int) string { return filepath.Join(b.r.tmp, "up-"+strconv.Itoa(n)) }

func (b *bench) upArgs(cmd string) []string {
	return []string{cmd, "--detach", "-o", "json", "--cluster-name", clusterUp, "--name", gwName, "--endpoint", endpoint,
		"--image", b.r.image, "--node-image", b.r.nodeImage, "--http-port", strconv.Itoa(portUpHTTP),
		"--https-port", strconv.Itoa(portUpHTTPS), "--timeout", "4m"}
}

func (b *bench) upEnv(n int) []string {
	return append(b.r.isolated(b.upHome(n)), "APIMDEV_TOKEN_FILE="+b.r.tokenFile, "APIMDEV_CLUSTER_NAME="+clusterUp)
}

// upArm: cold up, warm re-runs, start-up times, promote, down.
func (b *bench) upArm(ctx context.Context, rd *round) error {
	env := b.upEnv(rd.N)
	b.homes = append(b.homes, b.upHome(rd.N))
	defer b.r.deleteCluster(clusterUp)
	defer b.down(b.upHome(rd.N))
	var err error
	if rd.Up, err = b.coldAndWarm(ctx, rd, b.r.apimdev, env, "apimdev up"); err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		res, err := run(ctx, time.Minute, env, b.r.apimdev, "status")
		if err != nil {
			return fmt.Errorf("apimdev status: %w", err)
		}
		if !strings.Contains(res.Out, "1/1 ready") {
			return fmt.Errorf("apimdev status does not say 1/1 ready:\n%s", res.Out)
		}
		rd.Status = append(rd.Status, res.Dur)
		rd.StatusRSSKB = max(rd.StatusRSSKB, res.MaxRSSKB)
		res, err = run(ctx, time.Minute, env, b.r.apimdev, "version")
		if err != nil {
			return err
		}
		rd.Ver = append(rd.Ver, res.Dur)
	}
	logf("round %d: apimdev status %s, version %s", rd.N, durs(rd.Status), durs(rd.Ver))
	b.rssFloor(ctx, rd, env)
	if err := b.idleDev(ctx, rd, env); err != nil {
		return fmt.Errorf("idle: %w", err)
	}

	if !b.o.skipBackends {
		if err := b.backends(ctx, rd, env); err != nil {
			return fmt.Errorf("backends: %w", err)
		}
	}

	if !b.o.skipRestart {
		kc := filepath.Join(b.upHome(rd.N), "state", "clusters", clusterUp, "kubeconfig")
		if rd.Restart, err = b.engineRestart(ctx, rd, env, kc, b.r.apimdev); err != nil {
			return err
		}
	}

	if !b.o.skipPromote {
		p, err := b.promote(ctx, env)
		if err != nil {
			return err
		}
		rd.Promote = p
		logf("round %d: promote: rollout %.1fs (command %.1fs), traffic %d sent, %d failed, p50 %.1fms, p99 %.1fms, checks %d/%d",
			rd.N, p.Rollout, p.Wall.Seconds(), p.Sent, p.Fail, p.P50, p.P99, p.ChecksOK, p.ChecksTotal)
	}
	if err := b.idleProd(ctx, rd, env); err != nil {
		return fmt.Errorf("idle: %w", err)
	}

	res, err := run(ctx, 3*time.Minute, env, b.r.apimdev, "down")
	if err != nil {
		return fmt.Errorf("apimdev down: %w", err)
	}
	rd.Down = res.Dur
	for _, l := range strings.Split(res.Out+"\n"+res.Err, "\n") {
		if strings.Contains(l, "forward") {
			logf("round %d: down: %s", rd.N, strings.TrimSpace(l))
		}
	}
	if err := portsReleased(ctx, []int{portUpHTTP, portUpHTTPS}, 5*time.Second, filepath.Dir(b.r.tmp)); err != nil {
		return err
	}
	return b.idlePlain(ctx, rd)
}

// coldAndWarm runs `up` cold (to the first green call), then warm re-runs.
func (b *bench) coldAndWarm(ctx context.Context, rd *round, bin string, env []string, what string) (upRun, error) {
	var u upRun
	start := time.Now()
	watch := b.watchK8s(ctx, clusterUp, start, 8*time.Minute)
	defer watch.stop()
	res, err := run(ctx, 8*time.Minute, env, bin, b.upArgs("up")...)
	if err != nil {
		return u, fmt.Errorf("%s (cold): %w", what, err)
	}
	if err := green(ctx, portUpHTTP); err != nil {
		return u, err
	}
	u.coldRun = coldRun{Total: time.Since(start), Cmd: res.Dur, Stages: upSteps(res.Out), RSSKB: res.MaxRSSKB, K8s: watch.finish(30 * time.Second)}
	logf("round %d: %s (cold) → first green call %.1fs (%s)", rd.N, what, u.Total.Seconds(), stagesText(u.Stages))
	for i := 0; i < b.o.warm; i++ {
		res, err := run(ctx, 2*time.Minute, env, bin, b.upArgs("up")...)
		if err != nil {
			return u, fmt.Errorf("%s (warm): %w", what, err)
		}
		u.Warm = append(u.Warm, res.Dur)
		u.WarmRSSKB = max(u.WarmRSSKB, res.MaxRSSKB)
		if !strings.Contains(res.Out, "0 object(s) changed") {
			u.WarmNotes = append(u.WarmNotes, "deploy changed objects")
		}
		if !strings.Contains(res.Out, "already on the node") {
			u.WarmNotes = append(u.WarmNotes, "image reloaded")
		}
		u.WarmSteps = append(u.WarmSteps, upSteps(res.Out)...)
	}
	if err := green(ctx, portUpHTTP); err != nil {
		return u, err
	}
	logf("round %d: %s (warm) %s", rd.N, what, durs(u.Warm))
	return u, nil
}

// compareArm is the cold and warm `up` of another apimdev binary (-compare):
// before/after figures of a change, measured in the same run.
func (b *bench) compareArm(ctx context.Context, rd *round) error {
	home := filepath.Join(b.r.tmp, "cmp-"+strconv.Itoa(rd.N))
	env := append(b.r.isolated(home), "APIMDEV_TOKEN_FILE="+b.r.tokenFile, "APIMDEV_CLUSTER_NAME="+clusterUp)
	b.homes = append(b.homes, home)
	defer b.r.deleteCluster(clusterUp)
	defer b.down(home)
	var err error
	if rd.Cmp, err = b.coldAndWarm(ctx, rd, b.o.compare, env, "apimdev up ["+b.o.compareLabel+"]"); err != nil {
		return err
	}
	if !b.o.skipRestart {
		kc := filepath.Join(home, "state", "clusters", clusterUp, "kubeconfig")
		if rd.CmpRestart, err = b.engineRestart(ctx, rd, env, kc, b.o.compare); err != nil {
			return err
		}
	}
	res, err := run(ctx, 3*time.Minute, env, b.o.compare, "down")
	rd.CmpDown = res.Dur
	return err
}

func (b *bench) promote(ctx context.Context, env []string) (*promoteRun, error) {
	res, err := run(ctx, 12*time.Minute, env, b.r.apimdev, "promote", "--yes", "-o", "json", "--cluster-name", clusterUp,
		"--traffic-path", "/echo/bench", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}", "--timeout", "8m")
	if err != nil {
		return nil, fmt.Errorf("apimdev promote: %w", err)
	}
	p := &promoteRun{Wall: res.Dur, RSSKB: res.MaxRSSKB}
	for _, l := range strings.Split(res.Out, "\n") {
		var v struct {
			Profile        string  `json:"profile"`
			RolloutSeconds float64 `json:"rolloutSeconds"`
			Traffic        *struct {
				Sent   int     `json:"sent"`
				Failed int     `json:"failed"`
				P50    float64 `json:"p50Ms"`
				P99    float64 `json:"p99Ms"`
			} `json:"traffic"`
			Checks []struct {
				OK bool `json:"ok"`
			} `json:"checks"`
		}
		if json.Unmarshal([]byte(l), &v) != nil || v.Profile == "" {
			continue
		}
		p.Rollout = v.RolloutSeconds
		if v.Traffic != nil {
			p.Sent, p.Fail, p.P50, p.P99 = v.Traffic.Sent, v.Traffic.Failed, v.Traffic.P50, v.Traffic.P99
		}
		p.ChecksTotal = len(v.Checks)
		for _, c := range v.Checks {
			if c.OK {
				p.ChecksOK++
			}
		}
		return p, nil
	}
	return nil, fmt.Errorf("apimdev promote printed no result:\n%s", res.tail(10))
}

// down stops a detached forward and deletes the cluster, through apimdev.
func (b *bench) down(home string) {
	env := append(b.r.isolated(home), "APIMDEV_CLUSTER_NAME="+clusterUp)
	if _, err := os.Stat(filepath.Join(home, "state", "clusters", clusterUp)); err == nil {
		_, _ = run(context.Background(), 3*time.Minute, env, b.r.apimdev, "down")
	}
}

const dnsStage = "(deploy: waiting for cluster DNS)"

// upSteps reads the step durations from up's JSON events, and how long the
// deploy step waited for cluster DNS.
func upSteps(out string) []stage {
	var ss []stage
	sawDNS := false
	for _, l := range strings.Split(out, "\n") {
		var e struct {
			Step    string  `json:"step"`
			State   string  `json:"state"`
			Elapsed float64 `json:"elapsed"`
			Detail  string  `json:"detail"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		var dns float64
		switch {
		case e.State == "done":
			if e.Step == "deploy" && !sawDNS { // ready at once (or a build without the wait)
				ss = append(ss, stage{dnsStage, 0})
			}
			ss = append(ss, stage{e.Step, time.Duration(e.Elapsed * float64(time.Second))})
		case e.State == "progress" && e.Step == "deploy":
			if _, err := fmt.Sscanf(e.Detail, "cluster DNS ready after %fs", &dns); err == nil {
				ss, sawDNS = append(ss, stage{dnsStage, time.Duration(dns * float64(time.Second))}), true
			}
		}
	}
	return ss
}

// manualSteps reads manual.sh's "manual: <stage> <seconds>" lines.
func manualSteps(errs string) []stage {
	var ss []stage
	for _, l := range strings.Split(errs, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "manual:" {
			if s, err := strconv.ParseFloat(f[2], 64); err == nil {
				ss = append(ss, stage{f[1], time.Duration(s * float64(time.Second))})
			}
		}
	}
	return ss
}

func stagesText(ss []stage) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s %.1fs", s.Name, s.Dur.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func durs(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2fs", d.Seconds()))
	}
	return strings.Join(parts, " ")
}

// manualArm: the manual script cold, then the forward comparison on its cluster.
func (b *bench) manualArm(ctx context.Context, rd *round) error {
	dir := filepath.Join(b.r.tmp, "manual-"+strconv.Itoa(rd.N))
	kubeconfig := filepath.Join(dir, "kubeconfig")
	env := append(b.r.isolated(dir),
		"KIND="+b.r.kind, "KUBECTL="+b.r.kubectl, "CLUSTER="+clusterManual, "NODE_IMAGE="+b.r.nodeImage, "IMAGE="+b.r.image,
		"PORTAL_YAML="+b.r.portalYAML, "KUBECONFIG_FILE="+kubeconfig, "HTTP_PORT="+strconv.Itoa(portManHTTP),
		"HTTPS_PORT="+strconv.Itoa(portManHTTPS), "PROBE_PATH="+probePath, "PF_LOG="+filepath.Join(dir, "pf.log"),
		"KIND_CONFIG="+b.r.kindConfig)
	defer b.r.deleteCluster(clusterManual)

	start := time.Now()
	watch := b.watchK8s(ctx, clusterManual, start, 8*time.Minute)
	defer watch.stop()
	res, err := run(ctx, 8*time.Minute, env, "bash", filepath.Join(b.r.root, "scripts", "bench", "manual.sh"))
	defer killGroup(res.PID) // the script's kubectl port-forward
	if err != nil {
		return fmt.Errorf("manual baseline: %w", err)
	}
	if err := green(ctx, portManHTTP); err != nil {
		return err
	}
	rd.Manual = coldRun{Total: time.Since(start), Cmd: res.Dur, Stages: manualSteps(res.Err), K8s: watch.finish(30 * time.Second)}
	logf("round %d: manual (kind + kubectl) → first green call %.1fs (%s)", rd.N, rd.Manual.Total.Seconds(), stagesText(rd.Manual.Stages))
	killGroup(res.PID)
	if !b.o.skipLoad {
		if err := b.forwardLoads(ctx, rd, dir, kubeconfig); err != nil {
			return err
		}
	}
	b.timedKindDelete(ctx, rd)
	return nil
}

// forwardLoads compares, on the manual cluster and to the same pod, the
// NodePort through kind's extraPortMapping (no tunnel: the floor), kubectl
// port-forward, and apimdev's forward.
func (b *bench) forwardLoads(ctx context.Context, rd *round, dir, kubeconfig string) error {
	kenv := b.r.isolated(dir)
	patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/ports/0/nodePort","value":%d}]`, nodePort)
	if _, err := run(ctx, time.Minute, kenv, b.r.kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "patch", "service", liveService,
		"--type=json", "-p", patch); err != nil {
		return err
	}
	pf, err := startBG(kenv, filepath.Join(dir, "pf-load.log"), b.r.kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "port-forward",
		"--address", "127.0.0.1", "svc/"+liveService, fmt.Sprintf("%d:80", portPFHTTP), fmt.Sprintf("%d:443", portPFHTTPS))
	if err != nil {
		return err
	}
	b.bgs = append(b.bgs, pf)
	defer pf.stop()
	// apimdev's forward both ways: through the API server (what it does on
	// a cluster it did not make), and by the direct path (--via node: the
	// node's published ports, as on a cluster apimdev creates; the manual
	// cluster publishes them the same way but has no apimdev marker).
	startFwd := func(name, via string, httpPort, httpsPort int) (*bg, error) {
		fwd, err := startBG(b.r.isolated(filepath.Join(dir, name)), filepath.Join(dir, name+".log"), b.r.apimdev, "forward", "--cluster-name", clusterManual,
			"--kubeconfig", kubeconfig, "--name", gwName, "--namespace", namespace, "--endpoint", endpoint,
			"--http-port", strconv.Itoa(httpPort), "--https-port", strconv.Itoa(httpsPort), "--via", via)
		if err != nil {
			return nil, err
		}
		b.bgs = append(b.bgs, fwd)
		return fwd, nil
	}
	fwd, err := startFwd("forward", "tunnel", portFwdHTTP, portFwdHTTPS)
	if err != nil {
		return err
	}
	defer fwd.stop()
	directFwd, err := startFwd("forward-direct", "node", portDirHTTP, portDirHTTPS)
	if err != nil {
		return err
	}
	defer directFwd.stop()
	paths := []struct {
		via  string
		port int
		pid  int // the forwarding process, for its CPU time; 0: none of ours
	}{{viaNodePort, portNodePort, 0}, {viaKubectl, portPFHTTP, pf.pid()}, {viaTunnel, portFwdHTTP, fwd.pid()}, {viaDirect, portDirHTTP, directFwd.pid()}}
	for _, p := range paths {
		if err := green(ctx, p.port); err != nil {
			return fmt.Errorf("%s: %w", p.via, err)
		}
	}
	// The direct path is used once its probe answered: wait for its log
	// line, so its figures are the direct path's and not the fallback's.
	if err := waitLog(ctx, filepath.Join(dir, "forward-direct.log"), "direct path up", 30*time.Second); err != nil {
		return err
	}
	for _, keep := range []bool{true, false} {
		n := b.o.requests
		if !keep {
			n = b.o.newConnRequests
		}
		for i := range paths {
			p := paths[(i+rd.N-1)%len(paths)] // a different path goes first each round
			url := echoURL(p.port)
			if _, err := load(ctx, url, keyHeader, 200, b.o.conc, keep, time.Minute); err != nil { // warm-up
				return fmt.Errorf("%s warm-up: %w", p.via, err)
			}
			cpu0 := cpuTime(p.pid)
			lr, err := load(ctx, url, keyHeader, n, b.o.conc, keep, 3*time.Minute)
			if err != nil {
				return fmt.Errorf("%s: %w", p.via, err)
			}
			if p.pid != 0 {
				lr.ProxyCPU = cpuTime(p.pid) - cpu0
			}
			rd.Loads = append(rd.Loads, namedLoad{p.via, lr})
			logf("round %d: %-28s %-10s %5d req, %d failed, p50 %.2fms, p99 %.2fms, %.0f req/s, forwarder CPU %.0f µs/req", rd.N, p.via, connMode(keep),
				lr.Sent, lr.Failed, ms(lr.P50), ms(lr.P99), lr.RPS(), float64(lr.ProxyCPU.Microseconds())/float64(max(1, lr.Sent)))
		}
	}
	rd.FwdRSSKB = max(vmHWM(fwd.pid()), vmHWM(directFwd.pid()))
	rd.KubectlRSSKB = vmHWM(pf.pid())
	return nil
}

func connMode(keep bool) string {
	if keep {
		return "keep-alive"
	}
	return "new conn"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
