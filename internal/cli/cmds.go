package cli

import (
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

func (a *app) smokeCommand() *cobra.Command {
	var junitFile string
	cmd := &cobra.Command{
		Use:   "smoke",
		Short: "Run the smoke calls through the forward: the health path on both ports, then your spec",
		Long: `smoke calls the gateway's health path on HTTP and HTTPS, then every call of the
--smoke-file spec, and prints a table (or JSON). It goes through apimdev's
background forward when one runs, else through a forward of its own on free
local ports. Exit code 1 when any call fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := a.existingSession(cmd)
			if err != nil {
				return err
			}
			if err := s.Connect(); err != nil {
				return err
			}
			ctx := cmd.Context()
			httpPort, httpsPort := 0, 0
			if rec, ok := s.Files.Forward(); ok {
				httpPort, httpsPort = rec.HTTPPort, rec.HTTPSPort
			} else {
				httpPort, httpsPort, err = freePorts()
				if err != nil {
					return err
				}
				stop, _, err := s.StartForward(ctx, httpPort, httpsPort)
				if err != nil {
					return err
				}
				defer stop()
			}
			tok, _ := s.ClusterToken(ctx)
			demoSmoke(ctx, s)
			started := time.Now()
			rs, err := s.Smoke(ctx, tok, httpPort, httpsPort)
			if err != nil {
				return err
			}
			a.printSmoke(cfg, rs)
			if err := writeSmokeJUnit(junitFile, cfg, rs, started, a.getenv("USER")); err != nil {
				return err
			}
			if n := smoke.Failed(rs); n > 0 {
				return &shownError{err: &pipeline.SmokeError{Failed: n, Total: len(rs)}, code: ExitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&junitFile, "junit", "", "also write the results as JUnit XML to this file (for CI, or for an instructor to collect)")
	return cmd
}

// freePorts asks the OS for two free loopback ports.
func freePorts() (int, int, error) {
	var ps []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
		defer l.Close()
	}
	return ps[0], ps[1], nil
}

// Status is what `apimdev status` reports.
type Status struct {
	Cluster     string        `json:"cluster"`
	State       string        `json:"state"`
	Detail      string        `json:"detail,omitempty"`
	Kubeconfig  string        `json:"kubeconfig"`
	Node        string        `json:"node,omitempty"`
	Namespace   string        `json:"namespace"`
	Gateway     string        `json:"gateway"`
	Image       string        `json:"image,omitempty"`
	Ready       int32         `json:"ready"`
	Desired     int32         `json:"desired"`
	Forward     *ForwardState `json:"forward"`
	TokenExpiry *token.Expiry `json:"tokenExpiry,omitempty"`
	Profile     string        `json:"profile,omitempty"`
	// Demo names the stand-in when the gateway is `up --demo`'s.
	Demo string `json:"demo,omitempty"`
	// Metrics is what the prod profile's statsd exporter has seen.
	Metrics *pipeline.Metrics `json:"metrics,omitempty"`
}

// ForwardState describes the background forward.
type ForwardState struct {
	Running   bool `json:"running"`
	PID       int  `json:"pid,omitempty"`
	HTTPPort  int  `json:"httpPort,omitempty"`
	HTTPSPort int  `json:"httpsPort,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster, the node, the gateway's readiness, the forward and the token's expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := a.existingSession(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st := Status{Cluster: cfg.Cluster.Name, Kubeconfig: s.Cluster.Kubeconfig, Namespace: s.Profile.Namespace, Gateway: s.Profile.DeploymentName(), Forward: &ForwardState{}}
			cs, detail := s.Cluster.Inspect(ctx)
			st.State, st.Detail = string(cs), detail
			if rec, ok := s.Files.Forward(); ok {
				st.Forward = &ForwardState{Running: true, PID: rec.PID, HTTPPort: rec.HTTPPort, HTTPSPort: rec.HTTPSPort}
			}
			if cs == cluster.ClusterOurs && s.Connect() == nil {
				if nodes, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil && len(nodes.Items) > 0 {
					n := nodes.Items[0]
					ready := "NotReady"
					for _, c := range n.Status.Conditions {
						if c.Type == "Ready" && c.Status == "True" {
							ready = "Ready"
						}
					}
					st.Node = fmt.Sprintf("%s %s (Kubernetes %s)", n.Name, ready, n.Status.NodeInfo.KubeletVersion)
				}
				if d, err := s.Client.AppsV1().Deployments(s.Profile.Namespace).Get(ctx, s.Profile.DeploymentName(), metav1.GetOptions{}); err == nil {
					st.Ready, st.Desired = d.Status.ReadyReplicas, gateway.Desired(d)
					st.Image = d.Spec.Template.Spec.Containers[0].Image
					st.Profile = d.Labels[gateway.LabelProfile]
					if st.Profile == "prod" {
						if m, err := s.ScrapeMetrics(ctx); err == nil {
							st.Metrics = &m
						}
					}
				} else if !apierrors.IsNotFound(err) {
					st.Detail = err.Error()
				}
				if tok, err := s.ClusterToken(ctx); err == nil {
					e := tok.ExpiryAt(time.Now())
					st.TokenExpiry = &e
				}
			}
			if isDemo(cfg) {
				st.Demo = demo.Label
			}
			if cfg.Output == "json" {
				a.printJSON(st)
				return nil
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "cluster\t%s (%s)%s\n", st.Cluster, st.State, prefixed(" ", st.Detail))
			fmt.Fprintf(tw, "kubeconfig\t%s\n", st.Kubeconfig)
			if st.Node != "" {
				fmt.Fprintf(tw, "node\t%s\n", st.Node)
			}
			if st.Desired > 0 {
				fmt.Fprintf(tw, "gateway\t%s/%s %d/%d ready (%s, %s profile)%s\n", st.Namespace, st.Gateway, st.Ready, st.Desired, st.Image, st.Profile, prefixed(" — ", st.Demo))
			} else {
				fmt.Fprintf(tw, "gateway\tnot deployed\n")
			}
			if st.Forward.Running {
				fmt.Fprintf(tw, "forward\tbackground pid %d: http://127.0.0.1:%d https://127.0.0.1:%d\n", st.Forward.PID, st.Forward.HTTPPort, st.Forward.HTTPSPort)
			} else {
				fmt.Fprintf(tw, "forward\tnone in the background (`apimdev up` forwards in the foreground)\n")
			}
			if st.TokenExpiry != nil {
				fmt.Fprintf(tw, "token\t%s\n", st.TokenExpiry.Describe())
			}
			if st.Metrics != nil {
				fmt.Fprintf(tw, "metrics\t%s\n", st.Metrics)
			}
			return tw.Flush()
		},
	}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func (a *app) downCommand() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the background forward and delete the cluster (or, with --keep-cluster, only the gateway's objects)",
		Long: `down stops apimdev's background forward and deletes the kind cluster apimdev
created, with apimdev's kubeconfig file for it. A cluster apimdev did not create
is never deleted. Your ~/.kube/config is not touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := a.existingSession(cmd)
			if err != nil {
				return err
			}
			lock, err := s.Files.Acquire(cfg.Cluster.Name, 2*time.Second)
			if err != nil {
				return err
			}
			defer lock.Release()
			ctx := cmd.Context()
			st := s.Rep.Start("down", "")
			if rec, ok := s.Files.StopForward(); ok {
				st.Progress("stopped the background forward (pid %d)", rec.PID)
			}
			state, detail := s.Cluster.Inspect(ctx)
			if keep {
				if state != cluster.ClusterOurs {
					return st.Fail(fmt.Errorf("cluster %q is %s %s: nothing to remove", cfg.Cluster.Name, state, detail))
				}
				if err := s.Connect(); err != nil {
					return st.Fail(err)
				}
				gone, err := gateway.Delete(ctx, s.Client, s.Profile)
				if err != nil {
					return st.Fail(err)
				}
				st.Done(fmt.Sprintf("removed %d object(s): %s; cluster %q kept", len(gone), strings.Join(gone, ", "), cfg.Cluster.Name))
				return nil
			}
			switch state {
			case cluster.ClusterAbsent:
				_ = s.Files.Remove()
				st.Done(fmt.Sprintf("no cluster %q: nothing to delete", cfg.Cluster.Name))
				return nil
			case cluster.ClusterForeign:
				return st.Fail(&foreignError{name: cfg.Cluster.Name})
			}
			if err := s.Cluster.Delete(); err != nil {
				return st.Fail(fmt.Errorf("deleting cluster %q: %w", cfg.Cluster.Name, err))
			}
			if cfg.Cluster.Kubeconfig == "" {
				_ = os.Remove(s.Cluster.Kubeconfig)
			}
			_ = s.Files.Remove()
			st.Done(fmt.Sprintf("deleted cluster %q and apimdev's kubeconfig for it", cfg.Cluster.Name))
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-cluster", false, "remove only the gateway's objects and keep the cluster")
	return cmd
}

type foreignError struct{ name string }

func (e *foreignError) Error() string {
	return fmt.Sprintf("kind cluster %q was not created by apimdev; not deleting it", e.name)
}
func (e *foreignError) Hint() string {
	return fmt.Sprintf("delete it yourself with `kind delete cluster --name %s` if you mean to", e.name)
}

func (a *app) renderCommand() *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:     "render",
		Short:   "Print the Kubernetes objects apimdev would apply (token redacted)",
		Example: `  apimdev render --profile dev -o yaml --name contoso-gw --endpoint contoso.configuration.azure-api.net`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("output") && a.getenv("APIMDEV_OUTPUT") == "" {
				_ = cmd.Flags().Set("output", "yaml")
			}
			cfg, err := a.load(cmd)
			if err != nil {
				return err
			}
			if profile != "dev" {
				return &usageError{fmt.Sprintf("profile %q is not known; use --profile dev", profile)}
			}
			tok, _ := a.loadToken(cfg) // optional: the placeholder says where it would come from
			objs := gateway.Dev(cfg).Objects(tok, true)
			switch cfg.Output {
			case "yaml", "text":
				y, err := gateway.YAML(objs)
				if err != nil {
					return err
				}
				_, err = a.streams.Out.Write(y)
				return err
			default:
				a.printJSON(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "dev", "which profile to render: dev")
	return cmd
}

func (a *app) preflightCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "preflight",
		Short: "Only check the machine: Docker, resources, ports, token, endpoint, cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.load(cmd)
			if err != nil {
				return err
			}
			tok, tokErr := a.loadToken(cfg)
			s, err := a.session(cfg)
			if err != nil {
				return err
			}
			fwd, running := s.Files.Forward()
			pf := &cluster.Preflight{Docker: s.Docker, Inspect: s.Cluster.Inspect, Config: cfg, Token: tok, TokenErr: tokErr,
				ForwardRunning: running && fwd.HTTPPort == cfg.Forward.HTTPPort}
			st := s.Rep.Start("preflight", "")
			res, err := pf.Run(cmd.Context(), nil)
			if cfg.Output == "json" {
				a.printJSON(res)
			} else {
				for _, c := range res.Checks {
					mark, text := "✓", c.Detail
					if !c.OK {
						mark, text = "✗", c.Problem+"\n    fix: "+c.Fix
					} else if c.Warn {
						mark = "!"
					}
					fmt.Fprintf(a.streams.Out, "%s %-10s %s\n", mark, c.Name, text)
				}
			}
			if err != nil {
				st.Fail(err)
				return &shownError{err: err, code: ExitFailure}
			}
			st.Done("all checks passed")
			return nil
		},
	}
}

func (a *app) forwardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "forward",
		Short: "Forward the local ports to the gateway until stopped (what `up --detach` runs in the background)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := a.existingSession(cmd)
			if err != nil {
				return err
			}
			if err := s.Connect(); err != nil {
				return err
			}
			stop, _, err := s.StartForward(cmd.Context(), cfg.Forward.HTTPPort, cfg.Forward.HTTPSPort)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Err, "forwarding 127.0.0.1:%d → %s:80 and 127.0.0.1:%d → :443 until stopped\n", cfg.Forward.HTTPPort, s.Profile.LiveService(), cfg.Forward.HTTPSPort)
			<-cmd.Context().Done()
			stop()
			return nil
		},
	}
}
