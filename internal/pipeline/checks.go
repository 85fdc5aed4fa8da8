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

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

// otelWait bounds the wait for the gateway's first OpenTelemetry export.
const otelWait = 75 * time.Second

// CheckResult is one proof on the cluster.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// check proves each production feature of p on the cluster, and says where
// its pods run.
func (s *Session) check(ctx context.Context, p gateway.Profile, tok token.Token) ([]CheckResult, *Spread) {
	st := s.Rep.Start(StepChecks, "")
	var out []CheckResult
	var spread *Spread
	add := func(name string, ok bool, format string, args ...any) {
		out = append(out, CheckResult{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
		mark := "✓"
		if !ok {
			mark = "✗"
		}
		st.Progress("%s %s: %s", mark, name, fmt.Sprintf(format, args...))
	}
	d, err := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		add("replicas", false, "%v", err)
	} else {
		add("replicas", d.Status.ReadyReplicas == p.Replicas, "%d/%d ready", d.Status.ReadyReplicas, p.Replicas)
		img := d.Spec.Template.Spec.Containers[0].Image
		if p.Name == "dev" {
			add("image", true, "%s (dev keeps the configured tag)", img)
		} else {
			add("image pinned", gateway.Pinned(img), "%s", img)
		}
	}
	if p.Spread {
		sp, t, err := s.spread(ctx, p)
		switch {
		case err != nil:
			add("spread", false, "%v", err)
		case len(t.Workload()) < 2:
			spread = &sp
			add("spread", true, "%d pod(s) on %s", sp.Pods, oneNodeNote)
		default:
			spread = &sp
			add("spread", sp.Even, "%s", sp.Text)
		}
	}
	if p.PDB {
		pdb, err := s.Client.PolicyV1().PodDisruptionBudgets(p.Namespace).Get(ctx, p.Gateway, metav1.GetOptions{})
		if err != nil {
			add("disruption budget", false, "%v", err)
		} else {
			add("disruption budget", true, "maxUnavailable %s, %d disruption(s) allowed now", pdb.Spec.MaxUnavailable.String(), pdb.Status.DisruptionsAllowed)
		}
	}
	if p.Backup != nil {
		ok, detail := s.checkBackup(ctx, p)
		add("config backup", ok, "%s", detail)
	}
	if p.NetworkPolicy != nil {
		ok, detail := s.checkNetworkPolicy(ctx, p)
		add("network policy", ok, "%s", detail)
	}
	if sink, _, _ := p.MetricsSink(); sink != "" {
		m, err := s.scrapeFrom(ctx, p)
		if p.CollectorImage != "" && (err != nil || m.Requests == 0) {
			// The gateway exports OpenTelemetry metrics every minute: the
			// first export may not have happened yet.
			st.Progress("waiting up to %s for the gateway's first OpenTelemetry export (it exports every minute)", otelWait)
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
			add("local metrics", false, "%v", err)
		} else {
			add("local metrics", m.Requests > 0, "%s", m)
		}
	}
	switch {
	case tok.IsAppSecret():
		add("credentials", true, "Microsoft Entra app %s: %s", p.Auth.ClientID, tok.ExpiryAt(s.now()).Describe())
	case tok.IsZero():
		add("credentials", true, "workload identity, client %s: no secret to expire", p.Auth.ClientID)
	default:
		e := tok.ExpiryAt(s.now())
		add("token expiry", e.State != token.ExpiryPast, "%s", e.Describe())
	}
	failed := 0
	for _, c := range out {
		if !c.OK {
			failed++
		}
	}
	if failed > 0 {
		st.Fail(fmt.Errorf("%d of %d check(s) failed", failed, len(out)))
	} else {
		st.Done(fmt.Sprintf("%d check(s) passed", len(out)))
	}
	return out, spread
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
