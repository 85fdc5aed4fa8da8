package cluster

import (
	"context"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DNSService is the cluster DNS Service kubeadm (and so kind) makes.
const DNSService = "kube-dns"

// WaitDNS waits until the cluster DNS Service has a ready endpoint, at most
// limit, and says whether it has. A gateway started before that fails its
// first configuration fetch (the endpoint's name does not resolve) and waits
// for its next poll, 10 s later; on a new cluster DNS is ready a few seconds
// after the API server. It returns at once when the cluster has no such
// Service (not kind, not kubeadm): there is nothing to wait for.
func WaitDNS(ctx context.Context, cs kubernetes.Interface, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	sel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + DNSService}
	for {
		l, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).List(ctx, sel)
		if err != nil {
			return false
		}
		if len(l.Items) == 0 {
			// No slice yet on a new cluster, or no cluster DNS at all.
			if _, err := cs.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, DNSService, metav1.GetOptions{}); err != nil {
				return false
			}
		}
		if dnsReady(l.Items) {
			return true
		}
		opts := sel
		opts.ResourceVersion = l.ResourceVersion
		w, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Watch(ctx, opts)
		if err != nil {
			return false
		}
		// Look again on the first change (or after a second, should the
		// watch stay silent).
		select {
		case <-ctx.Done():
			w.Stop()
			return false
		case <-w.ResultChan():
		case <-time.After(time.Second):
		}
		w.Stop()
	}
}

func dnsReady(slices []discoveryv1.EndpointSlice) bool {
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}
