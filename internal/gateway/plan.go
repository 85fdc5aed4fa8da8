package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Action is what applying the plan does to one object.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Remove    Action = "delete"
	Unchanged Action = "unchanged"
)

// Change is what applying one object would do to the cluster, as the API
// server's server-side-apply dry run says: the diff is between the live
// object and the dry run's result, so what the user confirms is what will
// change (fields other managers own stay as they are, and show as such).
type Change struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Action Action   `json:"action"`
	Lines  []string `json:"lines,omitempty"` // "+ ", "- ", "  " prefixed YAML lines
	// SecretData says a Secret's data differs (its values are never shown).
	SecretData bool `json:"secretData,omitempty"`

	obj  runtime.Object // what to apply; nil for a deletion
	kill func(ctx context.Context) error
}

// Ref names the object, as kubectl does: Kind/name.
func (c Change) Ref() string { return c.Kind + "/" + c.Name }

// Changed reports whether applying it does anything.
func (c Change) Changed() bool { return c.Action != Unchanged }

// OnlySecretData reports an update whose only difference is a Secret's data:
// a token the user gave, which is theirs to change without a question.
func (c Change) OnlySecretData() bool {
	if c.Action != Update || !c.SecretData {
		return false
	}
	for _, l := range c.Lines {
		if (strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "- ")) && !strings.Contains(l, redactedMark) {
			return false
		}
	}
	return true
}

// Plan asks the API server what applying objs would change, object by object
// (server-side apply, dry run), and adds a deletion for every object apimdev
// made for the profile's gateway that objs no longer have (the prod profile's
// extras after a demotion, say): pruning happens here, for every command.
func Plan(ctx context.Context, cs kubernetes.Interface, p Profile, objs []runtime.Object) ([]Change, error) {
	out, err := PlanObjects(ctx, cs, objs)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, c := range out {
		keep[c.Ref()] = true
	}
	extra, err := p.managed(ctx, cs)
	if err != nil {
		return nil, err
	}
	for _, e := range extra {
		if !keep[e.Ref()] {
			out = append(out, e)
		}
	}
	return out, nil
}

// PlanObjects plans objs alone, with nothing to prune: each object's dry
// run against the live one.
func PlanObjects(ctx context.Context, cs kubernetes.Interface, objs []runtime.Object) ([]Change, error) {
	out := make([]Change, 0, len(objs))
	for _, o := range objs {
		c, err := planOne(ctx, cs, o)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Execute applies a plan: server-side apply of what it creates or updates, in
// order, then (after), the deletions. Splitting them lets a rollout finish
// between the two, so a claim is deleted only once no pod mounts it.
func Execute(ctx context.Context, cs kubernetes.Interface, plan []Change) ([]Applied, error) {
	var objs []runtime.Object
	for _, c := range plan {
		if c.obj != nil && c.Changed() {
			objs = append(objs, c.obj)
		}
	}
	return Apply(ctx, cs, objs)
}

// Prune deletes what the plan deletes; gone lists Kind/name of each.
func Prune(ctx context.Context, cs kubernetes.Interface, plan []Change) (gone []string, err error) {
	for _, c := range plan {
		if c.Action != Remove || c.kill == nil {
			continue
		}
		if err := c.kill(ctx); err != nil && !apierrors.IsNotFound(err) {
			return gone, fmt.Errorf("deleting %s: %w", c.Ref(), err)
		}
		gone = append(gone, c.Ref())
	}
	return gone, nil
}

// Counts says how many objects a plan changes of how many it covers.
func Counts(plan []Change) (changed, total int) {
	for _, c := range plan {
		if c.Changed() {
			changed++
		}
	}
	return changed, len(plan)
}

func planOne(ctx context.Context, cs kubernetes.Interface, o runtime.Object) (Change, error) {
	c, m, err := opsOf(cs, o)
	if err != nil {
		return Change{}, err
	}
	kind, name := o.GetObjectKind().GroupVersionKind().Kind, m.GetName()
	ch := Change{Kind: kind, Name: name, obj: o}
	live, err := c.get(ctx, name)
	switch {
	case apierrors.IsNotFound(err) || err == nil && live.GetDeletionTimestamp() != nil:
		ch.Action = Create
		y, err := cleanYAMLOf(o, nil)
		if err != nil {
			return ch, err
		}
		ch.Lines = prefix("+", y)
		return ch, nil
	case err != nil:
		return ch, fmt.Errorf("reading %s/%s: %w", kind, name, err)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return ch, fmt.Errorf("encoding %s/%s: %w", kind, name, err)
	}
	after, err := c.patch(ctx, name, data, metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue(), DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return ch, fmt.Errorf("planning %s/%s (server-side apply, dry run): %w", kind, name, err)
	}
	a, b, secret, err := comparable(kind, live, after)
	if err != nil {
		return ch, fmt.Errorf("comparing %s/%s: %w", kind, name, err)
	}
	lines, changed := lineDiff(a, b)
	ch.Lines, ch.SecretData, ch.Action = lines, secret, Unchanged
	if changed {
		ch.Action = Update
	}
	return ch, nil
}

// redactedMark stands in for every value of a Secret's data in a diff.
const redactedMark = "<redacted"

// comparable renders the live object and the dry run's result as YAML lines
// without what the server keeps for itself (resourceVersion, managedFields,
// status...), and with a Secret's values replaced by a mark that only says
// whether they differ.
func comparable(kind string, live, after any) (a, b []string, secretChanged bool, err error) {
	lm, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return nil, nil, false, err
	}
	am, err := runtime.DefaultUnstructuredConverter.ToUnstructured(after)
	if err != nil {
		return nil, nil, false, err
	}
	if kind == "Secret" {
		secretChanged = redactSecret(lm, am)
	}
	a, err = cleanYAMLOf(nil, lm)
	if err != nil {
		return nil, nil, false, err
	}
	b, err = cleanYAMLOf(nil, am)
	return a, b, secretChanged, err
}

func redactSecret(live, after map[string]any) (changed bool) {
	ld, _ := live["data"].(map[string]any)
	ad, _ := after["data"].(map[string]any)
	keys := map[string]bool{}
	for k := range ld {
		keys[k] = true
	}
	for k := range ad {
		keys[k] = true
	}
	for k := range keys {
		lv, lok := ld[k]
		av, aok := ad[k]
		same := lok == aok && fmt.Sprint(lv) == fmt.Sprint(av)
		changed = changed || !same
		if lok {
			ld[k] = redactedMark + map[bool]string{true: ">", false: ": the value in the cluster>"}[same]
		}
		if aok {
			ad[k] = redactedMark + map[bool]string{true: ">", false: ": the new value>"}[same]
		}
	}
	delete(live, "stringData")
	delete(after, "stringData")
	return changed
}

// cleanYAMLOf renders an object (or its unstructured form) as YAML lines
// without the fields the server owns.
func cleanYAMLOf(o runtime.Object, m map[string]any) ([]string, error) {
	if m == nil {
		var err error
		if m, err = runtime.DefaultUnstructuredConverter.ToUnstructured(o); err != nil {
			return nil, err
		}
		if o.GetObjectKind().GroupVersionKind().Kind == "Secret" {
			redactSecret(m, map[string]any{})
		}
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
			delete(md, k)
		}
		if len(md) == 0 {
			delete(m, "metadata")
		}
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(y), "\n"), "\n"), nil
}

