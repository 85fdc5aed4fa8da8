package relay

import (
	"go/build"
	"strings"
	"testing"
)

// The relay runs in a pod from apimdev's own binary and the agent inside
// apimdev: neither brings Kubernetes' or Docker's clients with it; the
// caller brings the dialer.
func TestImportsNoClusterClients(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		p, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Imports) == 0 {
			t.Fatal("no imports read")
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "k8s.io/") || strings.Contains(imp, "docker") || strings.HasPrefix(imp, "sigs.k8s.io/") {
				t.Errorf("%s imports %s", goos, imp)
			}
		}
	}
}
