package cluster

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPolicyEnforcer(t *testing.T) {
	t.Parallel()
	ds := func(ns, name string) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	ctx := context.Background()
	who, err := PolicyEnforcer(ctx, fake.NewClientset(ds("kube-system", "kube-proxy")))
	if err != nil || who != "" {
		t.Fatalf("kube-proxy only: %q, %v", who, err)
	}
	// Calico comes before kindnet in the list, whatever the order listed.
	who, err = PolicyEnforcer(ctx, fake.NewClientset(ds("kube-system", "kindnet"), ds("calico-system", "calico-node")))
	if err != nil || who != "Calico (DaemonSet calico-system/calico-node)" {
		t.Fatalf("calico and kindnet: %q, %v", who, err)
	}
	who, _ = PolicyEnforcer(ctx, fake.NewClientset(ds("kube-system", "kindnet")))
	if !strings.HasPrefix(who, "kindnet") {
		t.Fatalf("kindnet: %q", who)
	}
}
