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
