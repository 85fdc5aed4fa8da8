package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestHelmValuesLayer(t *testing.T) {
	dir := testdir.New(t)
	values := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(values, []byte(`replicaCount: 4
image:
  tag: 2.11.1
gateway:
  name: contoso-gw
  configuration:
    uri: contoso.configuration.azure-api.net
resources:
  requests: {cpu: 1500m, memory: 3Gi}
observability:
  logs:
    std:
      level: error
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"APIMDEV_TOKEN": "GatewayKey contoso-gw&202612301200&" + canary, "APIMDEV_HOME": dir}
	r := apimdev(t, env, "", "render", "--profile", "prod", "-o", "yaml", "--set", "gateway.helmValues="+values)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, want := range []string{"replicas: 4", "name: contoso-gw\n", "cpu: 1500m", "memory: 3Gi", "telemetry.logs.std.level: error", "config.service.endpoint: contoso.configuration.azure-api.net", "image: mcr.microsoft.com/azure-api-management/gateway:2.11.1"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("prod render from the values file lacks %q", want)
		}
	}
	// Flags, variables and apimdev.yaml win over the values file.
	env["APIMDEV_PROD_LOG_LEVEL"] = "warn"
	r = apimdev(t, env, "", "render", "--profile", "prod", "-o", "yaml", "--set", "gateway.helmValues="+values, "--set", "prod.replicas=5")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	if !strings.Contains(r.out, "replicas: 5") || !strings.Contains(r.out, "telemetry.logs.std.level: warn") {
		t.Errorf("a flag and a variable did not win over the values file:\n%s", r.out)
	}
}

func TestHelmValuesRefused(t *testing.T) {
	dir := testdir.New(t)
	secret := filepath.Join(dir, "secret.yaml")
	os.WriteFile(secret, []byte("gateway:\n  configuration:\n    uri: contoso.configuration.azure-api.net\n  auth:\n    key: \"GatewayKey gw&202701010000&"+canary+"\"\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("replicaCont: 2\n"), 0o600)
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("controller:\n  kind: DaemonSet\n"), 0o600)
	for _, tt := range []struct {
		file string
		want []string
	}{
		{secret, []string{"gateway.auth.key holds a secret", "put it in a file or variable: --token-file FILE or APIMDEV_TOKEN"}},
		{typo, []string{"unknown key replicaCont (did you mean replicaCount?)", "nothing was deployed"}},
		{other, []string{"not a values file of azure-api-management-gateway"}},
		{filepath.Join(dir, "missing.yaml"), []string{"helm values:", "missing.yaml"}},
	} {
		// up fails before any step: the settings are made first.
		r := apimdev(t, map[string]string{"APIMDEV_HOME": dir, "APIMDEV_TOKEN": "GatewayKey gw&202701010000&" + canary}, "", "up", "--helm-values", tt.file, "--name", "gw")
		if r.code != ExitUsage {
			t.Errorf("%s: exit %d, want %d\n%s", tt.file, r.code, ExitUsage, r.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.err, w) {
				t.Errorf("%s: missing %q in %s", tt.file, w, r.err)
			}
		}
		if strings.Contains(r.out+r.err, canary) {
			t.Errorf("%s: the secret was printed", tt.file)
		}
		if strings.Contains(r.out+r.err, "preflight") {
			t.Errorf("%s: a step ran:\n%s%s", tt.file, r.out, r.err)
		}
	}
}

func TestExportHelmValues(t *testing.T) {
	dir := testdir.New(t)
	out := filepath.Join(dir, "gateway-helm")
	env := map[string]string{"APIMDEV_HOME": dir, "APIMDEV_TOKEN": "GatewayKey contoso-gw&202701010000&" + canary}
	args := []string{"export", "--format", "helm-values", "-o", out, "--name", "contoso-gw", "--endpoint", "contoso.configuration.azure-api.net", "--image", "mcr.microsoft.com/azure-api-management/gateway:2.11.1"}
	r := apimdev(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	values, err := os.ReadFile(filepath.Join(out, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"createSecret: false", "existingSecretName: contoso-gw-token", "tag: 2.11.1", "replicaCount: 3"} {
		if !strings.Contains(string(values), want) {
			t.Errorf("values.yaml lacks %q", want)
		}
	}
	for _, f := range []string{"overlay/kustomization.yaml", "overlay/patch-deployment.yaml", "overlay/post-render.sh", "README.md"} {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f)))
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if strings.Contains(string(b), canary) {
			t.Errorf("%s holds the token", f)
		}
	}
	for _, tt := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--include-token"}, "never holds a credential"},
		{[]string{"--chart-version", "0.9.0"}, "known are 1.15.1"},
	} {
		r := apimdev(t, env, "", append(append([]string{}, args...), tt.extra...)...)
		if r.code != ExitUsage || !strings.Contains(r.err, tt.want) {
			t.Errorf("%v: exit %d, %s", tt.extra, r.code, r.err)
		}
	}
	r = apimdev(t, env, "", "export", "--format", "chart", "-o", out)
	if r.code != ExitUsage || !strings.Contains(r.err, "manifests (default) or helm-values") {
		t.Errorf("unknown format: exit %d, %s", r.code, r.err)
	}
}
