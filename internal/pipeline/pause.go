package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/state"
)

// pauser is the part of the cluster manager that pauses and resumes the
// nodes (*cluster.Manager has it).
type pauser interface {
	Pause(ctx context.Context) ([]string, error)
	Unpause(ctx context.Context) ([]string, error)
}

var _ pauser = (*cluster.Manager)(nil)

// PauseResult is what `apimdev pause` did.
type PauseResult struct {
	Nodes []string  `json:"nodes"`
	Since time.Time `json:"since"`
	// Already says the nodes were paused before (by apimdev or by hand).
	Already bool `json:"already,omitempty"`
}

// ResumeResult is what `apimdev resume` did.
type ResumeResult struct {
	Nodes []string `json:"nodes"`
	// NotPaused says there was nothing to resume; the smoke calls ran all
	// the same.
	NotPaused bool `json:"notPaused,omitempty"`
	// Restarted names the gateway's pods whose containers restarted while
	// paused or since ("" none).
	Restarted []string       `json:"restarted,omitempty"`
	Smoke     []smoke.Result `json:"smoke"`
	// Green is the time from the command's start to the smoke calls
	// passing.
	Green time.Duration `json:"greenMs"`
}

// PausedState is a paused cluster as status shows it.
type PausedState struct {
	// Since is when it was paused (zero when no record says: paused by
	// hand, or the state directory was lost).
	Since time.Time `json:"since,omitzero"`
	By    string    `json:"by,omitempty"`
}

func (s *Session) pauser() (pauser, error) {
	p, ok := s.Cluster.(pauser)
	if !ok {
		return nil, fmt.Errorf("cluster %q cannot be paused from here", s.Config.Cluster.Name)
	}
	return p, nil
}

// Pause freezes the nodes of the cluster apimdev made with the engine's
// pause, after recording it (so the background forward holds new
// connections instead of failing them). The caller holds the cluster lock.
func (s *Session) Pause(ctx context.Context) (PauseResult, error) {
	return s.pause(ctx, state.PausedByCommand)
}

func (s *Session) pause(ctx context.Context, by string) (PauseResult, error) {
	p, err := s.pauser()
	if err != nil {
		return PauseResult{}, err
	}
	st, detail := s.Cluster.Inspect(ctx)
	switch st {
	case cluster.ClusterPaused:
		rec, ok := s.Files.Paused()
		if !ok {
			rec = state.PauseRecord{Since: s.now(), By: by}
			_ = s.Files.SavePause(rec)
		}
		return PauseResult{Nodes: strings.Split(detail, ", "), Since: rec.Since, Already: true}, nil
	case cluster.ClusterOurs:
	default:
		return PauseResult{}, fmt.Errorf("cluster %q is %s%s: only a running cluster apimdev made is paused", s.Config.Cluster.Name, st, prefixedDetail(detail))
	}
	rec := state.PauseRecord{Since: s.now(), By: by}
	if err := s.Files.SavePause(rec); err != nil {
		return PauseResult{}, err
	}
	nodes, err := p.Pause(ctx)
	if err != nil {
		// What was paused is thawed again: a half-paused cluster helps nobody.
		_, _ = p.Unpause(context.WithoutCancel(ctx))
		s.Files.ForgetPause()
		return PauseResult{}, fmt.Errorf("pausing cluster %q: %w", s.Config.Cluster.Name, err)
	}
	return PauseResult{Nodes: nodes, Since: rec.Since}, nil
}

