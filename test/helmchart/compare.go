package helmchart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one Kubernetes object as generic YAML.
type Object map[string]any

// ID is an object's kind and name.
func (o Object) ID() string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v", o["kind"], md["name"])
}

// Objects splits a multi-document YAML stream into objects.
func Objects(b []byte) ([]Object, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []Object
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var o Object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, err
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
}

// Difference is one field that differs between two objects: Path is
// "Kind/name: dotted.path", Chart and Apimdev its values ("<none>" when
// absent).
type Difference struct {
	Path, Chart, Apimdev string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: chart %s, apimdev %s", d.Path, d.Chart, d.Apimdev)
}

// Compare lists every field that differs between the chart's objects and
// apimdev's, matching objects by kind and name (renames maps a chart
// object's ID to apimdev's name for it).
func Compare(chart, apimdev []Object, renames map[string]string) []Difference {
	byID := map[string]Object{}
	for _, o := range apimdev {
		byID[o.ID()] = o
	}
	seen := map[string]bool{}
	var out []Difference
	for _, c := range chart {
		id := c.ID()
		aid := id
		if r, ok := renames[id]; ok {
			aid = r
		}
		a, ok := byID[aid]
		if !ok {
			out = append(out, Difference{Path: id, Chart: "present", Apimdev: "<none>"})
			continue
		}
		seen[aid] = true
		diff(id+":", map[string]any(c), map[string]any(a), &out)
	}
	for _, a := range apimdev {
		if !seen[a.ID()] {
			out = append(out, Difference{Path: a.ID(), Chart: "<none>", Apimdev: "present"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func show(v any) string {
	if v == nil {
		return "<none>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// diff walks a and b together; lists of maps are matched by name,
// topologyKey or key where their items have one, else by position.
func diff(path string, a, b any, out *[]Difference) {
	if reflect.DeepEqual(norm(a), norm(b)) {
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			diff(join(path, k), am[k], bm[k], out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok {
		if len(al) == 1 && len(bl) == 1 {
			// one container, one volume...: the same one, whatever its name
			diff(path+"[0]", al[0], bl[0], out)
			return
		}
		if key := listKey(al, bl); key != "" {
			ai, bi := index(al, key), index(bl, key)
			names := map[string]bool{}
			for k := range ai {
				names[k] = true
			}
			for k := range bi {
				names[k] = true
			}
			for n := range names {
				diff(fmt.Sprintf("%s[%s=%s]", path, key, n), ai[n], bi[n], out)
			}
			return
		}
		if len(al) == len(bl) {
			for i := range al {
				diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
			}
			return
		}
	}
	*out = append(*out, Difference{Path: path, Chart: show(a), Apimdev: show(b)})
}

// norm makes numbers and their text compare equal (the chart writes
// some as strings).
func norm(v any) any {
	switch x := v.(type) {
	case float64:
		return fmt.Sprint(x)
	case int64:
		return fmt.Sprint(x)
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = norm(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = norm(e)
		}
		return l
	}
	return v
}

func join(path, k string) string {
	if strings.HasSuffix(path, ":") {
		return path + " " + k
	}
	return path + "." + k
}

func listKey(lists ...[]any) string {
	for _, key := range []string{"name", "topologyKey", "key"} {
		ok := true
		for _, l := range lists {
			for _, e := range l {
				m, isMap := e.(map[string]any)
				if !isMap || m[key] == nil {
					ok = false
				}
			}
		}
		if ok {
			return key
		}
	}
	return ""
}

func index(l []any, key string) map[string]any {
	m := map[string]any{}
	for _, e := range l {
		m[fmt.Sprint(e.(map[string]any)[key])] = e
	}
	return m
}
