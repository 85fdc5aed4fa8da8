package kit

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
)

// Refused is a setting of apimdev.yaml a kit's configuration never sets:
// one that names a file on the machine, or makes apimdev write a file of
// the user's.
type Refused struct {
	Key  string // as apimdev.yaml spells it
	Flag string // how a user gives it instead
}

// RefusedSettings are every path-valued setting of apimdev.yaml, and
// cluster.mergeKubeconfig (which writes into the user's own kubeconfig).
// Each is omitted from the YAML when unset, so a key present is a setting
// made.
var RefusedSettings = []Refused{
	{"gateway.tokenFile", "--token-file"},
	{"gateway.auth.clientSecretFile", "--client-secret-file"},
	{"gateway.caCertificates", "--ca-cert"},
	{"cluster.kubeconfig", "--kubeconfig"},
	{"cluster.mergeKubeconfig", "--merge-kubeconfig"},
	{"smoke.file", "--smoke-file"},
}

// KitConfig is cfg as a kit carries it, in YAML: without the settings a
// kit never sets, which it returns.
func KitConfig(cfg config.Config) ([]byte, []Refused, error) {
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil {
		return nil, nil, err
	}
	var dropped []Refused
	for _, r := range RefusedSettings {
		if remove(&doc, strings.Split(r.Key, ".")) {
			dropped = append(dropped, r)
		}
	}
	b, err := yaml.Marshal(&doc)
	return b, dropped, err
}

// remove deletes the key at path from a YAML mapping, saying whether it
// was there.
func remove(n *yaml.Node, path []string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			n.Content = append(n.Content[:j], n.Content[j+2:]...)
			return true
		}
		return remove(n.Content[j+1], path[1:])
	}
	return false
}

// configName is how errors name a kit's configuration.
func configName(kitPath string) string { return ConfigFile + " in kit " + kitPath }

// checkConfig decodes a kit's apimdev.yaml strictly (as apimdev reads any
// configuration) and refuses one that names a file.
func checkConfig(kitPath string, b []byte) (config.Config, error) {
	cfg, err := config.Decode(ConfigFile, bytes.NewReader(b), config.Default())
	if err != nil {
		return cfg, &ConfigError{Kit: kitPath, Problem: "does not decode: " + err.Error()}
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(b, &doc)
	set := flatten(cfg)
	var named, flags []string
	for _, r := range RefusedSettings {
		if _, ok := set[r.Key]; !ok {
			continue
		}
		s := r.Key
		if n := lineOf(&doc, strings.Split(r.Key, ".")); n > 0 {
			s += fmt.Sprintf(" (line %d)", n)
		}
		named, flags = append(named, s), append(flags, r.Flag)
	}
	if len(named) > 0 {
		return cfg, &ConfigError{Kit: kitPath, Problem: "names files on this machine (or has apimdev write into yours), which a kit's configuration never does: " + strings.Join(named, ", "), Flags: flags}
	}
	return cfg, nil
}

// lineOf is the line of the key at path in a YAML document, 0 when it is
// not spelled out there (an alias, say).
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for i, key := range path {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				if i == len(path)-1 {
					return n.Content[j].Line
				}
				next = n.Content[j+1]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return 0
}

// ConfigError refuses a kit whose configuration apimdev cannot take.
type ConfigError struct {
	Kit, Problem string
	Flags        []string // the flags that give the named files instead
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s %s", configName(e.Kit), e.Problem) }

// Hint says what to do.
func (e *ConfigError) Hint() string {
	if len(e.Flags) == 0 {
		return "nothing was loaded; ask the instructor for a kit made with this version of apimdev (`apimdev kit create`)"
	}
	return "nothing was loaded; a kit carries settings, never paths: ask the instructor for a kit made with `apimdev kit create` (which leaves them out), and give your own files yourself with " + strings.Join(e.Flags, ", ")
}

// settings lists what a kit's configuration sets, against the defaults:
// "key: value", the endpoint first.
func settings(b []byte) ([]string, error) {
	cfg, err := config.Decode(ConfigFile, bytes.NewReader(b), config.Default())
	if err != nil {
		return nil, err
	}
	got, def := flatten(cfg), flatten(config.Default())
	var out []string
	for k, v := range got {
		if def[k] != v {
			out = append(out, k+": "+v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ei, ej := strings.HasPrefix(out[i], "gateway.endpoint:"), strings.HasPrefix(out[j], "gateway.endpoint:")
		if ei != ej {
			return ei
		}
		return out[i] < out[j]
	})
	return out, nil
}

// flatten is a configuration's settings as dotted keys and their values.
func flatten(cfg config.Config) map[string]string {
	b, _ := yaml.Marshal(cfg)
	var m map[string]any
	_ = yaml.Unmarshal(b, &m)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if mm, ok := v.(map[string]any); ok {
			for k, x := range mm {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x)
			}
			return
		}
		out[prefix] = fmt.Sprint(v)
	}
	walk("", m)
	return out
}

// effects says what a kit would run and change on this machine: what an
// attendee weighs before trusting it.
func effects(m Manifest, cfg []byte) []string {
	var out []string
	if node, ok := m.Image(RoleNode); ok {
		out = append(out, fmt.Sprintf("run its node image %s as a privileged container, that is as root on this machine", node.Ref))
	}
	var refs []string
	for _, i := range m.Images {
		refs = append(refs, fmt.Sprintf("%s (%s)", i.Ref, i.Role))
	}
	out = append(out, "load into your container engine, taking the name from any image you have under it: "+strings.Join(refs, ", "))
	if m.Config == nil {
		return out
	}
	set, err := settings(cfg)
	switch {
	case err != nil:
		out = append(out, "use its "+ConfigFile+" when you have none of your own (it does not decode: "+err.Error()+")")
	case len(set) == 0:
		out = append(out, "use its "+ConfigFile+" when you have none of your own (apimdev's defaults)")
	default:
		for i, s := range set {
			if strings.HasPrefix(s, "gateway.endpoint:") {
				set[i] = s + " (where your gateway token would be sent)"
			}
		}
		out = append(out, "use its "+ConfigFile+" when you have none of your own, which sets "+strings.Join(set, "; "))
	}
	return out
}
