// Package otlp sends the gateway's local metrics to an OpenTelemetry
// collector over OTLP/gRPC, the way the real gateway does with
// observability.opentelemetry.enabled and ...collector.uri: a request counter
// and a duration histogram in milliseconds, with the API, method and status.
//
// The real gateway exports every minute; the stand-in every Interval
// (STANDIN_OTLP_INTERVAL, default 10 s), so tests need not wait as long.
// Metrics are best effort: a request never waits for the collector.
package otlp

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
)

// Client records requests and exports them periodically.
type Client struct {
	provider *sdkmetric.MeterProvider
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

// New starts exporting to uri (http://host:4317: OTLP/gRPC without TLS, as
// a collector in the cluster listens) every interval. It does not dial yet:
// a collector that is not up is retried by the exporter.
func New(ctx context.Context, uri string, interval time.Duration, pod string) (*Client, error) {
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(uri), otlpmetricgrpc.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("observability.opentelemetry.collector.uri %q: %w", uri, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "apim-self-hosted-gateway-standin"), attribute.String("k8s.pod.name", pod))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))))
	m := mp.Meter("apimdev-standin-gateway")
	c := &Client{provider: mp}
	if c.requests, err = m.Int64Counter("requests", metric.WithDescription("requests the gateway served")); err != nil {
		return nil, err
	}
	if c.duration, err = m.Float64Histogram("durationInMs", metric.WithUnit("ms"), metric.WithDescription("request duration in the gateway"),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)); err != nil {
		return nil, err
	}
	return c, nil
}

// Observe records one request. It never blocks on the network.
func (c *Client) Observe(r statsd.Request) {
	attrs := metric.WithAttributes(attribute.String("apiName", r.API), attribute.String("method", r.Method),
		attribute.String("statusCode", strconv.Itoa(r.Status)))
	ctx := context.Background()
	c.requests.Add(ctx, 1, attrs)
	c.duration.Record(ctx, float64(r.Duration.Microseconds())/1000, attrs)
}

// Shutdown exports what is left and stops; bounded by ctx.
func (c *Client) Shutdown(ctx context.Context) error { return c.provider.Shutdown(ctx) }
