// Package kubefake is client-go's fake clientset with what apimdev's flows
// need of a real API server and the fake lacks: server-side apply's dry run
// changes nothing (the fake applies it for real), and every write bumps the
// object's resourceVersion (the fake leaves it empty), so "unchanged" can be
// told from "configured".
//
// It is for tests only; nothing outside _test.go files imports it.
package kubefake

import (
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// New returns a fake clientset holding objs.
func New(objs ...runtime.Object) *fake.Clientset { return newClientset(objs, nil) }

// afterWrite is told of every real (not dry-run) write, under the
// clientset's lock, with the tracker to change more objects through.
type afterWrite func(tr k8stesting.ObjectTracker, gvr schema.GroupVersionResource, ns, name string)

func newClientset(objs []runtime.Object, hook afterWrite) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	tr := cs.Tracker()
	var mu sync.Mutex
	rv := 0
	// Every write goes through the object reaction below, once: a dry run is
	// applied, read back and undone; a real write gets a new resourceVersion
	// unless it changed nothing.
	react := k8stesting.ObjectReaction(tr)
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "patch", "update", "create":
		case "delete":
			if hook == nil {
				return false, nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			handled, obj, err := react(a)
			if err == nil {
				if d, ok := a.(k8stesting.DeleteActionImpl); ok {
					hook(tr, d.GetResource(), d.GetNamespace(), d.Name)
				}
			}
			return handled, obj, err
		default:
			return false, nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		gvr, ns := a.GetResource(), a.GetNamespace()
		name := ""
		switch x := a.(type) {
		case k8stesting.PatchActionImpl:
			name = x.Name
		case k8stesting.UpdateActionImpl:
			if m, err := meta.Accessor(x.Object); err == nil {
				name = m.GetName()
			}
		case k8stesting.CreateActionImpl:
			if m, err := meta.Accessor(x.Object); err == nil {
				name = m.GetName()
			}
		}
		if a.GetSubresource() != "" {
			return false, nil, nil
		}
		before, getErr := tr.Get(gvr, ns, name)
		if getErr != nil && !apierrors.IsNotFound(getErr) {
			return true, nil, getErr
		}
		dry := false
		if p, ok := a.(k8stesting.PatchActionImpl); ok {
			dry = slices.Contains(p.PatchOptions.DryRun, metav1.DryRunAll)
		}
		handled, obj, err := react(a)
		if err != nil || !handled {
			return handled, obj, err
		}
		after, _ := tr.Get(gvr, ns, name)
		if dry {
			if getErr != nil {
				_ = tr.Delete(gvr, ns, name)
			} else {
				_ = tr.Update(gvr, before, ns)
			}
			return true, after, nil
		}
		if after == nil {
			return true, obj, nil
		}
		defer func() {
			if hook != nil {
				hook(tr, gvr, ns, name)
			}
		}()
		am, _ := meta.Accessor(after)
		if getErr == nil {
			bm, _ := meta.Accessor(before)
			if sameContent(before, after) {
				am.SetResourceVersion(bm.GetResourceVersion())
				_ = tr.Update(gvr, after, ns)
				got, _ := tr.Get(gvr, ns, name)
				return true, got, nil
			}
		}
		rv++
		am.SetResourceVersion(strconv.Itoa(rv))
		_ = tr.Update(gvr, after, ns)
		got, _ := tr.Get(gvr, ns, name)
		return true, got, nil
	})
	return cs
}

// sameContent compares two objects without the fields a write always
// touches (managedFields times, resourceVersion).
func sameContent(a, b runtime.Object) bool {
	a, b = a.DeepCopyObject(), b.DeepCopyObject()
	for _, o := range []runtime.Object{a, b} {
		m, _ := meta.Accessor(o)
		m.SetManagedFields(nil)
		m.SetResourceVersion("")
	}
	return equality.Semantic.DeepEqual(a, b)
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }
