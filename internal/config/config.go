package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIVersion and Kind identify an apimdev config file.
const (
	APIVersion = "apimdev.io/v1alpha1"
	Kind       = "Config"
)

// Defaults.
const (
	DefaultImage       = "mcr.microsoft.com/azure-api-management/gateway:v2"
	DefaultCluster     = "apimdev"
	DefaultNamespace   = "apim-gateway"
	DefaultHTTPPort    = 8080
	DefaultHTTPSPort   = 8443
	DefaultFile        = "apimdev.yaml"
	DefaultProbePath   = "/status-0123456789abcdef"
	DefaultGatewayName = "apimdev-gw"
)

// Config is the whole of what apimdev needs to know. Field names are the YAML
// keys; every setting can also be given by its APIMDEV_* variable and a flag
// (see Field: --set PATH=VALUE where no named flag exists).
type Config struct {
	APIVersion string  `yaml:"apiVersion" json:"apiVersion"`
	Kind       string  `yaml:"kind" json:"kind"`
	Gateway    Gateway `yaml:"gateway" json:"gateway"`
	Cluster    Cluster `yaml:"cluster" json:"cluster"`
	Forward    Forward `yaml:"forward" json:"forward"`
	Smoke      Smoke   `yaml:"smoke" json:"smoke"`
	Prod       Prod    `yaml:"prod" json:"prod"`
	Output     string  `yaml:"output,omitempty" json:"output,omitempty"`
}

// Prod is the production-like profile `apimdev promote` applies: every
// production recommendation for the self-hosted gateway, with its default.
type Prod struct {
	Replicas       int    `yaml:"replicas" json:"replicas"`             // 3; never fewer than 2
	MaxSurge       string `yaml:"maxSurge" json:"maxSurge"`             // "1"
	MaxUnavailable string `yaml:"maxUnavailable" json:"maxUnavailable"` // "0"
	CPU            string `yaml:"cpu" json:"cpu"`                       // request per pod, "2"
	Memory         string `yaml:"memory" json:"memory"`                 // request per pod, "2Gi"
	// MemoryLimit is the pods' memory limit: "" is the memory request as
	// configured (not as fitted to a laptop), "none" is no limit.
	MemoryLimit string `yaml:"memoryLimit,omitempty" json:"memoryLimit,omitempty"`
	// EphemeralStorage is the pods' ephemeral-storage request (logs, the
	// container's writable layer), so the scheduler and eviction count it.
	EphemeralStorage string `yaml:"ephemeralStorage" json:"ephemeralStorage"`
	// DNSPolicy is the pods' dnsPolicy; ClusterFirst (the portal's) resolves
	// cluster names and forwards the rest to the node's resolvers.
	DNSPolicy      string   `yaml:"dnsPolicy" json:"dnsPolicy"`
	DNSNameservers []string `yaml:"dnsNameservers,omitempty" json:"dnsNameservers,omitempty"`
	DNSSearches    []string `yaml:"dnsSearches,omitempty" json:"dnsSearches,omitempty"`
	// DNSNdots lowers the search-path fan-out for the configuration endpoint's
	// fully qualified name; "" leaves Kubernetes' default (5).
	DNSNdots string `yaml:"dnsNdots,omitempty" json:"dnsNdots,omitempty"`
	Backup   Backup `yaml:"backup" json:"backup"`
	LogLevel string `yaml:"logLevel" json:"logLevel"` // warn
	// Metrics is where the gateway's local metrics go: statsd (a statsd
	// exporter), opentelemetry (an OpenTelemetry Collector) or none.
	Metrics     MetricsMode `yaml:"metrics" json:"metrics"`
	StatsdImage string      `yaml:"statsdImage" json:"statsdImage"`
	// CollectorImage is the OpenTelemetry Collector's, with metrics: opentelemetry.
	CollectorImage string `yaml:"collectorImage" json:"collectorImage"`
	Proxy          Proxy  `yaml:"proxy,omitempty" json:"proxy,omitempty"`
	// CloudMetrics is telemetry.metrics.cloud: metrics to Azure Monitor.
	CloudMetrics bool `yaml:"cloudMetrics" json:"cloudMetrics"`
	// Logs are the gateway's local logs besides its standard output.
	Logs Logs `yaml:"logs,omitempty" json:"logs,omitzero"`
	// NetworkPolicy restricts the gateway's and the exporter's traffic to
	// what they need.
	NetworkPolicy NetworkPolicy `yaml:"networkPolicy" json:"networkPolicy"`
	// TrafficRate is the smoke traffic during a rollout, in requests/s.
	TrafficRate int `yaml:"trafficRate" json:"trafficRate"`
}

