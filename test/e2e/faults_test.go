//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFaults is the fault matrix of issue 6, run for real: a real Docker
// engine, real kind clusters, the stand-in gateway. Each case asserts the
// exit code, the user-facing message (what is wrong and the fix) and the
// state left behind, and records its measured figure; the figures are
// printed at the end.
//
// Clusters are named apimdev-fault-* and ports are 26080-26085 / 26443-26447,
// so this suite never collides with TestE2E. Run it alone on the rig:
//
//	flock /tmp/apimdev-rig.lock scripts/e2e/run.sh -run TestFaults
func TestFaults(t *testing.T) {
	s := &suite{tl: buildTools(t)}
	// The stand-in prints "GatewayKey <token>"; the cases add the prefix
	// themselves where they paste it.
	s.token = strings.TrimPrefix(s.tl.mintToken(t, ""), "GatewayKey ")
	s.expired = strings.TrimPrefix(s.tl.mintToken(t, "202001010000"), "GatewayKey ")
	s.rotated = strings.TrimPrefix(s.tl.mintToken(t, time.Now().UTC().Add(20*24*time.Hour).Format("200601021504")), "GatewayKey ")
	s.scan = newScanner(signature(s.token), signature(s.expired), signature(s.rotated))
	s.ps = s.scan.sampleProcesses(200 * time.Millisecond)
	t.Cleanup(func() {
		s.ps.end()
		t.Logf("\n%s", s.report())
	})
	start := time.Now()
	s.run(t, "01 Docker unreachable", s.dockerUnreachable)
	s.run(t, "02 local port taken", s.portTaken)
	s.run(t, "03 malformed tokens", s.malformedTokens)
	s.run(t, "shared cluster", s.sharedCluster)
	s.run(t, "07 Ctrl-C during each step of up", s.interrupts)
	s.run(t, "09 a cluster of the same name made by someone else", s.foreignCluster)
	s.run(t, "11 the canary appears nowhere", s.canaryScan)
	s.figure("--", "suite wall time", "%s", time.Since(start).Round(time.Second))
}

// suite is what TestFaults's cases share: the built binaries, the tokens,
// the canary scanner and the figures for the report.
type suite struct {
	tl                      *tools
	token, expired, rotated string // the canaries are their signatures
	scan                    *scanner
	ps                      *psSampler
	mu                      sync.Mutex
	rigs                    []*rig
	figures                 []figure
	crashImageRef           string
}

type figure struct{ item, what, value string }

func signature(tok string) string { return tok[strings.LastIndex(tok, "&")+1:] }

func (s *suite) figure(item, what, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.figures = append(s.figures, figure{item, what, fmt.Sprintf(format, args...)})
}

func (s *suite) run(t *testing.T, name string, f func(*testing.T)) bool {
	start := time.Now()
	ok := t.Run(name, f)
	s.figure("--", "time: "+name, "%s", time.Since(start).Round(100*time.Millisecond))
	return ok
}

func (s *suite) report() string {
	var b strings.Builder
	b.WriteString("fault matrix figures:\n")
	for _, f := range s.figures {
		fmt.Fprintf(&b, "  %-3s %-58s %s\n", f.item, f.what, f.value)
	}
	return b.String()
}

// rig makes an isolated user for one case, with the suite's canary token,
// and makes sure whatever it creates is gone when the case ends: its files
// are scanned for the canary first, then `apimdev down`, then kind itself
// for anything apimdev would not delete.
func (s *suite) rig(t *testing.T, o rigOptions) *rig {
	if o.token == "" {
		o.token = s.token
	}
	r := newRig(t, s.tl, o)
	s.mu.Lock()
	s.rigs = append(s.rigs, r)
	s.mu.Unlock()
	t.Cleanup(func() {
		s.scan.tree(r.state)
		s.scan.tree(r.home)
		if len(nodeContainers(t, r.cluster)) > 0 {
			r.apimdev(t, "down")
		}
		if len(nodeContainers(t, r.cluster)) > 0 {
			kc, _ := os.MkdirTemp("", "apimdev-fault-kind-")
			exec.Command(r.kind, "delete", "cluster", "--name", r.cluster, "--kubeconfig", filepath.Join(kc, "kubeconfig")).Run()
			os.RemoveAll(kc)
		}
		for _, pid := range forwardPIDs(r) {
			syscall.Kill(pid, syscall.SIGTERM)
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile(filepath.Join("artifacts", "faults-"+r.cluster+"-transcript.txt"), r.transcript.Bytes(), 0o644)
		}
	})
	return r
}

// nodeContainers lists the node containers of a kind cluster, running or not.
func nodeContainers(t *testing.T, cluster string) []string {
	b, err := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+cluster, "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(b))
}

