package gateway

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

// Objects renders the profile. With a zero token (render), the Secret holds a
// readable placeholder in stringData; otherwise data.value is the real
// "GatewayKey <token>", and that Secret is the only place it ever goes.
func (p Profile) Objects(tok token.Token, redact bool) []runtime.Object {
	objs := []runtime.Object{p.namespace()}
	if p.ownServiceAccount() {
		objs = append(objs, p.serviceAccount())
	}
	if p.SecretKey() != "" {
		objs = append(objs, p.secret(tok, redact))
	}
	objs = append(objs, p.configMap())
	if len(p.CACerts) > 0 {
		objs = append(objs, p.caConfigMap())
	}
	if p.Backup != nil {
		if p.Backup.SharedPath != "" {
			objs = append(objs, p.sharedVolume())
		}
		objs = append(objs, p.backupClaim())
	}
	objs = append(objs, p.deployment(), p.liveService(), p.discoveryService())
	if p.PDB {
		objs = append(objs, p.disruptionBudget())
	}
	if p.StatsdImage != "" {
		objs = append(objs, p.statsdDeployment(), p.statsdService())
	}
	if p.CollectorImage != "" {
		objs = append(objs, p.collectorConfigMap(), p.collectorDeployment(), p.collectorService())
	}
	if p.NetworkPolicy != nil {
		for _, np := range p.networkPolicies() {
			objs = append(objs, np)
		}
	}
	return objs
}

func (p Profile) namespace() *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Namespace, Labels: map[string]string{LabelManagedBy: ManagedBy}},
	}
}

// secret holds the credential under SecretKey: the real value, or, redacted,
// the token's redacted form (a placeholder for a zero token) in stringData.
func (p Profile) secret(tok token.Token, redact bool) *corev1.Secret {
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: p.meta(p.SecretName()),
		Type:       corev1.SecretTypeOpaque,
	}
	key := p.SecretKey()
	if redact {
		v := tok.Redacted()
		if tok.IsZero() {
			v = token.Prefix + "<your token, from --token-file or APIMDEV_TOKEN>"
			if key == AppSecretKey {
				v = "<your Entra app's client secret, from --client-secret-file or APIMDEV_CLIENT_SECRET>"
			}
		}
		secret.StringData = map[string]string{key: v}
	} else {
		secret.Data = map[string][]byte{key: []byte(tok.SecretValue())}
	}
	return secret
}

// configMap holds the gateway's settings, which its container reads as
// environment variables.
func (p Profile) configMap() *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: p.meta(p.ConfigMapName()),
		Data: map[string]string{
			"config.service.endpoint": p.Endpoint,
			"neighborhood.host":       p.DiscoveryService(),
			// The portal writes "Azure Portal" here; this deployment was made by
			// apimdev, and the setting is only telemetry, so say so truthfully.
			"runtime.deployment.artifact.source":   "apimdev",
			"runtime.deployment.mechanism":         "YAML",
			"runtime.deployment.orchestrator.type": "Kubernetes",
		},
	}
	p.authSettings(cm.Data)
	p.telemetrySettings(cm.Data)
	if p.HighAvailability {
		cm.Data["runtime.deployment.highAvailability.enabled"] = "true"
	}
	if len(p.CACerts) > 0 {
		cm.Data["certificates.local.ca.enabled"] = "true"
	}
	return cm
}

// authSettings adds the settings of Entra ID authentication (none for the
// portal's token).
func (p Profile) authSettings(data map[string]string) {
	switch a := p.Auth; a.Mode() {
	case config.AuthEntraApp:
		data["config.service.auth"] = "azureAdApp"
		data["config.service.auth.azureAd.tenantId"] = a.TenantID
		data["config.service.auth.azureAd.clientId"] = a.ClientID
		if a.Authority != "" {
			data["config.service.auth.azureAd.authority"] = a.Authority
		}
		data["gateway.name"] = p.Gateway
	case config.AuthWorkloadIdentity:
		data["config.service.auth"] = "workloadIdentity"
		if a.TenantID != "" {
			data["config.service.auth.azureAd.tenantId"] = a.TenantID
		}
		data["gateway.name"] = p.Gateway
	}
}

// telemetrySettings adds the settings of the logs and the metrics.
func (p Profile) telemetrySettings(data map[string]string) {
	if p.LogFormat != "" {
		data["telemetry.logs.std"] = p.LogFormat
		data["telemetry.logs.std.level"] = p.LogLevel
		if p.LogFormat == "json" {
			// Colour codes would end up inside the JSON a log pipeline parses.
			data["telemetry.logs.std.color"] = "false"
		}
	}
	if l := p.LocalLogs; l.Local != "" {
		data["telemetry.logs.local"] = l.Local
		if l.Endpoint != "" {
			data["telemetry.logs.local."+l.Local+".endpoint"] = l.Endpoint
		}
		if l.Facility != "" {
			data["telemetry.logs.local."+l.Local+".facility"] = l.Facility
		}
	}
	if p.CollectorImage != "" {
		data["observability.opentelemetry.enabled"] = "true"
		data["observability.opentelemetry.collector.uri"] = p.CollectorURI()
	}
	if p.CloudMetrics != nil {
		data["telemetry.metrics.cloud"] = fmt.Sprint(*p.CloudMetrics)
	}
	if p.StatsdImage != "" {
		data["telemetry.metrics.local"] = "statsd"
		data["telemetry.metrics.local.statsd.endpoint"] = fmt.Sprintf("%s:%d", p.StatsdName(), StatsdPort)
	}
}