// Logs is telemetry.logs.local: none (default), auto, localsyslog, rfc5424,
// journal or json, with an endpoint and facility for the syslog forms.
type Logs struct {
	Local    string `yaml:"local,omitempty" json:"local,omitempty"`
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	Facility string `yaml:"facility,omitempty" json:"facility,omitempty"`
}

// LocalLogForms are telemetry.logs.local's values (Microsoft's settings reference).
var LocalLogForms = []string{"none", "auto", "localsyslog", "rfc5424", "journal", "json"}

// NetworkPolicy is the prod profile's NetworkPolicy: who may call the
// gateway, and where it may go besides DNS, HTTPS and its own pods.
type NetworkPolicy struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// From are the CIDRs allowed to call the gateway on 8080/8081; empty is
	// anyone (a gateway is an entry point).
	From []string `yaml:"from,omitempty" json:"from,omitempty"`
	// Backends are the API backends the gateway may reach besides port 443,
	// as CIDR or CIDR:port (e.g. 10.20.0.0/16:8080).
	Backends []string `yaml:"backends,omitempty" json:"backends,omitempty"`
}

// Backup is the configuration backup volume mounted at /apim/config.
type Backup struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// StorageClass "" means the cluster's default. AccessMode is ReadWriteOnce
	// on a single-node kind cluster; real clusters want ReadWriteMany so every
	// replica on every node shares one backup.
	StorageClass string `yaml:"storageClass,omitempty" json:"storageClass,omitempty"`
	AccessMode   string `yaml:"accessMode,omitempty" json:"accessMode,omitempty"`
	Size         string `yaml:"size" json:"size"`
}

// Proxy is the outbound proxy the gateway uses, if any.
type Proxy struct {
	HTTP    string `yaml:"http,omitempty" json:"http,omitempty"`
	HTTPS   string `yaml:"https,omitempty" json:"https,omitempty"`
	NoProxy string `yaml:"noProxy,omitempty" json:"noProxy,omitempty"`
}

// DefaultStatsdImage is the upstream statsd exporter, pinned.
const DefaultStatsdImage = "prom/statsd-exporter:v0.31.0"

// DefaultCollectorImage is the upstream OpenTelemetry Collector (contrib, for
// its Prometheus exporter), pinned.
const DefaultCollectorImage = "otel/opentelemetry-collector-contrib:0.165.0"

// Where local metrics go.
const (
	MetricsStatsd        = "statsd"
	MetricsOpenTelemetry = "opentelemetry"
	MetricsNone          = "none"
)

// MetricsMode is prod.metrics. Older files and records said true or false
// (a statsd exporter or none): those still read.
type MetricsMode string

func (m *MetricsMode) set(b bool) {
	*m = MetricsNone
	if b {
		*m = MetricsStatsd
	}
}