// managed lists what apimdev made for this gateway in its namespace (the
// gateway's objects and its statsd exporter's), each as a deletion.
func (p Profile) managed(ctx context.Context, cs kubernetes.Interface) ([]Change, error) {
	sel := metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,app in (%s,%s,%s)", LabelManagedBy, ManagedBy, p.Gateway, p.StatsdName(), p.CollectorName())}
	ns := p.Namespace
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	var out []Change
	add := func(kind string, names []string, kill func(ctx context.Context, name string) error) {
		slices.Sort(names)
		for _, n := range names {
			out = append(out, Change{Kind: kind, Name: n, Action: Remove, Lines: []string{"- (" + kind + "/" + n + " is deleted)"},
				kill: func(ctx context.Context) error { return kill(ctx, n) }})
		}
	}
	for _, k := range kinds {
		if !k.pruned {
			continue
		}
		opts := sel
		if k.clusterScoped {
			// The namespace is in a label.
			opts = metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=%s,app=%s", LabelManagedBy, ManagedBy, LabelNamespace, p.Namespace, p.Gateway)}
		}
		c := k.client(cs, ns)
		made, err := names(c.list(ctx, opts))
		if err != nil {
			return nil, fmt.Errorf("listing %ss apimdev made in %s: %w", k.name, p.Namespace, err)
		}
		add(k.name, made, func(ctx context.Context, n string) error { return c.del(ctx, n, del) })
	}
	return out, nil
}

// names takes the names of a typed list's live items (not those being deleted).
func names(l runtime.Object, err error) ([]string, error) {
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	items, err := meta.ExtractList(l)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		if a, err := meta.Accessor(it); err == nil && a.GetDeletionTimestamp() == nil {
			out = append(out, a.GetName())
		}
	}
	return out, nil
}

// FormatPlan renders a plan for a terminal: each changed object's changed
// lines with `context` lines around them; unchanged objects in one line.
func FormatPlan(plan []Change, context int) string {
	var b strings.Builder
	for _, c := range plan {
		mark := map[Action]string{Create: "+", Remove: "-", Update: "~", Unchanged: "="}[c.Action]
		fmt.Fprintf(&b, "%s %s\n", mark, c.Ref())
		if !c.Changed() {
			continue
		}
		if c.Action == Remove {
			continue
		}
		show := make([]bool, len(c.Lines))
		for i, l := range c.Lines {
			if !strings.HasPrefix(l, "  ") {
				for k := max(0, i-context); k <= min(len(c.Lines)-1, i+context); k++ {
					show[k] = true
				}
			}
		}
		gap := false
		for i, l := range c.Lines {
			if !show[i] {
				gap = true
				continue
			}
			if gap {
				b.WriteString("    …\n")
				gap = false
			}
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}
