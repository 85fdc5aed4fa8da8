package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/traffic"
)

// TrafficOptions say what traffic proves a change loses no request.
type TrafficOptions struct {
	// Path is requested during the change; "" picks one (trafficTarget).
	Path   string
	Header map[string]string
	Rate   int // requests/s; 0 means 20
	// OnTraffic, if set, is told the figures so far, about once a second,
	// from another goroutine: a live view.
	OnTraffic func(traffic.Stats)
}

// waitRollout waits for the plan's gateway Deployment (and its statsd
// exporter) to be rolled out and ready. On the local cluster it also makes
// a new backup volume writable for the gateway, joined before it returns.
func (s *Session) waitRollout(ctx context.Context, plan *ProfilePlan, timeout time.Duration, onStatus func(gateway.RolloutCounts)) error {
	p := plan.Target
	var wg sync.WaitGroup
	fctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	if p.Backup != nil && s.localCluster && s.Cluster != nil {
		if changed, _ := plan.Changed(); changed > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); s.fixBackupPermissions(fctx, p) }()
		}
	}
	t := s.Timeouts.orDefault()
	w := &gateway.Waiter{Client: s.Client, Profile: p, Timeout: timeout, Interval: t.Poll, Redact: Redactor(plan.token),
		Progress: func(m string) { s.progress("%s", m) }, OnStatus: onStatus}
	if err := w.Wait(ctx); err != nil {
		return err
	}
	// Ready pods mount a bound claim, so the fix is done or about to be:
	// let it finish rather than cut it short.
	wg.Wait()
	if name, _, _ := p.MetricsSink(); name != "" {
		sw := &gateway.Waiter{Client: s.Client, Profile: sinkProfile(p), Timeout: timeout, Interval: t.Poll}
		if err := sw.Wait(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// sinkProfile lets the rollout waiter watch the Deployment that receives
// the gateway's metrics (the statsd exporter or the collector).
func sinkProfile(p gateway.Profile) gateway.Profile {
	q := p
	q.Gateway, q.Image, _ = p.MetricsSink()
	q.Replicas = 1
	return q
}

// fixBackupPermissions makes the backup volume's directory on the kind node
// writable by GID 1001 once the claim is bound. kind's host-path volumes
// ignore fsGroup, which on a real cluster's storage does this job; without it
// the gateway cannot write its backup (UnauthorizedAccessException).
func (s *Session) fixBackupPermissions(ctx context.Context, p gateway.Profile) {
	t := s.Timeouts.orDefault()
	ctx, cancel := context.WithTimeout(ctx, t.Backup)
	defer cancel()
	for ctx.Err() == nil {
		pvc, err := s.Client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, p.BackupClaimName(), metav1.GetOptions{})
		if err == nil && pvc.Status.Phase == corev1.ClaimBound {
			path, err := s.hostPath(ctx, pvc.Spec.VolumeName)
			if err == nil {
				err = s.Cluster.Exec(ctx, nil, "sh", "-c", fmt.Sprintf("mkdir -p %q && chgrp %d %q && chmod 2775 %q", path, gateway.GatewayUID, path, path))
			}
			if err != nil && ctx.Err() == nil {
				s.Rep.Warn("backup", "could not make the backup volume writable for GID 1001: "+err.Error(), "")
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(t.Tick):
		}
	}
}

// underTraffic runs change (an apply and rollout) while steady traffic flows
// through a forward, and returns the traffic's figures and the change's time.
func (s *Session) underTraffic(ctx context.Context, o TrafficOptions, step string, change func() error) (traffic.Stats, time.Duration, error) {
	fwd, err := s.UseForward(ctx)
	if err != nil {
		return traffic.Stats{}, 0, err
	}
	defer fwd.Stop()
	httpPort, how := fwd.HTTP, fwd.String()
	path, hdr, what := s.trafficTarget(ctx, o)
	rate := o.Rate
	if rate == 0 {
		rate = 20
	}
	s.Rep.Info(step, fmt.Sprintf("traffic: GET %s at %d/s (%s)", path, rate, what))
	tctx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan traffic.Stats, 1)
	go func() {
		trafficDone <- traffic.Run(tctx, traffic.Options{URL: fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path), Header: hdr, Rate: rate, Limit: 15 * time.Minute,
			OnSample: func(ts traffic.Stats) {
				s.progress("traffic %s (through %s)", ts, how)
				if o.OnTraffic != nil {
					o.OnTraffic(ts)
				}
			}})
	}()
	settle := s.Timeouts.orDefault().Settle
	// Let traffic settle on the old pods first so the figures cover the switch.
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	start := time.Now()
	err = change()
	took := time.Since(start)
	// A short tail after the rollout, so requests to the new pods count too.
	if err == nil {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
		}
	}
	stopTraffic()
	ts := <-trafficDone
	s.Rep.Info(step, fmt.Sprintf("traffic during the rollout: %s", ts))
	return ts, took, err
}