// UnmarshalYAML takes statsd, opentelemetry, none, or the older true/false.
func (m *MetricsMode) UnmarshalYAML(n *yaml.Node) error {
	var b bool
	if n.Tag == "!!bool" && n.Decode(&b) == nil {
		m.set(b)
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*m = MetricsMode(strings.TrimSpace(s))
	return nil
}

// UnmarshalJSON is UnmarshalYAML for records.
func (m *MetricsMode) UnmarshalJSON(data []byte) error {
	var b bool
	if json.Unmarshal(data, &b) == nil {
		m.set(b)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*m = MetricsMode(s)
	return nil
}

// DefaultProd is the production profile's defaults.
func DefaultProd() Prod {
	return Prod{Replicas: 3, MaxSurge: "1", MaxUnavailable: "0", CPU: "2", Memory: "2Gi", EphemeralStorage: "1Gi", DNSPolicy: "ClusterFirst",
		Backup: Backup{Enabled: true, Size: "50Mi"}, LogLevel: "warn", Metrics: MetricsStatsd, StatsdImage: DefaultStatsdImage, CollectorImage: DefaultCollectorImage, CloudMetrics: true,
		NetworkPolicy: NetworkPolicy{Enabled: true}, TrafficRate: 20}
}

// Gateway describes the self-hosted gateway, as the Azure portal names it.
type Gateway struct {
	// Name is the gateway resource's name; objects are named after it.
	Name string `yaml:"name" json:"name"`
	// Endpoint is config.service.endpoint: <apim>.configuration.azure-api.net.
	Endpoint  string `yaml:"endpoint" json:"endpoint"`
	Image     string `yaml:"image" json:"image"`
	Namespace string `yaml:"namespace" json:"namespace"`
	// TokenFile names where the token is read from ("-" is stdin). The token
	// itself never goes in this file.
	TokenFile string `yaml:"tokenFile,omitempty" json:"tokenFile,omitempty"`
	// ProbePath is the health path; older portal YAML used
	// /internal-status-0123456789abcdef.
	ProbePath string `yaml:"probePath,omitempty" json:"probePath,omitempty"`
	// Auth is how the gateway authenticates to its configuration endpoint:
	// the portal's token (the default), or Microsoft Entra ID.
	Auth Auth `yaml:"auth,omitempty" json:"auth,omitzero"`
	// CACertificates names PEM files of private CAs the gateway pods must
	// trust (a configuration endpoint on a custom domain signed by one);
	// ReadCACertificates turns them into CACerts and forgets the paths.
	CACertificates []string `yaml:"caCertificates,omitempty" json:"-"`
	// CACerts are the certificates themselves: what is deployed and recorded.
	CACerts []CACert `yaml:"-" json:"caCerts,omitempty"`
	// HelmValues names a values file of Microsoft's Helm chart whose
	// settings apimdev takes (see internal/helmvalues): below this file,
	// APIMDEV_* variables and flags, above the defaults. The file is read
	// where the settings are made; its name is not recorded.
	HelmValues string `yaml:"helmValues,omitempty" json:"-"`
}

// Authentication modes of the gateway (config.service.auth).
const (
	AuthToken            = "token"
	AuthEntraApp         = "entraApp"
	AuthWorkloadIdentity = "workloadIdentity"
	// DefaultAuthority is Microsoft Entra ID's public-cloud authority.
	DefaultAuthority = "https://login.microsoftonline.com"
)

// Auth is the gateway's authentication to the configuration endpoint. The
// Entra app's client secret is never here: it is read from ClientSecretFile
// or APIMDEV_CLIENT_SECRET and goes only into the Kubernetes Secret.
type Auth struct {
	// Type is token (default), entraApp or workloadIdentity.
	Type     string `yaml:"type,omitempty" json:"type,omitempty"`
	TenantID string `yaml:"tenantId,omitempty" json:"tenantId,omitempty"`
	ClientID string `yaml:"clientId,omitempty" json:"clientId,omitempty"`
	// ClientSecretFile names the file holding the app's client secret ("-"
	// is stdin).
	ClientSecretFile string `yaml:"clientSecretFile,omitempty" json:"clientSecretFile,omitempty"`
	// Authority is Entra ID's login endpoint; "" is DefaultAuthority (set
	// another for a sovereign cloud).
	Authority string `yaml:"authority,omitempty" json:"authority,omitempty"`
}

// Mode is the authentication mode, token when unset.
func (a Auth) Mode() string {
	if a.Type == "" {
		return AuthToken
	}
	if m, ok := AuthModes[a.Type]; ok {
		return m
	}
	return a.Type
}

// AuthorityOr is the Entra ID authority a setting names, DefaultAuthority
// when it names none.
func AuthorityOr(authority string) string {
	if authority == "" {
		return DefaultAuthority
	}
	return authority
}

// AuthModes maps the flag spellings to the modes.
var AuthModes = map[string]string{
	"token": AuthToken, "entra-app": AuthEntraApp, "entraApp": AuthEntraApp,
	"workload-identity": AuthWorkloadIdentity, "workloadIdentity": AuthWorkloadIdentity,
}

// Cluster describes the local kind cluster.
type Cluster struct {
	Name      string `yaml:"name" json:"name"`
	NodeImage string `yaml:"nodeImage,omitempty" json:"nodeImage,omitempty"`
	// Kubeconfig is apimdev's own kubeconfig file for this cluster: empty
	// means a file under apimdev's state directory. apimdev writes it only
	// when it is its own (absent, or holding nothing but this cluster's
	// entries); a user's file it merges into, only with MergeKubeconfig.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
	// MergeKubeconfig adds this cluster's context to a user's kubeconfig:
	// Kubeconfig when it names one, else the one kubectl uses ($KUBECONFIG,
	// ~/.kube/config). apimdev keeps its own file in its state directory.
	// It is this machine's choice: never part of what the cluster records.
	MergeKubeconfig bool `yaml:"mergeKubeconfig,omitempty" json:"-"`
	// Workers is how many worker nodes a new cluster gets beside its control
	// plane; 0 (the default) is one node that runs everything. kind cannot
	// add nodes to a running cluster: another count means a new cluster.
	Workers int `yaml:"workers,omitempty" json:"workers,omitempty"`
	// Zones are the topology.kubernetes.io/zone values the workers get,
	// round-robin, in Region; empty means DefaultZones.
	Zones  []string `yaml:"zones,omitempty" json:"zones,omitempty"`
	Region string   `yaml:"region,omitempty" json:"region,omitempty"`
	// Runtime is the container runtime the nodes run on: auto (or empty),
	// docker or podman. It is this machine's, not the gateway's: it is
	// never part of what the cluster records.
	Runtime string `yaml:"runtime,omitempty" json:"-"`
	// AutoPause is how long the background forward goes without a
	// connection through it before it pauses the cluster's nodes (a Go
	// duration: 15m); the next connection resumes them. Empty or 0 is off.
	// It is this machine's choice: never part of what the cluster records.
	AutoPause string `yaml:"autoPause,omitempty" json:"-"`
}

// AutoPauseAfter is cluster.autoPause as a duration (0: off; an unreadable
// value is 0 here and refused by Validate).
func (c Cluster) AutoPauseAfter() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(c.AutoPause))
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// DefaultRegion and DefaultZones label a multi-node cluster's nodes as a
// cloud's are (topology.kubernetes.io/region and /zone), so the prod
// profile's zone spread has zones to spread over.
const DefaultRegion = "local"

// DefaultZones are three zones of DefaultRegion, named as AKS names them.
func DefaultZones() []string { return []string{"local-1", "local-2", "local-3"} }

// ZoneList is the zones the workers are spread over.
func (c Cluster) ZoneList() []string {
	if len(c.Zones) == 0 {
		return DefaultZones()
	}
	return c.Zones
}

// RegionName is the region the nodes are labelled with.
func (c Cluster) RegionName() string {
	if c.Region == "" {
		return DefaultRegion
	}
	return c.Region
}

// MaxWorkers bounds cluster.workers: each is a privileged container running
// a kubelet and containerd, a few hundred MB each.
const MaxWorkers = 9

// Forward is the local side of the port-forward.
type Forward struct {
	HTTPPort  int `yaml:"httpPort" json:"httpPort"`
	HTTPSPort int `yaml:"httpsPort" json:"httpsPort"`
}

// Smoke points at the smoke-call spec.
type Smoke struct {
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// Default returns a Config with every default filled in.
func Default() Config {
	return Config{
		APIVersion: APIVersion,
		Kind:       Kind,
		Gateway:    Gateway{Name: DefaultGatewayName, Image: DefaultImage, Namespace: DefaultNamespace, ProbePath: DefaultProbePath},
		Cluster:    Cluster{Name: DefaultCluster},
		Forward:    Forward{HTTPPort: DefaultHTTPPort, HTTPSPort: DefaultHTTPSPort},
		Prod:       DefaultProd(),
		Output:     "text",
	}
}

// DecodeError is a problem in the config file, with the line it is on.
type DecodeError struct {
	File    string
	Line    int
	Problem string
}

func (e *DecodeError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Problem)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Problem)
}

var unknownFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)
var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

// Decode reads a config file strictly onto base: an unknown field is an error
// naming the field, its line and the closest known field; apiVersion and kind
// must match. All decode errors are returned together.
func Decode(name string, r io.Reader, base Config) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return base, fmt.Errorf("reading %s: %w", name, err)
	}
	utf16 := bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe})
	if !utf16 && strings.Contains(string(data), "\t") {
		// yaml reports tabs cryptically; say it plainly. (A UTF-16 file,
		// which yaml reads by its byte-order mark, is left to yaml: its
		// bytes are not its lines.)
		for i, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, " "), "\t") {
				return base, &DecodeError{File: name, Line: i + 1, Problem: "indentation uses a tab; YAML needs spaces"}
			}
		}
	}
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return base, decodeErrors(name, err)
	}
	var errs []error
	if head.APIVersion != APIVersion {
		errs = append(errs, &DecodeError{File: name, Problem: fmt.Sprintf("apiVersion is %q, expected %q", head.APIVersion, APIVersion)})
	}
	if head.Kind != Kind {
		errs = append(errs, &DecodeError{File: name, Problem: fmt.Sprintf("kind is %q, expected %q", head.Kind, Kind)})
	}
	cfg := base
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		errs = append(errs, decodeErrors(name, err))
	}
	return cfg, errors.Join(errs...)
}