// forwardPIDs finds this rig's background forwards in the process list.
func forwardPIDs(r *rig) []int {
	b, _ := exec.Command("ps", "-eo", "pid=,args=").Output()
	var pids []int
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[1] == r.bin && f[2] == "forward" && strings.Contains(l, "--cluster-name "+r.cluster+" ") {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func mustNotContain(t *testing.T, what, text string, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(text, w) {
			t.Errorf("%s should not say %q:\n%s", what, w, text)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nothingCreated asserts a failed up left no cluster, no kubeconfig, no
// remembered configuration, no forward, and the user's kubeconfig as it was.
func (r *rig) nothingCreated(t *testing.T, userBefore []byte) {
	t.Helper()
	if n := nodeContainers(t, r.cluster); len(n) > 0 {
		t.Errorf("node containers were created: %v", n)
	}
	for _, f := range []string{"kubeconfig", "record.json", "forward.json", "forward.log"} {
		if _, err := os.Stat(filepath.Join(r.state, "clusters", r.cluster, f)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed preflight (%v)", f, err)
		}
	}
	if after, _ := os.ReadFile(r.userKubeconfig); !bytes.Equal(after, userBefore) {
		t.Errorf("~/.kube/config changed:\n%s", after)
	}
}

// 1. Docker stopped. The real engine keeps running (other suites use it):
// DOCKER_HOST points at a socket nothing listens on, which is what every
// Docker client sees when the daemon is stopped.
func (s *suite) dockerUnreachable(t *testing.T) {
	r := s.rig(t, rigOptions{cluster: "apimdev-fault-none", httpPort: "26080", httpsPort: "26443"})
	dead := "DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "docker.sock")
	userBefore := readFile(t, r.userKubeconfig)
	start := time.Now()
	code, _, errs := r.run(t, context.Background(), []string{dead}, append([]string{"up", "--detach"}, r.common()...)...)
	d := time.Since(start)
	s.figure("1", "Docker unreachable: up fails after", "%s (limit 5s)", d.Round(time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "up's stderr", errs, "✗ preflight", "nothing was created", "✗ docker: the Docker engine does not answer",
		"fix: start Docker", "set DOCKER_HOST")
	if d > 5*time.Second {
		t.Errorf("took %s to fail; want under 5s", d)
	}
	r.nothingCreated(t, userBefore)

	// The same failure for a machine: JSON lines, the last one the failed
	// step with its fix.
	code, out, _ := r.run(t, context.Background(), []string{dead}, append([]string{"up", "-o", "json"}, r.common()...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct{ Step, State, Detail, Hint string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || code != 1 || last.Step != "preflight" || last.State != "failed" ||
		!strings.Contains(last.Detail, "Docker engine does not answer") {
		t.Errorf("-o json: exit %d, last line %+v (%v)\n%s", code, last, err, out)
	}

	// doctor still writes its bundle, and says what it could not collect.
	bundle := filepath.Join(r.home, "doctor-no-docker.tar.gz")
	start = time.Now()
	code, out, errs = r.run(t, context.Background(), []string{dead}, "doctor", "--bundle", bundle)
	if code != 0 || strings.TrimSpace(out) != bundle {
		t.Fatalf("doctor without Docker: exit %d\n%s\n%s", code, out, errs)
	}
	files := readBundle(t, bundle)
	mustContain(t, "preflight.txt", files["preflight.txt"], "✗ docker", "start Docker")
	mustContain(t, "README.txt", files["README.txt"], "incomplete")
	s.figure("14", "doctor with Docker unreachable", "bundle of %d files in %s", len(files), time.Since(start).Round(time.Millisecond))
}

// 2. A local port taken by another process (a stand-in config service
// bound to 127.0.0.1:26080).
func (s *suite) portTaken(t *testing.T) {
	r := s.rig(t, rigOptions{cluster: "apimdev-fault-none", httpPort: "26080", httpsPort: "26443"})
	holder := exec.Command(s.tl.standin, "config-service")
	holder.Env = append(os.Environ(), "STANDIN_GATEWAY_KEY="+gatewayKey, "STANDIN_CONFIG_HTTPS_ADDR=127.0.0.1:"+r.httpPort, "STANDIN_CONFIG_HTTP_ADDR=")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	for deadline := time.Now().Add(10 * time.Second); !portOpen(r.httpPort); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the holder did not bind %s", r.httpPort)
		}
	}
	userBefore := readFile(t, r.userKubeconfig)
	start := time.Now()
	code, _, errs := r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...)
	d := time.Since(start)
	s.figure("2", "port 26080 taken: up fails after", "%s, names the holder (pid %d)", d.Round(time.Millisecond), holder.Process.Pid)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "up's stderr", errs, "✗ preflight", "nothing was created",
		fmt.Sprintf("local port %s (127.0.0.1:%s) is already in use by standin-gateway (pid %d)", r.httpPort, r.httpPort, holder.Process.Pid),
		"--http-port 16080")
	r.nothingCreated(t, userBefore)
	// The suggested fix works: another port passes the check.
	code, out, errs := r.apimdev(t, append(append([]string{"preflight"}, r.common()...), "--http-port", "16080")...)
	if code != 0 || !strings.Contains(out, "✓ ports") {
		t.Errorf("preflight --http-port 16080 (the suggested port): exit %d\n%s\n%s", code, out, errs)
	}
}

// 3. Tokens pasted wrong: missing parts and bad base64 are refused before
// anything is created, without quoting the token; quotes, the GatewayKey
// prefix and line ends are cleaned. (The expired token is in case 9, where a
// fresh gateway starts with it; the cleaned token is checked byte for byte in
// the shared cluster's Secret.)
func (s *suite) malformedTokens(t *testing.T) {
	r := s.rig(t, rigOptions{cluster: "apimdev-fault-none", httpPort: "26080", httpsPort: "26443"})
	sig := signature(s.token)
	exp := time.Now().Add(720 * time.Hour).UTC().Format("200601021504")
	for _, tc := range []struct {
		name, text string
		ok         bool
		want       string
	}{
		{"no signature", gwName + "&" + exp + "\n", false, "the token has 2 part(s) separated by '&', expected 3"},
		{"no gateway id", "&" + exp + "&" + sig, false, "the token's first part (the gateway id) is empty"},
		{"signature not base64", gwName + "&" + exp + "&" + sig[:40] + "*!%", false, "the token's signature is not valid base64"},
		{"signature cut off", gwName + "&" + exp + "&" + sig[:len(sig)-3], false, "the token's signature is not valid base64 (was part of it cut off?)"},
		{"double quotes, prefix, newline", "\"GatewayKey " + s.token + "\"\n", true, ""},
		{"single quotes and CRLF", "'" + s.token + "'\r\n", true, ""},
		{"trailing blank lines", s.token + "\n\n\n", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "token")
			os.WriteFile(f, []byte(tc.text), 0o600)
			env := []string{"APIMDEV_TOKEN_FILE=" + f}
			if tc.ok {
				code, out, errs := r.run(t, context.Background(), env, append([]string{"preflight"}, r.common()...)...)
				if code != 0 || !strings.Contains(out, "✓ token") || !strings.Contains(out, "gateway contoso-gw, expires in") {
					t.Errorf("exit %d\n%s\n%s", code, out, errs)
				}
				return
			}
			userBefore := readFile(t, r.userKubeconfig)
			start := time.Now()
			code, out, errs := r.run(t, context.Background(), env, append([]string{"up", "--detach"}, r.common()...)...)
			s.figure("3", "token "+tc.name+": refused after", "%s", time.Since(start).Round(time.Millisecond))
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			mustContain(t, "up's stderr", errs, "✗ preflight", "nothing was created", "✗ token", tc.want, "fix: copy the whole token from the Azure portal")
			mustNotContain(t, "up's output", out+errs, sig[:40], sig[:len(sig)-3])
			r.nothingCreated(t, userBefore)
		})
	}
}

// sharedCluster runs the cases that need a running gateway on one cluster.
// Those that break a gateway (4, 5) use a namespace and gateway of their own,
// so the shared gateway stays up for the others.
func (s *suite) sharedCluster(t *testing.T) {
	// The token file is pasted with quotes, the prefix and a CRLF (case 3).
	r := s.rig(t, rigOptions{cluster: "apimdev-fault", httpPort: "26081", httpsPort: "26444", tokenFileText: "\"GatewayKey " + s.token + "\"\r\n"})
	userBefore := readFile(t, r.userKubeconfig)
	if !s.run(t, "08 two ups at once on one cluster; the first creates it", func(t *testing.T) { s.concurrentUps(t, r) }) {
		t.Fatal("the shared cluster did not come up; the cases that need it cannot run")
	}
	s.run(t, "03 the pasted token reaches the Secret cleaned", func(t *testing.T) {
		v, err := base64.StdEncoding.DecodeString(r.kubectlOut(t, "-n=apim-gateway", "get", "secret", gwName+"-token", "-o", "jsonpath={.data.value}"))
		if err != nil || string(v) != "GatewayKey "+s.token {
			t.Errorf("the Secret does not hold exactly \"GatewayKey <token>\" (%d bytes, %v)", len(v), err)
		}
	})
	s.run(t, "06 gateway pod deleted under traffic", func(t *testing.T) { s.disrupt(t, r, "pod deleted", "delete", "pod", "{pod}", "--wait=false") })
	s.run(t, "06 gateway pod killed (grace 0) under traffic", func(t *testing.T) {
		s.disrupt(t, r, "pod killed", "delete", "pod", "{pod}", "--wait=false", "--grace-period=0", "--force")
	})
	s.run(t, "06 rollout restart under traffic", func(t *testing.T) { s.disrupt(t, r, "rollout restart", "rollout", "restart", "deployment/"+gwName) })
	s.run(t, "04 an image that does not exist", func(t *testing.T) { s.badImage(t, r) })
	s.run(t, "05 a gateway that crash-loops", func(t *testing.T) { s.crashLoop(t, r) })
	s.run(t, "05 a gateway that never becomes ready", func(t *testing.T) { s.neverReady(t, r) })
	s.run(t, "11 every command with the canary token", func(t *testing.T) { s.commands(t, r) })
	s.run(t, "14 doctor writes a redacted bundle", func(t *testing.T) { s.doctor(t, r) })
	s.run(t, "10 none of the above touched ~/.kube/config", func(t *testing.T) {
		if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, userBefore) {
			t.Errorf("~/.kube/config changed:\n%s", after)
		}
	})
	s.run(t, "10 --kubeconfig ~/.kube/config is refused, the file unchanged", func(t *testing.T) { s.kubeconfigRefused(t, r, userBefore) })
	s.run(t, "10 --merge-kubeconfig changes ~/.kube/config, and only it", func(t *testing.T) { s.merge(t, r, userBefore) })
	s.run(t, "11 promote, token rotate and export with the canary token", func(t *testing.T) { s.promoteRotateExport(t, r) })
	s.run(t, "12 files 0600 and directories 0700", func(t *testing.T) { s.permissions(t, r) })
	// Last before down: a node that does not come back (see stoppedNode)
	// must not take the other cases with it.
	s.run(t, "09 a stopped node container is restarted by up", func(t *testing.T) { s.stoppedNode(t, r) })
	s.scan.tree(r.state) // down removes it
	s.run(t, "10 down removes everything, and the merged context with it", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, "down")
		s.figure("10", "down", "%s", time.Since(start).Round(100*time.Millisecond))
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		if n := nodeContainers(t, r.cluster); len(n) > 0 {
			t.Errorf("node containers left: %v", n)
		}
		if _, err := os.Stat(r.kubeconfig); !os.IsNotExist(err) {
			t.Errorf("apimdev's kubeconfig left behind: %v", err)
		}
		// As `kind delete cluster` does: what the merge added is gone, the
		// user's own entries stay, and the current context no longer points
		// at a deleted cluster. (Without a merge the file is not touched at
		// all: cases 7 and 9 check that byte for byte.)
		after := string(readFile(t, r.userKubeconfig))
		mustContain(t, "~/.kube/config after down", after, "name: users-own", "https://127.0.0.1:1")
		mustNotContain(t, "~/.kube/config after down", after, "kind-apimdev-fault", "current-context: kind-")
		if portOpen(r.httpPort) || len(forwardPIDs(r)) > 0 {
			t.Errorf("the background forward still runs")
		}
	})
}

