package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/metrics"
)

// TopResource is one pod's CPU and memory, from its node's kubelet.
type TopResource struct {
	Pod string `json:"pod"`
	// CPUMillicores is nil when the kubelet gave no rate yet.
	CPUMillicores *float64 `json:"cpuMillicores,omitempty"`
	// MemoryMiB is the working set.
	MemoryMiB *float64 `json:"memoryMiB,omitempty"`
	// MemorySlopeMiBPerMin is the least-squares slope of the working set over
	// the window (TopWindow); nil with too few readings.
	MemorySlopeMiBPerMin *float64 `json:"memorySlopeMiBPerMin,omitempty"`
	// Time is the kubelet's reading.
	Time time.Time `json:"time"`
}

// topResourceEvery is how often top reads the kubelets' summaries: the
// kubelet refreshes them about every ten seconds, so reading more often
// shows the same figures.
const topResourceEvery = 10 * time.Second

// summaryReader reads a node's stats summary; nil is the API server's node
// proxy.
type summaryReader func(ctx context.Context, node string) ([]byte, error)

// topResources is what Top read last from the kubelets, and when.
type topResources struct {
	at      time.Time
	res     []TopResource
	missing string
	// prev is each pod's last reading, for a CPU rate from the cumulative
	// usage when the kubelet gives none.
	prev map[string]metrics.PodUsage
}

// readSummary reads node's summary through the API server (no
// metrics-server needed).
func (s *Session) readSummary(ctx context.Context, node string) ([]byte, error) {
	if s.summary != nil {
		return s.summary(ctx, node)
	}
	rc := s.Client.CoreV1().RESTClient()
	if c, ok := rc.(*rest.RESTClient); rc == nil || ok && c == nil {
		return nil, errors.New("the client has no REST client (a fake clientset)")
	}
	return rc.Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").DoRaw(ctx)
}

// resources fills ts's resources: the gateway's pods' and its metrics
// sink's, read from their nodes' kubelets at most every topResourceEvery.
func (s *Session) resources(ctx context.Context, p gateway.Profile, ts *TopSample) {
	r := &s.topRes
	if r.at.IsZero() || ts.Time.Sub(r.at) >= topResourceEvery {
		r.at = ts.Time
		r.res, r.missing = s.readResources(ctx, p, ts.Pods)
	}
	ts.Resources, ts.ResourcesMissing = cloneResources(r.res), r.missing
}

func cloneResources(rs []TopResource) []TopResource {
	if rs == nil {
		return nil
	}
	out := make([]TopResource, len(rs))
	copy(out, rs)
	return out
}

func (s *Session) readResources(ctx context.Context, p gateway.Profile, gwPods []TopPod) ([]TopResource, string) {
	want := map[string]bool{}
	nodes := map[string]bool{}
	for _, x := range gwPods {
		want[x.Name] = true
		if x.Node != "" {
			nodes[x.Node] = true
		}
	}
	if sink, _, _ := p.MetricsSink(); sink != "" {
		if list, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + sink}); err == nil {
			for _, x := range list.Items {
				if x.DeletionTimestamp == nil {
					want[x.Name] = true
					if x.Spec.NodeName != "" {
						nodes[x.Spec.NodeName] = true
					}
				}
			}
		}
	}
	if len(nodes) == 0 {
		return nil, "no pod is on a node yet"
	}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	var usages []metrics.PodUsage
	var failed []string
	for _, n := range names {
		body, err := s.readSummary(ctx, n)
		var sum metrics.Summary
		if err == nil {
			sum, err = metrics.ParseSummary(body)
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		usages = append(usages, metrics.Usages(sum, func(ns, pod string) bool { return ns == p.Namespace && want[pod] })...)
	}
	missing := ""
	if len(failed) > 0 {
		missing = "the kubelet's stats summary cannot be read now (" + strings.Join(failed, "; ") + ")"
	}
	prev := s.topRes.prev
	next := map[string]metrics.PodUsage{}
	var out []TopResource
	for _, u := range usages {
		tr := TopResource{Pod: u.Pod, Time: u.Time}
		var before *metrics.PodUsage
		if b, ok := prev[u.Pod]; ok {
			before = &b
		}
		if mc, ok := metrics.Millicores(before, u); ok {
			tr.CPUMillicores = round(mc, 1)
		}
		if mib, ok := metrics.MiB(u.WorkingSetBytes); ok {
			tr.MemoryMiB = round(mib, 2)
		}
		next[u.Pod] = u
		out = append(out, tr)
	}
	s.topRes.prev = next
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out, missing
}

