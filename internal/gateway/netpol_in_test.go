package gateway

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apimdev/apimdev/internal/config"
)

// The policies in the cluster are counted; the gateway's own missing is an
// error that names it.
func TestNetworkPoliciesIn(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Gateway.Name = "gw"
	cfg.Prod.NetworkPolicy = config.NetworkPolicy{Enabled: true}
	p, err := Prod(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, np := range p.networkPolicies() {
		objs = append(objs, np)
	}
	if len(objs) == 0 {
		t.Fatal("the prod profile renders no NetworkPolicy")
	}
	n, err := NetworkPoliciesIn(context.Background(), fake.NewClientset(objs...), p)
	if err != nil || n != len(objs) {
		t.Fatalf("%d of %d, %v", n, len(objs), err)
	}
	n, err = NetworkPoliciesIn(context.Background(), fake.NewClientset(), p)
	if err == nil || n != 0 || !strings.Contains(err.Error(), "NetworkPolicy "+p.Namespace+"/"+p.NetworkPolicyName()) {
		t.Fatalf("none in the cluster: %d, %v", n, err)
	}
}
