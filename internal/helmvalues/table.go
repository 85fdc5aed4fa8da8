package helmvalues

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the mapping as a text table: one value a line, what
// apimdev does with it, how, and the setting it sets.
func (m Mapping) WriteTable(w io.Writer, file string) error {
	if _, err := fmt.Fprintf(w, "helm values %s (chart %s %s): %d value(s)\n", file, Chart, m.ChartVersion, len(m.Rows)); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY\tVALUE\tSTATUS\tSETTING\tHOW")
	for _, r := range m.Sorted() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Key, short(r.Value), r.Status, orDash(r.Setting), r.How)
	}
	return tw.Flush()
}

func short(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 48 {
		return s[:45] + "..."
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
