package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/settings"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/topology"
)

// ProfilePlan is what applying a target profile would change in the cluster, as
// its API server says (server-side apply, dry run), and what would then be
// recorded. up, promote and status all plan the same way; the CLI and the
// wizard show the same text.
type ProfilePlan struct {
	From string `json:"from"` // the profile deployed now; "" when nothing is
	To   string `json:"to"`
	// Target is the profile whose objects are applied.
	Target    gateway.Profile  `json:"-"`
	Changes   []gateway.Change `json:"changes"`
	Diff      string           `json:"diff"`
	Image     string           `json:"image"`
	PinnedHow string           `json:"pinnedHow,omitempty"`
	FitNote   string           `json:"fitNote,omitempty"`
	// Fresh says no gateway runs yet: nothing to keep traffic on.
	Fresh bool `json:"fresh,omitempty"`
	// AsRecorded says the target is exactly what the cluster records.
	AsRecorded bool `json:"asRecorded,omitempty"`

	token  token.Token
	record Record
}

// Changed counts the objects the plan changes, of all it covers.
func (p *ProfilePlan) Changed() (int, int) { return gateway.Counts(p.Changes) }

// Unasked lists the changes the user did not ask for by giving a token:
// updates (other than a Secret's data) and deletions of what is deployed.
// Creating what is missing needs no question.
func (p *ProfilePlan) Unasked() []gateway.Change {
	var out []gateway.Change
	for _, c := range p.Changes {
		if c.Action == gateway.Remove || c.Action == gateway.Update && !c.OnlySecretData() {
			out = append(out, c)
		}
	}
	return out
}

// PlanOptions say what to plan.
type PlanOptions struct {
	// To is the target profile: "" keeps the recorded one (dev when none).
	To string
	// Token is what the Secret gets; zero keeps the cluster's.
	Token token.Token
}