// trafficTarget picks what the rollout traffic requests: the given path,
// else on a local demo its echo API with the demo's key (which the stand-in
// counts in its metrics), else the first GET of the smoke spec (a real API
// call through the gateway), else the health path, which a draining gateway
// fails on purpose.
func (s *Session) trafficTarget(ctx context.Context, o TrafficOptions) (string, http.Header, string) {
	hdr := http.Header{}
	if o.Path != "" {
		for k, v := range o.Header {
			hdr.Set(k, v)
		}
		return o.Path, hdr, "--traffic-path"
	}
	if s.localCluster && s.IsDemo() && s.Client != nil {
		if st, err := demo.Read(ctx, s.Client); err == nil && st.Found {
			hdr.Set(demo.SubscriptionHeader, st.Keys.Subscription)
			return demo.SmokePath + "/rollout", hdr, "the demo's echo API"
		}
	}
	if spec, err := smoke.Load(s.Config.Smoke.File); err == nil {
		for _, c := range spec.Calls {
			if (c.Method == "" || strings.EqualFold(c.Method, http.MethodGet)) && (c.Port == "" || c.Port == "http") &&
				(c.Expect.Status == 0 || c.Expect.Status == http.StatusOK) {
				hs := map[string]string{}
				ok := true
				for k, v := range c.Headers {
					x, err := expander(token.Token{}).Expand("the smoke spec's call "+strconv.Quote(c.Name)+" header "+k, v)
					ok = ok && err == nil
					hs[k] = x
				}
				if !ok {
					break // never a credential through the gateway: the health path instead
				}
				for k, v := range hs {
					hdr.Set(k, v)
				}
				return c.Path, hdr, "the smoke spec's call " + strconv.Quote(c.Name)
			}
		}
	}
	return s.Names.ProbePath, hdr, "the health path: a gateway fails it on purpose while it drains, so give --traffic-path an API call for a truer figure"
}

// restartReason says why running pods must restart to pick up what was just
// applied, or "": the Secret took a new credential, the settings ConfigMap
// (read into the environment at start) or the private CAs changed, or the
// node has a new image under the same name, while the Deployment stayed as
// it was (a new or changed Deployment starts new pods, which read all anyway).
func restartReason(plan []gateway.Change, p gateway.Profile, imageReplaced bool) string {
	secret, settings, cas, changed, existed := false, false, false, false, false
	for _, c := range plan {
		switch {
		case c.Kind == "Secret" && c.Action == gateway.Update:
			secret = true
		case c.Kind == "ConfigMap" && c.Name == p.ConfigMapName() && c.Action == gateway.Update:
			settings = true
		case c.Kind == "ConfigMap" && c.Name == p.CAConfigMapName() && c.Action == gateway.Update:
			cas = true
		case c.Kind == "Deployment" && c.Name == p.DeploymentName():
			changed = c.Action == gateway.Create || c.Action == gateway.Update
			existed = c.Action != gateway.Create
		}
	}
	if changed || !existed {
		return ""
	}
	var parts []string
	for _, x := range []struct {
		on   bool
		what string
	}{{secret, "the credential in the Secret"}, {settings, "the settings in ConfigMap " + p.ConfigMapName()},
		{cas, "the private CAs in ConfigMap " + p.CAConfigMapName()}, {imageReplaced, "the image"}} {
		if x.on {
			parts = append(parts, x.what)
		}
	}
	switch {
	case len(parts) == 0:
		return ""
	case len(parts) == 1 && imageReplaced:
		return "the image changed under the same name"
	}
	return strings.Join(parts, " and ") + " changed"
}

// restartPods rolls the gateway's pods as `kubectl rollout restart` does, so
// the Deployment's rollout bounds hold; the caller then waits for it.
func (s *Session) restartPods(ctx context.Context, p gateway.Profile) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, gateway.RestartedAtKey, s.now().UTC().Format(time.RFC3339Nano))
	if _, err := s.Client.AppsV1().Deployments(p.Namespace).Patch(ctx, p.DeploymentName(), types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: gateway.FieldManager + "-rotate"}); err != nil {
		return fmt.Errorf("restarting %s/%s: %w", p.Namespace, p.DeploymentName(), err)
	}
	return nil
}
