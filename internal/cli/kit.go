package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) kitCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kit",
		Short: "The offline workshop kit: every image and the configuration in one verified archive",
		Long: `A kit is one tar file with the kind node image, the gateway image (pinned tag),
the statsd exporter image the prod profile uses, with --demo the demo's stand-in
gateway image, and apimdev's configuration (never a token). manifest.json lists
a SHA-256 for every file (SHA256SUMS too, for sha256sum -c).

Make it once where there is network, copy it to each machine, then
'apimdev up --kit kit.tar' loads it with no registry at all.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(a.kitCreateCommand(), a.kitLoadCommand(false), a.kitLoadCommand(true))
	return cmd
}

func (a *app) kitCreateCommand() *cobra.Command {
	var withDemo bool
	cmd := &cobra.Command{
		Use:   "create [FILE]",
		Short: "Save the node, gateway and statsd exporter images (and with --demo the stand-in) with the configuration into one archive",
		Long: `create saves images from this machine's Docker engine into FILE (also -o FILE):
the node image (--node-image, default kind's), the gateway image (--image, whose
tag must be pinned to major.minor.patch: a floating tag such as v2 is pinned from
the local image's tags), the statsd exporter (prod.statsdImage), and with --demo
the demo's stand-in gateway (stand-in, not Azure API Management). Every image
must be on this machine; all missing ones are listed at once, with where to get
them. The configuration goes in as apimdev.yaml, with no token and no paths of
this machine.`,
		Example: `  apimdev kit create -o kit.tar --image mcr.microsoft.com/azure-api-management/gateway:2.11.1 --demo
  apimdev kit create kit.tar --demo --node-image kindest/node:v1.34.0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := kitOutput(cmd, args)
			if err != nil {
				return err
			}
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if err := cfg.ValidateExisting(); err != nil {
				return err
			}
			d, err := pipeline.Engine(cfg, a.getenv)
			if err != nil {
				return err
			}
			imageSet := cmd.Flags().Changed("image") || a.getenv("APIMDEV_IMAGE") != ""
			want, cfgOut, notes, err := pipeline.KitPlan(cmd.Context(), d, cfg, withDemo, imageSet)
			if err != nil {
				var pe *pipeline.KitPinError
				if errors.As(err, &pe) {
					return &usageError{err.Error()}
				}
				return err
			}
			rep := a.reporter(cfg)
			for _, n := range notes {
				rep.Warn("kit", n, "")
			}
			st := rep.Start("kit", "saving "+out)
			c := &kit.Creator{Docker: d, Version: Version, Progress: st.Progress}
			// The configuration names the images as the kit holds them.
			if want, err = c.Resolve(cmd.Context(), want); err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			for _, w := range want {
				switch w.Role {
				case kit.RoleNode:
					cfgOut.Cluster.NodeImage = w.Ref
				case kit.RoleGateway:
					cfgOut.Gateway.Image = w.Ref
				case kit.RoleStatsd:
					cfgOut.Prod.StatsdImage = w.Ref
				}
			}
			yb, err := yaml.Marshal(cfgOut)
			if err != nil {
				return err
			}
			m, size, err := c.Create(cmd.Context(), out, want, append([]byte("# apimdev configuration from a workshop kit: no token in it.\n"), yb...))
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			st.Done(fmt.Sprintf("%s: %s, %d image(s), checksums in %s and %s", out, humanSize(size), len(m.Images), kit.ManifestFile, kit.SumsFile))
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"kit": out, "size": size, "manifest": m})
				return nil
			}
			a.printManifest(out, size, m)
			return nil
		},
	}
	cmd.Flags().BoolVar(&withDemo, "demo", false, "also include the demo's stand-in gateway image (stand-in, not Azure API Management), for `up --demo`")
	return cmd
}

// kitOutput is FILE, or -o FILE as the issue wrote it: -o means the output
// format everywhere else, so it names the kit only when it is not a format.
func kitOutput(cmd *cobra.Command, args []string) (string, error) {
	out := ""
	if len(args) == 1 {
		out = args[0]
	}
	if v, _ := cmd.Flags().GetString("output"); cmd.Flags().Changed("output") && v != "text" && v != "json" {
		if out != "" {
			return "", &usageError{fmt.Sprintf("two kit files: %s and -o %s", out, v)}
		}
		out = v
		if err := cmd.Flags().Set("output", "text"); err != nil {
			return "", err
		}
	}
	if out == "" {
		return "", &usageError{"name the kit file: apimdev kit create -o kit.tar"}
	}
	if !strings.HasSuffix(out, ".tar") {
		return "", &usageError{fmt.Sprintf("%q: a kit is a tar file; name it *.tar", out)}
	}
	return out, nil
}

func (a *app) kitLoadCommand(verifyOnly bool) *cobra.Command {
	use, short := "load FILE", "Verify every checksum of a kit, then load its images into Docker (only those Docker lacks)"
	if verifyOnly {
		use, short = "verify FILE", "Verify every checksum of a kit; load nothing"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if err := cfg.ValidateExisting(); err != nil {
				return err
			}
			rep := a.reporter(cfg)
			st := rep.Start("kit", args[0])
			var m kit.Manifest
			what := ""
			if verifyOnly {
				m, err = kit.Verify(cmd.Context(), args[0], st.Progress)
				what = fmt.Sprintf("%d image(s) and the configuration match their checksums", len(m.Images))
			} else {
				d, derr := pipeline.Engine(cfg, a.getenv)
				if derr != nil {
					return derr
				}
				var res kit.LoadResult
				res, err = kit.Load(cmd.Context(), d, args[0], st.Progress)
				m, what = res.Manifest, res.String()
			}
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			st.Done(what)
			if cfg.Output == "json" {
				a.printJSON(map[string]any{"kit": args[0], "verified": true, "manifest": m})
				return nil
			}
			a.printManifest(args[0], 0, m)
			return nil
		},
	}
}

func (a *app) printManifest(path string, size int64, m kit.Manifest) {
	w := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
	if size > 0 {
		fmt.Fprintf(w, "kit %s: %s (%d bytes), made %s by apimdev %s\n", path, humanSize(size), size, m.Created.Format("2006-01-02 15:04 UTC"), m.Apimdev)
	} else {
		fmt.Fprintf(w, "kit %s: made %s by apimdev %s\n", path, m.Created.Format("2006-01-02 15:04 UTC"), m.Apimdev)
	}
	for _, i := range m.Images {
		note := ""
		if i.Role == kit.RoleDemo {
			note = "  (" + demo.Label + ")"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\tsha256:%s…%s\n", i.Role, i.Ref, humanSize(i.Size), i.SHA256[:12], note)
	}
	if m.Config != nil {
		fmt.Fprintf(w, "  config\t%s\t%d bytes\tsha256:%s…  (no token)\n", m.Config.Name, m.Config.Size, m.Config.SHA256[:12])
	}
	w.Flush()
	_, hasGW := m.Image(kit.RoleGateway)
	_, hasDemo := m.Image(kit.RoleDemo)
	fmt.Fprintln(a.streams.Out, "On each machine, with no network needed:")
	if hasDemo {
		fmt.Fprintf(a.streams.Out, "  apimdev up --kit %s --demo --detach\n", path)
	}
	if hasGW {
		fmt.Fprintf(a.streams.Out, "  apimdev up --kit %s --token-file gw.token --detach\n", path)
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
}