// 8. Two ups at once: the second (and a down) must refuse at once with the
// holder's pid while the first creates the cluster; afterwards there is one
// cluster and one sound kubeconfig.
func (s *suite) concurrentUps(t *testing.T, r *rig) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cfgErr := make(chan error, 1)
	go func() { cfgErr <- r.deployConfigService(t, ctx) }()
	start := time.Now()
	first := r.start(t, ctx, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "4m"}, r.common()...)...)
	if !first.waitLine("• preflight", time.Minute) {
		code, _, errs, _ := first.wait(time.Minute)
		t.Fatalf("the first up never started preflight: exit %d\n%s", code, errs)
	}
	// The first holds the cluster's lock from before preflight until it ends.
	t0 := time.Now()
	code2, _, errs2 := r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...)
	d2 := time.Since(t0)
	code3, _, errs3 := r.apimdev(t, "down")
	code, out, errs, finished := first.wait(7 * time.Minute)
	cancel() // the config service is in by now, or up failed before it could be
	r.time("up (cold)", start)
	s.figure("8", "second up refused after", "%s (lock wait 2s); cold up took %s", d2.Round(time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	if err := <-cfgErr; err != nil && code == 0 {
		t.Errorf("config service: %v", err)
	}
	if !finished || code != 0 {
		t.Fatalf("the first up: exit %d (finished %v)\n%s\n%s", code, finished, out, errs)
	}
	mustContain(t, "the first up", errs, "✓ preflight", "created apimdev-fault", "✓ deploy", "✓ forward", "✓ smoke")
	holder := fmt.Sprintf("pid %d", first.cmd.Process.Pid)
	for _, c := range []struct {
		what string
		code int
		errs string
	}{{"the second up", code2, errs2}, {"a down meanwhile", code3, errs3}} {
		if c.code != 1 {
			t.Errorf("%s: exit %d, want 1", c.what, c.code)
		}
		mustContain(t, c.what, c.errs, `another apimdev is working on cluster "apimdev-fault"`, holder, "fix: wait for it to finish")
	}
	if d2 > 10*time.Second {
		t.Errorf("the second up took %s to refuse", d2)
	}
	if n := nodeContainers(t, r.cluster); len(n) != 1 {
		t.Errorf("node containers: %v, want exactly one", n)
	}
	if ctxs := strings.Fields(r.kubectlOut(t, "config", "get-contexts", "-o", "name")); !slices.Equal(ctxs, []string{"kind-apimdev-fault"}) {
		t.Errorf("apimdev's kubeconfig contexts: %v", ctxs)
	}
	if nodes := r.kubectlOut(t, "get", "nodes", "-o", "name"); strings.TrimSpace(nodes) != "node/apimdev-fault-control-plane" {
		t.Errorf("nodes: %s", nodes)
	}
}

// readyPods lists the gateway's ready, not terminating pods.
func readyPods(t *testing.T, r *rig, ns, app string) []string {
	out := r.kubectlOut(t, "-n", ns, "get", "pods", "-l", "app="+app, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	var ready []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == "True" {
			ready = append(ready, f[0])
		}
	}
	return ready
}

// 6. A disruption of the gateway while 20 calls/s flow through the
// background forward: the forward must recover by itself.
func (s *suite) disrupt(t *testing.T, r *rig, what string, kubectlArgs ...string) {
	pods := readyPods(t, r, "apim-gateway", gwName)
	if len(pods) != 1 {
		t.Fatalf("want one ready gateway pod before the disruption, got %v", pods)
	}
	args := []string{"--kubeconfig", r.kubeconfig, "-n=apim-gateway"}
	for _, a := range kubectlArgs {
		args = append(args, strings.ReplaceAll(a, "{pod}", pods[0]))
	}
	errc := make(chan error, 1)
	start := time.Now()
	tr := traffic(t, r.httpPort, 400, 20, 60*time.Second, func(i int) bool {
		if i == 60 {
			go func() {
				b, err := exec.Command(r.kubectl, args...).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, b)
				}
				errc <- err
			}()
			return true
		}
		return false
	})
	if err := <-errc; err != nil {
		t.Fatalf("kubectl %v: %v", kubectlArgs, err)
	}
	reasons := ""
	if len(tr.errors) > 0 {
		reasons = fmt.Sprintf(" %v", tr.errors)
	}
	s.figure("6", what+" under 20 calls/s", "%d of %d failed (%d in flight at the disruption)%s", tr.failed, tr.sent, tr.inFlight, reasons)
	r.time(what+" under traffic", start)
	if !tr.lastOK {
		t.Errorf("the forward did not recover: the last calls failed (%v)", tr.errors)
	}
	// A graceful stop drains the pod and a rollout starts the new pod first:
	// nothing should fail. A hard kill may cost the calls in flight.
	limit := 0
	if what == "pod killed" {
		limit = tr.inFlight + 1
	}
	if tr.failed > limit {
		t.Errorf("%d of %d calls failed during %s (allowed %d): %v", tr.failed, tr.sent, what, limit, tr.errors)
	}
	// Settle before the next case: the rollout done, one ready pod, a new one.
	r.kubectlOut(t, "-n=apim-gateway", "rollout", "status", "deployment/"+gwName, "--timeout=120s")
	deadline := time.Now().Add(90 * time.Second)
	for {
		now := readyPods(t, r, "apim-gateway", gwName)
		if len(now) == 1 && now[0] != pods[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not settle on one new ready pod: %v (was %s)", now, pods[0])
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// brokenGateway runs up for a second gateway, in a namespace of its own on
// the shared cluster, that cannot become ready; it returns what up said and
// how long it took. The namespace is deleted afterwards.
func (s *suite) brokenGateway(t *testing.T, r *rig, name, image, ep, timeout string) (int, string, time.Duration) {
	ns := "fault-" + name
	t.Cleanup(func() {
		exec.Command(r.kubectl, "--kubeconfig", r.kubeconfig, "delete", "namespace", ns, "--wait=false").Run()
	})
	// Bounded: should the gateway become ready after all, up would forward
	// in the foreground until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	code, _, errs := r.apimdevCtx(t, ctx, "up", "--name", name+"-gw", "--namespace", ns, "--image", image, "--endpoint", ep,
		"--http-port", "26082", "--https-port", "26445", "--timeout", timeout)
	d := time.Since(start)
	// The shared gateway and what up remembers of it are untouched.
	if ready := readyPods(t, r, "apim-gateway", gwName); len(ready) != 1 {
		t.Errorf("the shared gateway is not ready any more: %v", ready)
	}
	// up remembers the gateway it applied, ready or not, so the later
	// commands find it; one cluster holds one remembered gateway. The shared
	// gateway is made the remembered one again the way a user would: up.
	if c, out, e := r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...); c != 0 {
		t.Fatalf("re-running up for the shared gateway: exit %d\n%s\n%s", c, out, e)
	}
	return code, errs, d
}

