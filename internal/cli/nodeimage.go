package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/nodeimage"
)

func (a *app) nodeImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node-image",
		Short: "Build a kind node image on this machine, with nothing pulled from a registry",
		Args:  cobra.NoArgs,
	}
	var ref, cache string
	var verbose bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build a kind node image (Kubernetes " + nodeimage.KubernetesVersion + ") from source, offline: about 11 minutes on 2 cores, seconds once cached",
		Long: `build makes a kind node image on this machine when kind's own cannot be pulled (no
registry, a workshop room without Wi-Fi): Kubernetes ` + nodeimage.KubernetesVersion + `, etcd, CoreDNS, crictl
and pause are built from the Go module proxy, the node's Debian root filesystem
comes from debootstrap, and the component images are made here and preloaded.
It is what apimdev's own end-to-end rig runs. Each stage says how long it took
and what a cold build takes for it; everything built is cached by version under
--cache, so a second build takes seconds.

It needs Linux, root, Go and a running Docker engine. 'apimdev up' finds the
image by itself when kind's is not on this machine; the image's name is the
last line printed.`,
		Example: `  sudo apimdev node-image build
  sudo apimdev node-image build --image my/kind-node:v1.34.4 --cache /var/cache/apimdev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			s, _, err := a.session(cmd, opening{})
			if err != nil {
				return err
			}
			st := s.Rep.Start("node-image", fmt.Sprintf("building %s (a cold build takes %s)", orDefault(ref, nodeimage.DefaultImage), nodeimage.EstimateText))
			var log func(string)
			if verbose {
				log = func(l string) { fmt.Fprintln(a.streams.Err, l) }
			}
			got, err := s.BuildNodeImage(cmd.Context(), ref, cache, st, log)
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			st.Done(got + " is on this machine; `apimdev up` uses it when kind's node image is not here")
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"image": got})
				return nil
			}
			fmt.Fprintln(a.streams.Out, got)
			return nil
		},
	}
	build.Flags().StringVar(&ref, "image", "", "the image to make (default "+nodeimage.DefaultImage+")")
	build.Flags().BoolVar(&verbose, "verbose", false, "print every line the build prints, not only its stages")
	build.Flags().StringVar(&cache, "cache", "", "where the build keeps what it built (default: apimdev's cache directory)")
	cmd.AddCommand(build)
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
