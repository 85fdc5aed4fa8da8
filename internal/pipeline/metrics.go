package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/gateway"
)

// Metrics is what the statsd exporter has seen from the gateway.
type Metrics struct {
	Requests float64 `json:"requests"`
	P50MS    float64 `json:"p50Ms"`
	P99MS    float64 `json:"p99Ms"`
}

func (m Metrics) String() string {
	return fmt.Sprintf("%.0f requests seen by the statsd exporter, latency p50 %.1fms p99 %.1fms", m.Requests, m.P50MS, m.P99MS)
}

// ScrapeMetrics reads the exporter's Prometheus endpoint through a
// port-forward to its pod.
func (s *Session) ScrapeMetrics(ctx context.Context) (Metrics, error) {
	p := s.Profile
	pods, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + p.StatsdName()})
	if err != nil {
		return Metrics{}, err
	}
	pod := ""
	for _, x := range pods.Items {
		for _, c := range x.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && x.DeletionTimestamp == nil {
				pod = x.Name
			}
		}
	}
	if pod == "" {
		return Metrics{}, errors.New("no ready statsd exporter pod")
	}
	t, err := s.dialer(p.Namespace).Dial(ctx, pod)
	if err != nil {
		return Metrics{}, err
	}
	defer t.Close()
	stream, err := t.Open(gateway.MetricsPort)
	if err != nil {
		return Metrics{}, err
	}
	defer stream.Close()
	if _, err := io.WriteString(stream, "GET /metrics HTTP/1.0\r\nHost: statsd\r\n\r\n"); err != nil {
		return Metrics{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(stream), nil)
	if err != nil {
		return Metrics{}, fmt.Errorf("reading the exporter's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Metrics{}, err
	}
	return ParseMetrics(string(body)), nil
}

// ParseMetrics sums the gateway's request counter and takes the slowest
// series' quantiles from the exporter's text format (timers are in seconds).
func ParseMetrics(text string) Metrics {
	var m Metrics
	var p50s, p99s []float64
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
		switch name {
		case "requests", "requests_total":
			m.Requests += v
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
	return m
}
