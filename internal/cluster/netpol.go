package cluster

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// policyAgents are DaemonSets whose pods enforce NetworkPolicy, by name.
var policyAgents = []struct{ name, what string }{
	{"calico-node", "Calico"}, {"cilium", "Cilium"}, {"antrea-agent", "Antrea"}, {"kube-router", "kube-router"},
	{"weave-net", "Weave Net"}, {"azure-npm", "Azure Network Policy Manager"}, {"kube-network-policies", "kube-network-policies"},
	// kind's own CNI enforces policies since kind v0.24.
	{"kindnet", "kindnet"},
}

// PolicyEnforcer names what enforces NetworkPolicy in the cluster, "" when
// nothing known does; err when the cluster's DaemonSets cannot be listed.
func PolicyEnforcer(ctx context.Context, c kubernetes.Interface) (string, error) {
	l, err := c.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
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
