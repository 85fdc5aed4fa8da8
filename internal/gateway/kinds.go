package gateway

import (
	"context"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// objectKind is one kind of object apimdev applies: how to reach its typed
// client, and whether planning prunes it. kinds is the one list of them;
// applying, planning and pruning all read it, so a new kind is one row.
type objectKind struct {
	name  string         // as in TypeMeta: "Deployment"
	proto runtime.Object // a zero object of the kind's Go type
	// clusterScoped kinds have no namespace; the one apimdev prunes (the
	// backup's PersistentVolume) carries the gateway's namespace in a label.
	clusterScoped bool
	// pruned kinds are listed by apimdev's labels when planning, and what
	// the profile no longer renders is deleted.
	pruned bool
	// client is the kind's typed client in namespace ns ("" when cluster-scoped).
	client func(cs kubernetes.Interface, ns string) ops
}

// kinds are the kinds the profiles render, and only those, in the order
// planning lists the deletions of what apimdev made.
var kinds = []objectKind{
	{name: "Namespace", proto: &corev1.Namespace{}, clusterScoped: true,
		client: func(cs kubernetes.Interface, _ string) ops { return opsFor(cs.CoreV1().Namespaces()) }},
	{name: "ServiceAccount", proto: &corev1.ServiceAccount{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.CoreV1().ServiceAccounts(ns)) }},
	{name: "Secret", proto: &corev1.Secret{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.CoreV1().Secrets(ns)) }},
	{name: "ConfigMap", proto: &corev1.ConfigMap{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.CoreV1().ConfigMaps(ns)) }},
	{name: "PersistentVolumeClaim", proto: &corev1.PersistentVolumeClaim{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.CoreV1().PersistentVolumeClaims(ns)) }},
	{name: "PersistentVolume", proto: &corev1.PersistentVolume{}, clusterScoped: true, pruned: true,
		client: func(cs kubernetes.Interface, _ string) ops { return opsFor(cs.CoreV1().PersistentVolumes()) }},
	{name: "Deployment", proto: &appsv1.Deployment{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.AppsV1().Deployments(ns)) }},
	{name: "Service", proto: &corev1.Service{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.CoreV1().Services(ns)) }},
	{name: "PodDisruptionBudget", proto: &policyv1.PodDisruptionBudget{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.PolicyV1().PodDisruptionBudgets(ns)) }},
	{name: "NetworkPolicy", proto: &networkingv1.NetworkPolicy{}, pruned: true,
		client: func(cs kubernetes.Interface, ns string) ops { return opsFor(cs.NetworkingV1().NetworkPolicies(ns)) }},
}

// kindOf is o's row in kinds, by its Go type.
func kindOf(o runtime.Object) (objectKind, bool) {
	t := reflect.TypeOf(o)
	for _, k := range kinds {
		if reflect.TypeOf(k.proto) == t {
			return k, true
		}
	}
	return objectKind{}, false
}

// client is what every typed client-go client offers for T, whose list is L.
type client[T metav1.Object, L runtime.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// ops is one kind's typed client with its type forgotten: what applying,
// planning and pruning need of it.
type ops struct {
	get   func(ctx context.Context, name string) (metav1.Object, error)
	patch func(ctx context.Context, name string, data []byte, opts metav1.PatchOptions) (metav1.Object, error)
	list  func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
	del   func(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

func opsFor[T metav1.Object, L runtime.Object](c client[T, L]) ops {
	return ops{
		get: func(ctx context.Context, name string) (metav1.Object, error) {
			return c.Get(ctx, name, metav1.GetOptions{})
		},
		patch: func(ctx context.Context, name string, data []byte, opts metav1.PatchOptions) (metav1.Object, error) {
			return c.Patch(ctx, name, types.ApplyPatchType, data, opts)
		},
		list: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, opts)
		},
		del: c.Delete,
	}
}

// opsOf is the typed client of o's kind, in o's namespace.
func opsOf(cs kubernetes.Interface, o runtime.Object) (ops, metav1.Object, error) {
	k, ok := kindOf(o)
	if !ok {
		return ops{}, nil, fmt.Errorf("apimdev does not apply %T", o)
	}
	m, err := meta.Accessor(o)
	if err != nil {
		return ops{}, nil, fmt.Errorf("apimdev does not apply %T: %w", o, err)
	}
	ns := m.GetNamespace()
	if k.clusterScoped {
		ns = ""
	}
	return k.client(cs, ns), m, nil
}
