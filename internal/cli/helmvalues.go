package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/apimdev/apimdev/internal/helmvalues"
)

// helmRead is a Helm values file read onto the settings.
type helmRead struct {
	file    string
	mapping helmvalues.Mapping
}

// readHelmValues reads a values file of Microsoft's chart (the chart
// version apimdev reads by default).
func readHelmValues(path string) (helmvalues.Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return helmvalues.Mapping{}, fmt.Errorf("helm values: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return helmvalues.Mapping{}, fmt.Errorf("helm values %s: %w", path, err)
	}
	m, err := helmvalues.Read(b, "")
	if err != nil {
		return m, fmt.Errorf("helm values %s: %w", path, err)
	}
	return m, nil
}

// printHelmValues shows what the values file gave, before any step runs:
// a table, or one JSON object with -o json.
func (a *app) printHelmValues(output string) {
	if a.helm == nil {
		return
	}
	if output == "json" {
		a.printJSON(map[string]any{"helmValues": a.helm.file, "chartVersion": a.helm.mapping.ChartVersion, "values": a.helm.mapping.Sorted(), "settings": a.helm.mapping.Sets})
		return
	}
	_ = a.helm.mapping.WriteTable(a.streams.Out, a.helm.file)
	fmt.Fprintln(a.streams.Out)
}
