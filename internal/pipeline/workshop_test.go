package pipeline

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/kit"
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

// One rule chooses the demo's image, for the CLI and the wizard alike: the
// user's stand-in image, else the kit's, else the default.
func TestDemoImageChoice(t *testing.T) {
	withKit := &Workshop{Demo: true, Manifest: &kit.Manifest{Images: []kit.Image{{Role: kit.RoleDemo, Ref: "apimdev-e2e/standin-gateway:kit"}}}}
	for _, tt := range []struct {
		ws          *Workshop
		asked, want string
	}{
		{&Workshop{Demo: true}, "", demo.DefaultImage},
		{&Workshop{Demo: true}, config.DefaultImage, demo.DefaultImage},
		{&Workshop{Demo: true}, "apimdev-e2e/standin-gateway:mine", "apimdev-e2e/standin-gateway:mine"},
		{withKit, "", "apimdev-e2e/standin-gateway:kit"},
		{withKit, "apimdev-e2e/standin-gateway:mine", "apimdev-e2e/standin-gateway:mine"},
	} {
		if got := tt.ws.DemoImage(tt.asked); got != tt.want {
			t.Errorf("asked %q, kit %v: %q, want %q", tt.asked, tt.ws.Manifest != nil, got, tt.want)
		}
	}
}
