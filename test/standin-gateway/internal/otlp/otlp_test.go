package otlp

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
)

// collector is an OTLP/gRPC metrics receiver that keeps what it is sent.
type collector struct {
	collectorpb.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	reqs []*collectorpb.ExportMetricsServiceRequest
}

func (c *collector) Export(_ context.Context, r *collectorpb.ExportMetricsServiceRequest) (*collectorpb.ExportMetricsServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	return &collectorpb.ExportMetricsServiceResponse{}, nil
}

// The stand-in exports a request counter and a duration histogram with the
// API, method and status, over OTLP/gRPC, periodically and at shutdown.
func TestExportsRequestsAndDurations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &collector{}
	collectorpb.RegisterMetricsServiceServer(srv, col)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-done }()

	c, err := New(context.Background(), "http://"+ln.Addr().String(), time.Hour, "gw-pod-0")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c.Observe(statsd.Request{API: "echo", Method: "GET", Status: 200 + i%2*200, Duration: 3 * time.Millisecond})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil { // flushes once, although the interval is an hour
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	var count, hist uint64
	var pod string
	for _, r := range col.reqs {
		for _, rm := range r.ResourceMetrics {
			for _, a := range rm.Resource.Attributes {
				if a.Key == "k8s.pod.name" {
					pod = a.Value.GetStringValue()
				}
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					switch m.Name {
					case "requests":
						if !m.GetSum().IsMonotonic {
							t.Error("requests is not a monotonic sum")
						}
						for _, dp := range m.GetSum().DataPoints {
							count += uint64(dp.GetAsInt())
							if len(dp.Attributes) != 3 {
								t.Errorf("requests attributes %v", dp.Attributes)
							}
						}
					case "durationInMs":
						for _, dp := range m.GetHistogram().DataPoints {
							hist += dp.Count
						}
					}
				}
			}
		}
	}
	if count != 5 || hist != 5 || pod != "gw-pod-0" {
		t.Errorf("exported %d requests, %d durations, pod %q; want 5, 5, gw-pod-0 (%d export calls)", count, hist, pod, len(col.reqs))
	}
}
