package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
)

func TestTrafficTarget(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Gateway.Name = "gw"
	s := &Session{Config: cfg, Names: gateway.Dev(cfg), localCluster: true}
	path, _, what := s.trafficTarget(context.Background(), TrafficOptions{})
	if path != config.DefaultProbePath || !strings.Contains(what, "drains") {
		t.Fatalf("%s %s", path, what)
	}
	cfg.Smoke.File = "../smoke/testdata/valid.yaml"
	s.Config = cfg
	path, hdr, what := s.trafficTarget(context.Background(), TrafficOptions{})
	if path != "/echo/hello?x=1" || !strings.Contains(what, `"echo"`) || len(hdr) != 1 {
		t.Fatalf("%s %v %s", path, hdr, what)
	}
	path, hdr, _ = s.trafficTarget(context.Background(), TrafficOptions{Path: "/x", Header: map[string]string{"K": "v"}})
	if path != "/x" || hdr.Get("K") != "v" {
		t.Fatalf("%s %v", path, hdr)
	}
}
