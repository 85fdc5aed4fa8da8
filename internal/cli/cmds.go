package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
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
			s, _, err := a.session(cmd, opening{existing: true})
			if err != nil {
				return err
			}
			started := time.Now()
			rs, err := s.SmokeNow(cmd.Context())
			if err != nil {
				return err
			}
			a.printSmoke(s, rs)
			if err := writeSmokeJUnit(junitFile, s, rs, started, a.getenv("USER")); err != nil {
				return err
			}
			// The status path answers even when the gateway has no
			// configuration: its pods' logs say whether it has one.
			links, lerr := s.CheckLinks(cmd.Context(), nil)
			if s.Config.Output == "json" {
				a.printJSON(map[string]any{"links": links})
			} else if links != nil {
				fmt.Fprintf(a.streams.Out, "configuration link: %s\n", pipeline.LinkSummary(links, time.Now()))
			}
			if lerr != nil {
				return lerr // says the cause and the fix (failed calls too)
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

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster, the node, the gateway's readiness, the forward and the token's expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := a.session(cmd, opening{existing: true})
			if err != nil {
				return err
			}
			st := s.Status(cmd.Context())
			if s.Config.Output == "json" {
				a.printJSON(st)
				return nil
			}
			return a.printStatus(st)
		},
	}
}

func (a *app) printStatus(st pipeline.Status) error {
	tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cluster\t%s (%s)%s\n", st.Cluster, st.State, prefixed(" ", st.Detail))
	if p := st.Paused; p != nil {
		fmt.Fprintf(tw, "paused\t%s\n", pausedLine(p, time.Now()))
	}
	if st.Runtime != "" {
		fmt.Fprintf(tw, "runtime\t%s\n", st.Runtime)
	}
	fmt.Fprintf(tw, "kubeconfig\t%s\n", st.Kubeconfig)
	if st.Node != "" {
		fmt.Fprintf(tw, "node\t%s\n", st.Node)
	}
	pods := map[string]int{}
	if st.Spread != nil {
		for _, z := range st.Spread.Zones {
			for n, c := range z.Nodes {
				pods[n] = c
			}
		}
	}
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "\t%s\n", nodeLine(n, pods[n.Name]))
	}
	if st.Spread != nil && st.Desired > 0 {
		even := "even"
		if !st.Spread.Even {
			even = "uneven: a drain or a lost node moved pods; the next rollout spreads them again"
		}
		fmt.Fprintf(tw, "spread\t%s, %s\n", st.Spread.Text, even)
	}
	if np := st.NodePorts; np != nil && len(np.Ports) > 0 {
		ports := make([]string, len(np.Ports))
		for i, p := range np.Ports {
			ports[i] = fmt.Sprint(p)
		}
		line := fmt.Sprintf("%s (externalTrafficPolicy %s): answered by %s", strings.Join(ports, ", "), np.Policy, orNone(np.Answer))
		if len(np.NoAnswer) > 0 {
			line += fmt.Sprintf("; %s drop(s) them (no ready gateway pod of its own: Local keeps the client's address and never hops to another node)", strings.Join(np.NoAnswer, ", "))
		}
		fmt.Fprintf(tw, "nodeports\t%s\n", line)
	}
	switch {
	case st.Desired > 0:
		fmt.Fprintf(tw, "gateway\t%s/%s %d/%d ready (%s, %s profile)%s\n", st.Namespace, st.Gateway, st.Ready, st.Desired, st.Image, st.Profile, prefixed(" — ", st.Demo))
	case st.State != "ours" && st.Recorded != nil:
		fmt.Fprintf(tw, "gateway\t%s/%s, %s profile as last recorded (%s)%s\n", st.Namespace, st.Gateway, st.Profile, st.Recorded.Image, prefixed(" — ", st.Demo))
	default:
		fmt.Fprintf(tw, "gateway\tnot deployed\n")
	}
	if r := st.Recorded; r != nil && !r.Applied.IsZero() {
		fmt.Fprintf(tw, "recorded\t%s profile, applied %s by apimdev %s\n", r.Profile, r.Applied.Local().Format("2006-01-02 15:04"), r.Version)
	}
	for _, d := range st.Drift {
		fmt.Fprintf(tw, "drift\t%s %s\n", d.Ref(), driftText(d.Action, d.Lines))
	}
	if len(st.Drift) > 0 {
		fmt.Fprintf(tw, "\t`apimdev up --yes` puts back what is recorded\n")
	}
	if st.Forward.Running {
		fmt.Fprintf(tw, "forward\tbackground pid %d: http://127.0.0.1:%d https://127.0.0.1:%d\n", st.Forward.PID, st.Forward.HTTPPort, st.Forward.HTTPSPort)
	} else if st.Forward.Note != "" {
		fmt.Fprintf(tw, "forward\t%s\n", st.Forward.Note)
	} else {
		fmt.Fprintf(tw, "forward\tnone in the background (`apimdev up` forwards in the foreground)\n")
	}
	if a := st.Auth; a != nil && a.Type != config.AuthToken {
		fmt.Fprintf(tw, "auth\t%s\n", authLine(*a))
	}
	if st.TokenExpiry != nil {
		fmt.Fprintf(tw, "token\t%s\n", st.TokenExpiry.Describe())
	}
	for _, c := range st.CACerts {
		fmt.Fprintf(tw, "trusts CA\t%s (%s), until %s\n", c.Subject, c.Name, c.NotAfter.UTC().Format("2006-01-02"))
	}
	if st.Metrics != nil {
		fmt.Fprintf(tw, "metrics\t%s\n", st.Metrics)
	}
	switch {
	case st.LinkNote != "":
		fmt.Fprintf(tw, "link\tcannot read the gateway's logs: %s\n", st.LinkNote)
	case len(st.Links) > 0:
		fmt.Fprintf(tw, "link\t%s\n", pipeline.LinkSummary(st.Links, time.Now()))
	}
	for _, b := range st.Backends {
		fmt.Fprintf(tw, "backend\t%s\n", b.Line())
	}
	return tw.Flush()
}

