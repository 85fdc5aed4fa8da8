package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Applied says what server-side apply did to one object.
type Applied struct {
	Kind, Name string
	Created    bool
	Changed    bool
}

func (a Applied) String() string {
	switch {
	case a.Created:
		return a.Kind + "/" + a.Name + " created"
	case a.Changed:
		return a.Kind + "/" + a.Name + " configured"
	default:
		return a.Kind + "/" + a.Name + " unchanged"
	}
}

// Apply server-side-applies objs in order with the apimdev field manager. An
// unchanged object keeps its resourceVersion, which is how a re-run is seen to
// be a no-op.
func Apply(ctx context.Context, cs kubernetes.Interface, objs []runtime.Object) ([]Applied, error) {
	out := make([]Applied, 0, len(objs))
	for _, o := range objs {
		a, err := applyOne(ctx, cs, o)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// client is what every typed client-go client offers for T.
type client[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (T, error)
}

func applyOne(ctx context.Context, cs kubernetes.Interface, o runtime.Object) (Applied, error) {
	switch obj := o.(type) {
	case *corev1.Namespace:
		return applyWith(ctx, cs.CoreV1().Namespaces(), obj)
	case *corev1.Secret:
		return applyWith(ctx, cs.CoreV1().Secrets(obj.Namespace), obj)
	case *corev1.ConfigMap:
		return applyWith(ctx, cs.CoreV1().ConfigMaps(obj.Namespace), obj)
	case *corev1.Service:
		return applyWith(ctx, cs.CoreV1().Services(obj.Namespace), obj)
	case *appsv1.Deployment:
		return applyWith(ctx, cs.AppsV1().Deployments(obj.Namespace), obj)
	default:
		return Applied{}, fmt.Errorf("apimdev does not apply %T", o)
	}
}

func applyWith[T metav1.Object](ctx context.Context, c client[T], o interface {
	runtime.Object
	metav1.Object
}) (Applied, error) {
	kind, name := o.GetObjectKind().GroupVersionKind().Kind, o.GetName()
	before, err := c.Get(ctx, name, metav1.GetOptions{})
	created := apierrors.IsNotFound(err)
	if err != nil && !created {
		return Applied{}, fmt.Errorf("reading %s/%s: %w", kind, name, err)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return Applied{}, fmt.Errorf("encoding %s/%s: %w", kind, name, err)
	}
	after, err := c.Patch(ctx, name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue()})
	if err != nil {
		// The API server's message names the field; the object's content (a
		// Secret's token) is never part of it.
		return Applied{}, fmt.Errorf("applying %s/%s: %w", kind, name, err)
	}
	a := Applied{Kind: kind, Name: name, Created: created}
	if !created {
		a.Changed = before.GetResourceVersion() != after.GetResourceVersion()
	}
	return a, nil
}

func ptrTrue() *bool { t := true; return &t }

// Delete removes the profile's objects (not the namespace unless apimdev made
// it and it holds nothing else of the user's). Missing objects are fine.
func Delete(ctx context.Context, cs kubernetes.Interface, p Profile) ([]string, error) {
	var gone []string
	del := func(kind, name string, f func() error) error {
		if err := f(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s/%s: %w", kind, name, err)
		} else if err == nil {
			gone = append(gone, kind+"/"+name)
		}
		return nil
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	core := cs.CoreV1()
	steps := []struct {
		kind, name string
		f          func() error
	}{
		{"Service", p.LiveService(), func() error { return core.Services(p.Namespace).Delete(ctx, p.LiveService(), opts) }},
		{"Service", p.DiscoveryService(), func() error { return core.Services(p.Namespace).Delete(ctx, p.DiscoveryService(), opts) }},
		{"Deployment", p.DeploymentName(), func() error { return cs.AppsV1().Deployments(p.Namespace).Delete(ctx, p.DeploymentName(), opts) }},
		{"ConfigMap", p.ConfigMapName(), func() error { return core.ConfigMaps(p.Namespace).Delete(ctx, p.ConfigMapName(), opts) }},
		{"Secret", p.SecretName(), func() error { return core.Secrets(p.Namespace).Delete(ctx, p.SecretName(), opts) }},
	}
	for _, s := range steps {
		if err := del(s.kind, s.name, s.f); err != nil {
			return gone, err
		}
	}
	return gone, nil
}
