package helmvalues

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// chartPath is Microsoft's published chart, read in place beside the
// repository (never copied into it): ../shared/reference/charts from the
// repository's root, or the directory APIMDEV_CHARTS_DIR names (a checkout
// elsewhere, e.g. a git worktree).
func chartPath(t *testing.T) string {
	t.Helper()
	// go test runs in the package's directory (under Wine too, where a
	// relative path is the safe kind).
	dir := filepath.Join("..", "..", "..", "shared", "reference", "charts")
	if d := os.Getenv("APIMDEV_CHARTS_DIR"); d != "" {
		dir = d
	}
	p := filepath.Join(dir, Chart+"-1.15.1.tgz")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Microsoft's chart is not at %s (the repository's ../shared/reference/charts/, or set APIMDEV_CHARTS_DIR): %v", p, err)
	}
	return p
}

// chartFile is one file of the chart's archive.
func chartFile(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(chartPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s is not in the chart", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == Chart+"/"+name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
