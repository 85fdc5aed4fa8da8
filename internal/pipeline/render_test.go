package pipeline

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/gateway"
)

var update = flag.Bool("update", false, "rewrite golden files")

// render --profile prod: what promote would apply, fitted to the local
// node when a cluster runs, the production values with --unfitted; the
// floating tag pinned as promote pins it; never the token.
func TestRenderProdIsWhatPromoteWouldApply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		golden   string
		cluster  bool
		unfitted bool
		fitted   bool
	}{
		{"render-prod-fitted", true, false, true},
		{"render-prod-unfitted", true, true, false},
		{"render-prod-no-cluster", false, false, false},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tt.cluster {
				mustUp(t, w, UpOptions{})
			}
			s := w.session()
			if !tt.cluster {
				s.Client = nil
				w.kind.state = cluster.ClusterAbsent
			}
			r, err := s.Render(context.Background(), RenderOptions{Profile: "prod", Unfitted: tt.unfitted, Token: w.tok})
			if err != nil {
				t.Fatal(err)
			}
			if r.Fitted != tt.fitted || r.Image != "mcr.microsoft.com/azure-api-management/gateway:2.11.1" {
				t.Fatalf("fitted %v, image %s (%s)", r.Fitted, r.Image, r.PinnedHow)
			}
			y, err := gateway.YAML(r.Objects)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(y), testCanary) {
				t.Fatal("the token is in the render")
			}
			// The ports are the world's own (free ports); the objects do not name them.
			path := filepath.Join("testdata", tt.golden+".golden.yaml")
			if *update {
				os.MkdirAll("testdata", 0o755)
				os.WriteFile(path, y, 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(want) != string(y) {
				t.Errorf("%s differs from the render (go test -update rewrites it):\n%s", path, y)
			}
			// The plan promote would make applies the same objects.
			if tt.cluster && !tt.unfitted {
				plan, err := w.session().PlanPromote(context.Background(), PromoteOptions{To: "prod"})
				if err != nil {
					t.Fatal(err)
				}
				py, _ := gateway.YAML(plan.Target.Objects(w.tok, true))
				if string(py) != string(y) {
					t.Errorf("render and promote's plan differ:\n%s\n---\n%s", y, py)
				}
			}
		})
	}
}
