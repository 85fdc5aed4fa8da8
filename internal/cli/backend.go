package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/pipeline"
)

func (a *app) backendCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Give the gateway a backend in the cluster: the program you are developing on this machine, or an image",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(a.backendAddCommand(), a.backendListCommand(), a.backendRemoveCommand())
	return cmd
}

func (a *app) backendAddCommand() *cobra.Command {
	var o pipeline.BackendAddOptions
	cmd := &cobra.Command{
		Use:   "add NAME (--to 127.0.0.1:PORT | --image IMAGE --port P)",
		Short: "Give a program on this machine (or an image) a stable address the gateway can call: http://NAME:PORT",
		Long: `backend add gives the gateway a backend under a stable name in its namespace,
http://NAME:PORT (http://NAME.<namespace>.svc.cluster.local:PORT from anywhere in the
cluster), to put as your API's backend URL in Azure.

With --to, the backend is a program on this machine: a small relay in the cluster
(apimdev's own program, its image made here, nothing pulled) takes the gateway's
connections, and apimdev's background forward carries them over the API server to
--to, which must be a loopback address. Nothing listens on this machine for it.
When your program is not running, the gateway's connections are refused at once
(it answers 502); start it again and the next call works.

With --image, the backend is a container: the image is loaded from your engine into
the nodes (never pulled) and runs as a Deployment and Service of that name; its
logs are in ` + "`apimdev logs --backend NAME`" + `.

Backends are recorded in the cluster with the gateway: up, promote, an engine
restart and a lost state directory keep them; down removes them; export does not
carry them (they are this machine's).`,
		Example: `  apimdev backend add orders --to 127.0.0.1:8080
  apimdev backend add orders --to 127.0.0.1:8080 --port 80     # the gateway calls http://orders:80
  apimdev backend add stock --image stock-api:dev --port 8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			b, err := s.BackendAdd(cmd.Context(), o)
			if err != nil {
				return err
			}
			if s.Config.Output == "json" {
				a.printJSON(b)
				return nil
			}
			out := a.streams.Out
			fmt.Fprintf(out, "\nbackend %s: %s\n", b.Name, b.Line())
			fmt.Fprintf(out, "  backend URL, from the gateway's namespace: %s\n", b.ShortURL)
			fmt.Fprintf(out, "  from anywhere in the cluster:             %s\n", b.URL)
			fmt.Fprintf(out, "  in Azure: the API's Settings → \"Web service URL\" in the portal, or\n")
			fmt.Fprintf(out, "    az apim api update -g RESOURCE_GROUP -n APIM_SERVICE --api-id API_ID --service-url %s\n", b.ShortURL)
			if s.IsDemo() {
				fmt.Fprintf(out, "  on the demo: apimdev demo api add %s --path /%s --backend %s (stand-in, not Azure API Management)\n", b.Name, b.Name, b.ShortURL)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.To, "to", "", "the program on this machine: a loopback address, 127.0.0.1:PORT or [::1]:PORT")
	f.StringVar(&o.Image, "image", "", "a container image in your engine to run as the backend instead")
	f.IntVar(&o.Port, "port", 0, "the port the gateway calls, http://NAME:PORT (default: --to's port; required with --image)")
	return cmd
}

func (a *app) backendListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "The backends, where each goes, and whether it answers (connections, bytes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := a.session(cmd, opening{connect: true})
			if err != nil {
				return err
			}
			bs, err := s.Backends(cmd.Context())
			if err != nil {
				return err
			}
			if s.Config.Output == "json" {
				if bs == nil {
					bs = []pipeline.BackendState{}
				}
				a.printJSON(bs)
				return nil
			}
			if len(bs) == 0 {
				fmt.Fprintln(a.streams.Out, "no backends: `apimdev backend add NAME --to 127.0.0.1:PORT` adds one")
				return nil
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tURL\tTO\tSTATE\tCONNECTIONS\tBYTES IN/OUT")
			for _, b := range bs {
				to := b.Target
				if !b.Local() {
					to = "image " + b.Image
				}
				conns, bytes := "-", "-"
				if b.Local() {
					conns = fmt.Sprintf("%d active, %d total, %d failed", b.Active, b.Total, b.Failed)
					bytes = fmt.Sprintf("%s / %s", humanSize(b.BytesIn), humanSize(b.BytesOut))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.ShortURL, to, b.State, conns, bytes)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, b := range bs {
				if b.Reason != "" {
					fmt.Fprintf(a.streams.Out, "%s: %s\n", b.Name, b.Reason)
				}
			}
			return nil
		},
	}
}

func (a *app) backendRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Take a backend away (its Service; the relay when no program on this machine is left)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, connect: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			return s.BackendRemove(cmd.Context(), args[0])
		},
	}
}
