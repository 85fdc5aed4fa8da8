package helmchart

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ChartFile is the published chart's file name.
const ChartFile = "azure-api-management-gateway-1.15.1.tgz"

// DefaultChart is the published chart, read in place beside the repository
// (../shared/reference/charts from its root), or in APIMDEV_CHARTS_DIR.
func DefaultChart() string {
	if d := os.Getenv("APIMDEV_CHARTS_DIR"); d != "" {
		return filepath.Join(d, ChartFile)
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "reference", "charts", ChartFile)
}

// Render renders the chart at chartPath with the values file, as
// `helm template release chart -n namespace -f values` does: every
// template's objects, the chart's tests and notes left out.
func Render(chartPath string, values []byte, release, namespace string) ([]byte, error) {
	ch, err := loader.Load(chartPath)
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(values, &vals); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, err
	}
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	var names []string
	for name := range out {
		if strings.Contains(name, "/tests/") || strings.HasSuffix(name, "NOTES.txt") || strings.TrimSpace(out[name]) == "" {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, name := range names {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(out[name]))
	}
	return b.Bytes(), nil
}

// Overlay builds the kustomization in overlayDir with chartRender as its
// chart.yaml, as `kubectl kustomize` would: the files are read into
// memory, nothing is written.
func Overlay(overlayDir string, chartRender []byte) ([]byte, error) {
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir(overlayDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(overlayDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := fs.WriteFile("/overlay/"+e.Name(), b); err != nil {
			return nil, err
		}
	}
	if err := fs.WriteFile("/overlay/chart.yaml", chartRender); err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fs, "/overlay")
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	return m.AsYaml()
}
