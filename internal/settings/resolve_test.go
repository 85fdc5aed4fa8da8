package settings

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
)

// rec is a record of gateway gw as up (dev) or promote (prod) writes it.
func rec(gw, profile string, edit func(*config.Config)) *Record {
	c := config.Default()
	c.Gateway.Name, c.Gateway.Endpoint = gw, "contoso.configuration.azure-api.net"
	if edit != nil {
		edit(&c)
	}
	r := &Record{Schema: RecordSchema, Profile: profile, Config: c, Spec: gateway.Dev(c)}
	if profile == "prod" {
		r.Spec.Name, r.Spec.Replicas = "prod", int32(c.Prod.Replicas)
	}
	return r
}

// flags is the user's asks: each edit on whatever base.
func flags(edits ...func(*config.Config)) Asks {
	return func(c config.Config) (config.Config, error) {
		for _, e := range edits {
			e(&c)
		}
		return c, nil
	}
}

func TestResolve(t *testing.T) {
	contoso := rec("contoso-gw", "dev", nil)
	promoted := rec("contoso-gw", "prod", nil)
	demoted := rec("contoso-gw", "dev", func(c *config.Config) { c.Gateway.Image = "example.azurecr.io/gateway:2.12.0" })
	file := flags(func(c *config.Config) {
		c.Gateway.Name, c.Gateway.Endpoint = "contoso-gw", "contoso.configuration.azure-api.net"
	})
	legacy := config.Default()
	legacy.Gateway.Name, legacy.Gateway.Endpoint = "legacy-gw", "legacy.configuration.azure-api.net"
	for _, tt := range []struct {
		name string
		k    Known
		ask  Asks
		// want
		gateway, endpoint, image string
		workers                  int
		recorded                 *Record
		adopted                  bool
		changes                  string
		reshape                  *Reshape
	}{
		{name: "nothing known, nothing asked: the defaults", k: Known{Cluster: "apimdev", Workers: -1},
			gateway: config.DefaultGatewayName, image: config.DefaultImage},
		{name: "nothing known: the asks on the defaults", k: Known{Cluster: "apimdev", Workers: -1}, ask: file,
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage},
		{name: "the state directory's copy is the base", k: Known{Cluster: "apimdev", Remembered: contoso, Workers: -1},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage, recorded: contoso},
		{name: "an older apimdev's settings are the base", k: Known{Cluster: "apimdev", Legacy: &legacy, Workers: -1},
			gateway: "legacy-gw", endpoint: "legacy.configuration.azure-api.net", image: config.DefaultImage},
		{name: "a flag on the copy is a change against what is recorded", k: Known{Cluster: "apimdev", Remembered: contoso, Workers: -1},
			ask:     flags(func(c *config.Config) { c.Gateway.Image = "example.azurecr.io/gateway:2.12.0" }),
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: "example.azurecr.io/gateway:2.12.0", recorded: contoso,
			changes: "gateway.image mcr.microsoft.com/azure-api-management/gateway:v2 → example.azurecr.io/gateway:2.12.0"},
		{name: "another gateway's name starts from the defaults, with no record", k: Known{Cluster: "apimdev", Remembered: demoted, Workers: -1},
			ask:     flags(func(c *config.Config) { c.Gateway.Name = "other-gw" }),
			gateway: "other-gw", image: config.DefaultImage},
		{name: "the cluster's record wins over a stale copy", k: Known{Cluster: "apimdev", Remembered: contoso, Read: true, Deployed: promoted, Workers: -1},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage, recorded: promoted, adopted: true},
		{name: "the cluster's record after a lost state directory", k: Known{Cluster: "apimdev", Read: true, Deployed: demoted, Workers: -1},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: "example.azurecr.io/gateway:2.12.0", recorded: demoted, adopted: true},
		{name: "the cluster's record with a flag on it", k: Known{Cluster: "apimdev", Read: true, Deployed: demoted, Workers: -1},
			ask:     flags(func(c *config.Config) { c.Prod.Replicas = 4 }),
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: "example.azurecr.io/gateway:2.12.0", recorded: demoted, adopted: true,
			changes: "prod.replicas 3 → 4"},
		{name: "a cluster that records nothing has no record, whatever the copy says", k: Known{Cluster: "apimdev", Remembered: contoso, Read: true, Workers: -1},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage},
		{name: "the copy the cluster agrees with is not adopted again", k: Known{Cluster: "apimdev", Remembered: contoso, Read: true, Deployed: contoso, Workers: -1},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage, recorded: contoso},
		{name: "asks naming another gateway than the cluster records: no record", k: Known{Cluster: "apimdev", Read: true, Deployed: contoso, Workers: -1},
			ask:     flags(func(c *config.Config) { c.Gateway.Name = "other-gw" }),
			gateway: "other-gw", image: config.DefaultImage},
		{name: "an existing cluster's worker count is the setting", k: Known{Cluster: "apimdev", Remembered: contoso, Workers: 3},
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage, workers: 3, recorded: contoso},
		{name: "another worker count than the cluster has needs a new cluster", k: Known{Cluster: "apimdev", Remembered: contoso, Workers: 0},
			ask:     flags(func(c *config.Config) { c.Cluster.Workers = 3 }),
			gateway: "contoso-gw", endpoint: "contoso.configuration.azure-api.net", image: config.DefaultImage, workers: 3, recorded: contoso,
			reshape: &Reshape{Have: 0, Want: 3}},
		{name: "the same worker count asked is no reshape", k: Known{Cluster: "apimdev", Workers: 3},
			ask:     flags(func(c *config.Config) { c.Cluster.Workers = 3 }),
			gateway: config.DefaultGatewayName, image: config.DefaultImage, workers: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Resolve(tt.k, tt.ask)
			if err != nil {
				t.Fatal(err)
			}
			c := st.Config
			if c.Gateway.Name != tt.gateway || c.Gateway.Endpoint != tt.endpoint || c.Gateway.Image != tt.image || c.Cluster.Workers != tt.workers {
				t.Errorf("settings: gateway %q endpoint %q image %q workers %d", c.Gateway.Name, c.Gateway.Endpoint, c.Gateway.Image, c.Cluster.Workers)
			}
			if st.Recorded != tt.recorded || st.Adopted != tt.adopted {
				t.Errorf("recorded %v (want %v), adopted %v", describe(st.Recorded), describe(tt.recorded), st.Adopted)
			}
			var ch []string
			for _, x := range st.Changes {
				ch = append(ch, x.String())
			}
			if got := strings.Join(ch, "; "); got != tt.changes {
				t.Errorf("changes %q, want %q", got, tt.changes)
			}
			if fmt.Sprint(st.Reshape) != fmt.Sprint(tt.reshape) {
				t.Errorf("reshape %v, want %v", st.Reshape, tt.reshape)
			}
		})
	}
}

