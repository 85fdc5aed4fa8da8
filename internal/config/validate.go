package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/apimdev/apimdev/internal/token"
)

// Problem is one thing wrong with the configuration, and how to fix it.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (p Problem) Error() string { return p.Field + ": " + p.Message }

// Hint is the fix.
func (p Problem) Hint() string { return p.Fix }

// Problems is every validation failure found, in field order.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, 0, len(ps)+1)
	lines = append(lines, fmt.Sprintf("the configuration has %d problem(s):", len(ps)))
	for _, p := range ps {
		l := "  - " + p.Error()
		if p.Fix != "" {
			l += "\n    fix: " + p.Fix
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

var (
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	kindName   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	labelValue = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	hostLabel  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)
	imageRef   = regexp.MustCompile(`^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*(@sha256:[a-f0-9]{64})?$`)
	longSuffix = "-instance-discovery"
	guid       = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)
)

// Validate checks everything that can be checked without touching the
// machine, and returns all problems at once (nil when there are none).
func (c Config) Validate() error { return c.validate(true) }

// ValidateExisting is Validate for commands that work on what `up` already
// deployed (status, smoke, down): they need no endpoint.
func (c Config) ValidateExisting() error { return c.validate(false) }

func (c Config) validate(needEndpoint bool) error {
	var ps Problems
	add := func(field, msg, fix string) { ps = append(ps, Problem{field, msg, fix}) }

	g := c.Gateway
	switch {
	case g.Name == "":
		add("gateway.name", "is empty", "set --name (or gateway.name) to the gateway's name in the Azure portal, e.g. --name contoso-gw")
	case !dnsLabel.MatchString(g.Name) || len(g.Name)+len(longSuffix) > 63:
		add("gateway.name", fmt.Sprintf("%q is not usable as a Kubernetes name (lower-case letters, digits and '-', at most %d characters)", g.Name, 63-len(longSuffix)),
			"use the gateway's name in lower case, e.g. --name "+suggestName(g.Name))
	}
	if msg, fix := EndpointProblem(g.Endpoint); msg != "" && (needEndpoint || g.Endpoint != "") {
		add("gateway.endpoint", msg, fix)
	}
	if g.Image == "" || !imageRef.MatchString(g.Image) {
		add("gateway.image", fmt.Sprintf("%q is not an image reference", g.Image), "use e.g. --image "+DefaultImage)
	}
	switch {
	case !dnsLabel.MatchString(g.Namespace):
		add("gateway.namespace", fmt.Sprintf("%q is not a valid namespace name", g.Namespace), "use e.g. --namespace "+DefaultNamespace)
	case g.Namespace == "kube-system" || g.Namespace == "kube-public" || g.Namespace == "kube-node-lease":
		add("gateway.namespace", fmt.Sprintf("%q belongs to Kubernetes itself", g.Namespace), "give the gateway a dedicated namespace, e.g. --namespace "+DefaultNamespace)
	}
	if !strings.HasPrefix(g.ProbePath, "/") {
		add("gateway.probePath", fmt.Sprintf("%q must start with '/'", g.ProbePath), "use "+DefaultProbePath)
	}
	ps = append(ps, g.Auth.problems()...)
	switch strings.ToLower(c.Cluster.Runtime) {
	case "", "auto", "docker", "podman":
	default:
		add("cluster.runtime", fmt.Sprintf("%q is not a container runtime apimdev drives", c.Cluster.Runtime), "use auto (the default: what answers), docker or podman, e.g. --runtime podman")
	}
	if c.Cluster.Name == "" || !kindName.MatchString(c.Cluster.Name) || len(c.Cluster.Name) > 50 {
		add("cluster.name", fmt.Sprintf("%q is not a valid kind cluster name (lower-case letters, digits, '-' and '.')", c.Cluster.Name), "use e.g. --cluster-name "+DefaultCluster)
	}
	if w := c.Cluster.Workers; w < 0 || w > MaxWorkers {
		add("cluster.workers", fmt.Sprintf("%d is not a number of worker nodes apimdev makes (0 to %d)", w, MaxWorkers), "use --workers 3 for three zones, or 0 for one node")
	}
	if ap := strings.TrimSpace(c.Cluster.AutoPause); ap != "" {
		if d, err := time.ParseDuration(ap); err != nil || d < 0 || d > 0 && d < 10*time.Second {
			add("cluster.autoPause", fmt.Sprintf("%q is not an idle time apimdev pauses after (a duration of 10s or more, or 0 for never)", ap), "use --auto-pause 15m, or leave it out")
		}
	}
	seen := map[string]bool{}
	for _, z := range c.Cluster.Zones {
		if !labelValue.MatchString(z) || seen[z] {
			add("cluster.zones", fmt.Sprintf("%q is not a zone name (a label value: letters, digits, '-', '_', '.'; each once)", z), "use e.g. zones: [local-1, local-2, local-3]")
		}
		seen[z] = true
	}
	if c.Cluster.Region != "" && !labelValue.MatchString(c.Cluster.Region) {
		add("cluster.region", fmt.Sprintf("%q is not a region name (a label value)", c.Cluster.Region), "use e.g. region: "+DefaultRegion)
	}
	for _, p := range []struct {
		field, flag string
		n, example  int
	}{{"forward.httpPort", "--http-port", c.Forward.HTTPPort, DefaultHTTPPort}, {"forward.httpsPort", "--https-port", c.Forward.HTTPSPort, DefaultHTTPSPort}} {
		if p.n < 1 || p.n > 65535 {
			add(p.field, fmt.Sprintf("%d is not a TCP port", p.n), fmt.Sprintf("use a port from 1024 to 65535, e.g. %s %d", p.flag, p.example))
		}
	}
	if c.Forward.HTTPPort == c.Forward.HTTPSPort {
		add("forward.httpsPort", fmt.Sprintf("is the same as forward.httpPort (%d)", c.Forward.HTTPPort), "give HTTP and HTTPS different local ports, e.g. --http-port 8080 --https-port 8443")
	}
	ps = append(ps, c.Prod.problems()...)
	switch c.Output {
	case "text", "json", "yaml":
	default:
		add("output", fmt.Sprintf("%q is not an output format", c.Output), "use -o text or -o json")
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// problems checks the authentication mode's inputs, all at once. The client
// secret is checked where it is read (LoadToken), never here.
func (a Auth) problems() []Problem {
	var ps []Problem
	add := func(field, msg, fix string) { ps = append(ps, Problem{field, msg, fix}) }
	const portal = " (Microsoft Entra admin center > App registrations > your app > Overview)"
	id := func(field, flag, v, what string, required bool) {
		switch {
		case v == "" && required:
			add(field, "is empty: "+what+" is needed", "set "+flag+" to "+what+portal)
		case v != "" && !guid.MatchString(v):
			add(field, fmt.Sprintf("%q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", v), "set "+flag+" to "+what+portal)
		}
	}
	switch a.Mode() {
	case AuthToken:
		for _, f := range []struct{ field, v string }{{"gateway.auth.tenantId", a.TenantID}, {"gateway.auth.clientId", a.ClientID},
			{"gateway.auth.clientSecretFile", a.ClientSecretFile}, {"gateway.auth.authority", a.Authority}} {
			if f.v != "" {
				add(f.field, "is set, but the gateway authenticates with its token", "set --auth entra-app (or gateway.auth.type: entraApp) to use Microsoft Entra ID, or remove it")
			}
		}
	case AuthEntraApp:
		id("gateway.auth.tenantId", "--tenant-id", a.TenantID, "the directory (tenant) ID", true)
		id("gateway.auth.clientId", "--client-id", a.ClientID, "the application (client) ID", true)
		if a.Authority != "" {
			if u, err := url.Parse(a.Authority); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
				add("gateway.auth.authority", fmt.Sprintf("%q is not an https:// URL", a.Authority), "leave it unset for "+DefaultAuthority+", or give a sovereign cloud's, e.g. --authority https://login.microsoftonline.us")
			}
		}
	case AuthWorkloadIdentity:
		id("gateway.auth.clientId", "--client-id", a.ClientID, "the application (client) ID of the app or managed identity with the federated credential", true)
		id("gateway.auth.tenantId", "--tenant-id", a.TenantID, "the directory (tenant) ID", false)
		if a.ClientSecretFile != "" {
			add("gateway.auth.clientSecretFile", "is set, but workload identity uses no secret", "remove it, or use --auth entra-app")
		}
	default:
		add("gateway.auth.type", fmt.Sprintf("%q is not an authentication mode", a.Type), "use token (the portal's token, the default), entraApp or workloadIdentity")
	}
	return ps
}

// ParseBackend reads a backend destination, CIDR or CIDR:port (port 0 is every port).
func ParseBackend(s string) (string, int, error) {
	cidr, port := s, 0
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[i:], "/") && strings.Contains(s[:i], "/") {
		n, err := strconv.Atoi(s[i+1:])
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%q has an invalid port", s)
		}
		cidr, port = s[:i], n
	}
	if _, _, err := net.ParseCIDR(cidr); err != nil {
		return "", 0, fmt.Errorf("%q is not CIDR or CIDR:port", s)
	}
	return cidr, port, nil
}

func quantities(a, b string) (resource.Quantity, resource.Quantity, error) {
	x, err := resource.ParseQuantity(a)
	if err != nil {
		return x, x, err
	}
	y, err := resource.ParseQuantity(b)
	return x, y, err
}

func suggestName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return DefaultGatewayName
	}
	if len(out) > 63-len(longSuffix) {
		out = strings.Trim(out[:63-len(longSuffix)], "-")
	}
	return out
}

// EndpointHost strips an optional https:// scheme and a trailing slash.
func EndpointHost(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "https://")
	return strings.TrimSuffix(e, "/")
}

// EndpointProblem is what is wrong with a configuration endpoint, and the
// fix; "" when nothing is.
func EndpointProblem(e string) (problem, fix string) {
	msg := endpointProblem(e)
	if msg == "" {
		return "", ""
	}
	fix = "set --endpoint to the config.service.endpoint value from the portal's Deployment tab, e.g. --endpoint contoso.configuration.azure-api.net"
	if e == "" {
		fix += "; no Azure gateway yet? try `apimdev up --demo` (no Azure, no token)"
	}
	return msg, fix
}

func endpointProblem(e string) string {
	if strings.TrimSpace(e) == "" {
		return "is empty"
	}
	if strings.HasPrefix(e, "http://") {
		return "uses http://; the gateway reaches its configuration endpoint over HTTPS only"
	}
	h := EndpointHost(e)
	if strings.ContainsAny(h, " /?#@&") {
		return fmt.Sprintf("%q does not look like a host name (it contains a path, query or spaces)", e)
	}
	host, port := h, ""
	if hh, p, err := net.SplitHostPort(h); err == nil {
		host, port = hh, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q has an invalid port", e)
		}
	}
	if !strings.Contains(host, ".") {
		return fmt.Sprintf("%q does not look like a host name (no domain)", e)
	}
	for _, l := range strings.Split(host, ".") {
		if !hostLabel.MatchString(l) || len(l) > 63 {
			return fmt.Sprintf("%q does not look like a host name", e)
		}
	}
	return ""
}

