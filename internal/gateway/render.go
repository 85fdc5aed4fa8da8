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

// FieldManager is the server-side apply field manager, named after the tool.
const FieldManager = "apimdev"

// Labels apimdev puts on everything it manages.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelProfile   = "apimdev.io/profile"
	ManagedBy      = "apimdev"
)

// Ports of the gateway container and of its Services, as the portal YAML has them.
const (
	ContainerHTTP  = 8080
	ContainerHTTPS = 8081
	ServiceHTTP    = 80
	ServiceHTTPS   = 443
	RateLimitPort  = 4290
	HeartbeatPort  = 4291
)

// Profile is everything that decides the gateway's objects. The dev profile is
// what the Azure portal generates; later profiles change fields, never names,
// so moving between profiles is an in-place upgrade.
type Profile struct {
	Name      string `json:"name,omitempty"` // "dev"
	Gateway   string `json:"gateway,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	Image     string `json:"image,omitempty"`
	ProbePath string `json:"probePath,omitempty"`
	Replicas  int32  `json:"replicas,omitempty"`

	// What the prod profile adds; zero values are the portal's dev profile.
	MaxSurge       intstr.IntOrString  `json:"maxSurge,omitempty"`
	MaxUnavailable intstr.IntOrString  `json:"maxUnavailable,omitempty"`
	Requests       corev1.ResourceList `json:"requests,omitempty"` // per pod; nil: none
	// MemoryLimit is the pods' memory limit ("" none): the production
	// request, never the one fitted to a laptop.
	MemoryLimit    string `json:"memoryLimit,omitempty"`
	PDB            bool   `json:"pdb,omitempty"`
	Spread         bool   `json:"spread,omitempty"`    // topology spread over hostname and zone
	AllProbes      bool   `json:"allProbes,omitempty"` // startup and liveness as well as readiness
	PreStopSeconds int64  `json:"preStopSeconds,omitempty"`
	// NodeLossSeconds is how long a pod stays bound to a node that stopped
	// answering before it is evicted and replaced elsewhere (Kubernetes'
	// default is 300 s); 0 keeps the default.
	NodeLossSeconds int64                `json:"nodeLossSeconds,omitempty"`
	DNSPolicy       corev1.DNSPolicy     `json:"dnsPolicy,omitempty"`
	DNSConfig       *corev1.PodDNSConfig `json:"dnsConfig,omitempty"`
	Backup          *BackupVolume        `json:"backup,omitempty"`
	LogFormat       string               `json:"logFormat,omitempty"`   // telemetry.logs.std
	LogLevel        string               `json:"logLevel,omitempty"`    // telemetry.logs.std.level
	StatsdImage     string               `json:"statsdImage,omitempty"` // "" = no statsd exporter
	// CollectorImage runs an OpenTelemetry Collector the gateway sends its
	// metrics to instead ("" = none).
	CollectorImage string       `json:"collectorImage,omitempty"`
	NonRoot        bool         `json:"nonRoot,omitempty"` // UID/GID 1001, fsGroup 1001, own ServiceAccount without token
	Proxy          config.Proxy `json:"proxy,omitempty"`
	// Auth is how the gateway authenticates to the configuration endpoint;
	// zero is the portal's token.
	Auth Auth `json:"auth,omitzero"`
	// CACerts are private CAs the pods trust besides the image's own (see
	// CADir); none is the portal's deployment.
	CACerts []config.CACert `json:"caCerts,omitempty"`
	// CloudMetrics is telemetry.metrics.cloud when set (the portal leaves
	// it to the gateway's default, on).
	CloudMetrics *bool       `json:"cloudMetrics,omitempty"`
	LocalLogs    config.Logs `json:"localLogs,omitzero"`
	// NetworkPolicy, when set, restricts the gateway's and the exporter's
	// traffic (see networkPolicies).
	NetworkPolicy *NetworkPolicy `json:"networkPolicy,omitempty"`
	// HighAvailability says the profile runs replicas spread with a
	// disruption budget (runtime.deployment.highAvailability.enabled).
	HighAvailability bool `json:"highAvailability,omitempty"`
}

// Where the pods find private CA certificates. The gateway (.NET 8 on
// Linux) and Go alike read the trusted roots from every directory of
// SSL_CERT_DIR, a colon-separated list (dotnet/runtime#92920, golang/go#35325):
// setting it to the images' own CA directories plus CADir adds the user's CAs
// to the well-known ones instead of replacing them. certificates.local.ca.enabled
// is the gateway's switch for local CA certificates; it needs the gateway to
// run as root (the portal's dev profile) or as UID 1001 (the prod profile).
const (
	CADir = "/etc/apimdev/ca-certificates"
	// SSLCertDirs is SSL_CERT_DIR with CADir: Debian's and Azure Linux's
	// (Mariner's) CA directories first, whichever the image has.
	SSLCertDirs = "/etc/ssl/certs:/etc/pki/tls/certs:" + CADir
)

// Auth is the non-secret part of Microsoft Entra ID authentication: the
// ids go into the ConfigMap (and, for workload identity, onto the
// ServiceAccount); the app's client secret only into the Secret.
type Auth struct {
	Type      string `json:"type,omitempty"` // "" (token), entraApp, workloadIdentity
	TenantID  string `json:"tenantId,omitempty"`
	ClientID  string `json:"clientId,omitempty"`
	Authority string `json:"authority,omitempty"`
}

// Keys and labels of Entra ID authentication, as the official chart names them.
const (
	// AppSecretKey is the Secret's key for the Entra app's client secret.
	AppSecretKey = "azure-ad-app-secret"
	// TokenKey is the Secret's key for the gateway token.
	TokenKey = "value"
	// WorkloadIdentityUse marks the ServiceAccount and pods for the Azure
	// workload identity webhook; WorkloadIdentityClientID names the identity.
	WorkloadIdentityUse      = "azure.workload.identity/use"
	WorkloadIdentityClientID = "azure.workload.identity/client-id"
)

// authOf is the profile's Auth from the configuration.
func authOf(c config.Config) Auth {
	a := c.Gateway.Auth
	switch a.Mode() {
	case config.AuthEntraApp:
		return Auth{Type: config.AuthEntraApp, TenantID: a.TenantID, ClientID: a.ClientID, Authority: a.Authority}
	case config.AuthWorkloadIdentity:
		return Auth{Type: config.AuthWorkloadIdentity, TenantID: a.TenantID, ClientID: a.ClientID}
	}
	return Auth{}
}

// Mode is the authentication mode, config.AuthToken when zero.
func (a Auth) Mode() string {
	if a.Type == "" {
		return config.AuthToken
	}
	return a.Type
}

// SecretKey is the Secret's key for the credential, "" when there is none
// (workload identity).
func (p Profile) SecretKey() string {
	switch p.Auth.Mode() {
	case config.AuthEntraApp:
		return AppSecretKey
	case config.AuthWorkloadIdentity:
		return ""
	}
	return TokenKey
}

// ownServiceAccount says the pods run as a ServiceAccount of the profile's own.
func (p Profile) ownServiceAccount() bool {
	return p.NonRoot || p.Auth.Mode() == config.AuthWorkloadIdentity
}

// BackupVolume is the configuration backup PVC mounted at /apim/config.
type BackupVolume struct {
	StorageClass string                            `json:"storageClass,omitempty"`
	AccessMode   corev1.PersistentVolumeAccessMode `json:"accessMode,omitempty"`
	Size         string                            `json:"size,omitempty"`
	// SharedPath, on a multi-node kind cluster apimdev made, is the
	// directory (under the shared mount every node has) that a volume of
	// the profile's own serves the claim from, ReadWriteMany: the pods share
	// one backup on whichever nodes they run, as on a file share.
	SharedPath string `json:"sharedPath,omitempty"`
}

// SharedStorageClass names the claim's class when apimdev serves it from
// the shared directory (no provisioner: the claim binds to its volume).
const SharedStorageClass = "apimdev-shared"

// Dev is the portal's deployment: one replica, no requests, the floating tag.
func Dev(c config.Config) Profile {
	return Profile{
		Name:      "dev",
		Gateway:   c.Gateway.Name,
		Namespace: c.Gateway.Namespace,
		Endpoint:  config.EndpointHost(c.Gateway.Endpoint),
		Image:     c.Gateway.Image,
		ProbePath: c.Gateway.ProbePath,
		Replicas:  1,
		Auth:      authOf(c),
		CACerts:   c.Gateway.CACerts,
		// The portal's rollout bounds.
		MaxSurge:       intstr.FromString("25%"),
		MaxUnavailable: intstr.FromInt32(0),
	}
}

// Names of the objects, derived from the gateway name as the portal does.
func (p Profile) SecretName() string       { return p.Gateway + "-token" }
func (p Profile) ConfigMapName() string    { return p.Gateway + "-env" }
func (p Profile) DeploymentName() string   { return p.Gateway }
func (p Profile) LiveService() string      { return p.Gateway + "-live-traffic" }
func (p Profile) DiscoveryService() string { return p.Gateway + "-instance-discovery" }
func (p Profile) CAConfigMapName() string  { return p.Gateway + "-ca-certificates" }

// Selector is the pod selector; it never changes between profiles because a
// Deployment's selector is immutable.
func (p Profile) Selector() map[string]string { return map[string]string{"app": p.Gateway} }

func (p Profile) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: p.Namespace,
		Labels:    map[string]string{"app": p.Gateway, LabelManagedBy: ManagedBy, LabelProfile: p.Name},
	}
}

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
