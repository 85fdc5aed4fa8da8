package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
)

// Environment names. The gateway's own settings are dotted, as the real
// container reads them from its ConfigMap and Secret; the STANDIN_ ones exist
// only here, for tests and the e2e rig.
const (
	envEndpoint       = "config.service.endpoint"
	envAuth           = "config.service.auth"
	envAuthKey        = "config.service.auth.key"
	envGatewayName    = "gateway.name"
	envLogFormat      = "telemetry.logs.std"
	envLogLevel       = "telemetry.logs.std.level"
	envLogColor       = "telemetry.logs.std.color"
	envMetrics        = "telemetry.metrics.local"
	envStatsd         = "telemetry.metrics.local.statsd.endpoint"
	envGatewayKey     = "STANDIN_GATEWAY_KEY"
	envSubKeys        = "STANDIN_SUBSCRIPTION_KEYS"
	envAPIs           = "STANDIN_APIS"
	envBackendTimeout = "STANDIN_BACKEND_TIMEOUT"
	envBackupDir      = "STANDIN_BACKUP_DIR"
	envPollInterval   = "STANDIN_POLL_INTERVAL"
	envFetchTimeout   = "STANDIN_FETCH_TIMEOUT"
	envDrainDelay     = "STANDIN_DRAIN_DELAY"
	envShutdown       = "STANDIN_SHUTDOWN_TIMEOUT"
	envHTTPAddr       = "STANDIN_HTTP_ADDR"
	envHTTPSAddr      = "STANDIN_HTTPS_ADDR"
	envRateLimitAddr  = "STANDIN_RATE_LIMIT_ADDR"
	envHeartbeatAddr  = "STANDIN_HEARTBEAT_ADDR"
	envConfigHTTPS    = "STANDIN_CONFIG_HTTPS_ADDR"
	envConfigHTTP     = "STANDIN_CONFIG_HTTP_ADDR"
	// Microsoft Entra app authentication (config.service.auth=azureAdApp).
	envTenantID     = "config.service.auth.azureAd.tenantId"
	envClientID     = "config.service.auth.azureAd.clientId"
	envClientSecret = "config.service.auth.azureAd.clientSecret"
	envAuthority    = "config.service.auth.azureAd.authority"
	envAudience     = "config.service.auth.tokenAudience"
	// The stand-in token endpoint's one app (config-service mode).
	envEntraTenant  = "STANDIN_ENTRA_TENANT_ID"
	envEntraClient  = "STANDIN_ENTRA_CLIENT_ID"
	envEntraSecrets = "STANDIN_ENTRA_CLIENT_SECRETS"
	// The CA that signs the config service's certificate (PEM contents);
	// unset, the stand-in's well-known CA every stand-in gateway trusts.
	envVersion = "STANDIN_VERSION"
	// OpenTelemetry metrics (the real gateway's names), and how often the
	// stand-in exports them (the real gateway: every minute).
	envOTelEnabled  = "observability.opentelemetry.enabled"
	envOTelURI      = "observability.opentelemetry.collector.uri"
	envOTLPInterval = "STANDIN_OTLP_INTERVAL"
	envTLSCACert    = "STANDIN_TLS_CA_CERT"
	envTLSCAKey     = "STANDIN_TLS_CA_KEY"
)

// settings reads the environment and collects problems to log once a logger exists.
type settings struct {
	lookup lookupEnv
}

func (s settings) get(name string) string {
	v, _ := s.lookup(name)
	return strings.TrimSpace(v)
}

// getOr returns def only when name is unset, so "" can switch a thing off.
func (s settings) getOr(name, def string) string {
	if v, ok := s.lookup(name); ok {
		return strings.TrimSpace(v)
	}
	return def
}

// duration reads a Go duration, falling back to def (and saying so) when bad.
func (s settings) duration(name string, def time.Duration, problems *[]string) time.Duration {
	v := s.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		*problems = append(*problems, name+"="+v+" is not a non-negative Go duration; using "+def.String())
		return def
	}
	return d
}

func (s settings) logger(w io.Writer, mode string) (*slog.Logger, []string) {
	return standinlog.New(w, standinlog.Settings{Format: s.get(envLogFormat), Level: s.get(envLogLevel), Color: s.get(envLogColor), Mode: mode})
}

