package helmvalues

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

var update = flag.Bool("update", false, "rewrite test/helmchart/testdata from the export")

// exportConfig is the configuration the round trip is proven with: the prod
// profile's defaults, a pinned image.
func exportConfig() config.Config {
	c := config.Default()
	c.Gateway.Name = "contoso-gw"
	c.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	c.Gateway.Image = "mcr.microsoft.com/azure-api-management/gateway:2.11.1"
	return c
}

// renderYAML is a profile's objects as apimdev applies them, the Secret
// left out (made outside the chart from the user's token file).
func renderYAML(t *testing.T, p gateway.Profile) []byte {
	t.Helper()
	var objs []k8sruntime.Object
	for _, o := range p.Objects(token.Token{}, true) {
		if _, ok := o.(*corev1.Secret); !ok {
			objs = append(objs, o)
		}
	}
	y, err := gateway.YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func exported(t *testing.T, c config.Config, version string) (gateway.Profile, map[string][]byte) {
	t.Helper()
	p, err := gateway.Prod(c)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Export(p, version)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		m[f.Name] = f.Data
	}
	return p, m
}

// TestExportReadBack: values exported, read back as --helm-values, give the
// same prod profile, object for object.
func TestExportReadBack(t *testing.T) {
	for name, c := range map[string]config.Config{
		"defaults": exportConfig(),
		"tuned": func() config.Config {
			c := exportConfig()
			c.Prod.Replicas, c.Prod.CPU, c.Prod.Memory, c.Prod.MemoryLimit, c.Prod.LogLevel = 4, "1500m", "3Gi", "4Gi", "error"
			c.Prod.Metrics = config.MetricsOpenTelemetry
			c.Prod.Proxy = config.Proxy{HTTPS: "http://proxy.corp:3128", NoProxy: ".svc,.cluster.local"}
			c.Prod.Logs = config.Logs{Local: "rfc5424", Endpoint: "10.1.2.3:514", Facility: "7"}
			c.Gateway.Auth = config.Auth{Type: config.AuthEntraApp, TenantID: "11111111-1111-1111-1111-111111111111", ClientID: "22222222-2222-2222-2222-222222222222"}
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			p, files := exported(t, c, "")
			m, err := Read(files[ValuesFile], "")
			if err != nil {
				t.Fatalf("the exported values do not read back: %v", err)
			}
			back := config.Default()
			if err := m.Apply(&back); err != nil {
				t.Fatal(err)
			}
			if err := back.Validate(); err != nil {
				t.Fatalf("read back: %v", err)
			}
			p2, err := gateway.Prod(back)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := renderYAML(t, p), renderYAML(t, p2); !bytes.Equal(a, b) {
				t.Errorf("the prod profile read back from its values differs:\n--- exported\n%s\n--- read back\n%s", a, b)
			}
			for name, f := range files {
				if bytes.Contains(f, []byte("kind: Secret")) || bytes.Contains(f, []byte("stringData")) {
					t.Errorf("%s holds a Secret: the chart must read an existing one", name)
				}
			}
			if !bytes.Contains(files[ValuesFile], []byte("createSecret: false")) {
				t.Error("values.yaml lets the chart make the Secret (from a key in values)")
			}
		})
	}
}

func TestExportUnknownVersion(t *testing.T) {
	p, err := gateway.Prod(exportConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Export(p, "1.14.0"); err == nil || !strings.Contains(err.Error(), "known are 1.15.1") {
		t.Errorf("unknown chart version: %v", err)
	}
}

// helmchartTestdata is where the helm module (test/helmchart, a module of
// its own) finds what it compares the chart's render with.
func helmchartTestdata() string {
	return filepath.Join("..", "..", "test", "helmchart", "testdata")
}

// TestHelmchartTestdataIsCurrent holds test/helmchart/testdata to what
// apimdev exports and renders now; -update rewrites it.
func TestHelmchartTestdataIsCurrent(t *testing.T) {
	p, files := exported(t, exportConfig(), "")
	files["apimdev-prod.yaml"] = renderYAML(t, p)
	dir := helmchartTestdata()
	for name, want := range files {
		if name == "README.md" {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale (or missing: %v): run go test ./internal/helmvalues -run TestHelmchartTestdataIsCurrent -update", path, err)
		}
	}
}
