package helmvalues

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
)

// leafKeys are the dotted paths of a values file's values (maps descended
// into, a map or list value the chart passes whole counted as one key).
func leafKeys(t *testing.T, b []byte, whole map[string]bool) []string {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v map[string]any, prefix string)
	walk = func(v map[string]any, prefix string) {
		for k, x := range v {
			p := prefix + k
			if sub, ok := x.(map[string]any); ok && !whole[p] && len(sub) > 0 {
				walk(sub, p+".")
				continue
			}
			out = append(out, p)
		}
	}
	walk(m, "")
	slices.Sort(out)
	return out
}

func setting(m Mapping, path string) (string, bool) {
	for _, s := range m.Sets {
		if s.Path == path {
			return s.Value, true
		}
	}
	return "", false
}

func row(m Mapping, key string) (Row, bool) {
	for _, r := range m.Rows {
		if r.Key == key {
			return r, true
		}
	}
	return Row{}, false
}

// TestKeysAreTheChartsValues holds keys115 to the published chart: every
// key of its values.yaml is known, and every known key is in its
// values.yaml or used by its templates.
func TestKeysAreTheChartsValues(t *testing.T) {
	whole := map[string]bool{}
	var known []string
	for _, k := range keys115 {
		p := strings.TrimSuffix(k, "*")
		if p != k {
			whole[p] = true
		}
		known = append(known, p)
	}
	inChart := leafKeys(t, chartFile(t, "values.yaml"), whole)
	for _, k := range inChart {
		if !slices.Contains(known, k) {
			t.Errorf("the chart's values.yaml has %s, which apimdev does not know", k)
		}
	}
	// Keys the templates read that values.yaml does not list.
	templatesOnly := []string{"service.loadBalancer.ip", "gateway.deployment.annotations"}
	for _, k := range known {
		if !slices.Contains(inChart, k) && !slices.Contains(templatesOnly, k) {
			t.Errorf("apimdev knows %s, which the chart's values.yaml does not have", k)
		}
	}
}

func TestReadChartDefaults(t *testing.T) {
	m, err := Read(chartFile(t, "values.yaml"), "")
	if err != nil {
		t.Fatalf("the chart's own values.yaml: %v", err)
	}
	var buf bytes.Buffer
	if err := m.WriteTable(&buf, "values.yaml"); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	want := map[string]string{
		"prod.replicas":       "3",
		"gateway.image":       "mcr.microsoft.com/azure-api-management/gateway:2.11.1",
		"gateway.auth.type":   config.AuthToken,
		"prod.logLevel":       "info",
		"prod.cloudMetrics":   "true",
		"prod.metrics":        config.MetricsNone,
		"gateway.probePath":   "/status-0123456789abcdef",
		"prod.logs.local":     "auto",
		"prod.backup.enabled": "false",
	}
	for path, v := range want {
		if got, ok := setting(m, path); !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", path, got, ok, v)
		}
	}
	for key, status := range map[string]string{
		"replicaCount":                                   Adapted,
		"image.pullPolicy":                               NotApplicable,
		"observability.logs.local.json.endpoint":         NotApplicable,
		"highAvailability.disruption.maximumUnavailable": Adapted,
	} {
		if r, ok := row(m, key); !ok || r.Status != status {
			t.Errorf("row %s = %+v, want status %q", key, r, status)
		}
	}
	for _, r := range m.Rows {
		if r.Status != Used && r.Status != Adapted && r.Status != NotApplicable {
			t.Errorf("row %s has status %q", r.Key, r.Status)
		}
		if r.How == "" {
			t.Errorf("row %s says nothing of how", r.Key)
		}
	}
	// The chart's values, layered on apimdev's defaults, give a valid config
	// once the endpoint (which the chart leaves empty) is given.
	c := config.Default()
	if err := m.Apply(&c); err != nil {
		t.Fatal(err)
	}
	c.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	if err := c.Validate(); err != nil {
		t.Errorf("config from the chart's defaults: %v", err)
	}
}

// backupValues are the values of Microsoft's configuration backup setup,
// written from the chart's documented keys (gateway.configuration.backup.*)
// and the production page's advice (fsGroup 1001 for the volume).
const backupValues = `gateway:
  name: contoso-gw
  configuration:
    uri: "https://contoso.configuration.azure-api.net"
    backup:
      enabled: true
      persistentVolumeClaim:
        accessMode: ReadWriteMany
        size: 50Mi
        storageClassName: azurefile-csi
podSecurityContext:
  fsGroup: 1001
`

func TestReadBackupExample(t *testing.T) {
	m, err := Read([]byte(backupValues), "1.15.1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteTable(&buf, "backup-values.yaml"); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	for path, v := range map[string]string{
		"prod.backup.enabled": "true", "prod.backup.size": "50Mi", "prod.backup.accessMode": "ReadWriteMany",
		"gateway.endpoint": "https://contoso.configuration.azure-api.net", "gateway.name": "contoso-gw",
	} {
		if got, ok := setting(m, path); !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", path, got, ok, v)
		}
	}
	if _, ok := setting(m, "prod.backup.storageClass"); ok {
		t.Error("a storage class kind does not have was taken")
	}
	if r, _ := row(m, "podSecurityContext"); r.Status != Adapted {
		t.Errorf("podSecurityContext: %+v", r)
	}
	c := config.Default()
	if err := m.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("config from the backup example: %v", err)
	}
}

func TestReadRefusesSecrets(t *testing.T) {
	const tok = "GatewayKey gw&202701010000&c2VjcmV0c2lnbmF0dXJl"
	const app = "s3cr3t-client-value"
	for _, tc := range []struct{ file, key, fix string }{
		{"gateway:\n  auth:\n    key: \"" + tok + "\"\n", "gateway.auth.key", "--token-file"},
		{"gateway:\n  auth:\n    type: AzureAdApp\n    azureAd:\n      app:\n        id: 1\n        secret: " + app + "\n", "gateway.auth.azureAd.app.secret", "APIMDEV_CLIENT_SECRET"},
	} {
		m, err := Read([]byte(tc.file), "")
		var se *SecretError
		if !errors.As(err, &se) {
			t.Fatalf("%s: err %v, want a SecretError", tc.key, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.key) || !strings.Contains(msg, tc.fix) || !strings.Contains(msg, "put it in a file or variable") {
			t.Errorf("message does not name the key and the fix: %s", msg)
		}
		if strings.Contains(msg, tok) || strings.Contains(msg, "c2VjcmV0") || strings.Contains(msg, app) {
			t.Errorf("message holds the secret: %s", msg)
		}
		if len(m.Sets) != 0 || len(m.Rows) != 0 {
			t.Errorf("a file with a secret gave settings: %+v", m)
		}
	}
	// An empty key (the chart's default) is no secret.
	if _, err := Read([]byte("gateway:\n  auth:\n    key:\n"), ""); err != nil {
		t.Errorf("empty key: %v", err)
	}
}

func TestReadUnknownKeys(t *testing.T) {
	_, err := Read([]byte("replicaCont: 2\ngateway:\n  configuraton:\n    uri: x\n  deployment:\n    dns:\n      policy: Default\nimage:\n  tag: 2.11.1\n"), "")
	var ue *UnknownKeysError
	if !errors.As(err, &ue) {
		t.Fatalf("err %v, want unknown keys", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"line 1: unknown key replicaCont (did you mean replicaCount?)",
		"line 3: unknown key gateway.configuraton (did you mean gateway.configuration?)",
		"line 7: unknown key gateway.deployment.dns.policy",
		"nothing was deployed",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if len(ue.Problems) != 3 {
		t.Errorf("%d problems, want 3: %q", len(ue.Problems), ue.Problems)
	}
}

func TestReadOtherChart(t *testing.T) {
	_, err := Read([]byte("controller:\n  replicaCount: 2\ndefaultBackend:\n  enabled: false\n"), "")
	if err == nil || !strings.Contains(err.Error(), "not a values file of azure-api-management-gateway") || !strings.Contains(err.Error(), "controller, defaultBackend") {
		t.Errorf("another chart's file: %v", err)
	}
}

func TestReadUnknownChartVersion(t *testing.T) {
	_, err := Read([]byte("replicaCount: 2\n"), "2.0.0")
	if err == nil || !strings.Contains(err.Error(), `chart version "2.0.0"`) || !strings.Contains(err.Error(), "1.15.1, 1.15.2, 1.16.0, 1.16.1") {
		t.Errorf("unknown version: %v", err)
	}
	if v, err := AppVersion("1.16.1"); err != nil || v != "2.12.1" {
		t.Errorf("1.16.1 deploys %q, %v", v, err)
	}
}

func TestReadAuthAndAdditional(t *testing.T) {
	m, err := Read([]byte(`gateway:
  name: gw1
  configuration:
    uri: contoso.configuration.azure-api.net
    additional:
      telemetry.logs.std.level: error
      net.server.http.forwarded.proto.enabled: "true"
  auth:
    type: WorkloadIdentity
    azureAd:
      tenant:
        id: 11111111-1111-1111-1111-111111111111
      app:
        id: 22222222-2222-2222-2222-222222222222
resources:
  requests: {cpu: "1", memory: 1Gi}
  limits: {memory: 1536Mi, cpu: "2"}
gateway.extra: 1
`), "")
	if err == nil || !strings.Contains(err.Error(), "gateway.extra") {
		t.Fatalf("a dotted top-level key is unknown: %v", err)
	}
	_ = m
	m, err = Read([]byte(`gateway:
  name: gw1
  configuration:
    uri: contoso.configuration.azure-api.net
    additional:
      telemetry.logs.std.level: error
      net.server.http.forwarded.proto.enabled: "true"
  auth:
    type: WorkloadIdentity
    azureAd:
      tenant:
        id: 11111111-1111-1111-1111-111111111111
      app:
        id: 22222222-2222-2222-2222-222222222222
resources:
  requests: {cpu: "1", memory: 1Gi}
  limits: {memory: 1536Mi, cpu: "2"}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{
		"gateway.auth.type": config.AuthWorkloadIdentity, "gateway.auth.clientId": "22222222-2222-2222-2222-222222222222",
		"prod.logLevel": "error", "prod.cpu": "1", "prod.memory": "1Gi", "prod.memoryLimit": "1536Mi",
	} {
		if got, ok := setting(m, path); !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", path, got, ok, v)
		}
	}
	if r, _ := row(m, "gateway.configuration.additional.net.server.http.forwarded.proto.enabled"); r.Status != NotApplicable {
		t.Errorf("an additional setting apimdev has no field for: %+v", r)
	}
	if r, _ := row(m, "resources"); !strings.Contains(r.How, "CPU limit is not applied") {
		t.Errorf("resources: %+v", r)
	}
}
