package pipeline

import (
	"context"
	"time"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/metrics"
)

// TopSample is one moment of the gateway's traffic, as `apimdev top` shows
// it: what its metrics sink has counted so far and its pods' readiness.
type TopSample struct {
	Time    time.Time `json:"time"`
	Gateway string    `json:"gateway"`
	Profile string    `json:"profile,omitempty"`
	// Metrics is nil when there are none to read; Missing says why and how
	// to get them.
	Metrics *Metrics  `json:"metrics,omitempty"`
	Missing string    `json:"missing,omitempty"`
	Pods    []TopPod  `json:"pods"`
	Rate    *TopRates `json:"rate,omitempty"`
	// Links is each pod's link to its configuration endpoint, read from
	// its log at most every topLinkEvery (the log is longer to read than
	// the metrics).
	Links []PodLink `json:"links,omitempty"`
	// Resources are the gateway's pods' (and its metrics sink's) CPU and
	// memory from their nodes' kubelets, read at most every
	// topResourceEvery; ResourcesMissing says why there are none.
	Resources        []TopResource `json:"resources,omitempty"`
	ResourcesMissing string        `json:"resourcesMissing,omitempty"`
	// MemoryWarning says a pod's memory kept growing over the window while
	// the load did not rise (see TopWindow).
	MemoryWarning string `json:"memoryWarning,omitempty"`
}

// topLinkEvery is how often top reads the pods' logs for their links.
const topLinkEvery = 10 * time.Second

// TopPod is one gateway pod.
type TopPod = gateway.PodState

// TopRates are what changed between two samples, per second.
type TopRates = metrics.Rates

// noLocalMetrics is what top says on a gateway without a metrics sink.
const noLocalMetrics = "no local metrics: the dev profile (as the portal's YAML) sends none; `apimdev promote` adds a statsd exporter (or `--metrics opentelemetry`, a collector)"

// Top reads one sample. The session must be connected and resolved; one
// sampler calls it at a time (it keeps the links it read last).
func (s *Session) Top(ctx context.Context) TopSample {
	p := s.metricsProfile()
	ts := TopSample{Time: s.now(), Gateway: p.Gateway, Profile: p.Name}
	if s.Recorded != nil {
		ts.Profile = s.Recorded.Profile
	}
	if pods, err := gateway.PodStates(ctx, s.Client, p); err == nil {
		ts.Pods = pods
	}
	if s.topLinks.at.IsZero() || ts.Time.Sub(s.topLinks.at) >= topLinkEvery {
		if links, err := s.Links(ctx); err == nil {
			s.topLinks.links, s.topLinks.at = links, ts.Time
		}
	}
	ts.Links = s.topLinks.links
	s.resources(ctx, p, &ts)
	if sink, _, _ := p.MetricsSink(); sink == "" || ts.Profile == "dev" {
		ts.Missing = noLocalMetrics
		return ts
	}
	m, err := s.scrapeFrom(ctx, p)
	if err != nil {
		ts.Missing = "the metrics cannot be read now: " + err.Error()
		return ts
	}
	ts.Metrics = &m
	return ts
}

// RatesBetween fills b's rates from a, the sample before it. Counters that
// went down (the sink restarted) give no rate.
func RatesBetween(a, b *TopSample) {
	if a == nil || a.Metrics == nil || b.Metrics == nil {
		return
	}
	if r := metrics.Between(*a.Metrics, *b.Metrics, b.Time.Sub(a.Time).Seconds()); r != nil {
		b.Rate = r
	}
}
