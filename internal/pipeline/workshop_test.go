package pipeline

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
)

func TestKitPlanCarriesNoTokenOrPaths(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Gateway.Image = demo.DefaultImage
	cfg.Gateway.TokenFile = "/home/me/gw.token"
	cfg.Cluster.Kubeconfig = "/home/me/kc"
	cfg.Smoke.File = "/home/me/smoke.yaml"
	cfg.Cluster.NodeImage = "kindest/node:v1.34.0"
	want, out, _, err := KitPlan(t.Context(), nil, cfg, true, false)
	if err != nil {
		t.Fatal(err)
	}
	roles := ""
	for _, w := range want {
		roles += w.Role + "=" + w.Ref + " "
	}
	if roles != "node=kindest/node:v1.34.0 statsd=prom/statsd-exporter:v0.31.0 demo="+demo.DefaultImage+" " {
		t.Errorf("images: %s", roles)
	}
	if out.Gateway.TokenFile != "" || out.Cluster.Kubeconfig != "" || out.Smoke.File != "" || out.Gateway.Image != config.DefaultImage {
		t.Errorf("config: %+v", out)
	}
	// What goes into the kit decodes strictly as a config file.
	yb, err := yaml.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.Decode("kit apimdev.yaml", bytes.NewReader(yb), config.Default())
	if err != nil || back.Cluster.NodeImage != "kindest/node:v1.34.0" {
		t.Fatalf("decode: %v %+v", err, back.Cluster)
	}
	// A floating tag that no local image pins is refused with the fix.
	cfg.Gateway.Image = config.DefaultImage
	if _, _, _, err := KitPlan(t.Context(), nil, cfg, false, true); err == nil {
		t.Fatal("a kit took a floating tag")
	}
}
