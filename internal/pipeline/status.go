package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/topology"
)

// Status is what `apimdev status` reports.
type Status struct {
	Cluster    string `json:"cluster"`
	State      string `json:"state"`
	Detail     string `json:"detail,omitempty"`
	Kubeconfig string `json:"kubeconfig"`
	// Runtime is the container runtime the nodes run on, where its API is
	// and why it was chosen.
	Runtime string `json:"runtime,omitempty"`
	Node    string `json:"node,omitempty"`
	// Nodes, Spread and NodePorts tell where the gateway runs: on a
	// multi-node cluster, which zone and node each pod is on, and which
	// nodes answer the live Service's NodePorts.
	Nodes       []NodeInfo    `json:"nodes,omitempty"`
	Spread      *Spread       `json:"spread,omitempty"`
	NodePorts   *NodePorts    `json:"nodePorts,omitempty"`
	Namespace   string        `json:"namespace"`
	Gateway     string        `json:"gateway"`
	Image       string        `json:"image,omitempty"`
	Ready       int32         `json:"ready"`
	Desired     int32         `json:"desired"`
	Forward     *ForwardState `json:"forward"`
	TokenExpiry *token.Expiry `json:"tokenExpiry,omitempty"`
	// Auth is how the gateway authenticates to its configuration endpoint:
	// token, entraApp or workloadIdentity, with the ids (never a secret).
	Auth *gateway.Auth `json:"auth,omitempty"`
	// CACerts are the private CAs the gateway trusts, with their expiry.
	CACerts []CASummary `json:"caCerts,omitempty"`
	Profile string      `json:"profile,omitempty"`
	// Recorded is what the cluster records apimdev applied, and when.
	Recorded *RecordSummary `json:"recorded,omitempty"`
	// Drift lists what differs from the record (kubectl scale, edit...):
	// what `apimdev up --yes` would set back.
	Drift []gateway.Change `json:"drift,omitempty"`
	// Demo names the stand-in when the gateway is `up --demo`'s.
	Demo string `json:"demo,omitempty"`
	// Metrics is what the prod profile's statsd exporter has seen.
	Metrics *Metrics `json:"metrics,omitempty"`
	// Links is each running pod's link to its configuration endpoint, as
	// its log tells it; LinkNote says why it could not be read.
	Links    []PodLink `json:"links,omitempty"`
	LinkNote string    `json:"linkNote,omitempty"`
	// Backends are `apimdev backend add`'s, with what the relay says now.
	Backends []BackendState `json:"backends,omitempty"`
	// Paused is set when the state is paused: since when, and by whom.
	Paused *PausedState `json:"paused,omitempty"`
}

