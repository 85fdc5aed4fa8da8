package gateway

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// ObjectDiff is the change to one object between two profiles.
type ObjectDiff struct {
	Kind, Name string
	Change     string   // "added", "removed", "changed", "unchanged"
	Lines      []string // unified-style lines: " ", "+", "-" prefixed
}

// Diff compares two renderings object by object (matched by kind and name),
// in the order of the target, then anything only the source has.
func Diff(from, to []runtime.Object) ([]ObjectDiff, error) {
	type doc struct {
		kind, name string
		lines      []string
	}
	index := func(objs []runtime.Object) ([]doc, error) {
		var out []doc
		for _, o := range objs {
			y, err := YAML([]runtime.Object{o})
			if err != nil {
				return nil, err
			}
			acc, err := meta.Accessor(o)
			if err != nil {
				return nil, err
			}
			out = append(out, doc{o.GetObjectKind().GroupVersionKind().Kind, acc.GetName(), strings.Split(strings.TrimRight(string(y), "\n"), "\n")})
		}
		return out, nil
	}
	a, err := index(from)
	if err != nil {
		return nil, err
	}
	b, err := index(to)
	if err != nil {
		return nil, err
	}
	key := func(d doc) string { return d.kind + "/" + d.name }
	seen := map[string]bool{}
	old := map[string]doc{}
	for _, d := range a {
		old[key(d)] = d
	}
	var out []ObjectDiff
	for _, d := range b {
		seen[key(d)] = true
		o, ok := old[key(d)]
		if !ok {
			out = append(out, ObjectDiff{Kind: d.kind, Name: d.name, Change: "added", Lines: prefix("+", d.lines)})
			continue
		}
		lines, changed := lineDiff(o.lines, d.lines)
		ch := "unchanged"
		if changed {
			ch = "changed"
		}
		out = append(out, ObjectDiff{Kind: d.kind, Name: d.name, Change: ch, Lines: lines})
	}
	for _, d := range a {
		if !seen[key(d)] {
			out = append(out, ObjectDiff{Kind: d.kind, Name: d.name, Change: "removed", Lines: prefix("-", d.lines)})
		}
	}
	return out, nil
}

func prefix(p string, ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = p + " " + l
	}
	return out
}

// lineDiff is a longest-common-subsequence diff; objects are a few hundred
// lines at most, so the quadratic table is fine.
func lineDiff(a, b []string) ([]string, bool) {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, "  "+a[i])
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, "+ "+b[j])
			j, changed = j+1, true
		default:
			out = append(out, "- "+a[i])
			i, changed = i+1, true
		}
	}
	return out, changed
}

// FormatDiff renders diffs for a terminal: each changed object's changed
// lines with `context` lines around them; unchanged objects in one line.
func FormatDiff(ds []ObjectDiff, context int) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s %s/%s\n", map[string]string{"added": "+", "removed": "-", "changed": "~", "unchanged": "="}[d.Change], d.Kind, d.Name)
		if d.Change == "unchanged" {
			continue
		}
		show := make([]bool, len(d.Lines))
		for i, l := range d.Lines {
			if !strings.HasPrefix(l, "  ") {
				for k := max(0, i-context); k <= min(len(d.Lines)-1, i+context); k++ {
					show[k] = true
				}
			}
		}
		gap := false
		for i, l := range d.Lines {
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
