// Command render prints Microsoft's chart rendered with an exported
// values.yaml and its overlay applied: the objects to apply to a cluster.
//
//	go -C test/helmchart run ./cmd/render -values /abs/values.yaml -overlay /abs/overlay
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/apimdev/apimdev/test/helmchart"
)

func main() {
	values := flag.String("values", "", "values.yaml written by apimdev export --format helm-values")
	overlay := flag.String("overlay", "", "its overlay directory (empty: the chart's render alone)")
	chart := flag.String("chart", helmchart.DefaultChart(), "the chart's .tgz")
	release := flag.String("release", "contoso-gw", "release name: the gateway's name")
	namespace := flag.String("namespace", "apim-gateway", "namespace")
	flag.Parse()
	if err := run(*values, *overlay, *chart, *release, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(values, overlay, chart, release, namespace string) error {
	if values == "" {
		return fmt.Errorf("-values is required")
	}
	v, err := os.ReadFile(values)
	if err != nil {
		return err
	}
	out, err := helmchart.Render(chart, v, release, namespace)
	if err != nil {
		return err
	}
	if overlay != "" {
		if out, err = helmchart.Overlay(overlay, out); err != nil {
			return err
		}
	}
	_, err = os.Stdout.Write(out)
	return err
}