func describe(r *Record) string {
	if r == nil {
		return "none"
	}
	return r.Profile + " " + r.Config.Gateway.Image
}

// The cluster's name and this machine's kubeconfig choice are the asks',
// never the record's (another machine's paths are not this one's).
func TestResolveKeepsThisMachinesClusterSettings(t *testing.T) {
	deployed := rec("contoso-gw", "dev", func(c *config.Config) { c.Cluster.Kubeconfig = "/home/other/.kube/config" })
	st, err := Resolve(Known{Cluster: "work", Read: true, Deployed: deployed, Workers: -1},
		flags(func(c *config.Config) {
			c.Cluster.Name, c.Cluster.Kubeconfig, c.Cluster.MergeKubeconfig = "work", "", true
		}))
	if err != nil || st.Config.Cluster.Name != "work" || st.Config.Cluster.Kubeconfig != "" || !st.Config.Cluster.MergeKubeconfig {
		t.Fatalf("cluster settings %+v, %v", st.Config.Cluster, err)
	}
}

// An error in the asks (a bad flag value) is the answer, on any base.
func TestResolveReturnsTheAsksError(t *testing.T) {
	bad := func(config.Config) (config.Config, error) {
		return config.Config{}, errors.New("--http-port: \"x\" is not a port number")
	}
	for _, k := range []Known{{Cluster: "apimdev", Workers: -1}, {Cluster: "apimdev", Read: true, Deployed: rec("contoso-gw", "dev", nil), Workers: 2}} {
		if _, err := Resolve(k, bad); err == nil || !strings.Contains(err.Error(), "not a port number") {
			t.Fatalf("err = %v", err)
		}
	}
}
