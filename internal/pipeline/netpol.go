package pipeline

import (
	"context"
	"fmt"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/gateway"
)

// checkNetworkPolicy says what the profile's policies allow, whether they are
// in the cluster, and whether anything enforces them.
func (s *Session) checkNetworkPolicy(ctx context.Context, p gateway.Profile) (bool, string) {
	n, err := gateway.NetworkPoliciesIn(ctx, s.Client, p)
	if err != nil {
		return false, err.Error()
	}
	what := fmt.Sprintf("%d NetworkPolicy object(s): %s", n, p.NetworkPolicySummary())
	who, err := cluster.PolicyEnforcer(ctx, s.Client)
	switch {
	case err != nil:
		return true, what + "; whether this cluster enforces them is unknown (listing DaemonSets: " + err.Error() + ")"
	case who == "":
		return true, what + "; accepted by the API server, but nothing in this cluster enforces NetworkPolicy (no Calico, Cilium, Antrea, kube-router, Azure NPM or kindnet agent): they take effect on a cluster whose CNI does"
	}
	return true, what + "; enforced by " + who
}