// round is v to digits decimals, as a pointer for an optional JSON figure.
func round(v float64, digits int) *float64 {
	f := math.Pow(10, float64(digits))
	r := math.Round(v*f) / f
	return &r
}

// TopMemoryWindow is the window top draws the memory's slope over, and
// MemoryGrowthMiBPerMin the slope above which, held over all of it while the
// requests/s did not rise, it warns. A leak shows as such a line: the
// gateway's working set was reported climbing linearly under steady traffic
// after 2.11.1 (Azure/api-management-self-hosted-gateway#401).
const (
	TopMemoryWindow       = 5 * time.Minute
	MemoryGrowthMiBPerMin = 1.0
)

// TopWindow keeps the readings of the last Span that top draws the memory's
// slopes from. One goroutine uses it.
type TopWindow struct {
	Span time.Duration
	mem  map[string][]metrics.Point // each pod's working set, MiB
	load []metrics.Point            // requests/s
}

// NewTopWindow is an empty window of span (TopMemoryWindow when 0).
func NewTopWindow(span time.Duration) *TopWindow {
	if span <= 0 {
		span = TopMemoryWindow
	}
	return &TopWindow{Span: span, mem: map[string][]metrics.Point{}}
}

// Observe adds s's readings (a kubelet reading seen before is not added
// again) and fills s's memory slopes and its MemoryWarning.
func (w *TopWindow) Observe(s *TopSample) {
	if s.Rate != nil {
		w.load = append(w.load, metrics.Point{T: s.Time, V: s.Rate.Requests})
	}
	w.load = since(w.load, s.Time.Add(-w.Span))
	seen := map[string]bool{}
	var warnings []string
	for i, r := range s.Resources {
		seen[r.Pod] = true
		ps := w.mem[r.Pod]
		if r.MemoryMiB != nil && (len(ps) == 0 || r.Time.After(ps[len(ps)-1].T)) {
			ps = append(ps, metrics.Point{T: r.Time, V: *r.MemoryMiB})
		}
		if len(ps) > 0 {
			ps = since(ps, ps[len(ps)-1].T.Add(-w.Span))
		}
		w.mem[r.Pod] = ps
		if slope, ok := metrics.SlopePerMinute(ps); ok {
			s.Resources[i].MemorySlopeMiBPerMin = round(slope, 2)
		}
		if g := metrics.GrowthOf(ps, w.load, w.Span, MemoryGrowthMiBPerMin); g.Warn() {
			load := "while requests/s did not rise"
			if !g.LoadKnown {
				load = "with the load not measured (no local metrics)"
			}
			warnings = append(warnings, fmt.Sprintf("%s's memory grew %.1f MiB/min for the last %s %s", r.Pod, g.Slope, ShortSpan(w.Span), load))
		}
	}
	if s.Resources != nil && s.ResourcesMissing == "" {
		for pod := range w.mem {
			if !seen[pod] {
				delete(w.mem, pod) // gone: a rollout replaced it
			}
		}
	}
	if len(warnings) > 0 {
		sort.Strings(warnings)
		s.MemoryWarning = strings.Join(warnings, "; ") + ": a leak? the gateway's memory was reported growing like this under steady traffic after 2.11.1 (Azure/api-management-self-hosted-gateway#401)"
	}
}

// since is ps from the first reading at or after cut.
func since(ps []metrics.Point, cut time.Time) []metrics.Point {
	i := 0
	for i < len(ps) && ps[i].T.Before(cut) {
		i++
	}
	return ps[i:]
}

// ShortSpan is 5m rather than 5m0s.
func ShortSpan(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
