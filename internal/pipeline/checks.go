package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/topology"
)

// CheckResult is one proof on the cluster.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// prodCheck is one proof of a production feature on the cluster: it applies
// to a profile that has the feature, and gives one or more results.
type prodCheck struct {
	applies func(p gateway.Profile) bool
	run     func(s *Session, ctx context.Context, c *checking) []CheckResult
}

// checking is what one run of the checks shares: the profile, the
// credential, the step to say progress on, and the spread once seen.
type checking struct {
	p      gateway.Profile
	tok    token.Token
	st     *events.Step
	spread *Spread
}

func result(name string, ok bool, format string, args ...any) []CheckResult {
	return []CheckResult{{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}}
}

func always(gateway.Profile) bool { return true }

// prodChecks are the production features check proves, in the order it says them.
var prodChecks = []prodCheck{
	{always, (*Session).checkReplicas},
	{func(p gateway.Profile) bool { return p.Spread }, (*Session).checkSpread},
	{func(p gateway.Profile) bool { return p.PDB }, (*Session).checkPDB},
	{func(p gateway.Profile) bool { return p.Backup != nil }, func(s *Session, ctx context.Context, c *checking) []CheckResult {
		ok, detail := s.checkBackup(ctx, c.p)
		return result("config backup", ok, "%s", detail)
	}},
	{func(p gateway.Profile) bool { return p.NetworkPolicy != nil }, func(s *Session, ctx context.Context, c *checking) []CheckResult {
		ok, detail := s.checkNetworkPolicy(ctx, c.p)
		return result("network policy", ok, "%s", detail)
	}},
	{func(p gateway.Profile) bool { sink, _, _ := p.MetricsSink(); return sink != "" }, (*Session).checkMetrics},
	{always, (*Session).checkCredentials},
}

// check proves each production feature of p on the cluster (prodChecks),
// saying each on st, and says where its pods run. The error says how many
// failed; the results say which.
func (s *Session) check(ctx context.Context, st *events.Step, p gateway.Profile, tok token.Token) ([]CheckResult, *Spread, error) {
	c := &checking{p: p, tok: tok, st: st}
	var out []CheckResult
	for _, pc := range prodChecks {
		if !pc.applies(p) {
			continue
		}
		for _, r := range pc.run(s, ctx, c) {
			mark := "✓"
			if !r.OK {
				mark = "✗"
			}
			c.st.Progress("%s %s: %s", mark, r.Name, r.Detail)
			out = append(out, r)
		}
	}
	failed := 0
	for _, r := range out {
		if !r.OK {
			failed++
		}
	}
	if failed > 0 {
		return out, c.spread, fmt.Errorf("%d of %d check(s) failed", failed, len(out))
	}
	return out, c.spread, nil
}

func (s *Session) checkReplicas(ctx context.Context, c *checking) []CheckResult {
	p := c.p
	d, err := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		return result("replicas", false, "%v", err)
	}
	out := result("replicas", d.Status.ReadyReplicas == p.Replicas, "%d/%d ready", d.Status.ReadyReplicas, p.Replicas)
	img := d.Spec.Template.Spec.Containers[0].Image
	if p.Name == "dev" {
		return append(out, result("image", true, "%s (dev keeps the configured tag)", img)...)
	}
	return append(out, result("image pinned", gateway.Pinned(img), "%s", img)...)
}

func (s *Session) checkSpread(ctx context.Context, c *checking) []CheckResult {
	sp, t, err := topology.ReadSpread(ctx, s.Client, c.p)
	switch {
	case err != nil:
		return result("spread", false, "%v", err)
	case len(t.Workload()) < 2:
		c.spread = &sp
		return result("spread", true, "%d pod(s) on %s", sp.Pods, oneNodeNote)
	}
	c.spread = &sp
	return result("spread", sp.Even, "%s", sp.Text)
}