func prefixedDetail(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

// unpause thaws the nodes and forgets the pause record.
func (s *Session) unpause(ctx context.Context) ([]string, error) {
	p, err := s.pauser()
	if err != nil {
		return nil, err
	}
	nodes, err := p.Unpause(ctx)
	if err != nil {
		return nodes, fmt.Errorf("resuming cluster %q: %w", s.Config.Cluster.Name, err)
	}
	s.Files.ForgetPause()
	return nodes, nil
}

// Resume thaws a paused cluster, waits for the API server and the
// gateway's pods (which must not have restarted), and runs the smoke calls.
// started is when the command started: Green counts from it.
func (s *Session) Resume(ctx context.Context, started time.Time) (ResumeResult, error) {
	var res ResumeResult
	st, detail := s.Cluster.Inspect(ctx)
	switch st {
	case cluster.ClusterPaused:
		nodes, err := s.unpause(ctx)
		res.Nodes = nodes
		if err != nil {
			return res, err
		}
	case cluster.ClusterOurs:
		s.Files.ForgetPause() // a stale record (the nodes were thawed by hand)
		res.NotPaused = true
	default:
		return res, fmt.Errorf("cluster %q is %s%s: nothing to resume", s.Config.Cluster.Name, st, prefixedDetail(detail))
	}
	if err := s.Connect(); err != nil {
		return res, err
	}
	// The record (read once the API server answers) names the gateway
	// whose pods are waited for.
	if err := s.waitAPIServer(ctx); err != nil {
		return res, err
	}
	if err := s.Resolve(ctx); err != nil {
		return res, err
	}
	before, err := s.waitGatewayPods(ctx)
	if err != nil {
		return res, err
	}
	rs, err := s.SmokeNow(ctx)
	res.Smoke = rs
	if err != nil {
		return res, err
	}
	after, _ := s.gatewayRestarts(ctx)
	for pod, n := range after {
		if b, ok := before[pod]; ok && n > b {
			res.Restarted = append(res.Restarted, pod)
		}
	}
	res.Green = time.Since(started)
	if n := smoke.Failed(rs); n > 0 {
		return res, &SmokeError{Failed: n, Total: len(rs)}
	}
	return res, nil
}

// waitAPIServer waits for the API server to answer after a resume.
func (s *Session) waitAPIServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Deploy)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.Client.CoreV1().Namespaces().Get(rctx, s.Names.Namespace, metav1.GetOptions{})
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after the resume the API server does not answer: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitGatewayPods waits for the API server to answer and every gateway pod
// to be ready, and returns each pod's container restarts.
func (s *Session) waitGatewayPods(ctx context.Context) (map[string]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Deploy)
	defer cancel()
	last := "the API server does not answer yet"
	for {
		restarts, ready, why := s.gatewayPodsNow(ctx)
		if ready {
			return restarts, nil
		}
		if why != "" {
			last = why
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("after the resume: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Session) gatewayPodsNow(ctx context.Context) (map[string]int32, bool, string) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sel := labels.SelectorFromSet(s.gatewaySelector()).String()
	pods, err := s.Client.CoreV1().Pods(s.Names.Namespace).List(rctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, false, "the API server does not answer yet"
	}
	restarts := map[string]int32{}
	ready := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			restarts[p.Name] += c.RestartCount
		}
		if podReady(p) {
			ready++
		} else {
			return nil, false, "gateway pod " + p.Name + " is not ready"
		}
	}
	if ready == 0 {
		return nil, false, "no gateway pod is ready"
	}
	return restarts, true, ""
}

func (s *Session) gatewayRestarts(ctx context.Context) (map[string]int32, error) {
	r, _, why := s.gatewayPodsNow(ctx)
	if r == nil {
		return nil, fmt.Errorf("%s", why)
	}
	return r, nil
}

// ResumeIfPaused thaws a paused cluster before up works on it, and says
// whether it did. It asks only the engine (no API server round trip: a
// warm up stays quick); a cluster with no node has nothing to thaw.
func (s *Session) ResumeIfPaused(ctx context.Context) (bool, error) {
	p, err := s.pauser()
	if err != nil {
		return false, nil
	}
	nodes, err := p.Unpause(ctx)
	if err != nil {
		// An engine that does not answer, say: preflight tells it with its
		// fix, and the cluster step thaws what is still paused.
		return false, nil
	}
	s.Files.ForgetPause() // thawed now, or a record left by a hand's unpause
	return len(nodes) > 0, nil
}

// PausedNow is the paused cluster's record as status shows it (since when
// and by whom, when a record says).
func (s *Session) PausedNow() *PausedState {
	rec, ok := s.Files.Paused()
	if !ok {
		return &PausedState{By: "unknown (no record: paused by hand?)"}
	}
	return &PausedState{Since: rec.Since, By: rec.By}
}

// forwardSleep is the background forward's part in pause and auto-pause:
// it follows the pause record, and with idle > 0 pauses the cluster after
// that long without a connection and wakes it for the next one.
func (s *Session) forwardSleep(f *forward.Forwarder, idle time.Duration) *forward.Sleep {
	if _, err := s.pauser(); err != nil || !s.localCluster {
		return nil
	}
	return &forward.Sleep{
		Idle: idle,
		IdleNow: func() time.Duration {
			if d, ok := s.Files.AutoPause(); ok {
				return d
			}
			return idle
		},
		Poll: 200 * time.Millisecond,
		State: func() (bool, bool) {
			rec, ok := s.Files.Paused()
			return ok, ok && rec.By == state.PausedByCommand
		},
		Pause: func(ctx context.Context) error {
			_, err := s.pause(ctx, state.PausedByAuto)
			return err
		},
		Wake: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if _, err := s.unpause(ctx); err != nil {
				return err
			}
			// Served as soon as the gateway answers through the direct
			// path; without one, the forward's own wait for a ready pod
			// does it.
			if f.Direct == nil || f.Direct.Probe == nil {
				return nil
			}
			for {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				err := f.Direct.Probe(pctx)
				pcancel()
				if err == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("the gateway did not answer after the resume: %w", err)
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
		Log: func(format string, a ...any) { s.Rep.Info("forward", fmt.Sprintf(format, a...)) },
	}
}