// CASummary is one private CA the gateway trusts (never its PEM: status
// says what, not the bytes).
type CASummary struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"notAfter,omitzero"`
}

// RecordSummary is the record, as status shows it.
type RecordSummary struct {
	Profile string    `json:"profile"`
	Image   string    `json:"image"`
	Version string    `json:"apimdevVersion"`
	Applied time.Time `json:"appliedAt"`
}

// ForwardState describes the background forward.
type ForwardState struct {
	Running   bool `json:"running"`
	PID       int  `json:"pid,omitempty"`
	HTTPPort  int  `json:"httpPort,omitempty"`
	HTTPSPort int  `json:"httpsPort,omitempty"`
	// Note says why a recorded forward is not running, in one line.
	Note string `json:"note,omitempty"`
}

// Status tells the cluster's state (starting, not broken, for a while after
// its node started), the gateway's readiness, what the cluster records and
// any drift from it, the forward, the token's expiry and the local metrics.
// It changes nothing.
func (s *Session) Status(ctx context.Context) Status {
	st := Status{Cluster: s.Config.Cluster.Name, Kubeconfig: s.Kubeconfig(), Runtime: s.runtimeLine(), Namespace: s.Names.Namespace, Gateway: s.Names.DeploymentName(), Forward: &ForwardState{}}
	cs, detail := s.Cluster.Inspect(ctx)
	st.State, st.Detail = string(cs), detail
	if cs == cluster.ClusterPaused {
		st.Paused = s.PausedNow()
	}
	if fwd := s.Files.CheckForward(); fwd.Running {
		st.Forward = &ForwardState{Running: true, PID: fwd.PID, HTTPPort: fwd.HTTPPort, HTTPSPort: fwd.HTTPSPort}
	} else {
		st.Forward.Note = fwd.Note // a record that was stale or cannot be proven
	}
	if cs == cluster.ClusterOurs && s.Connect() == nil {
		if err := s.Resolve(ctx); err != nil {
			st.Detail = err.Error()
		}
		st.Namespace, st.Gateway = s.Names.Namespace, s.Names.DeploymentName()
		if nodes, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil && len(nodes.Items) > 0 {
			n := nodes.Items[0]
			ready := "NotReady"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready = "Ready"
				}
			}
			st.Node = fmt.Sprintf("%s %s (Kubernetes %s)", n.Name, ready, n.Status.NodeInfo.KubeletVersion)
			if len(nodes.Items) > 1 {
				st.Node = fmt.Sprintf("%d nodes (Kubernetes %s)", len(nodes.Items), n.Status.NodeInfo.KubeletVersion)
			}
		}
		if d, err := s.Client.AppsV1().Deployments(s.Names.Namespace).Get(ctx, s.Names.DeploymentName(), metav1.GetOptions{}); err == nil {
			st.Ready, st.Desired = d.Status.ReadyReplicas, gateway.Desired(d)
			st.Image = d.Spec.Template.Spec.Containers[0].Image
			st.Profile = d.Labels[gateway.LabelProfile]
			if sp, t, err := topology.ReadSpread(ctx, s.Client, s.Names); err == nil && len(t.Nodes) > 1 {
				st.Nodes, st.Spread = t.Nodes, &sp
				st.NodePorts, _ = topology.ReadNodePorts(ctx, s.Client, s.Names, t)
			}
			if links, err := s.Links(ctx); err != nil {
				st.LinkNote = err.Error()
			} else {
				st.Links = links
			}
			st.Backends, _ = s.Backends(ctx)
			if st.Profile == "prod" {
				if m, err := s.ScrapeMetrics(ctx); err == nil {
					st.Metrics = &m
				}
			}
		} else if !apierrors.IsNotFound(err) {
			st.Detail = err.Error()
		}
		a := s.Names.Auth
		if a.Type == "" {
			a.Type = config.AuthToken
		}
		st.Auth = &a
		for _, c := range s.Names.CACerts {
			st.CACerts = append(st.CACerts, CASummary{Name: c.Name, Subject: c.Subject, NotAfter: c.NotAfter})
		}
		if tok, err := s.ClusterToken(ctx); err == nil && !tok.IsZero() && !tok.IsAppSecret() {
			e := tok.ExpiryAt(s.now())
			st.TokenExpiry = &e
		}
		if r := s.Recorded; r != nil {
			st.Recorded = &RecordSummary{Profile: r.Profile, Image: r.Spec.Image, Version: r.Version, Applied: r.Applied}
			st.Profile = r.Profile
			if st.Desired > 0 {
				st.Drift = s.drift(ctx)
			}
		}
	} else if r := s.Recorded; r != nil {
		// The cluster does not answer now: say what the state directory's
		// copy of its record says.
		st.Profile = r.Profile
		st.Recorded = &RecordSummary{Profile: r.Profile, Image: r.Spec.Image, Version: r.Version, Applied: r.Applied}
	}
	if s.IsDemo() {
		st.Demo = demo.Label
	}
	return st
}

// drift is what applying the record again would change, as the API server's
// dry run says; the token is the cluster's own, so it never differs.
func (s *Session) drift(ctx context.Context) []gateway.Change {
	r := s.Recorded
	tok, err := s.ClusterToken(ctx)
	if err != nil {
		return nil
	}
	plan, err := gateway.Plan(ctx, s.Client, r.Spec, r.Spec.Objects(tok, false))
	if err != nil {
		return nil
	}
	var out []gateway.Change
	for _, c := range plan {
		if c.Changed() {
			c.Lines = changedLines(c.Lines)
			out = append(out, c)
		}
	}
	return out
}

// changedLines keeps a diff's + and - lines.
func changedLines(ls []string) []string {
	var out []string
	for _, l := range ls {
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "- ") {
			out = append(out, l)
		}
	}
	return out
}

// Preflight is `apimdev preflight`: every check, nothing created.
func (s *Session) Preflight(ctx context.Context, tok token.Token, tokFrom string, tokErr error) (cluster.Result, error) {
	fwd, running := s.Files.Forward()
	pf := &cluster.Preflight{Docker: s.Docker, Inspect: s.Cluster.Inspect, Config: s.Config, Token: tok, TokenFrom: tokFrom, TokenErr: tokErr,
		ForwardRunning: running && fwd.HTTPPort == s.Config.Forward.HTTPPort, LookPath: s.LookPath, Endpoint: s.Endpoint, RuntimeWhy: s.RuntimeWhy}
	pf.Platform = s.platformPreflight(s.upImages(), false, nil)
	return pf.Run(ctx, nil)
}