// authLine says how the gateway authenticates, with the ids (no secret).
func authLine(a gateway.Auth) string {
	switch a.Type {
	case config.AuthEntraApp:
		return fmt.Sprintf("Microsoft Entra app %s, tenant %s (%s); its client secret is in the cluster's Secret, its expiry kept by Entra ID", a.ClientID, a.TenantID, config.AuthorityOr(a.Authority))
	case config.AuthWorkloadIdentity:
		return fmt.Sprintf("workload identity, client %s (the ServiceAccount's federated credential; no secret)", a.ClientID)
	}
	return a.Type
}

// nodeLine is one node of a multi-node cluster, as status shows it.
func nodeLine(n pipeline.NodeInfo, pods int) string {
	var b strings.Builder
	b.WriteString(n.Name)
	if n.Ready {
		b.WriteString(" Ready")
	} else {
		b.WriteString(" NotReady")
	}
	if n.Zone != "" {
		b.WriteString(", zone " + n.Zone)
	}
	switch {
	case n.Cordoned:
		b.WriteString(", cordoned (`apimdev uncordon " + n.Name + "`)")
	case !n.Schedulable:
		b.WriteString(", runs no workloads (tainted)")
	}
	if pods > 0 {
		fmt.Fprintf(&b, ", %d gateway pod(s)", pods)
	}
	return b.String()
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "no node"
	}
	return strings.Join(ss, ", ")
}

// driftText says what runs against what is recorded, from a plan's lines
// ("- " the live object, "+ " what applying the record sets).
func driftText(action gateway.Action, lines []string) string {
	switch action {
	case gateway.Create:
		return "is missing (recorded, not in the cluster)"
	case gateway.Remove:
		return "is in the cluster, not in the record"
	}
	var live, rec []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "- "):
			live = append(live, strings.TrimSpace(l[2:]))
		case strings.HasPrefix(l, "+ "):
			rec = append(rec, strings.TrimSpace(l[2:]))
		}
	}
	text := fmt.Sprintf("runs %s; the record says %s", strings.Join(live, ", "), strings.Join(rec, ", "))
	if len(text) > 200 {
		text = text[:197] + "..."
	}
	return text
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
			s, lock, err := a.session(cmd, opening{lock: true, wait: lockWait, existing: true})
			if err != nil {
				return err
			}
			defer lock.Release()
			return s.Down(cmd.Context(), keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-cluster", false, "remove only the gateway's objects and keep the cluster")
	return cmd
}

