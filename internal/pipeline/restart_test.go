package pipeline

import (
	"testing"

	"github.com/apimdev/apimdev/internal/gateway"
)

// A new token in an existing Secret, or a new image under the same name on
// the node, needs a restart; a new or changed Deployment restarts the pods
// anyway, and a change to the statsd exporter's Deployment is not the
// gateway's.
func TestRestartReason(t *testing.T) {
	t.Parallel()
	secret := func(a gateway.Action) gateway.Change {
		return gateway.Change{Kind: "Secret", Name: "gw-token", Action: a}
	}
	deploy := func(a gateway.Action) gateway.Change {
		return gateway.Change{Kind: "Deployment", Name: "gw", Action: a}
	}
	statsd := gateway.Change{Kind: "Deployment", Name: "gw-statsd", Action: gateway.Update}
	settings := gateway.Change{Kind: "ConfigMap", Name: "gw-env", Action: gateway.Update}
	cas := gateway.Change{Kind: "ConfigMap", Name: "gw-ca-certificates", Action: gateway.Update}
	record := gateway.Change{Kind: "ConfigMap", Name: "gw-statsd-mapping", Action: gateway.Update}
	const c, u, n = gateway.Create, gateway.Update, gateway.Unchanged
	for _, tt := range []struct {
		name     string
		plan     []gateway.Change
		replaced bool
		want     string
	}{
		{"first up", []gateway.Change{secret(c), deploy(c)}, false, ""},
		{"first up, an old image of the name on the node", []gateway.Change{secret(c), deploy(c)}, true, ""},
		{"re-run, nothing new", []gateway.Change{secret(n), deploy(n)}, false, ""},
		{"new token", []gateway.Change{secret(u), deploy(n)}, false, "the credential in the Secret changed"},
		{"new token, the exporter changed too", []gateway.Change{secret(u), deploy(n), statsd}, false, "the credential in the Secret changed"},
		{"rebuilt image, same tag", []gateway.Change{secret(n), deploy(n)}, true, "the image changed under the same name"},
		{"both", []gateway.Change{secret(u), deploy(n)}, true, "the credential in the Secret and the image changed"},
		{"new token and new spec", []gateway.Change{secret(u), deploy(u)}, true, ""},
		{"Deployment recreated", []gateway.Change{secret(u), deploy(c)}, false, ""},
		{"another endpoint", []gateway.Change{secret(n), settings, deploy(n)}, false, "the settings in ConfigMap gw-env changed"},
		{"another endpoint and a new CA", []gateway.Change{settings, cas, deploy(n)}, false, "the settings in ConfigMap gw-env and the private CAs in ConfigMap gw-ca-certificates changed"},
		{"another endpoint and a new image", []gateway.Change{settings, deploy(n)}, true, "the settings in ConfigMap gw-env and the image changed"},
		{"another ConfigMap is not the gateway's settings", []gateway.Change{record, deploy(n)}, false, ""},
		{"settings with a new spec", []gateway.Change{settings, deploy(u)}, false, ""},
	} {
		if got := restartReason(tt.plan, gateway.Profile{Gateway: "gw"}, tt.replaced); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
