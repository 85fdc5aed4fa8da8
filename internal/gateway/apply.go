package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

func applyOne(ctx context.Context, cs kubernetes.Interface, o runtime.Object) (Applied, error) {
	c, m, err := opsOf(cs, o)
	if err != nil {
		return Applied{}, err
	}
	kind, name := o.GetObjectKind().GroupVersionKind().Kind, m.GetName()
	before, err := c.get(ctx, name)
	if err == nil && before.GetDeletionTimestamp() != nil {
		// Applying to an object that is being deleted (a PVC a moment after a
		// demotion) would vanish with it: wait for it to go, then create it.
		if err = waitGone(ctx, c, name); err != nil {
			return Applied{}, fmt.Errorf("%s/%s is being deleted and did not go: %w", kind, name, err)
		}
		before, err = c.get(ctx, name)
	}
	created := apierrors.IsNotFound(err)
	if err != nil && !created {
		return Applied{}, fmt.Errorf("reading %s/%s: %w", kind, name, err)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return Applied{}, fmt.Errorf("encoding %s/%s: %w", kind, name, err)
	}
	after, err := c.patch(ctx, name, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue()})
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

func waitGone(ctx context.Context, c ops, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if _, err := c.get(ctx, name); apierrors.IsNotFound(err) {
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
