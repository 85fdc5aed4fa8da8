package gateway

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/apimdev/apimdev/internal/config"
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
