package pipeline

import (
	"testing"

	"github.com/apimdev/apimdev/internal/gateway"
)

// A new token in an existing Secret, or a new image under the same name on
// the node, needs a restart; a new or changed Deployment restarts the pods
// anyway.
func TestRestartReason(t *testing.T) {
	t.Parallel()
	secret := func(created, changed bool) gateway.Applied {
		return gateway.Applied{Kind: "Secret", Name: "gw-token", Created: created, Changed: changed}
	}
	deploy := func(created, changed bool) gateway.Applied {
		return gateway.Applied{Kind: "Deployment", Name: "gw", Created: created, Changed: changed}
	}
	for _, tt := range []struct {
		name     string
		applied  []gateway.Applied
		replaced bool
		want     string
	}{
		{"first up", []gateway.Applied{secret(true, false), deploy(true, false)}, false, ""},
		{"first up, an old image of the name on the node", []gateway.Applied{secret(true, false), deploy(true, false)}, true, ""},
		{"re-run, nothing new", []gateway.Applied{secret(false, false), deploy(false, false)}, false, ""},
		{"new token", []gateway.Applied{secret(false, true), deploy(false, false)}, false, "the token changed"},
		{"rebuilt image, same tag", []gateway.Applied{secret(false, false), deploy(false, false)}, true, "the image changed under the same name"},
		{"both", []gateway.Applied{secret(false, true), deploy(false, false)}, true, "the token and the image changed"},
		{"new token and new spec", []gateway.Applied{secret(false, true), deploy(false, true)}, true, ""},
		{"Deployment recreated", []gateway.Applied{secret(false, true), deploy(true, false)}, false, ""},
	} {
		if got := restartReason(tt.applied, tt.replaced); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
