package gateway

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

// The policies follow the settings: the endpoint's, the authority's and the
// proxy's ports are let out, listed callers only are let in, backends by
// CIDR and port; dev and a disabled policy render none.
func TestNetworkPolicyFollowsTheSettings(t *testing.T) {
	cfg := authConfig(config.AuthEntraApp)
	cfg.Gateway.Endpoint = "config.contoso.internal:8443"
	cfg.Gateway.Auth.Authority = "https://login.contoso.internal:9443"
	cfg.Prod.Proxy = config.Proxy{HTTPS: "http://proxy.contoso.internal:3128"}
	cfg.Prod.NetworkPolicy = config.NetworkPolicy{Enabled: true, From: []string{"10.1.0.0/16"}, Backends: []string{"10.20.0.0/16:8080", "192.168.5.0/24"}}
	p, err := Prod(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs := p.Objects(token.Token{}, true)
	var gw *networkingv1.NetworkPolicy
	n := 0
	for _, o := range objs {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			n++
			if np.Name == p.NetworkPolicyName() {
				gw = np
			}
		}
	}
	if n != 2 || gw == nil {
		t.Fatalf("%d policies, gateway's %v", n, gw)
	}
	if got := p.egressPorts(); !slices.Equal(got, []int32{443, 8443, 9443, 3128}) {
		t.Errorf("egress ports %v", got)
	}
	if from := gw.Spec.Ingress[0].From; len(from) != 1 || from[0].IPBlock.CIDR != "10.1.0.0/16" {
		t.Errorf("callers %+v", from)
	}
	var backends []string
	for _, e := range gw.Spec.Egress {
		for _, to := range e.To {
			if to.IPBlock != nil {
				ports := ""
				for _, pp := range e.Ports {
					ports += ":" + pp.Port.String()
				}
				backends = append(backends, to.IPBlock.CIDR+ports)
			}
		}
	}
	if !slices.Equal(backends, []string{"10.20.0.0/16:8080", "192.168.5.0/24"}) {
		t.Errorf("backends %v", backends)
	}
	if s := p.NetworkPolicySummary(); !strings.Contains(s, "from 10.1.0.0/16") || !strings.Contains(s, "TCP 443/8443/9443/3128") {
		t.Errorf("summary %q", s)
	}

	cfg.Prod.NetworkPolicy.Enabled = false
	off, _ := Prod(cfg)
	for name, q := range map[string]Profile{"disabled": off, "dev": Dev(cfg)} {
		for _, o := range q.Objects(token.Token{}, true) {
			if _, ok := o.(*networkingv1.NetworkPolicy); ok {
				t.Errorf("%s renders a NetworkPolicy", name)
			}
		}
	}
}