func (s *Session) checkPDB(ctx context.Context, c *checking) []CheckResult {
	pdb, err := s.Client.PolicyV1().PodDisruptionBudgets(c.p.Namespace).Get(ctx, c.p.Gateway, metav1.GetOptions{})
	if err != nil {
		return result("disruption budget", false, "%v", err)
	}
	return result("disruption budget", true, "maxUnavailable %s, %d disruption(s) allowed now", pdb.Spec.MaxUnavailable.String(), pdb.Status.DisruptionsAllowed)
}

func (s *Session) checkMetrics(ctx context.Context, c *checking) []CheckResult {
	p := c.p
	m, err := s.scrapeFrom(ctx, p)
	if p.CollectorImage != "" && (err != nil || m.Requests == 0) {
		// The gateway exports OpenTelemetry metrics every minute: the
		// first export may not have happened yet.
		otelWait := s.Timeouts.orDefault().Metrics
		c.st.Progress("waiting up to %s for the gateway's first OpenTelemetry export (it exports every minute)", otelWait)
		wait, cancel := context.WithTimeout(ctx, otelWait)
		for err != nil || m.Requests == 0 {
			select {
			case <-wait.Done():
			case <-time.After(3 * time.Second):
				m, err = s.scrapeFrom(ctx, p)
				continue
			}
			break
		}
		cancel()
	}
	if err != nil {
		return result("local metrics", false, "%v", err)
	}
	return result("local metrics", m.Requests > 0, "%s", m)
}

func (s *Session) checkCredentials(_ context.Context, c *checking) []CheckResult {
	switch {
	case c.tok.IsAppSecret():
		return result("credentials", true, "Microsoft Entra app %s: %s", c.p.Auth.ClientID, c.tok.ExpiryAt(s.now()).Describe())
	case c.tok.IsZero():
		return result("credentials", true, "workload identity, client %s: no secret to expire", c.p.Auth.ClientID)
	}
	e := c.tok.ExpiryAt(s.now())
	return result("token expiry", e.State != token.ExpiryPast, "%s", e.Describe())
}

func (s *Session) checkBackup(ctx context.Context, p gateway.Profile) (bool, string) {
	pvc, err := s.Client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, p.BackupClaimName(), metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		return false, fmt.Sprintf("claim %s is %s", pvc.Name, pvc.Status.Phase)
	}
	pods, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.Selector()).String()})
	if err != nil {
		return false, err.Error()
	}
	mounted := 0
	for _, pod := range pods.Items {
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name && pod.DeletionTimestamp == nil {
				mounted++
			}
		}
	}
	detail := fmt.Sprintf("claim %s bound (%s, %s), mounted at %s by %d pod(s)", pvc.Name, pvc.Spec.AccessModes[0], pvc.Status.Capacity.Storage(), gateway.BackupPath, mounted)
	if !s.localCluster || s.Cluster == nil {
		return mounted > 0, detail
	}
	// The gateway writes its backup a moment after it loads its
	// configuration; give it that moment.
	var files []string
	for i := 0; i < 20; i++ {
		if files, err = s.backupFiles(ctx, pvc.Spec.VolumeName); err != nil || len(files) > 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return false, detail + "; cannot look inside: " + err.Error()
	}
	if len(files) == 0 {
		return false, detail + "; nothing written yet"
	}
	return mounted > 0, detail + "; written: " + strings.Join(files, ", ")
}

// backupFiles lists the backup volume's files from inside the kind node (the
// gateway image has no shell to ask).
func (s *Session) backupFiles(ctx context.Context, volume string) ([]string, error) {
	path, err := s.hostPath(ctx, volume)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := s.Cluster.Exec(ctx, &buf, "ls", "-A", path); err != nil {
		return nil, err
	}
	return strings.Fields(buf.String()), nil
}

func (s *Session) hostPath(ctx context.Context, volume string) (string, error) {
	pv, err := s.Client.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", errors.New("the volume is not a host path")
}