// TokenSource says where LoadToken found the token, for messages.
type TokenSource string

// LoadToken reads the token from the configured file ("-" is stdin) or from
// APIMDEV_TOKEN. It never takes a token from a flag value. Quotes, white space
// and the GatewayKey prefix are cleaned off.
//
// With Entra ID app authentication the credential is the app's client
// secret instead, from gateway.auth.clientSecretFile or APIMDEV_CLIENT_SECRET;
// workload identity needs none (a zero Token, no error).
func LoadToken(c Config, getenv func(string) string, stdin io.Reader) (token.Token, TokenSource, error) {
	switch c.Gateway.Auth.Mode() {
	case AuthEntraApp:
		return readCredential(credentialSource{what: "client secret", file: c.Gateway.Auth.ClientSecretFile, fileField: "gateway.auth.clientSecretFile",
			env: "APIMDEV_CLIENT_SECRET", noneField: "gateway.auth.clientSecret", none: noSecret, parse: token.AppSecret,
			fileFix: "save the app's client secret (its Value) to that file, or pass --client-secret-file with the right path",
			noneFix: "pass --client-secret-file FILE (or - for stdin) or set APIMDEV_CLIENT_SECRET; a secret is never accepted as a flag value, so it stays out of your shell history and the process list"},
			getenv, stdin)
	case AuthWorkloadIdentity:
		return token.Token{}, "", nil
	}
	return readCredential(credentialSource{what: "token", file: c.Gateway.TokenFile, fileField: "gateway.tokenFile",
		env: "APIMDEV_TOKEN", noneField: "token", none: "no gateway token given", parse: token.Parse,
		fileFix: "save the token from the portal's Deployment tab to that file, or pass --token-file with the right path",
		noneFix: "pass --token-file FILE (or --token-file - to read stdin) or set APIMDEV_TOKEN; tokens are never accepted as a flag value so they stay out of your shell history and the process list"},
		getenv, stdin)
}