// Plan works out the target profile and asks the cluster what applying it
// would change. The session must be connected (Connect or ConnectContext).
func (s *Session) Plan(ctx context.Context, o PlanOptions) (*ProfilePlan, error) {
	from, fresh, err := s.deployedProfile(ctx)
	if err != nil {
		return nil, err
	}
	to := o.To
	if to == "" {
		to = from
	}
	if to == "" {
		to = "dev"
	}
	if s.localCluster && s.Names.Auth.Mode() == config.AuthWorkloadIdentity {
		return nil, errWorkloadIdentityLocal
	}
	p := &ProfilePlan{From: from, To: to, Fresh: fresh, token: o.Token}
	if p.token.IsZero() {
		if p.token, err = s.ClusterToken(ctx); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, s.noCredential()
			}
			return nil, fmt.Errorf("reading the gateway's credential from Secret %s/%s: %w (pass --token-file to supply it)", s.Names.Namespace, s.Names.SecretName(), err)
		}
	}
	if err := s.target(ctx, p); err != nil {
		return nil, err
	}
	if err := s.planChanges(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// planChanges plans p's target against what runs (the API server's dry
// run), its diff, and the record that applying it writes: up's and
// promote's plans alike.
func (s *Session) planChanges(ctx context.Context, p *ProfilePlan) error {
	var err error
	if p.Changes, err = gateway.Plan(ctx, s.Client, p.Target, p.Target.Objects(p.token, false)); err != nil {
		return err
	}
	p.Diff = gateway.FormatPlan(p.Changes, 1)
	p.record = Record{Profile: p.Target.Name, Demo: s.IsDemo(), Config: s.Config, Spec: p.Target, Backends: s.recordedBackends()}
	return nil
}

// deployedProfile is the profile deployed now: what the cluster records,
// else the Deployment's label (an apimdev from before the record). fresh
// says no gateway Deployment exists.
func (s *Session) deployedProfile(ctx context.Context) (string, bool, error) {
	d, err := s.Client.AppsV1().Deployments(s.Names.Namespace).Get(ctx, s.Names.DeploymentName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if s.Recorded != nil {
			return s.Recorded.Profile, true, nil
		}
		return "", true, nil
	case err != nil:
		return "", false, fmt.Errorf("reading Deployment %s/%s: %w", s.Names.Namespace, s.Names.DeploymentName(), err)
	}
	if s.Recorded != nil {
		return s.Recorded.Profile, false, nil
	}
	return d.Labels[gateway.LabelProfile], false, nil
}

// target fills in the plan's target profile. What the cluster records is
// the target as long as the user asks for nothing else: re-running a command
// re-applies exactly that (the same pinned image, the same fitted requests).
// Otherwise it is made anew from the settings: prod pins its image and, on
// the local cluster, fits its requests to the node.
func (s *Session) target(ctx context.Context, p *ProfilePlan) error {
	if r := s.Recorded; r != nil && r.Profile == p.To && sameSettings(r.Config, s.Config) && r.Spec.Gateway != "" {
		p.Target, p.Image, p.AsRecorded = r.Spec, r.Spec.Image, true
		p.PinnedHow = "as recorded"
		return nil
	}
	if p.To == "dev" {
		p.Target = gateway.Dev(s.Config)
		p.Image = p.Target.Image
		return nil
	}
	prod, err := gateway.Prod(s.Config)
	if err != nil {
		return err
	}
	img, how, err := s.Pin.Pin(ctx, prod.Image)
	if err != nil {
		return err
	}
	prod.Image, p.Image, p.PinnedHow = img, img, how
	if s.localCluster {
		t, err := topology.Read(ctx, s.Client)
		if err != nil {
			return err
		}
		if prod.Backup != nil {
			if t.SharedStorage() {
				// Every node mounts the shared directory: the claim is
				// ReadWriteMany, served from it, as a file share serves it.
				prod.Backup.AccessMode, prod.Backup.StorageClass = corev1.ReadWriteMany, gateway.SharedStorageClass
				prod.Backup.SharedPath = topology.SharedBackupPath(prod)
			} else {
				// kind's storage is a host path on one node: ReadWriteOnce
				// is what it can provision.
				prod.Backup.AccessMode, prod.Backup.StorageClass = corev1.ReadWriteOnce, ""
			}
		}
		if prod, p.FitNote, err = topology.FitLocal(ctx, s.Client, s.Names, prod, t); err != nil {
			return err
		}
	}
	p.Target = prod
	return nil
}

// errWorkloadIdentityLocal: a local cluster has no OIDC issuer Entra ID can trust.
var errWorkloadIdentityLocal = errors.New("workload identity cannot work on the local kind cluster: it has no OIDC issuer Microsoft Entra ID can reach; use --auth entra-app or the token here, and take workload identity to AKS with `apimdev export` or `promote --context`")

// sameSettings reports whether two configurations make the same objects:
// the gateway's and the prod profile's settings (where the token is read
// from, the local ports and the smoke spec decide no object).
func sameSettings(a, b config.Config) bool {
	a, b = settings.WithoutSecretSources(a), settings.WithoutSecretSources(b)
	a.Prod.TrafficRate, b.Prod.TrafficRate = 0, 0
	return reflect.DeepEqual(a.Gateway, b.Gateway) && reflect.DeepEqual(a.Prod, b.Prod)
}

// IsDemo says whether the gateway is `up --demo`'s stand-in: its endpoint is
// the demo's own configuration service (the stand-in image alone is not the
// demo: the e2e suites run it against services of their own).
func (s *Session) IsDemo() bool {
	return s.Config.Gateway.Endpoint == demo.Endpoint
}

// DeclinedError says a plan was shown and not applied.
type DeclinedError struct {
	What string // what was not done
	Why  string // no terminal, or the user said no
}

func (e *DeclinedError) Error() string { return e.What + ": nothing was changed (" + e.Why + ")" }

// Hint says how to go on.
func (e *DeclinedError) Hint() string {
	return "run again with --yes to apply the changes above, or without the settings that ask for them to keep what runs"
}

// ErrDeclined is returned when the user did not confirm a promotion.
var ErrDeclined = errors.New("promotion declined: nothing was changed")

// summary is a plan's one line.
func (p *ProfilePlan) summary() string {
	changed, total := p.Changed()
	from := p.From
	if from == "" {
		from = "nothing"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s: %d of %d object(s) change; image %s", from, p.To, changed, total, p.Image)
	return b.String()
}