// 4. An image that does not exist: the node cannot pull it (a registry on
// the node's own loopback that refuses connections, so nothing leaves the
// machine). The deploy step must say ImagePullBackOff, not time out.
func (s *suite) badImage(t *testing.T, r *rig) {
	image := "127.0.0.1:1/apimdev-fault/no-such-gateway:v2"
	code, errs, d := s.brokenGateway(t, r, "badimage", image, endpoint, "2m")
	s.figure("4", "image that does not exist: deploy fails after", "%s (timeout 2m)", d.Round(100*time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "up's stderr", errs, "✗ deploy", "gateway not ready: ImagePullBackOff", image, "fix: check the image name")
	mustNotContain(t, "up's stderr", errs, "not ready after")
	if d > 2*time.Minute {
		t.Errorf("took %s: the deploy timeout is 2m", d)
	}
}

// crashImage builds, once, a tiny FROM scratch image whose program prints a
// line and exits 1 (legacy builder, static binary: nothing is pulled).
func (s *suite) crashImage(t *testing.T) string {
	if s.crashImageRef != "" {
		return s.crashImageRef
	}
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("fault-crashloop (apimdev e2e test image): simulated start-up failure, exiting 1")
	fmt.Fprintln(os.Stderr, "fault-crashloop: giving up")
	os.Exit(1)
}
`
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module faultcrashloop\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY crashloop /crashloop\nENTRYPOINT [\"/crashloop\"]\n"), 0o644)
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "crashloop", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the crash-loop program: %v\n%s", err, b)
	}
	ref := "apimdev-fault/crashloop:e2e"
	img := exec.Command("docker", "build", "-t", ref, dir)
	img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if b, err := img.CombinedOutput(); err != nil {
		t.Fatalf("building the crash-loop image: %v\n%s", err, b)
	}
	s.crashImageRef = ref
	return ref
}

// 5a. A gateway that crash-loops: the error quotes its last log lines, its
// exit code and the pod's events.
func (s *suite) crashLoop(t *testing.T, r *rig) {
	image := s.crashImage(t)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })
	code, errs, d := s.brokenGateway(t, r, "crash", image, endpoint, "2m")
	s.figure("5", "crash-looping gateway: deploy fails after", "%s (timeout 2m)", d.Round(100*time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "up's stderr", errs, "✗ deploy", "gateway not ready: CrashLoopBackOff", "last exit code 1",
		"last log lines:", "| fault-crashloop (apimdev e2e test image): simulated start-up failure, exiting 1",
		"events:", "BackOff", "fix: read the log lines above")
	mustNotContain(t, "up's stderr", errs, "not ready after")
}

// 5b. A gateway that runs but never becomes ready (its configuration
// endpoint is a port nothing listens on): after the deploy timeout the error
// quotes the gateway's log and the failing readiness probe.
func (s *suite) neverReady(t *testing.T, r *rig) {
	code, errs, d := s.brokenGateway(t, r, "unready", r.gatewayImage, "127.0.0.1:1", "30s")
	s.figure("5", "never-ready gateway: deploy fails after", "%s (timeout 30s)", d.Round(100*time.Millisecond))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	mustContain(t, "up's stderr", errs, "✗ deploy", "gateway not ready: NotReady", "not ready after 30s", "readiness probe not passing yet",
		"last log lines:", "stand-in", "events:", "Readiness probe failed", "fix: the readiness probe /status-0123456789abcdef has not passed")
	if d < 30*time.Second || d > 90*time.Second {
		t.Errorf("took %s with a 30s timeout", d)
	}
}

// 11. The commands a user runs, in text and JSON, each with the canary
// token in play; their output is scanned at the end.
func (s *suite) commands(t *testing.T, r *rig) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"smoke", "--smoke-file", "testdata/smoke.yaml"}, "5 passed, 0 failed"},
		{[]string{"smoke", "--smoke-file", "testdata/smoke.yaml", "-o", "json"}, `"failed":0`},
		{[]string{"status"}, "apimdev-fault (ours)"},
		{[]string{"status", "-o", "json"}, `"state":"ours"`},
		{[]string{"render", "--profile", "dev", "-o", "yaml", "--name", gwName, "--endpoint", endpoint}, "&<redacted>"},
		{[]string{"render", "-o", "json", "--name", gwName, "--endpoint", endpoint}, `"kind":"List"`},
		{append([]string{"up", "--detach", "-o", "json", "--smoke-file", "testdata/smoke.yaml"}, r.common()...), `"ready":true`},
		{append([]string{"preflight", "-o", "json"}, r.common()...), "held by apimdev's own forward"},
	} {
		code, out, errs := r.apimdev(t, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("apimdev %s: exit %d, want %q\n%s\n%s", strings.Join(c.args, " "), code, c.want, out, errs)
		}
	}
}

// 14. doctor: a 0600 tar.gz with the version, preflight, events, pods, logs
// and kind's node logs, with the token scrubbed from every file.
func (s *suite) doctor(t *testing.T, r *rig) {
	bundle := filepath.Join(r.home, "apimdev-doctor.tar.gz")
	start := time.Now()
	code, out, errs := r.apimdev(t, "doctor", "--bundle", bundle)
	d := time.Since(start)
	if code != 0 || strings.TrimSpace(out) != bundle {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	info, err := os.Stat(bundle)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode: %v %v", info, err)
	}
	files := readBundle(t, bundle)
	var total int
	for _, b := range files {
		total += len(b)
	}
	m := regexp.MustCompile(`(\d+) redaction\(s\)`).FindStringSubmatch(errs)
	redactions := "?"
	if m != nil {
		redactions = m[1]
	}
	s.figure("14", "doctor bundle", "%d files, %d bytes unpacked (%d packed), %s redaction(s), %s", len(files), total, info.Size(), redactions, d.Round(100*time.Millisecond))
	mustContain(t, "version.txt", files["version.txt"], "apimdev ", "docker engine", "kubernetes v1.34")
	mustContain(t, "preflight.txt", files["preflight.txt"], "✓ docker", "✓ token", "✓ cluster", "held by apimdev's own forward")
	mustContain(t, "events.txt", files["apim-gateway/events.txt"], "Pod/"+gwName+"-")
	mustContain(t, "pods.txt", files["apim-gateway/pods.txt"], "Pod apim-gateway/"+gwName+"-", "Running", "config.service.auth from Secret contoso-gw-token key value")
	mustContain(t, "workloads.txt", files["apim-gateway/workloads.txt"], "Deployment "+gwName+": 1 desired", "Service "+gwName+"-live-traffic")
	mustContain(t, "README.txt", files["README.txt"], "kubernetes  ", "node logs  ")
	mustNotContain(t, "README.txt", files["README.txt"], "incomplete")
	var logs, node []string
	for name := range files {
		switch {
		case strings.HasPrefix(name, "apim-gateway/logs/"):
			logs = append(logs, name)
		case strings.HasPrefix(name, "kind-logs/apimdev-fault-control-plane/"):
			node = append(node, strings.TrimPrefix(name, "kind-logs/apimdev-fault-control-plane/"))
		}
	}
	if len(logs) == 0 {
		t.Errorf("no gateway logs in the bundle")
	}
	for _, want := range []string{"kubelet.log", "containerd.log", "journal.log"} {
		if !slices.Contains(node, want) {
			t.Errorf("kind's node logs lack %s (have %d files)", want, len(node))
		}
	}
	for name, b := range files {
		for _, c := range []string{signature(s.token), signature(s.expired), signature(s.rotated)} {
			for _, f := range leakForms(c) {
				if strings.Contains(b, f) {
					t.Errorf("%s in the bundle holds the token", name)
				}
			}
		}
	}
	// kind wrote its logs world-readable into a private directory, which
	// must be gone.
	if left, _ := filepath.Glob(filepath.Join(r.state, "clusters", r.cluster, "doctor-*")); len(left) > 0 {
		t.Errorf("doctor left %v", left)
	}
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != 0o600 {
			t.Errorf("%s has mode %o in the bundle", h.Name, h.Mode)
		}
		b, _ := io.ReadAll(tr)
		_, rel, _ := strings.Cut(h.Name, "/")
		out[rel] = string(b)
	}
}

// 10. --kubeconfig naming the user's own file, with entries of theirs: up
// refuses in preflight, with the fix, and the file is byte for byte as it
// was (apimdev writes only kubeconfig files it created).
func (s *suite) kubeconfigRefused(t *testing.T, r *rig, userBefore []byte) {
	code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--kubeconfig", r.userKubeconfig}, r.common()...)...)
	if code == 0 {
		t.Fatalf("up wrote over the user's kubeconfig\n%s\n%s", out, errs)
	}
	mustContain(t, "up's stderr", errs, "apimdev writes only kubeconfig files it created", "--merge-kubeconfig")
	if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, userBefore) {
		t.Errorf("~/.kube/config changed:\n%s", after)
	}
	s.figure("10", "--kubeconfig ~/.kube/config", "refused in preflight, file unchanged (%d bytes)", len(userBefore))
}

// 10. --merge-kubeconfig is the one way up writes ~/.kube/config: one
// context added, the user's current context kept, a backup beside it; down
// then takes out what it added.
func (s *suite) merge(t *testing.T, r *rig, userBefore []byte) {
	code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--merge-kubeconfig"}, r.common()...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	after := readFile(t, r.userKubeconfig)
	if bytes.Equal(after, userBefore) {
		t.Fatal("--merge-kubeconfig did not change ~/.kube/config")
	}
	if bak, err := os.ReadFile(r.userKubeconfig + ".apimdev.bak"); err != nil || !bytes.Equal(bak, userBefore) {
		t.Errorf("no backup of the file as it was beside it: %v", err)
	}
	cmd := exec.Command(r.kubectl, "--kubeconfig", r.userKubeconfig, "config", "get-contexts", "-o", "name")
	ctxs, _ := cmd.Output()
	cur, _ := exec.Command(r.kubectl, "--kubeconfig", r.userKubeconfig, "config", "current-context").Output()
	if !strings.Contains(string(ctxs), "users-own") || !strings.Contains(string(ctxs), "kind-apimdev-fault") || strings.TrimSpace(string(cur)) != "users-own" {
		t.Errorf("merged kubeconfig: contexts %q, current %q (the user's own must stay current)", ctxs, cur)
	}
	if info, err := os.Stat(r.userKubeconfig); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("~/.kube/config mode after the merge: %v %v", info, err)
	}
	s.figure("10", "--merge-kubeconfig", "~/.kube/config %d -> %d bytes, current context %s", len(userBefore), len(after), strings.TrimSpace(string(cur)))
}

// 9b. The node container stopped behind apimdev's back: up starts it again,
// and the background forward (still running) carries traffic again.
func (s *suite) stoppedNode(t *testing.T, r *rig) {
	node := r.cluster + "-control-plane"
	ipOf := func() string {
		b, _ := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node).Output()
		return strings.TrimSpace(string(b))
	}
	ipBefore := ipOf()
	if b, err := exec.Command("docker", "stop", "-t", "20", node).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v %s", err, b)
	}
	code, out, _ := r.apimdev(t, "status")
	if code != 0 || !strings.Contains(out, "apimdev-fault (stopped)") {
		t.Errorf("status with the node stopped: exit %d\n%s", code, out)
	}
	start := time.Now()
	code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "3m"}, r.common()...)...)
	d := time.Since(start)
	ipAfter := ipOf()
	s.figure("9", "stopped node: up restarts it and passes smoke in", "%s (node IP %s -> %s)", d.Round(100*time.Millisecond), ipBefore, ipAfter)
	if code != 0 && ipAfter != ipBefore {
		// Docker gives a restarted container the lowest free address, which
		// differs when another container took the old one meanwhile.
		// kindest/node's entrypoint then rewrites the control plane's
		// manifests to the new address; the rig's offline node image does
		// not (scripts/e2e/node/usr/local/bin/entrypoint), so its API server
		// cannot come back.
		t.Fatalf("exit %d: the node's IP changed from %s to %s when it restarted, and the rig's node image does not move the control plane to the new address (kindest/node does)\n%s", code, ipBefore, ipAfter, errs)
	}
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	mustContain(t, "up's stderr", errs, "starting stopped node "+node, "reused apimdev-fault", "✓ deploy", "✓ smoke")
	mustContain(t, "smoke table", out, "5 passed, 0 failed")
	if n := nodeContainers(t, r.cluster); len(n) != 1 {
		t.Errorf("node containers: %v", n)
	}
}

// 11 (and 10, 12). promote to prod and back, token rotate to a third token,
// and export: their output goes through the canary scan, ~/.kube/config stays
// as it was (checked right after), and the export is 0600/0700 without the
// token.
func (s *suite) promoteRotateExport(t *testing.T, r *rig) {
	// The merge case just before added kind-apimdev-fault to ~/.kube/config;
	// promote must change nothing more.
	merged := readFile(t, r.userKubeconfig)
	defer func() {
		if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, merged) {
			t.Errorf("promote, rotate or export changed ~/.kube/config:\n%s", after)
		}
	}()
	traffic := []string{"--traffic-path", "/echo/faults", "--traffic-header", "Ocp-Apim-Subscription-Key=${APIM_SUBSCRIPTION_KEY}"}
	dir := filepath.Join(r.home, "export-prod")
	code, out, errs := r.apimdev(t, "export", "--profile", "prod", "-o", dir)
	if code != 0 {
		t.Errorf("export: exit %d\n%s\n%s", code, out, errs)
	} else {
		n := 0
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			info, _ := d.Info()
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if info.Mode().Perm() != want {
				t.Errorf("export: %s has mode %o, want %o", p, info.Mode().Perm(), want)
			}
			n++
			return nil
		})
		s.figure("12", "export: files and directories checked", "%d, all 0600/0700", n)
	}
	start := time.Now()
	code, out, errs = r.apimdev(t, append([]string{"promote", "--yes"}, traffic...)...)
	s.figure("11", "promote to prod", "exit %d in %s", code, time.Since(start).Round(100*time.Millisecond))
	if code != 0 {
		t.Errorf("promote: exit %d\n%s\n%s", code, out, errs)
	}
	rotated := filepath.Join(t.TempDir(), "rotated.token")
	os.WriteFile(rotated, []byte(s.rotated+"\n"), 0o600)
	start = time.Now()
	code, out, errs = r.apimdev(t, append([]string{"token", "rotate", "--token-file", rotated, "-o", "json"}, traffic...)...)
	s.figure("11", "token rotate", "exit %d in %s", code, time.Since(start).Round(100*time.Millisecond))
	if code != 0 {
		t.Errorf("token rotate: exit %d\n%s\n%s", code, out, errs)
	} else {
		// As a user would: the token file now holds the rotated token, so
		// the next up changes nothing.
		os.WriteFile(r.tokenFile, []byte("\"GatewayKey "+s.rotated+"\"\r\n"), 0o600)
	}
	start = time.Now()
	code, out, errs = r.apimdev(t, append([]string{"promote", "--to", "dev", "--yes"}, traffic...)...)
	s.figure("11", "promote back to dev", "exit %d in %s", code, time.Since(start).Round(100*time.Millisecond))
	if code != 0 {
		t.Errorf("promote --to dev: exit %d\n%s\n%s", code, out, errs)
	}
	// Back on dev, the pod template must not name the prod profile's
	// ServiceAccount, which the demotion deletes: every later rollout (a new
	// token through up, a restart) would fail with "serviceaccount not found".
	sa := r.kubectlOut(t, "-n=apim-gateway", "get", "deployment/"+gwName, "-o", "jsonpath={.spec.template.spec.serviceAccountName}/{.spec.template.spec.serviceAccount}")
	if sa != "/" && sa != "default/default" {
		t.Errorf("after promote --to dev the Deployment still uses ServiceAccount %q, which the demotion deleted", sa)
	}
}

// 12. Every file apimdev wrote is 0600 and every directory 0700.
func (s *suite) permissions(t *testing.T, r *rig) {
	n := 0
	filepath.WalkDir(r.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", p, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	for _, f := range []string{"kubeconfig", "record.json", "forward.json", "forward.log", "lock"} {
		if _, err := os.Stat(filepath.Join(r.state, "clusters", r.cluster, f)); err != nil {
			t.Errorf("expected %s: %v", f, err)
		}
	}
	s.figure("12", "state files and directories checked", "%d, all 0600/0700", n)
}

// bigSmokeSpec writes a spec of n echo calls: a smoke step long enough
// (seconds) to be interrupted for sure.
func bigSmokeSpec(t *testing.T, n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: apimdev.io/v1alpha1\nkind: SmokeSpec\ncalls:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: echo %d\n    path: /echo/%d\n    headers: {Ocp-Apim-Subscription-Key: \"${APIM_SUBSCRIPTION_KEY}\"}\n    expect: {status: 200, bodyContains: echo}\n", i, i)
	}
	p := filepath.Join(t.TempDir(), "big-smoke.yaml")
	os.WriteFile(p, []byte(b.String()), 0o600)
	return p
}

var interruptedRE = regexp.MustCompile(`interrupted during (\w+)\. Now: (.*)\.\n`)

// 7. Ctrl-C during each step of up in turn, each time on what the previous
// interrupted run left: exit 130, a line saying what exists, and a final
// re-run that completes without duplicate objects.
func (s *suite) interrupts(t *testing.T) {
	r := s.rig(t, rigOptions{cluster: "apimdev-fault-sigint", httpPort: "26083", httpsPort: "26446"})
	userBefore := readFile(t, r.userKubeconfig)
	big := bigSmokeSpec(t, 1500)
	steps := []string{"preflight", "cluster", "image", "deploy", "forward", "smoke"}
	for _, step := range steps {
		ok := t.Run(step, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			p := r.start(t, ctx, append([]string{"up", "--detach", "--timeout", "3m", "--smoke-file", big}, r.common()...)...)
			if !p.waitLine("• "+step, 4*time.Minute) {
				code, out, errs, _ := p.wait(time.Minute)
				t.Fatalf("never saw the %s step start: exit %d\n%s\n%s", step, code, out, errs)
			}
			sent := time.Now()
			if err := p.signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			code, _, errs, finished := p.wait(4 * time.Minute)
			took := p.exited.Sub(sent)
			if !finished || code != 130 {
				t.Fatalf("exit %d (finished %v), want 130\n%s", code, finished, errs)
			}
			m := interruptedRE.FindStringSubmatch(errs)
			if m == nil {
				t.Fatalf("no \"interrupted during <step>. Now: <what exists>.\" line:\n%s", errs)
			}
			landed, now := m[1], m[2]
			s.figure("7", "SIGINT at "+step+" start: exit 130 after", "%s; interrupted during %s; now: %s", took.Round(time.Millisecond), landed, now)
			// The signal went as the step's start line was read: the step
			// it interrupts is that one, or this case tested another.
			if landed != step {
				t.Fatalf("SIGINT sent at the start of the %s step interrupted the %s step; what the %s step leaves on Ctrl-C is untested\n%s", step, landed, step, errs)
			}
			mustContain(t, "up's stderr", errs, "Run `apimdev up` again to continue from there", "`apimdev down` removes everything")
			nodes := nodeContainers(t, r.cluster)
			switch landed {
			case "preflight":
				if now != "nothing was created" || len(nodes) != 0 {
					t.Errorf("now %q, nodes %v", now, nodes)
				}
			case "cluster", "image", "deploy":
				if !strings.HasPrefix(now, `cluster "apimdev-fault-sigint" exists`) || len(nodes) != 1 {
					t.Errorf("now %q, nodes %v", now, nodes)
				}
			default:
				if !strings.HasPrefix(now, `cluster "apimdev-fault-sigint" exists, gateway apim-gateway/contoso-gw deployed`) || len(nodes) != 1 {
					t.Errorf("now %q, nodes %v", now, nodes)
				}
			}
			if step == "deploy" {
				// Only now may the gateway become ready: its configuration
				// endpoint comes up.
				if err := r.applyConfigService(); err != nil {
					t.Fatal(err)
				}
			}
		})
		if !ok && (step == "cluster" || step == "deploy") {
			t.Fatalf("the later steps need what %s makes", step)
		}
	}
	s.run(t, "a re-run completes without duplicates", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.apimdev(t, append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "3m"}, r.common()...)...)
		s.figure("7", "re-run after the interruptions", "%s", time.Since(start).Round(100*time.Millisecond))
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		mustContain(t, "up's stderr", errs, "reused apimdev-fault-sigint", "already on the node", "0 object(s) changed, 6 unchanged", "✓ smoke")
		if n := nodeContainers(t, r.cluster); len(n) != 1 {
			t.Errorf("node containers: %v", n)
		}
		count := func(args ...string) int {
			return len(strings.Fields(r.kubectlOut(t, append(args, "-o", "name")...)))
		}
		for _, c := range []struct {
			args []string
			want int
		}{
			{[]string{"-n=apim-gateway", "get", "deployments"}, 1},
			{[]string{"-n=apim-gateway", "get", "replicasets"}, 1},
			{[]string{"-n=apim-gateway", "get", "pods", "-l", "app=" + gwName}, 1},
			// live-traffic, instance-discovery and the forward's direct path
			{[]string{"-n=apim-gateway", "get", "services"}, 3},
			{[]string{"-n=apim-gateway", "get", "services", "--field-selector", "metadata.name=" + gwName + "-direct"}, 1},
			{[]string{"-n=apim-gateway", "get", "secrets", "--field-selector", "metadata.name=" + gwName + "-token"}, 1},
			{[]string{"-n=apim-gateway", "get", "configmaps", "--field-selector", "metadata.name=" + gwName + "-env"}, 1},
			{[]string{"-n=kube-system", "get", "configmaps", "--field-selector", "metadata.name=apimdev"}, 1},
		} {
			if got := count(c.args...); got != c.want {
				t.Errorf("kubectl %v: %d object(s), want %d", c.args, got, c.want)
			}
		}
		var rec struct{ PID int }
		json.Unmarshal(readFile(t, filepath.Join(r.state, "clusters", r.cluster, "forward.json")), &rec)
		if pids := forwardPIDs(r); len(pids) != 1 || pids[0] != rec.PID {
			t.Errorf("background forwards %v, recorded %d: want exactly the recorded one", pids, rec.PID)
		}
		if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, userBefore) {
			t.Errorf("~/.kube/config changed")
		}
	})
	s.scan.tree(r.state)
	if code, out, errs := r.apimdev(t, "down"); code != 0 {
		t.Errorf("down: exit %d\n%s\n%s", code, out, errs)
	}
	if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, userBefore) {
		t.Errorf("~/.kube/config changed after down")
	}
}

// 9. A kind cluster of the same name that apimdev did not create: up and
// down refuse and explain; up --recreate replaces it. The replacement
// starts with an expired token (case 3's last part): up warns, and smoke
// shows why calls fail.
func (s *suite) foreignCluster(t *testing.T) {
	r := s.rig(t, rigOptions{cluster: "apimdev-fault-foreign", httpPort: "26084", httpsPort: "26447", token: s.expired})
	userBefore := readFile(t, r.userKubeconfig)
	foreignKC := filepath.Join(t.TempDir(), "someone-elses.kubeconfig")
	start := time.Now()
	create := exec.Command(r.kind, "create", "cluster", "--name", r.cluster, "--image", r.nodeImage, "--kubeconfig", foreignKC)
	create.Env = append(os.Environ(), "HOME="+r.home, "KUBECONFIG="+foreignKC)
	if b, err := create.CombinedOutput(); err != nil {
		t.Fatalf("kind create cluster: %v\n%s", err, b)
	}
	s.figure("9", "someone else's kind cluster created in", "%s", time.Since(start).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if len(nodeContainers(t, r.cluster)) > 0 {
			exec.Command(r.kind, "delete", "cluster", "--name", r.cluster, "--kubeconfig", foreignKC).Run()
		}
	})
	node := r.cluster + "-control-plane"
	containerID := func() string {
		b, _ := exec.Command("docker", "inspect", "-f", "{{.Id}} {{.State.Running}}", node).Output()
		return strings.TrimSpace(string(b))
	}
	before := containerID()
	untouched := func(t *testing.T) {
		t.Helper()
		if now := containerID(); now != before {
			t.Errorf("the foreign node changed: %q -> %q", before, now)
		}
		if _, err := os.Stat(r.kubeconfig); !os.IsNotExist(err) {
			t.Errorf("apimdev wrote a kubeconfig for a cluster it does not own (%v)", err)
		}
		if b, err := exec.Command(r.kubectl, "--kubeconfig", foreignKC, "-n=kube-system", "get", "configmap", "apimdev").CombinedOutput(); err == nil {
			t.Errorf("apimdev marked a cluster it does not own: %s", b)
		}
	}
	s.run(t, "up refuses and explains", func(t *testing.T) {
		start := time.Now()
		code, _, errs := r.apimdev(t, append([]string{"up", "--detach"}, r.common()...)...)
		s.figure("9", "foreign cluster: up refuses after", "%s", time.Since(start).Round(time.Millisecond))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		mustContain(t, "up's stderr", errs, "✗ preflight", `a kind cluster named "apimdev-fault-foreign" exists and was not created by apimdev`,
			"--cluster-name another-name", "--recreate (everything in it is lost)")
		untouched(t)
	})
	s.run(t, "down refuses", func(t *testing.T) {
		code, _, errs := r.apimdev(t, "down")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		mustContain(t, "down's stderr", errs, `kind cluster "apimdev-fault-foreign" was not created by apimdev; not deleting it`, "kind delete cluster --name apimdev-fault-foreign")
		untouched(t)
	})
	if t.Failed() {
		return
	}
	s.run(t, "up --recreate replaces it; the expired token is warned and smoke says why", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cfgErr := make(chan error, 1)
		go func() { cfgErr <- r.deployConfigService(t, ctx) }()
		start := time.Now()
		code, out, errs := r.apimdevCtx(t, ctx, append([]string{"up", "--recreate", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "4m"}, r.common()...)...)
		s.figure("9", "up --recreate (smoke fails: expired token)", "%s", time.Since(start).Round(100*time.Millisecond))
		cancel()
		if err := <-cfgErr; err != nil && strings.Contains(errs, "✓ deploy") {
			t.Errorf("config service: %v", err)
		}
		if code != 1 {
			t.Errorf("exit %d, want 1 (smoke fails with an expired token)", code)
		}
		mustContain(t, "up's stderr", errs, `deleting cluster "apimdev-fault-foreign" (--recreate)`, "created apimdev-fault-foreign", "✓ deploy",
			"! token: the gateway token expired", "answers 200 with an empty body", "✗ smoke")
		mustContain(t, "smoke table", out, "200 with an empty body: the gateway token has expired")
		if !regexp.MustCompile(`health \(http\)\s+200\s+\S+\s+pass`).MatchString(out) {
			t.Errorf("the health call should pass with an expired token:\n%s", out)
		}
		if now := containerID(); now == before || now == "" {
			t.Errorf("the node was not replaced: %q", now)
		}
		r.kubectlOut(t, "-n=kube-system", "get", "configmap", "apimdev")
	})
	s.run(t, "03 smoke and status explain the expired token", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "smoke", "--smoke-file", "testdata/smoke.yaml")
		if code != 1 {
			t.Errorf("smoke: exit %d, want 1", code)
		}
		mustContain(t, "smoke", out+errs, "200 with an empty body: the gateway token has expired", "generate a new token in the portal", "failed")
		code, out, _ = r.apimdev(t, "status")
		if code != 0 || !regexp.MustCompile(`token\s+expired \d+ days ago`).MatchString(out) {
			t.Errorf("status: exit %d\n%s", code, out)
		}
	})
	s.run(t, "03 re-running up with a new token, as the warning says, fixes it", func(t *testing.T) {
		fresh := filepath.Join(t.TempDir(), "new.token")
		os.WriteFile(fresh, []byte(s.token+"\n"), 0o600)
		start := time.Now()
		code, out, errs := r.run(t, context.Background(), []string{"APIMDEV_TOKEN_FILE=" + fresh},
			append([]string{"up", "--detach", "--smoke-file", "testdata/smoke.yaml", "--timeout", "3m"}, r.common()...)...)
		s.figure("3", "expired token replaced by re-running up", "exit %d in %s", code, time.Since(start).Round(100*time.Millisecond))
		if code != 0 || !strings.Contains(out, "5 passed, 0 failed") {
			t.Errorf("exit %d: the gateway still runs with the expired token\n%s\n%s", code, out, errs)
		}
	})
	s.scan.tree(r.state)
	code, out, errs := r.apimdev(t, "down")
	if code != 0 || len(nodeContainers(t, r.cluster)) != 0 {
		t.Errorf("down: exit %d\n%s\n%s", code, out, errs)
	}
	if after := readFile(t, r.userKubeconfig); !bytes.Equal(after, userBefore) {
		t.Errorf("~/.kube/config changed")
	}
}

// 11. The canary (both tokens' signatures) appears in nothing apimdev
// printed or wrote, nor in the process list sampled all along.
func (s *suite) canaryScan(t *testing.T) {
	s.ps.end()
	for _, r := range s.rigs {
		s.scan.scan("output of apimdev ("+r.cluster+")", r.transcript.Bytes())
		s.scan.tree(r.home)
		s.scan.tree(r.state)
	}
	sc := s.scan
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s.figure("11", "canary scan", "%d blobs, %d bytes, %d lines; %d process-list samples (%d bytes); %d hit(s)",
		sc.files, sc.bytes, sc.lines, sc.psSample, sc.psBytes, len(sc.hits))
	if sc.psSample < 10 {
		t.Errorf("only %d process-list samples", sc.psSample)
	}
	for _, h := range sc.hits {
		t.Error(h)
	}
}
