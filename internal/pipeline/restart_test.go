package pipeline

import (
	"testing"

	"github.com/apimdev/apimdev/internal/gateway"
)

// A new token in an existing Secret needs a restart; a new or changed
// Deployment restarts the pods anyway.
func TestTokenChanged(t *testing.T) {
	t.Parallel()
	secret := func(created, changed bool) gateway.Applied {
		return gateway.Applied{Kind: "Secret", Name: "gw-token", Created: created, Changed: changed}
	}
	deploy := func(created, changed bool) gateway.Applied {
		return gateway.Applied{Kind: "Deployment", Name: "gw", Created: created, Changed: changed}
	}
	for _, tt := range []struct {
		name    string
		applied []gateway.Applied
		want    bool
	}{
		{"first up", []gateway.Applied{secret(true, false), deploy(true, false)}, false},
		{"re-run, nothing new", []gateway.Applied{secret(false, false), deploy(false, false)}, false},
		{"new token", []gateway.Applied{secret(false, true), deploy(false, false)}, true},
		{"new token and new image", []gateway.Applied{secret(false, true), deploy(false, true)}, false},
		{"Deployment recreated", []gateway.Applied{secret(false, true), deploy(true, false)}, false},
	} {
		if got := tokenChanged(tt.applied); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
