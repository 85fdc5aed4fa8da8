package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/metrics"
)

// Metrics is what the gateway's metrics sink has seen (see package metrics).
type Metrics = metrics.Metrics

// metricsProfile is the profile that says where the metrics are: the one
// the cluster records, else the session's with the default exporter.
func (s *Session) metricsProfile() gateway.Profile {
	if r := s.Recorded; r != nil && r.Spec.Gateway != "" {
		return r.Spec
	}
	p := s.Names
	p.StatsdImage = s.Config.Prod.StatsdImage
	return p
}

// ScrapeMetrics reads the metrics of the gateway the cluster records.
func (s *Session) ScrapeMetrics(ctx context.Context) (Metrics, error) {
	return s.scrapeFrom(ctx, s.metricsProfile())
}

// scrapeFrom reads p's metrics sink's Prometheus endpoint through a
// port-forward to its pod.
func (s *Session) scrapeFrom(ctx context.Context, p gateway.Profile) (Metrics, error) {
	sink, _, port := p.MetricsSink()
	if sink == "" {
		return Metrics{}, errors.New("the gateway sends no local metrics (prod.metrics: none)")
	}
	source := "the statsd exporter"
	if p.CollectorImage != "" {
		source = "the OpenTelemetry Collector"
	}
	pod, err := gateway.ReadyPod(ctx, s.Client, p.Namespace, sink)
	if err != nil {
		return Metrics{}, err
	}
	if pod == "" {
		return Metrics{}, fmt.Errorf("no ready %s pod", source[len("the "):])
	}
	t, err := s.dialer(p.Namespace).Dial(ctx, pod)
	if err != nil {
		return Metrics{}, err
	}
	defer t.Close()
	stream, err := t.Open(port)
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
	m := metrics.Parse(string(body))
	m.Source = source
	return m, nil
}
