package cluster

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func dnsSlice(ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-abc", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{discoveryv1.LabelServiceName: DNSService}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
}

var dnsSvc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: DNSService, Namespace: metav1.NamespaceSystem}}

func TestWaitDNS(t *testing.T) {
	t.Parallel()
	t.Run("no cluster DNS: nothing to wait for", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		if WaitDNS(context.Background(), fake.NewClientset(), time.Minute) || time.Since(start) > 5*time.Second {
			t.Fatal("waited on a cluster without kube-dns")
		}
	})
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		if !WaitDNS(context.Background(), fake.NewClientset(dnsSvc, dnsSlice(true)), time.Minute) {
			t.Fatal("a ready endpoint was not seen")
		}
	})
	t.Run("becomes ready", func(t *testing.T) {
		t.Parallel()
		cs := fake.NewClientset(dnsSvc, dnsSlice(false))
		turned := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // WaitDNS is watching by then, or reads it ready at once
			_, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Update(context.Background(), dnsSlice(true), metav1.UpdateOptions{})
			turned <- err
		}()
		ok := WaitDNS(context.Background(), cs, time.Minute)
		if err := <-turned; err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatal("the endpoint turning ready was not seen")
		}
	})
	t.Run("never ready: bounded", func(t *testing.T) {
		t.Parallel()
		if WaitDNS(context.Background(), fake.NewClientset(dnsSvc, dnsSlice(false)), 50*time.Millisecond) {
			t.Fatal("not-ready DNS reported ready")
		}
	})
}
