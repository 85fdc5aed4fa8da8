package helmvalues

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
)

// What apimdev does with one value of the file.
const (
	Used          = "used"
	Adapted       = "adapted"
	NotApplicable = "not applicable locally"
)

// Row is one value set in the file and what apimdev does with it. Value is
// the file's value as text; a secret's is never held.
type Row struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Status  string `json:"status"`
	How     string `json:"how"`
	Setting string `json:"setting,omitempty"` // the apimdev setting it sets, if any
}

// Set is one apimdev setting the file gives: a dotted apimdev.yaml path
// and its value as text (config.Config.Set's form).
type Set struct {
	Path  string `json:"path"`
	Value string `json:"value"`
}

// Mapping is a values file read: the settings it gives and one row per
// value it sets.
type Mapping struct {
	ChartVersion string `json:"chartVersion"`
	Sets         []Set  `json:"sets"`
	Rows         []Row  `json:"rows"`
}

// Apply puts the file's settings onto c. apimdev layers them just above
// its defaults: apimdev.yaml, APIMDEV_* variables and flags all win over a
// values file (the values file says how production runs; the laptop's own
// settings say how this run differs).
func (m Mapping) Apply(c *config.Config) error {
	var errs []error
	for _, s := range m.Sets {
		if err := c.Set(s.Path, s.Value); err != nil {
			errs = append(errs, fmt.Errorf("values file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// SecretError is a secret found in a values file: the keys it is under,
// never its value.
type SecretError struct{ Keys []string }

func (e *SecretError) Error() string {
	var b strings.Builder
	for i, k := range e.Keys {
		if i > 0 {
			b.WriteString("; ")
		}
		fix := "put it in a file or variable: --token-file FILE or APIMDEV_TOKEN"
		if k == "gateway.auth.azureAd.app.secret" {
			fix = "put it in a file or variable: --client-secret-file FILE or APIMDEV_CLIENT_SECRET"
		}
		fmt.Fprintf(&b, "%s holds a secret, which apimdev never takes from a values file (it was not used, printed or stored): %s", k, fix)
	}
	return b.String()
}

// UnknownKeysError names the keys of a values file the chart does not have.
type UnknownKeysError struct {
	ChartVersion string
	Problems     []string
}

func (e *UnknownKeysError) Error() string {
	return fmt.Sprintf("values file: %d key(s) that chart %s %s does not have, so nothing was deployed from it: %s",
		len(e.Problems), Chart, e.ChartVersion, strings.Join(e.Problems, "; "))
}

// leaf is one value of the file: its dotted path, its node and line.
type leaf struct {
	path string
	node *yaml.Node
}

// Read maps a values file of the official chart, version chartVersion ("" is
// DefaultChartVersion), onto apimdev's settings. It fails, and gives no
// settings, on YAML that does not parse, a file of another chart, a key
// the chart does not have, a secret in the file, or a chart version apimdev
// does not know.
func Read(b []byte, chartVersion string) (Mapping, error) {
	if chartVersion == "" {
		chartVersion = DefaultChartVersion
	}
	cv, err := lookup(chartVersion)
	if err != nil {
		return Mapping{}, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Mapping{}, fmt.Errorf("values file: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return Mapping{ChartVersion: chartVersion}, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Mapping{}, fmt.Errorf("values file: expected a mapping of chart values at line %d", root.Line)
	}
	known := map[string]bool{}
	whole := map[string]bool{}
	top := map[string]bool{}
	for _, k := range cv.keys {
		p := strings.TrimSuffix(k, "*")
		known[p] = true
		if p != k {
			whole[p] = true
		}
		top[strings.Split(p, ".")[0]] = true
	}
	// A file of another chart shares no top-level key with this one.
	var tops []string
	shared := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		tops = append(tops, root.Content[i].Value)
		// a typo of a top-level key is this chart's file, misspelt
		shared = shared || top[root.Content[i].Value] || nearTop(root.Content[i].Value, top)
	}
	if !shared && len(tops) > 0 {
		return Mapping{}, fmt.Errorf("values file: this is not a values file of %s, so nothing was deployed from it: none of its top-level keys (%s) is one of the chart's (replicaCount, image, gateway, observability...)",
			Chart, strings.Join(tops, ", "))
	}
	var leaves []leaf
	var problems []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := prefix + k.Value
			switch {
			case whole[p]:
				leaves = append(leaves, leaf{p, v})
			case known[p]:
				leaves = append(leaves, leaf{p, v})
			case v.Kind == yaml.MappingNode && hasPrefix(known, p+"."):
				walk(v, p+".")
			case v.Tag == "!!null" && hasPrefix(known, p+"."):
				// a section left empty
			default:
				msg := fmt.Sprintf("line %d: unknown key %s", k.Line, p)
				if s := closest(p, cv.keys); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				problems = append(problems, msg)
			}
		}
	}
	walk(root, "")
	// Every problem at once: unknown keys and secrets.
	var errs []error
	if len(problems) > 0 {
		errs = append(errs, &UnknownKeysError{ChartVersion: chartVersion, Problems: problems})
	}
	var secrets []string
	for _, l := range leaves {
		if (l.path == "gateway.auth.key" || l.path == "gateway.auth.azureAd.app.secret") && set(l.node) {
			secrets = append(secrets, l.path)
		}
	}
	if len(secrets) > 0 {
		errs = append(errs, &SecretError{Keys: secrets})
	}
	if len(errs) > 0 {
		return Mapping{}, errors.Join(errs...)
	}
	m := &mapper{Mapping: Mapping{ChartVersion: chartVersion}, values: map[string]*yaml.Node{}, appVersion: cv.appVersion}
	for _, l := range leaves {
		m.values[l.path] = l.node
	}
	for _, l := range leaves {
		if set(l.node) {
			m.row(l.path, l.node)
		}
	}
	m.image()
	return m.Mapping, nil
}

// set says a value is given: not null, not an empty string, map or list.
func set(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) > 0
	case yaml.ScalarNode:
		return n.Tag != "!!null" && n.Value != ""
	}
	return true
}

// nearTop says k is a typo of one of the chart's top-level keys.
func nearTop(k string, top map[string]bool) bool {
	for t := range top {
		if config.Distance(strings.ToLower(k), strings.ToLower(t)) <= 2 {
			return true
		}
	}
	return false
}

func hasPrefix(known map[string]bool, p string) bool {
	for k := range known {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// closest is the known key nearest to p (a typo in its last segment, or a
// key put under the wrong parent).
func closest(p string, keys []string) string {
	best, bestD := "", 0
	last := p[strings.LastIndex(p, ".")+1:]
	var cands []string
	for _, k := range keys {
		parts := strings.Split(strings.TrimSuffix(k, "*"), ".")
		for i := range parts {
			if c := strings.Join(parts[:i+1], "."); !slices.Contains(cands, c) {
				cands = append(cands, c)
			}
		}
	}
	for _, k := range cands {
		d := config.Distance(strings.ToLower(p), strings.ToLower(k))
		if kl := k[strings.LastIndex(k, ".")+1:]; strings.EqualFold(kl, last) {
			d = min(d, 1) // the right key under another parent
		}
		limit := max(2, len(last)/3)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	return best
}

// text is a value as one line: a scalar as written, a map or list as flow YAML.
func text(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := *n
	setFlow(&c)
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	n.Style = yaml.FlowStyle
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}

// Sorted is the table's rows in key order.
func (m Mapping) Sorted() []Row {
	rows := slices.Clone(m.Rows)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

func quote(s string) string { return strconv.Quote(s) }
