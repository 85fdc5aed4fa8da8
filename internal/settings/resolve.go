package settings

import (
	"fmt"
	"strings"

	"github.com/apimdev/apimdev/internal/config"
)

// Asks puts what the user asked for on a base: apimdev.yaml, then APIMDEV_*
// variables, then flags (the CLI builds it from the command line, the wizard
// from its form). The same base must give the same answer: Resolve puts the
// asks on more than one base.
type Asks func(base config.Config) (config.Config, error)

// Known is what is known when settings are resolved. A command resolves at
// Open with the state directory's copy of the record; once it has read the
// cluster (Read, Deployed) and, for up, counted its nodes (Workers), it
// resolves again: the same function with more facts, never a setting
// changed by hand in between.
type Known struct {
	// Cluster is the cluster's name as the user asks for it (or the default).
	Cluster string
	// Remembered is the state directory's copy of the cluster's record;
	// Legacy the settings an apimdev before records kept there instead.
	Remembered *Record
	Legacy     *config.Config
	// Read says the cluster was read; Deployed is then its record of the
	// gateway (nil: it records none, e.g. a cluster made anew).
	Read     bool
	Deployed *Record
	// Workers is the worker count of a cluster that stays (not absent, not
	// to be recreated); -1 when there is none or it is not known yet.
	Workers int
}

// Settings are what a command works with.
type Settings struct {
	Config config.Config
	// Recorded is the record of the gateway the settings are about: the
	// cluster's once read, its copy before; nil when nothing is recorded.
	Recorded *Record
	// Base is what the asks were put on before the cluster was read: the
	// remembered settings, or the defaults.
	Base config.Config
	// Adopted says the cluster's record was taken and differs from the
	// state directory's copy (which the caller then refreshes).
	Adopted bool
	// Changes are the gateway's settings the asks set to other than what
	// is recorded, in field order.
	Changes []Change
	// Reshape, when set, is an existing cluster's worker count and the
	// other count the asks want: kind cannot add nodes, so that needs a
	// new cluster (--recreate).
	Reshape *Reshape
}

// Change is one setting the user's asks change against what is deployed.
type Change struct {
	Field, Deployed, Asked string
}

func (c Change) String() string { return c.Field + " " + c.Deployed + " → " + c.Asked }

// Describe lists changes for a sentence: at most four, then how many more.
func Describe(changes []Change) string {
	var parts []string
	for i, c := range changes {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("%d more", len(changes)-i))
			break
		}
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// Reshape is a cluster's worker count and the count the asks want.
type Reshape struct{ Have, Want int }

// Resolve is where settings are resolved: the asks on what is deployed.
//   - The base is the state directory's copy of the record (or an older
//     apimdev's settings, or the defaults); the asks go on it. Asks that name
//     another gateway than the remembered one start from the defaults.
//   - Once the cluster is read, its record is what is deployed: the asks go
//     on it instead (the cluster's name and this machine's kubeconfig choice
//     stay the asks'), unless they name another gateway, which then has no
//     record. A cluster that records nothing leaves no record.
//   - An existing cluster's worker count is the setting unless the asks name
//     another (Reshape).
func Resolve(k Known, ask Asks) (Settings, error) {
	if ask == nil {
		ask = func(c config.Config) (config.Config, error) { return c, nil }
	}
	base := remembered(k)
	cfg, err := ask(base)
	if err != nil {
		return Settings{}, err
	}
	if cfg.Gateway.Name != base.Gateway.Name {
		// Another gateway than the one remembered: its settings are not this
		// one's base. (The same gateway in another namespace keeps them.)
		base = defaults(k.Cluster)
		if cfg, err = ask(base); err != nil {
			return Settings{}, err
		}
	}
	out := Settings{Base: base}
	if k.Remembered.IsFor(cfg) {
		out.Recorded = k.Remembered
	}
	if k.Read {
		switch {
		case k.Deployed == nil:
			out.Recorded = nil
		case SameApplied(k.Deployed, out.Recorded):
		default:
			c := k.Deployed.Config
			c.Cluster.Name = cfg.Cluster.Name
			c.Cluster.Kubeconfig, c.Cluster.MergeKubeconfig = cfg.Cluster.Kubeconfig, cfg.Cluster.MergeKubeconfig
			if c, err = ask(c); err != nil {
				return Settings{}, err
			}
			out.Recorded = nil
			if k.Deployed.IsFor(c) {
				out.Recorded, out.Adopted, cfg = k.Deployed, true, c
			}
		}
	}
	if k.Workers >= 0 {
		b := cfg
		b.Cluster.Workers = k.Workers
		want := cfg.Cluster.Workers
		if asked, err := ask(b); err == nil {
			want = asked.Cluster.Workers
		}
		if want != k.Workers {
			out.Reshape = &Reshape{Have: k.Workers, Want: want}
		} else {
			cfg.Cluster.Workers = k.Workers
		}
	}
	out.Config = cfg
	if out.Recorded != nil {
		out.Changes = Changes(out.Recorded.Config, cfg)
	}
	return out, nil
}

// remembered is the base before the cluster is read.
func remembered(k Known) config.Config {
	switch {
	case k.Remembered != nil:
		return k.Remembered.Config
	case k.Legacy != nil:
		return *k.Legacy
	}
	return defaults(k.Cluster)
}

func defaults(cluster string) config.Config {
	c := config.Default()
	c.Cluster.Name = cluster
	return c
}

// Changes are the gateway's settings (gateway.*, prod.*) that differ between
// what is recorded and cfg; where secrets are read from is not a setting of
// the gateway.
func Changes(recorded, cfg config.Config) []Change {
	recorded, cfg = WithoutSecretSources(recorded), WithoutSecretSources(cfg)
	var out []Change
	for _, f := range config.Fields() {
		if !strings.HasPrefix(f.Path, "gateway.") && !strings.HasPrefix(f.Path, "prod.") || f.Path == "gateway.caCertificates" {
			continue
		}
		if d, a := f.Get(recorded), f.Get(cfg); d != a {
			out = append(out, Change{Field: f.Path, Deployed: show(d), Asked: show(a)})
		}
	}
	return out
}

func show(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
