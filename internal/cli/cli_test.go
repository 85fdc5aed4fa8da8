package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

const canary = "Q0FOQVJZLWNsaS10ZXN0LTQ0NDQtZG8tbm90LWxlYWs="

type run struct {
	code     int
	out, err string
}

func apimdev(t *testing.T, env map[string]string, stdin string, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := Run(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}, getenv)
	return run{code, out.String(), errb.String()}
}

func TestRenderDev(t *testing.T) {
	env := map[string]string{"APIMDEV_TOKEN": "GatewayKey contoso-gw&202612301200&" + canary, "APIMDEV_HOME": testdir.New(t)}
	r := apimdev(t, env, "", "render", "--profile", "dev", "-o", "yaml", "--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, kind := range []string{"kind: Secret", "kind: ConfigMap", "kind: Deployment", "name: contoso-gw-live-traffic", "name: contoso-gw-instance-discovery", "&<redacted>"} {
		if !strings.Contains(r.out, kind) {
			t.Errorf("render lacks %q", kind)
		}
	}
	if n := strings.Count(r.out, "\n---\n"); n != 5 {
		t.Errorf("want 6 documents (namespace + 5 objects), got %d", n+1)
	}
	j := apimdev(t, env, "", "render", "-o", "json", "--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net")
	if j.code != 0 || !strings.Contains(j.out, `"kind":"List"`) {
		t.Fatalf("json render: %d %s", j.code, j.err)
	}
	for _, r := range []run{r, j} {
		if strings.Contains(r.out+r.err, canary) {
			t.Fatal("render leaked the token")
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := testdir.New(t)
	bad := filepath.Join(dir, "apimdev.yaml")
	os.WriteFile(bad, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  nmae: x\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"render", "--config", bad}, []string{"line 4: unknown field \"nmae\" in gateway (did you mean \"name\"?)"}},
		{[]string{"render", "--name", "Bad_Name", "--endpoint", "x", "--http-port", "99999"}, []string{"3 problem(s)", "gateway.name", "gateway.endpoint", "forward.httpPort"}},
		{[]string{"up", "--token", "abc"}, []string{"unknown flag: --token"}},
		{[]string{"top", "--window", "3m"}, []string{"--window goes with --once (the live view keeps the last 5m)"}},
	} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": dir}, "", tt.args...)
		if r.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, ExitUsage, r.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.err, w) {
				t.Errorf("%v: missing %q in %s", tt.args, w, r.err)
			}
		}
	}
}

// Preflight with the token from stdin, a malformed one and Docker down:
// every problem is reported, the canary appears nowhere, nothing is created.
func TestUpFailsInPreflightWithoutLeaking(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(testdir.New(t), "no-docker.sock"))
	home := testdir.New(t)
	for _, in := range []string{"contoso-gw&" + canary, "contoso-gw&202612301200&" + canary + "*"} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, in+"\n", "up", "--token-file", "-", "--name", "contoso-gw",
			"--endpoint", "contoso.configuration.azure-api.net", "--http-port", "18931", "--https-port", "18932")
		if r.code != ExitFailure {
			t.Fatalf("exit %d\n%s", r.code, r.err)
		}
		for _, w := range []string{"the Docker engine does not answer", "start Docker", "token", "nothing was created"} {
			if !strings.Contains(r.err, w) {
				t.Errorf("missing %q in\n%s", w, r.err)
			}
		}
		if strings.Contains(r.out+r.err, canary) {
			t.Fatalf("canary leaked:\n%s", r.err)
		}
	}
	// JSON face: one object per line, still no canary.
	r := apimdev(t, map[string]string{"APIMDEV_HOME": home, "APIMDEV_TOKEN": "contoso-gw&202612301200&" + canary}, "", "up", "-o", "json",
		"--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net", "--http-port", "18931", "--https-port", "18932")
	if r.code != ExitFailure || !strings.Contains(r.out, `"state":"failed"`) || strings.Contains(r.out+r.err, canary) {
		t.Fatalf("json: %d\n%s\n%s", r.code, r.out, r.err)
	}
}

func TestDoctorWritesAPrivateBundle(t *testing.T) {
	home := testdir.New(t)
	bundle := filepath.Join(testdir.New(t), "b.tar.gz")
	env := map[string]string{"APIMDEV_HOME": home, "APIMDEV_TOKEN": "GatewayKey contoso-gw&202612301200&" + canary}
	r := apimdev(t, env, "", "doctor", "--cluster-name", "apimdev-clitest-doctor", "--node-logs=false", "--bundle", bundle)
	if r.code != 0 || strings.TrimSpace(r.out) != bundle {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	info, err := os.Stat(bundle)
	if err != nil || testdir.POSIXModes && info.Mode().Perm() != 0o600 {
		t.Fatalf("bundle: %v %v", info, err)
	}
	if strings.Contains(r.out+r.err, canary) || !strings.Contains(r.err, "✓ doctor") {
		t.Fatalf("output:\n%s", r.err)
	}
}
