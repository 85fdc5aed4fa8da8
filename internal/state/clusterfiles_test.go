package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestClusterFilesCreatesNothing(t *testing.T) {
	home := filepath.Join(testdir.New(t), "home")
	c := ClusterFiles(func(k string) string {
		if k == "APIMDEV_HOME" {
			return home
		}
		return ""
	}, "apimdev")
	if c.Dir != filepath.Join(home, "clusters", "apimdev") {
		t.Fatalf("dir %q", c.Dir)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("the state directory was made: %v", err)
	}
}

// Others names the clusters apimdev made (a kubeconfig of its own) beside
// this one, not a directory left without one.
func TestOthersAreTheClustersApimdevMade(t *testing.T) {
	root := testdir.New(t)
	for _, n := range []string{"apimdev", "team-b", "team-a"} {
		c, err := ForCluster(root, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Kubeconfig(), []byte("apiVersion: v1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ForCluster(root, "half-made"); err != nil { // no kubeconfig
		t.Fatal(err)
	}
	c := ClusterDir{Dir: filepath.Join(root, "clusters", "apimdev")}
	if got := c.Others(); len(got) != 2 || got[0] != "team-a" || got[1] != "team-b" {
		t.Errorf("others of apimdev: %v, want [team-a team-b]", got)
	}
	if got := (ClusterDir{}).Others(); got != nil {
		t.Errorf("no state directory: %v", got)
	}
}
