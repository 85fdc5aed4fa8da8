// Package metrics reads what the gateway's metrics sink (the statsd
// exporter or the OpenTelemetry Collector) has counted: the Prometheus text
// format it serves, parsed into request counts by status class and latency
// quantiles, and the rates between two readings. It also reads the
// kubelet's stats summary (each pod's CPU and memory, summary.go) and judges
// a pod's memory over a window: its least-squares slope, and whether it kept
// growing while the load did not rise.
package metrics

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Metrics is what the statsd exporter or the OpenTelemetry Collector has
// seen from the gateway.
type Metrics struct {
	Requests float64 `json:"requests"`
	P50MS    float64 `json:"p50Ms"`
	P99MS    float64 `json:"p99Ms"`
	// Classes counts the requests by status class (2xx, 4xx, 5xx, ...).
	Classes map[string]float64 `json:"classes,omitempty"`
	// Source is what counted them.
	Source string `json:"source,omitempty"`
}

func (m Metrics) String() string {
	src := m.Source
	if src == "" {
		src = "the statsd exporter"
	}
	return fmt.Sprintf("%.0f requests seen by %s, latency p50 %.1fms p99 %.1fms", m.Requests, src, m.P50MS, m.P99MS)
}

// Parse sums the gateway's request counter and takes the slowest
// series' quantiles from the exporter's text format (timers are in seconds).
func Parse(text string) Metrics {
	var m Metrics
	var p50s, p99s []float64
	buckets := map[float64]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		valStr := line[strings.LastIndex(line, " ")+1:]
		v, err := strconv.ParseFloat(valStr, 64)
		if err != nil {
			continue
		}
		if !strings.Contains(line, "{") {
			name = strings.Fields(line)[0]
		}
		switch {
		case strings.HasPrefix(name, "durationInMs") && strings.HasSuffix(name, "_bucket"):
			// The collector's histogram in milliseconds, cumulative per le.
			if le, ok := label(rest, "le"); ok {
				if bound, err := strconv.ParseFloat(le, 64); err == nil || le == "+Inf" {
					if le == "+Inf" {
						bound = math.Inf(1)
					}
					buckets[bound] += v
				}
			}
			continue
		}
		switch name {
		case "requests", "requests_total":
			m.Requests += v
			if c := statusClass(rest); c != "" {
				if m.Classes == nil {
					m.Classes = map[string]float64{}
				}
				m.Classes[c] += v
			}
		case "request_duration":
			switch {
			case strings.Contains(rest, `quantile="0.5"`):
				p50s = append(p50s, v*1000)
			case strings.Contains(rest, `quantile="0.99"`):
				p99s = append(p99s, v*1000)
			}
		}
	}
	pick := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		sort.Float64s(xs)
		return xs[len(xs)-1]
	}
	m.P50MS, m.P99MS = pick(p50s), pick(p99s)
	if len(buckets) > 0 {
		m.P50MS, m.P99MS = quantile(buckets, 0.5), quantile(buckets, 0.99)
	}
	return m
}

// statusClass is a series' status class from its status (statsd) or
// statusCode (OpenTelemetry) label, "" when it has none.
func statusClass(series string) string {
	for _, k := range []string{"status", "statusCode"} {
		if v, ok := label(series, k); ok && len(v) == 3 && v[0] >= '1' && v[0] <= '5' {
			return v[:1] + "xx"
		}
	}
	return ""
}

// label is the value of one label in a series' {...} part.
func label(series, name string) (string, bool) {
	i := strings.Index(series, name+`="`)
	if i < 0 || i > 0 && series[i-1] != ',' && series[i-1] != '{' {
		return "", false
	}
	rest := series[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// quantile estimates q from cumulative buckets summed over every series: the
// upper bound of the first bucket holding q of the requests (the largest
// finite bound when that is +Inf).
func quantile(buckets map[float64]float64, q float64) float64 {
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	total := buckets[bounds[len(bounds)-1]]
	if total == 0 {
		return 0
	}
	last := 0.0
	for _, b := range bounds {
		if buckets[b] >= q*total {
			if math.IsInf(b, 1) {
				return last
			}
			return b
		}
		if !math.IsInf(b, 1) {
			last = b
		}
	}
	return last
}

// Rates are what changed between two readings, per second.
type Rates struct {
	Seconds  float64            `json:"seconds"`
	Requests float64            `json:"requestsPerSecond"`
	Classes  map[string]float64 `json:"classesPerSecond,omitempty"`
}

// Between is the rates from a to b, secs apart; nil when there is no rate:
// no time passed, or the counters went down (the sink restarted).
func Between(a, b Metrics, secs float64) *Rates {
	if secs <= 0 || b.Requests < a.Requests {
		return nil
	}
	r := &Rates{Seconds: secs, Requests: (b.Requests - a.Requests) / secs}
	for c, v := range b.Classes {
		if d := v - a.Classes[c]; d >= 0 {
			if r.Classes == nil {
				r.Classes = map[string]float64{}
			}
			r.Classes[c] = d / secs
		}
	}
	return r
}
