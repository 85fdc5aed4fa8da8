package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/metrics"
)

func u64(v uint64) *uint64 { return &v }

// podStats is a pod of a summary: with nanoCores 0 the kubelet gave only
// the cumulative usage.
func podStats(ns, name string, at time.Time, nanoCores, coreNanoSeconds, workingSet uint64) metrics.PodStats {
	var p metrics.PodStats
	p.PodRef.Namespace, p.PodRef.Name = ns, name
	p.CPU = &metrics.CPUStats{Time: at, UsageCoreNanoSeconds: u64(coreNanoSeconds)}
	if nanoCores > 0 {
		p.CPU.UsageNanoCores = u64(nanoCores)
	}
	p.Memory = &metrics.MemoryStats{Time: at, WorkingSetBytes: u64(workingSet), RSSBytes: u64(workingSet / 2)}
	return p
}

// Top's resources: the gateway's pods and its statsd exporter's, on two
// nodes, each node's summary read through the (here canned) node proxy at
// most every 10 s; other pods left out; a CPU rate from the cumulative
// usage when the kubelet gives none; a node that cannot be read said so.
func TestTopResources(t *testing.T) {
	t.Parallel()
	p := gateway.Profile{Namespace: "apim", Gateway: "contoso-gw", StatsdImage: "prom/statsd-exporter"}
	statsd := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "contoso-gw-statsd-1", Namespace: "apim", Labels: map[string]string{"app": p.StatsdName()}},
		Spec: corev1.PodSpec{NodeName: "worker"}}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	reads := map[string]int{}
	failWorker := false
	s := &Session{Client: fake.NewClientset(statsd)}
	s.summary = func(_ context.Context, node string) ([]byte, error) {
		reads[node]++
		at := t0.Add(time.Duration(reads[node]-1) * 10 * time.Second)
		var sum metrics.Summary
		sum.Node.NodeName = node
		switch node {
		case "control-plane":
			sum.Pods = []metrics.PodStats{
				podStats("apim", "contoso-gw-aaa-1", at, 12_500_000, 1e9, 213<<20),
				podStats("apim", "echo-1", at, 1_000_000, 1e9, 8<<20),
				podStats("kube-system", "coredns-1", at, 2_000_000, 1e9, 15<<20),
			}
		case "worker":
			if failWorker {
				return nil, errors.New("the server is currently unable to handle the request")
			}
			// 0.2 s of CPU each 10 s: 20 millicores.
			sum.Pods = []metrics.PodStats{podStats("apim", "contoso-gw-statsd-1", at, 0, uint64(reads[node])*200_000_000, 13<<20)}
		}
		return json.Marshal(sum)
	}
	gw := []TopPod{{Name: "contoso-gw-aaa-1", Node: "control-plane", Ready: true}}
	top := func(after time.Duration) TopSample {
		ts := TopSample{Time: t0.Add(after), Pods: gw}
		s.resources(context.Background(), p, &ts)
		return ts
	}
	ts := top(0)
	if len(ts.Resources) != 2 || ts.ResourcesMissing != "" {
		t.Fatalf("want the gateway's pod and the exporter's: %+v", ts)
	}
	g, x := ts.Resources[0], ts.Resources[1]
	if g.Pod != "contoso-gw-aaa-1" || *g.CPUMillicores != 12.5 || *g.MemoryMiB != 213 || !g.Time.Equal(t0) {
		t.Errorf("gateway: %+v", g)
	}
	if x.Pod != "contoso-gw-statsd-1" || x.CPUMillicores != nil || *x.MemoryMiB != 13 {
		t.Errorf("exporter, one cumulative reading (no rate yet): %+v", x)
	}
	top(time.Second)
	top(9 * time.Second)
	if reads["control-plane"] != 1 || reads["worker"] != 1 {
		t.Errorf("summaries read more often than every 10 s: %v", reads)
	}
	ts = top(10 * time.Second)
	if reads["control-plane"] != 2 || reads["worker"] != 2 {
		t.Errorf("summaries not read again after 10 s: %v", reads)
	}
	if x := ts.Resources[1]; x.CPUMillicores == nil || *x.CPUMillicores != 20 {
		t.Errorf("exporter's CPU from two cumulative readings: %+v", x)
	}
	failWorker = true
	ts = top(20 * time.Second)
	if len(ts.Resources) != 1 || !strings.Contains(ts.ResourcesMissing, "worker: the server is currently unable") {
		t.Errorf("a node that cannot be read: %+v", ts)
	}
}

