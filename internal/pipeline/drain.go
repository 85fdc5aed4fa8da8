package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/topology"
)

// Drain step names.
const (
	StepCordon = "cordon"
	StepEvict  = "evict"
	StepMove   = "move"
)

// DrainOptions say which node to drain and how long it may take.
type DrainOptions struct {
	Node string
	// Force evicts pods no controller will replace (they are gone for good).
	Force   bool
	Timeout time.Duration // 0: 5 min
}

// DrainResult is what a drain did.
type DrainResult struct {
	Node    string   `json:"node"`
	Evicted []string `json:"evicted"`
	// Refused counts the evictions the API server turned down (429: a
	// disruption budget allowed none at that moment) before they went.
	Refused int `json:"refused"`
	// Moved is where the gateway's evicted pods' replacements run.
	Moved   []string      `json:"moved,omitempty"`
	Took    time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
}

// NodeError says the node named cannot be drained (or does not exist).
type NodeError struct {
	Node, Problem string
	Nodes         []string
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %s", e.Node, e.Problem) }

// Hint names the nodes there are.
func (e *NodeError) Hint() string {
	if len(e.Nodes) == 0 {
		return "`apimdev status` lists the nodes"
	}
	return "the nodes are: " + strings.Join(e.Nodes, ", ")
}

// Drain cordons a node and evicts its pods through the Eviction API, as
// `kubectl drain` does: the API server refuses an eviction a disruption
// budget does not allow (the prod profile's allows one gateway pod down), and
// apimdev retries it until the budget allows it, reporting the pods as they
// move. DaemonSet and static pods stay. It returns once the gateway is fully
// ready again with none of its pods on the node.
func (s *Session) Drain(ctx context.Context, o DrainOptions) (*DrainResult, error) {
	if o.Timeout == 0 {
		o.Timeout = s.Timeouts.orDefault().Drain
	}
	res := &DrainResult{Node: o.Node}
	start := time.Now()
	var evict []corev1.Pod
	err := s.runSteps(ctx, []step{
		{name: StepCordon, detail: o.Node, run: func(ctx context.Context, st *events.Step) (string, error) {
			t, err := topology.Read(ctx, s.Client)
			if err != nil {
				return "", err
			}
			var names []string
			found := false
			for _, n := range t.Nodes {
				names = append(names, n.Name)
				found = found || n.Name == o.Node
			}
			if !found {
				return "", &NodeError{Node: o.Node, Problem: "is not a node of this cluster", Nodes: names}
			}
			others := 0
			for _, n := range t.Schedulable() {
				if n.Name != o.Node {
					others++
				}
			}
			if others == 0 {
				return "", &NodeError{Node: o.Node, Nodes: names,
					Problem: "no other node can take its pods: draining it would leave the gateway nowhere to run (" + oneNodeNote + ")"}
			}
			var bare []string
			if evict, bare, err = topology.PodsToEvict(ctx, s.Client, o.Node, o.Force); err != nil {
				return "", err
			}
			if len(bare) > 0 {
				return "", &NodeError{Node: o.Node, Nodes: names,
					Problem: fmt.Sprintf("pod(s) %s have no controller to start them elsewhere: evicting them loses them (nothing was changed; --force evicts them anyway)", strings.Join(bare, ", "))}
			}
			if err := topology.Cordon(ctx, s.Client, o.Node, true); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s cordoned: no new pods go there", o.Node), nil
		}},
		{name: StepEvict, detail: "", run: func(ctx context.Context, st *events.Step) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			refused, err := s.evictAll(ctx, st, evict)
			res.Refused = refused
			for _, p := range evict {
				res.Evicted = append(res.Evicted, p.Namespace+"/"+p.Name)
			}
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d pod(s) evicted, %d eviction(s) refused by a disruption budget first and retried", len(evict), refused), nil
		}},
		{name: StepMove, detail: "waiting for the gateway to be whole again elsewhere", run: func(ctx context.Context, st *events.Step) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			moved, err := s.waitMoved(ctx, st, o.Node, evict)
			res.Moved = moved
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s is empty; the gateway is whole again (%s); `apimdev uncordon %s` lets pods back", o.Node, strings.Join(moved, ", "), o.Node), nil
		}},
	})
	res.Took = time.Since(start)
	res.Seconds = res.Took.Seconds()
	return res, err
}

