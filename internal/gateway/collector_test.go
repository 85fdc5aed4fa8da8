package gateway

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

// prod.metrics: opentelemetry runs a collector instead of the statsd
// exporter, tells the gateway where it is, and lets only the gateway in.
func TestOpenTelemetryProfile(t *testing.T) {
	cfg := authConfig(config.AuthToken)
	cfg.Prod.Metrics = config.MetricsOpenTelemetry
	p, err := Prod(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs := p.Objects(token.Token{}, true)
	out, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/prod-otel.golden.yaml"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(golden); err != nil || string(want) != string(out) {
		t.Errorf("differs from %s (run go test -update):\n%s", golden, out)
	}
	if p.StatsdImage != "" || p.CollectorImage != config.DefaultCollectorImage {
		t.Fatalf("statsd %q, collector %q", p.StatsdImage, p.CollectorImage)
	}
	var deployments, policies []string
	var settings *corev1.ConfigMap
	for _, o := range objs {
		switch x := o.(type) {
		case *appsv1.Deployment:
			deployments = append(deployments, x.Name)
		case *networkingv1.NetworkPolicy:
			policies = append(policies, x.Name)
		case *corev1.ConfigMap:
			if x.Name == p.ConfigMapName() {
				settings = x
			}
		}
	}
	if strings.Join(deployments, " ") != "contoso-gw contoso-gw-otel" || strings.Join(policies, " ") != "contoso-gw contoso-gw-otel" {
		t.Errorf("deployments %v, policies %v", deployments, policies)
	}
	if settings.Data["observability.opentelemetry.enabled"] != "true" || settings.Data["observability.opentelemetry.collector.uri"] != "http://contoso-gw-otel:4317" {
		t.Errorf("settings %v", settings.Data)
	}
	if _, ok := settings.Data["telemetry.metrics.local"]; ok {
		t.Error("statsd settings with OpenTelemetry")
	}
	if name, _, port := p.MetricsSink(); name != "contoso-gw-otel" || port != CollectorPromPort {
		t.Errorf("sink %s:%d", name, port)
	}
	cfg.Prod.Metrics = config.MetricsNone
	none, _ := Prod(cfg)
	if name, _, _ := none.MetricsSink(); name != "" || none.SinkPolicyName() != "" {
		t.Errorf("metrics none has a sink %q", name)
	}
}
