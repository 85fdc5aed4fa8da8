package gateway

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Ports of the OpenTelemetry Collector the prod profile runs with
// metrics: opentelemetry.
const (
	OTLPPort           = 4317 // OTLP/gRPC, where the gateway sends its metrics
	CollectorPromPort  = 8889 // the collector's Prometheus exporter
	collectorConfigDir = "/etc/otelcol-contrib"
)

// CollectorName names the collector's Deployment, Service and ConfigMap.
func (p Profile) CollectorName() string { return p.Gateway + "-otel" }

// MetricsSink is the Deployment that receives the gateway's local metrics,
// its image and the port of its Prometheus endpoint; "" when there is none.
func (p Profile) MetricsSink() (name, image string, promPort int) {
	switch {
	case p.CollectorImage != "":
		return p.CollectorName(), p.CollectorImage, CollectorPromPort
	case p.StatsdImage != "":
		return p.StatsdName(), p.StatsdImage, MetricsPort
	}
	return "", "", 0
}

// CollectorURI is observability.opentelemetry.collector.uri.
func (p Profile) CollectorURI() string {
	return fmt.Sprintf("http://%s:%d", p.CollectorName(), OTLPPort)
}

// collectorConfig is the collector's: OTLP/gRPC in, batched, out to a
// Prometheus endpoint that apimdev's status (and a Prometheus of yours)
// reads; the collector's own telemetry off.
func (p Profile) collectorConfig() string {
	return fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:%d
processors:
  batch: {}
exporters:
  prometheus:
    endpoint: 0.0.0.0:%d
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [prometheus]
`, OTLPPort, CollectorPromPort)
}

func (p Profile) collectorConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: p.sinkMeta(p.CollectorName()),
		Data:       map[string]string{"config.yaml": p.collectorConfig()},
	}
}

func (p Profile) collectorDeployment() *appsv1.Deployment {
	return p.sinkDeployment(p.CollectorName(), 10001, corev1.Container{
		Name:  "otel-collector",
		Image: p.CollectorImage,
		Args:  []string{"--config", collectorConfigDir + "/config.yaml"},
		Ports: []corev1.ContainerPort{
			{Name: "otlp-grpc", ContainerPort: OTLPPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: CollectorPromPort, Protocol: corev1.ProtocolTCP},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: collectorConfigDir, ReadOnly: true}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
	}, []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: p.CollectorName()}}}}})
}

func (p Profile) collectorService() *corev1.Service {
	return p.sinkService(p.CollectorName(), []corev1.ServicePort{
		{Name: "otlp-grpc", Port: OTLPPort, TargetPort: intstr.FromInt32(OTLPPort), Protocol: corev1.ProtocolTCP},
		{Name: "metrics", Port: CollectorPromPort, TargetPort: intstr.FromInt32(CollectorPromPort), Protocol: corev1.ProtocolTCP},
	})
}

// The metrics sink (the statsd exporter or the collector) is one pod of its
// own app: the same labels, pod hardening and readiness on its Prometheus
// endpoint, whichever it is.

func (p Profile) sinkLabels(name string) map[string]string {
	return map[string]string{"app": name, LabelManagedBy: ManagedBy, LabelProfile: p.Name}
}

func (p Profile) sinkMeta(name string) metav1.ObjectMeta {
	meta := p.meta(name)
	meta.Labels = p.sinkLabels(name)
	return meta
}

// sinkDeployment runs c alone, non-root as uid, read-only, ready when its
// "metrics" port serves /metrics.
func (p Profile) sinkDeployment(name string, uid int64, c corev1.Container, volumes []corev1.Volume) *appsv1.Deployment {
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/metrics", Port: intstr.FromString("metrics")}}, PeriodSeconds: 5}
	c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: p.sinkMeta(name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: p.sinkLabels(name)},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(uid)},
					Containers:                   []corev1.Container{c},
					Volumes:                      volumes,
				},
			},
		},
	}
}

func (p Profile) sinkService(name string, ports []corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.sinkMeta(name),
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
}
