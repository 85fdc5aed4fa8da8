package pipeline

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/gateway"
)

// policyAgents are DaemonSets whose pods enforce NetworkPolicy, by name.
var policyAgents = []struct{ name, what string }{
	{"calico-node", "Calico"}, {"cilium", "Cilium"}, {"antrea-agent", "Antrea"}, {"kube-router", "kube-router"},
	{"weave-net", "Weave Net"}, {"azure-npm", "Azure Network Policy Manager"}, {"kube-network-policies", "kube-network-policies"},
	// kind's own CNI enforces policies since kind v0.24.
	{"kindnet", "kindnet"},
}

// policyEnforcer names what enforces NetworkPolicy in the cluster, "" when
// nothing known does; err when the cluster's DaemonSets cannot be listed.
func (s *Session) policyEnforcer(ctx context.Context) (string, error) {
	l, err := s.Client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, a := range policyAgents {
		for _, d := range l.Items {
			if strings.HasPrefix(d.Name, a.name) {
				return fmt.Sprintf("%s (DaemonSet %s/%s)", a.what, d.Namespace, d.Name), nil
			}
		}
	}
	return "", nil
}

// checkNetworkPolicy says what the profile's policies allow, whether they are
// in the cluster, and whether anything enforces them.
func (s *Session) checkNetworkPolicy(ctx context.Context, p gateway.Profile) (bool, string) {
	n := 0
	for _, name := range []string{p.NetworkPolicyName(), p.SinkPolicyName()} {
		if name == "" {
			continue
		}
		if _, err := s.Client.NetworkingV1().NetworkPolicies(p.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			n++
		} else if name == p.NetworkPolicyName() {
			return false, fmt.Sprintf("NetworkPolicy %s/%s: %v", p.Namespace, name, err)
		}
	}
	what := fmt.Sprintf("%d NetworkPolicy object(s): %s", n, p.NetworkPolicySummary())
	who, err := s.policyEnforcer(ctx)
	switch {
	case err != nil:
		return true, what + "; whether this cluster enforces them is unknown (listing DaemonSets: " + err.Error() + ")"
	case who == "":
		return true, what + "; accepted by the API server, but nothing in this cluster enforces NetworkPolicy (no Calico, Cilium, Antrea, kube-router, Azure NPM or kindnet agent): they take effect on a cluster whose CNI does"
	}
	return true, what + "; enforced by " + who
}