// auth is config.service.auth, or, in the newer form where that setting is the
// word "key", the token in config.service.auth.key.
func (s settings) auth() string {
	v, _ := s.lookup(envAuth)
	if strings.EqualFold(strings.TrimSpace(v), "key") || strings.TrimSpace(v) == "" {
		if k, ok := s.lookup(envAuthKey); ok {
			return k
		}
	}
	return v
}

func (s settings) gatewayOptions(log *slog.Logger, problems *[]string) gateway.Options {
	var udp []string
	for _, a := range []string{s.getOr(envRateLimitAddr, ":4290"), s.getOr(envHeartbeatAddr, ":4291")} {
		if a != "" {
			udp = append(udp, a)
		}
	}
	var entra *gateway.EntraApp
	if strings.EqualFold(strings.TrimSpace(s.auth()), "azureAdApp") {
		entra = &gateway.EntraApp{TenantID: s.get(envTenantID), ClientID: s.get(envClientID), ClientSecret: s.get(envClientSecret),
			Authority: s.get(envAuthority), Audience: s.get(envAudience)}
	}
	return gateway.Options{
		Endpoint:        s.get(envEndpoint),
		Auth:            s.auth(),
		Entra:           entra,
		GatewayName:     s.get(envGatewayName),
		Version:         s.get(envVersion),
		HTTPAddr:        s.getOr(envHTTPAddr, ":8080"),
		HTTPSAddr:       s.getOr(envHTTPSAddr, ":8081"),
		UDPAddrs:        udp,
		BackupDir:       s.getOr(envBackupDir, "/apim/config"),
		PodName:         podName(s),
		PollInterval:    s.duration(envPollInterval, 10*time.Second, problems),
		FetchTimeout:    s.duration(envFetchTimeout, 5*time.Second, problems),
		DrainDelay:      s.duration(envDrainDelay, 5*time.Second, problems),
		ShutdownTimeout: s.duration(envShutdown, 30*time.Second, problems),
		BackendTimeout:  s.duration(envBackendTimeout, gateway.DefaultBackendTimeout, problems),
		Logger:          log,
	}
}

func (s settings) configServiceOptions(log *slog.Logger, problems *[]string) configservice.Options {
	var keys []string
	for k := range strings.SplitSeq(s.get(envSubKeys), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	var entra *configservice.EntraApp
	if id := s.get(envEntraClient); id != "" {
		entra = &configservice.EntraApp{TenantID: s.get(envEntraTenant), ClientID: id}
		for sec := range strings.SplitSeq(s.get(envEntraSecrets), ",") {
			if sec = strings.TrimSpace(sec); sec != "" {
				entra.Secrets = append(entra.Secrets, sec)
			}
		}
	}
	return configservice.Options{
		Entra:            entra,
		Key:              []byte(s.get(envGatewayKey)),
		SubscriptionKeys: keys,
		HTTPSAddr:        s.getOr(envConfigHTTPS, ":8443"),
		HTTPAddr:         s.getOr(envConfigHTTP, ":8080"),
		Hostnames:        []string{podName(s)},
		ShutdownTimeout:  s.duration(envShutdown, 5*time.Second, problems),
		Logger:           log,
	}
}

// otelCollector is the collector's URI when OpenTelemetry metrics are on, "".
func (s settings) otelCollector(problems *[]string) string {
	if !strings.EqualFold(s.get(envOTelEnabled), "true") {
		return ""
	}
	uri := s.get(envOTelURI)
	if uri == "" {
		*problems = append(*problems, envOTelEnabled+"=true but "+envOTelURI+" is not set; no OpenTelemetry metrics")
	}
	return uri
}

// statsdEndpoint is where to send metrics, or "" when local metrics are off.
func (s settings) statsdEndpoint(problems *[]string) string {
	switch m := strings.ToLower(s.get(envMetrics)); m {
	case "", "none", "false", "off":
		return ""
	case "statsd":
		ep := s.get(envStatsd)
		switch {
		case ep == "":
			*problems = append(*problems, envMetrics+"=statsd but "+envStatsd+" is not set; no metrics")
		case strings.Contains(ep, "://"):
			*problems = append(*problems, envStatsd+" must be host[:port], not a URL; no metrics")
			return ""
		}
		return ep
	default:
		*problems = append(*problems, envMetrics+"="+m+" is not supported by the stand-in (only statsd); no metrics")
		return ""
	}
}

// podName is the pod's name as Kubernetes sets HOSTNAME, else the kernel's.
func podName(s settings) string {
	if h := s.get("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}