// credentialSource is where one kind of credential is read from, and what
// to say when it cannot be.
type credentialSource struct {
	what                 string
	file, fileField, env string
	noneField, none      string
	fileFix, noneFix     string
	parse                func(string) (token.Token, error)
}

// readCredential reads a credential from its file ("-" is stdin), else its
// environment variable, never a flag value, and parses it; errors name the
// source and never quote it.
func readCredential(cs credentialSource, getenv func(string) string, stdin io.Reader) (token.Token, TokenSource, error) {
	var raw string
	var src TokenSource
	switch {
	case cs.file == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return token.Token{}, "", fmt.Errorf("reading the %s from stdin: %w", cs.what, err)
		}
		raw, src = string(b), "stdin"
	case cs.file != "":
		b, err := os.ReadFile(expandHome(cs.file))
		if err != nil {
			return token.Token{}, "", &Problem{Field: cs.fileField, Message: fmt.Sprintf("cannot read %s: %v", cs.file, unwrapPath(err)), Fix: cs.fileFix}
		}
		raw, src = string(b), TokenSource("file "+cs.file)
	case getenv(cs.env) != "":
		raw, src = getenv(cs.env), TokenSource(cs.env)
	default:
		return token.Token{}, "", &Problem{Field: cs.noneField, Message: cs.none, Fix: cs.noneFix}
	}
	t, err := cs.parse(raw)
	if err != nil {
		var pe *token.ParseError
		if errors.As(err, &pe) {
			return token.Token{}, src, &Problem{Field: cs.what + " (from " + string(src) + ")", Message: pe.Problem, Fix: pe.Fix}
		}
		return token.Token{}, src, err
	}
	return t, src, nil
}

// IsNoToken says err is LoadToken's "no gateway token given": none was
// given at all, which up on an existing gateway takes as "keep the one in
// the cluster".
func IsNoToken(err error) bool {
	var p *Problem
	return errors.As(err, &p) && (p.Field == "token" && p.Message == "no gateway token given" ||
		p.Field == "gateway.auth.clientSecret" && p.Message == noSecret)
}

const noSecret = "no client secret given"

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return h + p[1:]
		}
	}
	return p
}

var quantityRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G)?$`)
var boundRE = regexp.MustCompile(`^[0-9]+%?$`)

func (p Prod) problems() []Problem {
	var ps []Problem
	add := func(field, msg, fix string) { ps = append(ps, Problem{"prod." + field, msg, fix}) }
	if p.Replicas < 2 {
		add("replicas", fmt.Sprintf("%d is fewer than 2: one replica cannot be updated or disrupted without downtime", p.Replicas), "use --replicas 3 (the chart's default) or at least 2")
	}
	for _, b := range []struct{ f, v string }{{"maxSurge", p.MaxSurge}, {"maxUnavailable", p.MaxUnavailable}} {
		if !boundRE.MatchString(b.v) {
			add(b.f, fmt.Sprintf("%q is not a count or a percentage", b.v), "use e.g. 1 or 25%")
		}
	}
	if (p.MaxSurge == "0" || p.MaxSurge == "0%") && (p.MaxUnavailable == "0" || p.MaxUnavailable == "0%") {
		add("maxSurge", "maxSurge and maxUnavailable are both 0: a rollout could never make progress", "keep maxUnavailable 0 and set maxSurge 1")
	}
	limit := p.MemoryLimit
	if limit == "" || limit == "none" {
		limit = p.Memory
	}
	for _, q := range []struct{ f, v string }{{"cpu", p.CPU}, {"memory", p.Memory}, {"memoryLimit", limit}, {"ephemeralStorage", p.EphemeralStorage}, {"backup.size", p.Backup.Size}} {
		if !quantityRE.MatchString(q.v) {
			add(q.f, fmt.Sprintf("%q is not a Kubernetes quantity", q.v), "use e.g. 2, 500m, 2Gi or 50Mi")
		}
	}
	switch p.DNSPolicy {
	case "ClusterFirst", "Default", "None", "ClusterFirstWithHostNet":
	default:
		add("dnsPolicy", fmt.Sprintf("%q is not a dnsPolicy", p.DNSPolicy), "use ClusterFirst (default), Default, or None with dnsNameservers")
	}
	if p.DNSPolicy == "None" && len(p.DNSNameservers) == 0 {
		add("dnsNameservers", "dnsPolicy None needs at least one nameserver", "list them in prod.dnsNameservers")
	}
	switch p.Backup.AccessMode {
	case "", "ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod":
	default:
		add("backup.accessMode", fmt.Sprintf("%q is not an access mode", p.Backup.AccessMode), "use ReadWriteMany on a real cluster, ReadWriteOnce on kind")
	}
	switch p.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("logLevel", fmt.Sprintf("%q is not a log level", p.LogLevel), "use warn (recommended for performance), info, error or debug")
	}
	if lim, req, err := quantities(limit, p.Memory); err == nil && lim.Cmp(req) < 0 {
		add("memoryLimit", fmt.Sprintf("%s is below the memory request %s: the pod could never use what it asks for", p.MemoryLimit, p.Memory), "leave it unset (the limit is then the request), or raise it")
	}
	switch p.Metrics {
	case MetricsStatsd, MetricsOpenTelemetry, MetricsNone:
	default:
		add("metrics", fmt.Sprintf("%q is not where metrics can go", p.Metrics), "use statsd (a statsd exporter, the default), opentelemetry (an OpenTelemetry Collector) or none")
	}
	if l := p.Logs.Local; l != "" && !slices.Contains(LocalLogForms, l) {
		add("logs.local", fmt.Sprintf("%q is not a local log form", l), "use one of "+strings.Join(LocalLogForms, ", "))
	}
	if p.Logs.Endpoint != "" && !slices.Contains([]string{"localsyslog", "rfc5424", "json"}, p.Logs.Local) {
		add("logs.endpoint", "is set, but only localsyslog, rfc5424 and json send to an endpoint", "set prod.logs.local to one of them, or remove it")
	}
	if p.Logs.Facility != "" && !slices.Contains([]string{"localsyslog", "rfc5424"}, p.Logs.Local) {
		add("logs.facility", "is set, but only the syslog forms (localsyslog, rfc5424) have a facility", "set prod.logs.local: rfc5424, or remove it")
	}
	for _, c := range p.NetworkPolicy.From {
		if _, _, err := net.ParseCIDR(c); err != nil {
			add("networkPolicy.from", fmt.Sprintf("%q is not a CIDR", c), "use e.g. 10.0.0.0/8")
		}
	}
	for _, b := range p.NetworkPolicy.Backends {
		if _, _, err := ParseBackend(b); err != nil {
			add("networkPolicy.backends", err.Error(), "use CIDR or CIDR:port, e.g. 10.20.0.0/16:8080")
		}
	}
	if p.TrafficRate < 1 || p.TrafficRate > 500 {
		add("trafficRate", fmt.Sprintf("%d requests/s is out of range", p.TrafficRate), "use 1 to 500 (default 20)")
	}
	return ps
}
