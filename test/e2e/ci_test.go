//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCI's cluster and ports (the other suites use 18080-28443),
// below Linux's ephemeral range (32768-60999), so no outgoing connection of
// the machine can hold them as its own port.
const (
	ciCluster   = "apimdev-ci"
	ciHTTPPort  = "17380"
	ciHTTPSPort = "17743"
)

// ciJUnit is the part of a JUnit report TestCI reads.
type ciJUnit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// demoSignature is the shape of a demo token's signature (base64 of an
// HMAC-SHA512): the demo mints its token inside the run, so the test
// looks for the shape, not a value it knows.
var demoSignature = regexp.MustCompile(`[A-Za-z0-9+/]{86}==`)

// TestCI is `apimdev ci` as a pipeline runs it: `ci --demo` passes (exit 0,
// passing JUnit cases, no artifacts, the cluster gone), then a smoke spec
// with a call that must fail exits 1 with the doctor bundle, every pod's
// logs, status and the event stream under --artifacts, the failed call in
// the JUnit file, no token in any of it, and the cluster gone again.
func TestCI(t *testing.T) {
	tl := buildTools(t)
	r := newRig(t, tl, rigOptions{cluster: ciCluster, httpPort: ciHTTPPort, httpsPort: ciHTTPSPort})
	work := t.TempDir()
	t.Cleanup(func() {
		exec.Command(tl.kind, "delete", "cluster", "--name", ciCluster).Run()
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/ci-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	clusterGone := func(t *testing.T) {
		t.Helper()
		out, err := exec.Command(tl.kind, "get", "clusters").Output()
		if err != nil {
			t.Fatalf("kind get clusters: %v", err)
		}
		if slices.Contains(strings.Fields(string(out)), ciCluster) {
			t.Fatalf("cluster %s is still there after ci", ciCluster)
		}
	}
	ci := func(t *testing.T, name string, extra ...string) (int, string, string, ciJUnit, string) {
		t.Helper()
		junitFile := filepath.Join(work, name+".xml")
		artifacts := filepath.Join(work, name)
		args := append([]string{"ci", "--demo", "--node-image", tl.nodeImage, "--http-port", ciHTTPPort, "--https-port", ciHTTPSPort,
			"--junit", junitFile, "--artifacts", artifacts, "--timeout", "10m"}, extra...)
		start := time.Now()
		code, out, errs := r.apimdev(t, args...)
		r.time("ci "+name, start)
		t.Logf("apimdev ci (%s), exit %d in %s:\n%s%s", name, code, time.Since(start).Round(100*time.Millisecond), errs, out)
		b, err := os.ReadFile(junitFile)
		if err != nil {
			t.Fatalf("no JUnit file: %v", err)
		}
		var rep ciJUnit
		if err := xml.Unmarshal(b, &rep); err != nil {
			t.Fatalf("the JUnit file does not parse: %v\n%s", err, b)
		}
		return code, out, errs, rep, artifacts
	}

	t.Run("pass", func(t *testing.T) {
		code, out, errs, rep, artifacts := ci(t, "pass", "--lab", "1", "--checks")
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		var suites []string
		for _, s := range rep.Suites {
			suites = append(suites, s.Name)
		}
		if rep.Failures != 0 || strings.Join(suites, ", ") != "apimdev up, apimdev smoke, apimdev lab 1: Bring the gateway up, apimdev checks, apimdev teardown" {
			t.Fatalf("JUnit: %d failure(s), suites %q", rep.Failures, suites)
		}
		for _, s := range rep.Suites[2:4] {
			if s.Tests < 3 {
				t.Errorf("suite %s: %d case(s)", s.Name, s.Tests)
			}
		}
		var up []string
		for _, c := range rep.Suites[0].Cases {
			up = append(up, c.Name)
		}
		for _, step := range []string{"preflight", "cluster", "image", "demo", "deploy", "forward", "smoke"} {
			if !slices.Contains(up, step) {
				t.Errorf("the up suite lacks step %s: %v", step, up)
			}
		}
		if rep.Suites[1].Tests < 3 {
			t.Errorf("smoke suite: %d case(s), want the health calls and the demo's echo calls", rep.Suites[1].Tests)
		}
		mustContain(t, "ci's progress", errs, "✓ smoke", "deleted cluster")
		mustContain(t, "ci's summary", out, "ci: passed (exit 0)", "teardown: deleted cluster \""+ciCluster+"\", which this run created")
		if _, err := os.Stat(artifacts); !os.IsNotExist(err) {
			t.Errorf("a passing run wrote artifacts (%v)", err)
		}
		clusterGone(t)
	})

	t.Run("failing smoke", func(t *testing.T) {
		spec := filepath.Join(work, "smoke-fails.yaml")
		os.WriteFile(spec, []byte("apiVersion: apimdev.io/v1alpha1\nkind: SmokeSpec\ncalls:\n  - name: expected to fail\n    path: /no-such-api\n    expect:\n      status: 200\n"), 0o600)
		code, out, _, rep, artifacts := ci(t, "fail", "--smoke-spec", spec)
		if code != 1 {
			t.Fatalf("exit %d, want 1 (a test failed)", code)
		}
		mustContain(t, "ci's summary", out, "ci: a test failed (exit 1)", "smoke call(s) failed", "doctor.tar.gz", "teardown: deleted cluster")
		failed := ""
		for _, s := range rep.Suites {
			for _, c := range s.Cases {
				if c.Failure != nil {
					failed += s.Name + "/" + c.Name + ": " + c.Failure.Message + "\n"
				}
			}
		}
		mustContain(t, "the JUnit file's failures", failed, "apimdev smoke/expected to fail: ", "apimdev up/smoke: ")
		var files []string
		filepath.WalkDir(artifacts, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(artifacts, p)
				files = append(files, rel)
			}
			return nil
		})
		all := strings.Join(files, "\n")
		t.Logf("artifacts:\n%s", all)
		for _, re := range []string{`(?m)^doctor\.tar\.gz$`, `(?m)^status\.json$`, `(?m)^events\.jsonl$`,
			`(?m)^pods/apim-gateway/[^/]+/[a-z-]+\.log$`, `(?m)^pods/apimdev-demo/[^/]+/[a-z-]+\.log$`} {
			if !regexp.MustCompile(re).MatchString(all) {
				t.Errorf("no artifact matches %s", re)
			}
		}
		bundle, _ := os.ReadFile(filepath.Join(artifacts, "doctor.tar.gz"))
		entries := tarGzNames(t, bundle)
		if !slices.ContainsFunc(entries, func(n string) bool { return strings.Contains(n, "/logs/") }) {
			t.Errorf("the doctor bundle has no pod logs: %v", entries)
		}
		ev, _ := os.ReadFile(filepath.Join(artifacts, "events.jsonl"))
		mustContain(t, "events.jsonl", string(ev), `"step":"smoke","state":"failed"`, `"step":"down","state":"done"`)
		// The demo's token (minted in the run) nowhere in what ci wrote.
		for _, f := range append(files, "../fail.xml") {
			b, _ := os.ReadFile(filepath.Join(artifacts, f))
			texts := map[string][]byte{f: b}
			if strings.HasSuffix(f, ".tar.gz") {
				texts = tarGzFiles(t, b)
			}
			for name, text := range texts {
				if m := demoSignature.Find(text); m != nil {
					t.Errorf("%s holds a token signature: %.12s…", name, m)
				}
			}
		}
		clusterGone(t)
	})

	// A CI's cancel: SIGTERM once the cluster is made stops the run, and
	// ci still writes its artifacts, tears down and exits 2.
	t.Run("SIGTERM", func(t *testing.T) {
		junitFile, artifacts := filepath.Join(work, "term.xml"), filepath.Join(work, "term")
		start := time.Now()
		p := r.start(t, context.Background(), "ci", "--demo", "--node-image", tl.nodeImage, "--http-port", ciHTTPPort, "--https-port", ciHTTPSPort,
			"--junit", junitFile, "--artifacts", artifacts, "--timeout", "10m")
		if !p.waitLine("created "+ciCluster+" (kubeconfig", 3*time.Minute) { // the cluster step done
			p.wait(time.Minute)
			t.Fatalf("no cluster step done:\n%s", p.stderr())
		}
		if err := p.signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, out, errs, ok := p.wait(4 * time.Minute)
		r.time("ci SIGTERM", start)
		t.Logf("apimdev ci, SIGTERM after the cluster step: exit %d in %s\n%s%s", code, time.Since(start).Round(100*time.Millisecond), errs, out)
		if !ok || code != 2 {
			t.Fatalf("exit %d (ended %v), want 2", code, ok)
		}
		mustContain(t, "ci's summary", out, "ci: the environment failed (exit 2)", ": interrupted", "teardown: deleted cluster")
		for _, f := range []string{junitFile, filepath.Join(artifacts, "doctor.tar.gz"), filepath.Join(artifacts, "events.jsonl"), filepath.Join(artifacts, "status.json")} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("after SIGTERM: %v", err)
			}
		}
		clusterGone(t)
	})

	// On a cluster that was there before, with its gateway, ci removes
	// nothing and says so.
	t.Run("existing cluster", func(t *testing.T) {
		defer r.apimdev(t, "down")
		if code, out, errs := r.apimdev(t, "up", "--demo", "--detach", "--node-image", tl.nodeImage, "--http-port", ciHTTPPort, "--https-port", ciHTTPSPort); code != 0 {
			t.Fatalf("up --demo: exit %d\n%s%s", code, errs, out)
		}
		before := r.kubectlOut(t, "-n", "apim-gateway", "get", "deployment/apimdev-gw", "-o", "jsonpath={.metadata.uid}")
		code, out, _, rep, _ := ci(t, "existing")
		if code != 0 || rep.Failures != 0 {
			t.Fatalf("exit %d, %d failure(s)", code, rep.Failures)
		}
		mustContain(t, "ci's summary", out, "teardown: left cluster \""+ciCluster+"\"", "(ours when this run started) and gateway apim-gateway/apimdev-gw as they are", "ci removes only what it made")
		if after := r.kubectlOut(t, "-n", "apim-gateway", "get", "deployment/apimdev-gw", "-o", "jsonpath={.metadata.uid}"); after != before {
			t.Errorf("the gateway's Deployment was replaced: uid %s → %s", before, after)
		}
		if code, out, errs := r.apimdev(t, "smoke"); code != 0 {
			t.Errorf("smoke after ci, through the background forward up started: exit %d\n%s%s", code, errs, out)
		}
	})
}

func tarGzFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the doctor bundle is not gzip: %v", err)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = body
	}
}

func tarGzNames(t *testing.T, b []byte) []string {
	var names []string
	for n := range tarGzFiles(t, b) {
		names = append(names, n)
	}
	return names
}
