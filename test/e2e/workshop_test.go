//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/demo"
)

// TestWorkshop's cluster and ports (the other suites use 17380-28443), below Linux's
// ephemeral range like every suite's.
const (
	wsCluster   = "apimdev-ws-labs"
	wsHTTPPort  = "25080"
	wsHTTPSPort = "25443"
	wsLabel     = "stand-in, not Azure API Management"
)

// TestWorkshop is the workshop end to end: the instructor's signing key, a
// kit made from the rig's images and signed with it, those images removed
// from Docker, the kit refused without --trust before anything is loaded,
// `up --kit --trust --demo` with nothing to pull, then the six labs in
// order, each `lab check` failing before the lab's commands and passing
// after them, with JUnit reports.
func TestWorkshop(t *testing.T) {
	tl := buildTools(t)
	statsd := need(t, "APIMDEV_E2E_STATSD_IMAGE")
	if statsd != "prom/statsd-exporter:v0.31.0" {
		t.Fatalf("APIMDEV_E2E_STATSD_IMAGE is %s; the prod profile (and so the kit) uses prom/statsd-exporter:v0.31.0", statsd)
	}
	r := newRig(t, tl, rigOptions{cluster: wsCluster, httpPort: wsHTTPPort, httpsPort: wsHTTPSPort})
	work := t.TempDir()
	kitPath := filepath.Join(work, "kit.tar")
	reports := filepath.Join(work, "junit")
	images := map[string]string{"node": tl.nodeImage, "demo": tl.gatewayImage, "statsd": statsd}
	saved := wsSaveTags(t, images)

	// Whatever happens: no cluster left, and every image and tag the other
	// suites need back in Docker (from the kit when they were removed).
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			r.apimdev(t, "down")
		}
		exec.Command(tl.kind, "delete", "cluster", "--name", wsCluster).Run()
		wsRestore(t, saved, kitPath)
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/workshop-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // each lab builds on the one before
		}
	}
	// check runs `lab check N`, wants pass or fail, and returns its JUnit report.
	check := func(t *testing.T, n string, pass bool, extra ...string) wsSuites {
		t.Helper()
		file := filepath.Join(reports, "lab"+n+map[bool]string{true: "-after", false: "-before"}[pass]+".xml")
		code, out, errs := r.apimdev(t, append([]string{"lab", "check", n, "--junit", file}, extra...)...)
		rep := wsReadJUnit(t, file)
		verdict := map[bool]string{true: "PASS lab " + n, false: "FAIL lab " + n}[pass]
		if (code == 0) != pass || !strings.Contains(out, verdict) {
			t.Fatalf("lab check %s %v: exit %d, want %s\n%s\n%s", n, extra, code, verdict, out, errs)
		}
		if (rep.Failures == 0) != pass || rep.Tests == 0 {
			t.Fatalf("lab check %s: JUnit says %d of %d failed", n, rep.Failures, rep.Tests)
		}
		if !pass && !strings.Contains(out, "hint: ") {
			t.Errorf("lab check %s failed without a hint:\n%s", n, out)
		}
		t.Logf("lab check %s (%s):\n%s", n, verdict, out)
		return rep
	}

	// The instructor's key: its password only ever in the environment.
	keyPrefix := filepath.Join(work, "instructor")
	kitPassword := "e2e-kit-" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	withPassword := []string{"APIMDEV_KIT_PASSWORD=" + kitPassword}
	var fingerprint string
	step("kit keygen makes the instructor's key and prints its fingerprint", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.run(t, context.Background(), withPassword, "kit", "keygen", keyPrefix, "-o", "json")
		r.time("kit keygen", start)
		if code != 0 {
			t.Fatalf("kit keygen exited %d\n%s\n%s", code, out, errs)
		}
		var got struct {
			Fingerprint       string
			PasswordProtected bool
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || !strings.HasPrefix(got.Fingerprint, "SHA256:") || !got.PasswordProtected {
			t.Fatalf("keygen's answer: %v\n%s", err, out)
		}
		fingerprint = got.Fingerprint
		fi, err := os.Stat(keyPrefix + ".key")
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret key: %v %v", fi, err)
		}
		if b, _ := os.ReadFile(keyPrefix + ".key"); strings.Contains(string(b), kitPassword) || !strings.HasPrefix(string(b), "untrusted comment: minisign encrypted secret key") {
			t.Errorf("the secret key file is not minisign's encrypted key, or holds the password")
		}
		// Never over an existing key.
		if code, out, errs := r.run(t, context.Background(), withPassword, "kit", "keygen", keyPrefix); code == 0 || !strings.Contains(errs, "already exists") {
			t.Errorf("a second keygen: exit %d\n%s\n%s", code, out, errs)
		}
	})

	var kitSize int64
	step("kit create saves the three images and the config, signed", func(t *testing.T) {
		start := time.Now()
		code, out, errs := r.run(t, context.Background(), withPassword, "kit", "create", "-o", kitPath, "--sign", keyPrefix+".key", "--demo", "--image", tl.gatewayImage, "--node-image", tl.nodeImage)
		r.time("kit create", start)
		if code != 0 {
			t.Fatalf("kit create exited %d\n%s\n%s", code, out, errs)
		}
		for _, w := range []string{"node", "statsd", "demo", tl.nodeImage, "(no token)", "signed by " + fingerprint, "apimdev up --kit " + kitPath + " --trust " + fingerprint + " --demo --detach"} {
			if !strings.Contains(out, w) {
				t.Errorf("kit create's summary lacks %q:\n%s", w, out)
			}
		}
		if !strings.Contains(errs, "saving node image "+tl.nodeImage) || !strings.Contains(errs, "100%") {
			t.Errorf("no progress for the node image:\n%s", errs)
		}
		fi, err := os.Stat(kitPath)
		if err != nil {
			t.Fatal(err)
		}
		kitSize = fi.Size()
		t.Logf("kit: %d bytes (%.0f MB) in %s", kitSize, float64(kitSize)/(1<<20), time.Since(start).Round(100*time.Millisecond))
		m := wsManifest(t, kitPath)
		if len(m.Images) != 3 {
			t.Fatalf("manifest: %+v", m)
		}
		for _, img := range m.Images {
			if img.Ref != images[img.Role] || len(img.SHA256) != 64 {
				t.Errorf("manifest image %+v, want %s", img, images[img.Role])
			}
		}
		// The configuration travels; no token does.
		for _, f := range []string{"apimdev.yaml", "manifest.json", "SHA256SUMS", "manifest.json.minisig", "signer.pub"} {
			b := wsKitFile(t, kitPath, f)
			if strings.Contains(string(b), r.canary) || strings.Contains(string(b), r.tokenFile) {
				t.Errorf("%s in the kit holds the token or its path", f)
			}
		}
		if code, out, errs := r.apimdev(t, "kit", "verify", kitPath, "--trust", fingerprint); code != 0 || !strings.Contains(errs, "signed by "+fingerprint) {
			t.Fatalf("kit verify: %d\n%s\n%s", code, out, errs)
		}
		if code, out, errs := r.apimdev(t, "kit", "verify", kitPath, "--trust", keyPrefix+".pub"); code != 0 {
			t.Fatalf("kit verify --trust instructor.pub: %d\n%s\n%s", code, out, errs)
		}
	})

	step("the kit's images are removed from Docker", func(t *testing.T) {
		for _, s := range saved {
			args := append([]string{"rmi", "-f"}, s.tags...)
			if b, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
				t.Fatalf("docker %v: %v\n%s", args, err, b)
			}
		}
		for role, ref := range images {
			if exec.Command("docker", "image", "inspect", ref).Run() == nil {
				t.Fatalf("%s image %s is still in Docker", role, ref)
			}
		}
	})

	step("a damaged kit loads nothing", func(t *testing.T) {
		bad := filepath.Join(work, "damaged.tar")
		wsDamagedCopy(t, kitPath, bad)
		defer os.Remove(bad)
		code, out, errs := r.apimdev(t, "kit", "load", bad, "--trust", fingerprint)
		if code == 0 || !strings.Contains(errs, "does not match its SHA-256") || !strings.Contains(errs, "nothing was loaded") {
			t.Fatalf("kit load of a damaged kit: exit %d\n%s\n%s", code, out, errs)
		}
		for role, ref := range images {
			if exec.Command("docker", "image", "inspect", ref).Run() == nil {
				t.Errorf("%s image %s was loaded from a damaged kit", role, ref)
			}
		}
	})

	step("the kit without --trust is refused before anything is loaded", func(t *testing.T) {
		for _, args := range [][]string{
			{"kit", "load", kitPath},
			{"up", "--demo", "--detach", "--kit", kitPath, "--http-port", wsHTTPPort, "--https-port", wsHTTPSPort},
			{"up", "--demo", "--detach", "--kit", kitPath, "--allow-unsigned", "--http-port", wsHTTPPort, "--https-port", wsHTTPSPort},
		} {
			code, out, errs := r.apimdev(t, args...)
			for _, w := range []string{"signed by key " + fingerprint, "as a privileged container, that is as root on this machine", "fix: ", "--trust " + fingerprint} {
				if code == 0 || !strings.Contains(errs, w) {
					t.Errorf("%v: exit %d, lacks %q\n%s\n%s", args, code, w, out, errs)
				}
			}
		}
		for role, ref := range images {
			if exec.Command("docker", "image", "inspect", ref).Run() == nil {
				t.Errorf("%s image %s was loaded from a kit nobody trusted", role, ref)
			}
		}
		if b, _ := exec.Command(tl.kind, "get", "clusters").Output(); strings.Contains(string(b), wsCluster) {
			t.Errorf("a refused up --kit made the cluster %s", wsCluster)
		}
	})

	step("lab 1 fails before up", func(t *testing.T) { check(t, "1", false) })

	var subKey string
	step("up --kit --demo works with nothing to pull", func(t *testing.T) {
		start := time.Now()
		args := []string{"up", "--demo", "--detach", "--kit", kitPath, "--trust", fingerprint, "--http-port", wsHTTPPort, "--https-port", wsHTTPSPort, "--timeout", "4m"}
		code, out, errs := r.apimdev(t, args...)
		d := time.Since(start)
		r.time("up --kit --demo (offline)", start)
		if code != 0 {
			t.Fatalf("up --kit --demo exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("up --kit --demo took %s (kit %d bytes)\n%s%s", d.Round(100*time.Millisecond), kitSize, errs, out)
		for _, w := range []string{"✓ kit", "signed by " + fingerprint, "3 image(s) verified", "node loaded", "verifying checksums", "loading node image", "✓ preflight",
			"node image: " + tl.nodeImage + " is on this machine", "created " + wsCluster, "✓ image", "✓ demo", "configuration service ready", "✓ deploy", "✓ smoke", wsLabel} {
			if !strings.Contains(errs, w) {
				t.Errorf("up's progress lacks %q", w)
			}
		}
		for _, w := range []string{"demo echo with key", "demo echo without key", "0 failed", wsLabel, "demo subscription key for the echo API: "} {
			if !strings.Contains(out, w) {
				t.Errorf("up's summary lacks %q:\n%s", w, out)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			if k, ok := strings.CutPrefix(l, "demo subscription key for the echo API: "); ok {
				subKey = strings.TrimSpace(k)
			}
		}
		if len(subKey) < 32 {
			t.Fatalf("no demo subscription key in:\n%s", out)
		}
		// Back in Docker from the kit, with the IDs they had.
		for _, s := range saved {
			if id := wsImageID(s.ref); id != s.id {
				t.Errorf("%s is %q after up --kit, was %s", s.ref, id, s.id)
			}
		}
	})

	step("a warm up --demo -o json changes nothing and labels every line", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "up", "--demo", "--detach", "--http-port", wsHTTPPort, "--https-port", wsHTTPSPort, "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var deployDone string
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %s", l)
			}
			if m["standin"] != wsLabel {
				t.Errorf("a JSON line without the stand-in label: %s", l)
			}
			if m["step"] == "deploy" && m["state"] == "done" {
				deployDone, _ = m["detail"].(string)
			}
			if m["subscriptionKey"] != nil && m["subscriptionKey"] != subKey {
				t.Errorf("the demo's key changed on a re-run")
			}
		}
		if !strings.Contains(deployDone, "0 object(s) changed") {
			t.Errorf("the warm re-run changed objects: %q", deployDone)
		}
	})

	step("a plain up on the demo stays the demo", func(t *testing.T) {
		// No --demo, no endpoint, no token: what the cluster records decides.
		code, out, errs := r.apimdev(t, "up", "--detach", "--http-port", wsHTTPPort, "--https-port", wsHTTPSPort)
		if code != 0 {
			t.Fatalf("plain up after up --demo exited %d\n%s\n%s", code, out, errs)
		}
		for _, w := range []string{wsLabel, "it records the dev profile of the demo", "0 object(s) changed", "4 call(s) passed"} {
			if !strings.Contains(errs, w) {
				t.Errorf("plain up lacks %q:\n%s", w, errs)
			}
		}
		if !strings.Contains(out, "demo subscription key for the echo API: "+subKey) {
			t.Errorf("plain up does not print the demo's key:\n%s", out)
		}
	})

	step("lab 1 passes", func(t *testing.T) { check(t, "1", true) })

	var pod string
	step("lab 2: smoke and a first call", func(t *testing.T) {
		check(t, "2", false)
		smokeXML := filepath.Join(reports, "smoke.xml")
		code, out, errs := r.apimdev(t, "smoke", "--junit", smokeXML)
		if code != 0 || !strings.Contains(out, wsLabel) {
			t.Fatalf("smoke exited %d\n%s\n%s", code, out, errs)
		}
		rep := wsReadJUnit(t, smokeXML)
		if rep.Failures != 0 || rep.Tests < 4 || !strings.Contains(wsFile(t, smokeXML), `name="demo echo with key"`) || !strings.Contains(wsFile(t, smokeXML), wsLabel) {
			t.Fatalf("smoke JUnit: %+v\n%s", rep, wsFile(t, smokeXML))
		}
		// The attendee's own call, as the lab writes it.
		status, body, hdr := wsGet(t, "/echo/lab2", subKey)
		if status != 200 || !strings.Contains(hdr.Get("X-Apimdev-Standin"), "not Azure API Management") {
			t.Fatalf("echo with the key: %d %s", status, body)
		}
		var echo struct{ Gateway, Pod, Path string }
		if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Pod == "" || echo.Path != "/echo/lab2" {
			t.Fatalf("echo answer: %v %s", err, body)
		}
		pod = echo.Pod
		if status, _, _ := wsGet(t, "/echo/lab2", ""); status != 401 {
			t.Errorf("echo without a key: %d, want 401", status)
		}
		check(t, "2", true)
	})

	step("lab 3: the pod that answered", func(t *testing.T) {
		check(t, "3", false)
		check(t, "3", false, "--answer", "not-a-pod")
		check(t, "3", true, "--answer", pod)
	})

	step("promote --context refuses the demo", func(t *testing.T) {
		code, out, errs := r.apimdev(t, "promote", "--yes", "--context", "users-own")
		if code == 0 || !strings.Contains(errs, "runs the demo") || !strings.Contains(errs, wsLabel) {
			t.Fatalf("promote --context exited %d\n%s\n%s", code, out, errs)
		}
	})

	step("lab 4: promote", func(t *testing.T) {
		check(t, "4", false)
		start := time.Now()
		code, out, errs := r.apimdev(t, "promote", "--yes", "--timeout", "6m")
		r.time("promote (demo)", start)
		if code != 0 {
			t.Fatalf("promote exited %d\n%s\n%s", code, out, errs)
		}
		check(t, "4", true)
	})

	var signingKey, firstToken string
	step("lab 5: rotate the token", func(t *testing.T) {
		check(t, "5", false)
		signingKey = wsSecret(t, r, "apimdev-demo", "standin-config", "STANDIN_GATEWAY_KEY")
		firstToken = wsSecret(t, r, "apim-gateway", "apimdev-gw-token", "value")
		newToken := filepath.Join(work, "new.token")
		if code, out, errs := r.apimdev(t, "demo", "token", "--out", newToken); code != 0 {
			t.Fatalf("demo token: %d\n%s\n%s", code, out, errs)
		}
		if fi, err := os.Stat(newToken); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("new token file: %v %v", fi, err)
		}
		start := time.Now()
		code, out, errs := r.apimdev(t, "token", "rotate", "--token-file", newToken, "--timeout", "6m")
		r.time("token rotate (demo)", start)
		if code != 0 {
			t.Fatalf("token rotate exited %d\n%s\n%s", code, out, errs)
		}
		// The restart's traffic is the demo's echo API with its key, as
		// promote's is, not the health path a draining gateway fails.
		if !strings.Contains(errs, "traffic: GET "+demo.SmokePath+"/rollout") {
			t.Errorf("token rotate's traffic is not the echo API:\n%s", errs)
		}
		check(t, "5", true)
		// status says what runs is the stand-in.
		if code, out, errs := r.apimdev(t, "status"); code != 0 || !strings.Contains(out, demo.Label) {
			t.Errorf("status (exit %d) does not label the demo:\n%s\n%s", code, out, errs)
		}
	})

	step("lab 6: tear down", func(t *testing.T) {
		check(t, "6", false)
		start := time.Now()
		if code, out, errs := r.apimdev(t, "down"); code != 0 {
			t.Fatalf("down exited %d\n%s\n%s", code, out, errs)
		}
		r.time("down", start)
		check(t, "6", true)
	})

	step("the demo's signing key and tokens, and the kit key's password, appear in no output", func(t *testing.T) {
		text := r.transcript.String()
		sig := func(tok string) string { return tok[strings.LastIndex(tok, "&")+1:] }
		for what, secret := range map[string]string{"signing key": signingKey, "first token": sig(firstToken), "kit key password": kitPassword} {
			if len(secret) < 16 {
				t.Fatalf("%s not read from the cluster", what)
			}
			for _, f := range leakForms(secret) {
				if strings.Contains(text, f) {
					t.Errorf("the demo's %s is in apimdev's output", what)
				}
			}
		}
	})
}