// The JSON of `top --once -o json`: resources with their figures, the
// slope once the window has readings enough, and the warning.
func TestTopJSON(t *testing.T) {
	t.Parallel()
	w := NewTopWindow(2 * time.Minute)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ts TopSample
	for i := range 13 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		mem, cpu := 200+2*float64(i)/6, 12.0
		ts = TopSample{Time: at, Gateway: "contoso-gw", Rate: &TopRates{Seconds: 1, Requests: 5},
			Resources: []TopResource{{Pod: "contoso-gw-aaa-1", CPUMillicores: &cpu, MemoryMiB: &mem, Time: at}}}
		w.Observe(&ts)
		if i == 1 && ts.Resources[0].MemorySlopeMiBPerMin != nil {
			t.Fatalf("a slope from two readings: %v", *ts.Resources[0].MemorySlopeMiBPerMin)
		}
	}
	data, err := json.Marshal(ts)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Resources []map[string]any `json:"resources"`
		Warning   string           `json:"memoryWarning"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Resources) != 1 {
		t.Fatalf("%s", data)
	}
	r := got.Resources[0]
	if r["pod"] != "contoso-gw-aaa-1" || r["cpuMillicores"] != 12.0 || r["memoryMiB"] != 204.0 || r["memorySlopeMiBPerMin"] != 2.0 {
		t.Errorf("resource: %s", data)
	}
	if !strings.Contains(got.Warning, "contoso-gw-aaa-1's memory grew 2.0 MiB/min for the last 2m while requests/s did not rise") ||
		!strings.Contains(got.Warning, "Azure/api-management-self-hosted-gateway#401") {
		t.Errorf("warning: %q", got.Warning)
	}

	// The same growth while the load rises: no warning.
	w = NewTopWindow(2 * time.Minute)
	for i := range 13 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		mem := 200 + 2*float64(i)/6
		ts = TopSample{Time: at, Rate: &TopRates{Seconds: 1, Requests: 5 + 5*float64(i)},
			Resources: []TopResource{{Pod: "contoso-gw-aaa-1", MemoryMiB: &mem, Time: at}}}
		w.Observe(&ts)
	}
	if ts.MemoryWarning != "" || ts.Resources[0].MemorySlopeMiBPerMin == nil {
		t.Errorf("growth under rising load: %+v", ts)
	}
}

// On the dev profile Top still says there are no local metrics, and shows
// the pods' resources.
func TestTopDevResources(t *testing.T) {
	t.Parallel()
	p := gateway.Profile{Namespace: "apim", Gateway: "contoso-gw"}
	gw := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "contoso-gw-aaa-1", Namespace: "apim", Labels: map[string]string{"app": "contoso-gw"}},
		Spec: corev1.PodSpec{NodeName: "control-plane"}}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := &Session{Client: fake.NewClientset(gw), Recorded: &Record{Profile: "dev", Spec: p}, Now: func() time.Time { return now }}
	s.openLog = func(context.Context, string, *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	s.summary = func(_ context.Context, node string) ([]byte, error) {
		var sum metrics.Summary
		sum.Pods = []metrics.PodStats{podStats("apim", "contoso-gw-aaa-1", now, 30_000_000, 1e9, 300<<20)}
		return json.Marshal(sum)
	}
	ts := s.Top(context.Background())
	if ts.Missing != noLocalMetrics || ts.Metrics != nil {
		t.Errorf("dev profile: %+v", ts)
	}
	if len(ts.Resources) != 1 || *ts.Resources[0].CPUMillicores != 30 || *ts.Resources[0].MemoryMiB != 300 {
		t.Errorf("resources on the dev profile: %+v", ts.Resources)
	}
}

// A fake clientset has no REST client: the resources say so, nothing panics.
func TestTopResourcesFakeClient(t *testing.T) {
	t.Parallel()
	gw := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "contoso-gw-aaa-1", Namespace: "apim", Labels: map[string]string{"app": "contoso-gw"}},
		Spec: corev1.PodSpec{NodeName: "control-plane"}}
	s := &Session{Client: fake.NewClientset(gw)}
	ts := TopSample{Time: time.Now(), Pods: []TopPod{{Name: gw.Name, Node: "control-plane"}}}
	s.resources(context.Background(), gateway.Profile{Namespace: "apim", Gateway: "contoso-gw"}, &ts)
	if ts.Resources != nil || !strings.Contains(ts.ResourcesMissing, "control-plane: the client has no REST client") {
		t.Errorf("%+v", ts)
	}
}
