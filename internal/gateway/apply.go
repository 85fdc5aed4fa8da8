package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
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
	case *corev1.ServiceAccount:
		return applyWith(ctx, cs.CoreV1().ServiceAccounts(obj.Namespace), obj)
	case *corev1.PersistentVolumeClaim:
		return applyWith(ctx, cs.CoreV1().PersistentVolumeClaims(obj.Namespace), obj)
	case *policyv1.PodDisruptionBudget:
		return applyWith(ctx, cs.PolicyV1().PodDisruptionBudgets(obj.Namespace), obj)
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
	if err == nil && before.GetDeletionTimestamp() != nil {
		// Applying to an object that is being deleted (a PVC a moment after a
		// demotion) would vanish with it: wait for it to go, then create it.
		if err = waitGone(ctx, c, name); err != nil {
			return Applied{}, fmt.Errorf("%s/%s is being deleted and did not go: %w", kind, name, err)
		}
		before, err = c.Get(ctx, name, metav1.GetOptions{})
	}
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

type deletion = struct {
	kind, name string
	f          func() error
}

// prodOnly deletes what only the prod profile has; demoting to dev uses it.
func (p Profile) prodOnly(ctx context.Context, cs kubernetes.Interface, opts metav1.DeleteOptions) []deletion {
	core := cs.CoreV1()
	return []deletion{
		{"PodDisruptionBudget", p.Gateway, func() error { return cs.PolicyV1().PodDisruptionBudgets(p.Namespace).Delete(ctx, p.Gateway, opts) }},
		{"Deployment", p.StatsdName(), func() error { return cs.AppsV1().Deployments(p.Namespace).Delete(ctx, p.StatsdName(), opts) }},
		{"Service", p.StatsdName(), func() error { return core.Services(p.Namespace).Delete(ctx, p.StatsdName(), opts) }},
		{"PersistentVolumeClaim", p.BackupClaimName(), func() error {
			return core.PersistentVolumeClaims(p.Namespace).Delete(ctx, p.BackupClaimName(), opts)
		}},
		{"ServiceAccount", p.Gateway, func() error { return core.ServiceAccounts(p.Namespace).Delete(ctx, p.Gateway, opts) }},
	}
}

// DeleteProdOnly removes the objects the dev profile does not have, after a
// demotion has applied the dev Deployment (which no longer mounts the PVC).
func DeleteProdOnly(ctx context.Context, cs kubernetes.Interface, p Profile) ([]string, error) {
	bg := metav1.DeletePropagationBackground
	var gone []string
	for _, s := range p.prodOnly(ctx, cs, metav1.DeleteOptions{PropagationPolicy: &bg}) {
		if err := s.f(); err != nil && !apierrors.IsNotFound(err) {
			return gone, fmt.Errorf("deleting %s/%s: %w", s.kind, s.name, err)
		} else if err == nil {
			gone = append(gone, s.kind+"/"+s.name)
		}
	}
	return gone, nil
}

func waitGone[T metav1.Object](ctx context.Context, c client[T], name string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if _, err := c.Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
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
	steps := []deletion{
		{"Service", p.LiveService(), func() error { return core.Services(p.Namespace).Delete(ctx, p.LiveService(), opts) }},
		{"Service", p.DiscoveryService(), func() error { return core.Services(p.Namespace).Delete(ctx, p.DiscoveryService(), opts) }},
		{"Deployment", p.DeploymentName(), func() error { return cs.AppsV1().Deployments(p.Namespace).Delete(ctx, p.DeploymentName(), opts) }},
		{"ConfigMap", p.ConfigMapName(), func() error { return core.ConfigMaps(p.Namespace).Delete(ctx, p.ConfigMapName(), opts) }},
		{"Secret", p.SecretName(), func() error { return core.Secrets(p.Namespace).Delete(ctx, p.SecretName(), opts) }},
	}
	steps = append(steps, p.prodOnly(ctx, cs, opts)...)
	for _, s := range steps {
		if err := del(s.kind, s.name, s.f); err != nil {
			return gone, err
		}
	}
	return gone, nil
}