// wsTagged is an image's ID and every tag it had, to put back afterwards.
type wsTagged struct {
	role, ref, id string
	tags          []string
}

func wsImageID(ref string) string {
	b, err := exec.Command("docker", "image", "inspect", "--format", "{{.ID}}", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func wsSaveTags(t *testing.T, images map[string]string) []wsTagged {
	var out []wsTagged
	for role, ref := range images {
		b, err := exec.Command("docker", "image", "inspect", "--format", "{{.ID}} {{join .RepoTags \" \"}}", ref).Output()
		if err != nil {
			t.Fatalf("the rig's %s image %s is not in Docker: %v", role, ref, err)
		}
		f := strings.Fields(string(b))
		out = append(out, wsTagged{role: role, ref: ref, id: f[0], tags: f[1:]})
	}
	return out
}

// wsRestore puts every saved tag back, loading an image from the kit's own
// archive (with docker, not apimdev) when its ID is gone.
func wsRestore(t *testing.T, saved []wsTagged, kitPath string) {
	for _, s := range saved {
		if exec.Command("docker", "image", "inspect", s.id).Run() != nil {
			cmd := exec.Command("sh", "-c", `tar -xOf "$1" "images/$2.tar" | docker load -q`, "sh", kitPath, s.role)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("restoring %s from the kit: %v\n%s (the rig rebuilds it on its next run)", s.ref, err, b)
				continue
			}
		}
		for _, tag := range s.tags {
			if wsImageID(tag) != s.id {
				if b, err := exec.Command("docker", "tag", s.id, tag).CombinedOutput(); err != nil {
					t.Errorf("docker tag %s %s: %v %s", s.id, tag, err, b)
				}
			}
		}
	}
}

type wsKitManifest struct {
	Images []struct{ Role, Ref, ID, File, SHA256 string }
}

func wsKitFile(t *testing.T, kitPath, name string) []byte {
	t.Helper()
	f, err := os.Open(kitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the kit: %v", name, err)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

func wsManifest(t *testing.T, kitPath string) wsKitManifest {
	var m wsKitManifest
	if err := json.Unmarshal(wsKitFile(t, kitPath, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wsDamagedCopy copies the kit with one byte flipped 2 MB before its end,
// inside the last image archive.
func wsDamagedCopy(t *testing.T, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(out, in)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	at := n - 2<<20
	out.ReadAt(b, at)
	b[0] ^= 0xff
	out.WriteAt(b, at)
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

type wsSuites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
}

func wsFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wsReadJUnit(t *testing.T, p string) wsSuites {
	t.Helper()
	var s wsSuites
	if err := xml.Unmarshal([]byte(wsFile(t, p)), &s); err != nil {
		t.Fatalf("%s is not JUnit XML: %v", p, err)
	}
	return s
}

// wsGet calls the gateway through the background forward on 127.0.0.1.
func wsGet(t *testing.T, path, key string) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+wsHTTPPort+path, nil)
	if key != "" {
		req.Header.Set("Ocp-Apim-Subscription-Key", key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header
}

func wsSecret(t *testing.T, r *rig, ns, name, key string) string {
	out := r.kubectlOut(t, "-n", ns, "get", "secret", name, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", "\\.")+"}")
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("secret %s/%s: %v", ns, name, err)
	}
	return string(b)
}