func decodeErrors(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			return &DecodeError{File: name, Line: n, Problem: m[2]}
		}
		return &DecodeError{File: name, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out []error
	for _, msg := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			sec := sections[m[3]]
			p := fmt.Sprintf("unknown field %q in %s", m[2], sec.path)
			if s := closest(m[2], sec.keys); s != "" {
				p += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				p += fmt.Sprintf(" (known fields: %s)", strings.Join(sec.keys, ", "))
			}
			out = append(out, &DecodeError{File: name, Line: n, Problem: p})
			continue
		}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, &DecodeError{File: name, Line: n, Problem: strings.ReplaceAll(m[2], "!!", "")})
			continue
		}
		out = append(out, &DecodeError{File: name, Problem: msg})
	}
	return errors.Join(out...)
}

// closest returns the known key nearest to k, if it is near enough to be a typo.
func closest(k string, keys []string) string {
	best, bestD := "", 3
	for _, c := range keys {
		if d := Distance(strings.ToLower(k), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the edit distance between two keys (insertions, deletions,
// substitutions): how "did you mean" finds a typo's key.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// LoadFile decodes path onto the defaults. A missing file is not an error when
// optional is true (the default ./apimdev.yaml need not exist).
func LoadFile(path string, optional bool) (Config, bool, error) {
	return LoadFileOnto(path, optional, Default())
}

// LoadFileOnto is LoadFile with another base than the defaults.
func LoadFileOnto(path string, optional bool, base Config) (Config, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return base, false, nil
		}
		return base, false, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	cfg, err := Decode(path, f, base)
	return cfg, true, err
}

// SecretVars are the variables that carry secrets rather than settings: the
// gateway token, the Entra app's client secret, and the password of a kit
// signing key. apimdev reads them once and takes them out of its own
// environment, so no program it starts inherits them, and never expands
// them into anything it sends (smoke calls, rollout traffic).
var SecretVars = []string{"APIMDEV_TOKEN", "APIMDEV_CLIENT_SECRET", "APIMDEV_KIT_PASSWORD"}

// Line is the line of a config file's text on which field (a dotted YAML
// path, e.g. gateway.tokenFile) is set; 0 when it is not there.
func Line(data []byte, field string) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	n := doc.Content[0]
	for _, key := range strings.Split(field, ".") {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				if next.Kind != yaml.MappingNode {
					return n.Content[i].Line
				}
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}