func (p Profile) deployment() *appsv1.Deployment {
	podLabels := p.Selector()
	podLabels[LabelManagedBy] = ManagedBy
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: p.meta(p.DeploymentName()),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(p.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: p.Selector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(p.MaxUnavailable),
					MaxSurge:       ptr.To(p.MaxSurge),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](60),
					Containers: []corev1.Container{{
						Name:  p.Gateway,
						Image: p.Image,
						// A floating tag such as v2 would otherwise be pulled on every
						// start; IfNotPresent lets a node use the image apimdev loaded.
						ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: ContainerHTTP, Protocol: corev1.ProtocolTCP},
							{Name: "https", ContainerPort: ContainerHTTPS, Protocol: corev1.ProtocolTCP},
							{Name: "rate-limit-dc", ContainerPort: RateLimitPort, Protocol: corev1.ProtocolUDP},
							{Name: "dc-heartbeat", ContainerPort: HeartbeatPort, Protocol: corev1.ProtocolUDP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
								Path: p.ProbePath, Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP,
							}},
							InitialDelaySeconds: 0, TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3,
						},
						Env: p.credentialEnv(),
						EnvFrom: []corev1.EnvFromSource{{
							ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: p.ConfigMapName()}},
						}},
					}},
				},
			},
		},
	}
	if p.Auth.Mode() == config.AuthWorkloadIdentity {
		podLabels[WorkloadIdentityUse] = "true"
	}
	if len(p.CACerts) > 0 {
		spec := &d.Spec.Template.Spec
		c := &spec.Containers[0]
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "ca-certificates", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: p.CAConfigMapName()}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "ca-certificates", MountPath: CADir, ReadOnly: true})
		c.Env = append(c.Env, corev1.EnvVar{Name: "SSL_CERT_DIR", Value: SSLCertDirs})
	}
	p.harden(d)
	return d
}

// caConfigMap holds the private CA certificates the pods trust (public
// material: a ConfigMap, not a Secret), one key per file the user gave.
func (p Profile) caConfigMap() *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: p.meta(p.CAConfigMapName()),
		Data:       map[string]string{},
	}
	for _, c := range p.CACerts {
		cm.Data[c.Name] = c.PEM
	}
	return cm
}

// credentialEnv is the container's setting that reads the credential from the
// Secret: the token as config.service.auth, or the Entra app's client secret.
func (p Profile) credentialEnv() []corev1.EnvVar {
	name := "config.service.auth"
	switch p.Auth.Mode() {
	case config.AuthEntraApp:
		name = "config.service.auth.azureAd.clientSecret"
	case config.AuthWorkloadIdentity:
		return nil
	}
	return []corev1.EnvVar{{
		Name: name,
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.SecretName()}, Key: p.SecretKey(),
		}},
	}}
}

func (p Profile) liveService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.meta(p.LiveService()),
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Selector:              p.Selector(),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: ServiceHTTP, TargetPort: intstr.FromInt32(ContainerHTTP), Protocol: corev1.ProtocolTCP},
				{Name: "https", Port: ServiceHTTPS, TargetPort: intstr.FromInt32(ContainerHTTPS), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func (p Profile) discoveryService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.meta(p.DiscoveryService()),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  p.Selector(),
			Ports: []corev1.ServicePort{
				{Name: "rate-limit-discovery", Port: RateLimitPort, TargetPort: intstr.FromInt32(RateLimitPort), Protocol: corev1.ProtocolUDP},
				{Name: "discovery-heartbeat", Port: HeartbeatPort, TargetPort: intstr.FromInt32(HeartbeatPort), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

// YAML renders objects as one multi-document YAML stream, without the
// server-owned fields (status, creationTimestamp) that would only confuse.
func YAML(objs []runtime.Object) ([]byte, error) {
	var b strings.Builder
	for i, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("rendering object %d: %w", i, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(cleanYAML(string(y)))
	}
	return []byte(b.String()), nil
}

func cleanYAML(s string) string {
	var out []string
	skip := false
	for _, l := range strings.Split(s, "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case trim == "creationTimestamp: null":
			continue
		case strings.HasPrefix(l, "status:"):
			skip = true
			continue
		case skip && (strings.HasPrefix(l, " ") || trim == "{}"):
			continue
		case trim == "spec: {}" || trim == "resources: {}":
			continue
		}
		skip = false
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// DirectServiceName is the Service of the forward's direct path.
func (p Profile) DirectServiceName() string { return p.Gateway + "-direct" }

// DirectService is the NodePort Service behind the forward's direct path on
// a cluster apimdev made: the node ports its control-plane node publishes
// on 127.0.0.1, to the gateway's pods. It is local plumbing of the forward,
// like the forward itself: not part of the profile, never exported, and its
// app label keeps it out of the profile's pruning (the namespace goes with
// `down`). Unlike the live-traffic Service, external traffic is not kept
// on the node: the control-plane node of a multi-node cluster runs no
// gateway pod.
func (p Profile) DirectService(httpNodePort, httpsNodePort int) *corev1.Service {
	m := p.meta(p.DirectServiceName())
	m.Labels = map[string]string{"app": p.DirectServiceName(), LabelManagedBy: ManagedBy, "apimdev.io/part": "forward"}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m,
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeNodePort,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Selector:              p.Selector(),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: ServiceHTTP, TargetPort: intstr.FromInt32(ContainerHTTP), NodePort: int32(httpNodePort), Protocol: corev1.ProtocolTCP},
				{Name: "https", Port: ServiceHTTPS, TargetPort: intstr.FromInt32(ContainerHTTPS), NodePort: int32(httpsNodePort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}