// Uncordon lets the scheduler put pods on node again.
func (s *Session) Uncordon(ctx context.Context, node string) error {
	return s.runSteps(ctx, []step{{name: StepCordon, detail: node, run: func(ctx context.Context, _ *events.Step) (string, error) {
		if _, err := s.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				t, _ := topology.Read(ctx, s.Client)
				var names []string
				for _, n := range t.Nodes {
					names = append(names, n.Name)
				}
				return "", &NodeError{Node: node, Problem: "is not a node of this cluster", Nodes: names}
			}
			return "", err
		}
		if err := topology.Cordon(ctx, s.Client, node, false); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s schedulable again (pods that moved stay where they are until their next rollout)", node), nil
	}}})
}

// evictAll asks for every pod's eviction at once and retries each that a
// disruption budget refuses (429) until it is allowed: the budget decides the
// pace, one gateway pod at a time.
func (s *Session) evictAll(ctx context.Context, st *events.Step, pods []corev1.Pod) (int, error) {
	var mu sync.Mutex
	refused := 0
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			told := false
			for {
				err := s.Client.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
				switch {
				case err == nil:
					st.Progress("evicted %s/%s", p.Namespace, p.Name)
					return
				case apierrors.IsNotFound(err):
					return
				case apierrors.IsTooManyRequests(err):
					mu.Lock()
					refused++
					mu.Unlock()
					if !told {
						st.Progress("eviction of %s/%s refused: %s; retrying until the budget allows it", p.Namespace, p.Name, budgetReason(err))
						told = true
					}
				default:
					errs[i] = fmt.Errorf("evicting %s/%s: %w", p.Namespace, p.Name, err)
					return
				}
				select {
				case <-ctx.Done():
					errs[i] = fmt.Errorf("evicting %s/%s: the disruption budget allowed no eviction in time: %w", p.Namespace, p.Name, ctx.Err())
					return
				case <-time.After(s.Timeouts.orDefault().Poll):
				}
			}
		}()
	}
	wg.Wait()
	return refused, errors.Join(errs...)
}

// budgetReason is the API server's word for a refused eviction.
func budgetReason(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		if d := se.Status().Details; d != nil {
			for _, c := range d.Causes {
				if c.Message != "" {
					return c.Message
				}
			}
		}
		return se.Status().Message
	}
	return err.Error()
}

// waitMoved waits for the evicted pods to be gone from node and the gateway
// to be fully ready, telling each change of the gateway's pods; it returns
// where the gateway's pods run then.
func (s *Session) waitMoved(ctx context.Context, st *events.Step, node string, evicted []corev1.Pod) ([]string, error) {
	p := s.Names
	last := ""
	for {
		pods, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + p.Gateway})
		if err == nil {
			var desc []string
			ready, onNode := 0, 0
			for _, pod := range pods.Items {
				where := pod.Spec.NodeName
				if where == "" {
					where = "(pending)"
				}
				state := "starting"
				switch {
				case pod.DeletionTimestamp != nil:
					state = "terminating"
				case podReady(pod):
					state = "ready"
					ready++
				}
				if pod.Spec.NodeName == node {
					onNode++
				}
				desc = append(desc, fmt.Sprintf("%s %s on %s", pod.Name, state, where))
			}
			sort.Strings(desc)
			d, derr := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{})
			want := 0
			if derr == nil {
				want = int(gateway.Desired(d))
			}
			line := fmt.Sprintf("gateway %d/%d ready: %s", ready, want, strings.Join(desc, ", "))
			if line != last {
				st.Progress("%s", line)
				last = line
			}
			gone := s.evictedGone(ctx, evicted)
			if gone && onNode == 0 && (derr != nil || ready >= want) {
				var where []string
				for _, pod := range pods.Items {
					if pod.DeletionTimestamp == nil && !slices.Contains(where, pod.Spec.NodeName) {
						where = append(where, pod.Spec.NodeName)
					}
				}
				sort.Strings(where)
				if derr != nil {
					return where, nil // no gateway here: only the pods had to go
				}
				return []string{fmt.Sprintf("%d/%d ready on %s", ready, want, strings.Join(where, ", "))}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the pods evicted from %s did not move in time (last: %s): %w", node, last, ctx.Err())
		case <-time.After(s.Timeouts.orDefault().Tick):
		}
	}
}

func (s *Session) evictedGone(ctx context.Context, evicted []corev1.Pod) bool {
	for _, p := range evicted {
		cur, err := s.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && cur.UID == p.UID {
			return false
		}
	}
	return true
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