func (a *app) renderCommand() *cobra.Command {
	var profile string
	var unfitted bool
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print the Kubernetes objects up (dev) or promote (prod) would apply, token redacted",
		Long: `render prints what a command would apply, without applying anything: --profile dev
is what up applies, --profile prod what promote would: the image pinned to
major.minor.patch as promote pins it (or refused, with the fix), and the
requests fitted to the local cluster's node when one runs; --unfitted (or no
cluster) shows the production values that export and promote --context keep.
The token is never shown.`,
		Example: `  apimdev render --profile dev -o yaml --name contoso-gw --endpoint contoso.configuration.azure-api.net
  apimdev render --profile prod
  apimdev render --profile prod --unfitted --image mcr.microsoft.com/azure-api-management/gateway:2.11.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("output") && a.getenv("APIMDEV_OUTPUT") == "" {
				_ = cmd.Flags().Set("output", "yaml")
			}
			if profile != "dev" && profile != "prod" {
				return &usageError{fmt.Sprintf("--profile %q: use dev or prod", profile)}
			}
			s, _, err := a.session(cmd, opening{})
			if err != nil {
				return err
			}
			cfg := s.Config
			if err := cfg.Validate(); err != nil {
				return err
			}
			tok, _ := a.loadToken(cfg) // optional: the placeholder says where it would come from
			r, err := s.Render(cmd.Context(), pipeline.RenderOptions{Profile: profile, Unfitted: unfitted, Token: tok})
			if err != nil {
				return err
			}
			if profile == "prod" {
				how := "production requests"
				if r.Fitted {
					how = "requests fitted to the local cluster's node (--unfitted for the production values)"
				}
				fmt.Fprintf(a.streams.Err, "# the prod profile as promote would apply it: image %s (%s), %s\n", r.Image, r.PinnedHow, how)
				if r.FitNote != "" {
					fmt.Fprintf(a.streams.Err, "# %s\n", r.FitNote)
				}
			}
			switch cfg.Output {
			case "yaml", "text":
				y, err := gateway.YAML(r.Objects)
				if err != nil {
					return err
				}
				_, err = a.streams.Out.Write(y)
				return err
			default:
				a.printJSON(map[string]any{"apiVersion": "v1", "kind": "List", "items": r.Objects})
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "dev", "which profile to render: dev (what up applies) or prod (what promote would)")
	cmd.Flags().BoolVar(&unfitted, "unfitted", false, "prod: the production requests, not fitted to the local node")
	prodFlags(cmd.Flags())
	return cmd
}

func (a *app) preflightCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "preflight",
		Short: "Only check the machine: Docker, resources, ports, token, endpoint, cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The settings' own problems stop here, all at once; a missing
			// endpoint (the portal's value a newcomer may not have yet) is
			// one check among the machine's, as the token is.
			cfg, err := a.overlay(cmd, config.Default())
			if err != nil {
				return err
			}
			if err := cfg.ValidateExisting(); err != nil {
				return err
			}
			tok, from, tokErr := a.loadTokenFrom(cmd, cfg)
			s, _, err := a.session(cmd, opening{})
			if err != nil {
				return err
			}
			st := s.Rep.Start("preflight", "")
			res, err := s.Preflight(cmd.Context(), tok, from, tokErr)
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
	var via string
	c := &cobra.Command{
		Use:   "forward",
		Short: "Forward the local ports to the gateway until stopped (what `up --detach` runs in the background)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := a.session(cmd, opening{existing: true})
			if err != nil {
				return err
			}
			if err := s.Connect(); err != nil {
				return err
			}
			if cmd.Flags().Changed("via") {
				s.ForwardVia = via
			}
			cfg := s.Config
			stop, _, err := s.StartLongForward(cmd.Context(), cfg.Forward.HTTPPort, cfg.Forward.HTTPSPort)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Err, "forwarding 127.0.0.1:%d → %s:80 and 127.0.0.1:%d → :443 until stopped\n", cfg.Forward.HTTPPort, s.Names.LiveService(), cfg.Forward.HTTPSPort)
			<-cmd.Context().Done()
			stop()
			return nil
		},
	}
	c.Flags().String("auto-pause", "", "pause the cluster after this long with no connection through the forward, and resume it for the next one (15m; 0 or empty: never) (cluster.autoPause)")
	fieldFlag(c.Flags(), "auto-pause", "cluster.autoPause")
	c.Flags().StringVar(&via, "via", pipeline.ViaAuto, "how to reach the gateway: auto (the node's published ports on a cluster apimdev made, else the API server), tunnel (the API server only), node (the node's ports, or fail); also APIMDEV_FORWARD_VIA")
	return c
}
