package helmvalues

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/apimdev/apimdev/internal/config"
)

// mapper builds a Mapping, one row per value set in the file.
type mapper struct {
	Mapping
	values     map[string]*yaml.Node
	appVersion string
}

// get is the file's value at path as text, "" when unset.
func (m *mapper) get(path string) string {
	if n, ok := m.values[path]; ok && set(n) {
		return text(n)
	}
	return ""
}

func (m *mapper) add(key string, n *yaml.Node, status, how, setting, value string) {
	m.Rows = append(m.Rows, Row{Key: key, Value: text(n), Status: status, How: how, Setting: setting})
	if setting != "" {
		m.Sets = append(m.Sets, Set{Path: setting, Value: value})
	}
}

// settingOf maps a gateway setting's name (the chart's ConfigMap keys, and
// gateway.configuration.additional's) onto the apimdev setting that renders
// it in the prod profile.
var settingOf = map[string]string{
	"telemetry.logs.std.level":                  "prod.logLevel",
	"telemetry.metrics.cloud":                   "prod.cloudMetrics",
	"telemetry.logs.local":                      "prod.logs.local",
	"telemetry.logs.local.localsyslog.endpoint": "prod.logs.endpoint",
	"telemetry.logs.local.rfc5424.endpoint":     "prod.logs.endpoint",
	"telemetry.logs.local.json.endpoint":        "prod.logs.endpoint",
}

// row is one value's row, and the settings it gives.
func (m *mapper) row(key string, n *yaml.Node) {
	v := text(n)
	na := func(why string) { m.add(key, n, NotApplicable, why, "", "") }
	used := func(how, setting string) { m.add(key, n, Used, how, setting, v) }
	adapted := func(how, setting, value string) { m.add(key, n, Adapted, how, setting, value) }
	switch key {
	case "replicaCount":
		adapted(fmt.Sprintf("the dev profile runs 1 replica on the laptop; %s is kept for promote (prod.replicas)", v), "prod.replicas", v)
	case "image.repository", "image.tag":
		// image() makes one row of both.
	case "image.pullPolicy":
		na("apimdev loads the image into the kind nodes itself (from Docker or a kit): no pull policy of the chart's applies")
	case "imagePullSecrets":
		na("no registry credentials on a laptop: the image is loaded into the nodes from the local Docker or a kit")
	case "nameOverride", "fullnameOverride":
		na("apimdev names the objects after gateway.name, as the Azure portal's YAML does")
	case "gateway.name":
		used("the gateway's name (objects are named after it; Entra ID sends it as gateway.name)", "gateway.name")
	case "gateway.deployment.terminationGracePeriodSeconds":
		if v == "60" {
			used("the same 60 s grace period as apimdev's profiles", "")
		} else {
			na("apimdev's profiles keep the portal's 60 s grace period (prod adds a 10 s preStop inside it)")
		}
	case "gateway.deployment.strategy":
		m.strategy(key, n)
	case "gateway.deployment.network.proxy.http":
		used("the gateway's HTTP_PROXY in the prod profile (promote)", "prod.proxy.http")
	case "gateway.deployment.network.proxy.https":
		used("the gateway's HTTPS_PROXY in the prod profile (promote)", "prod.proxy.https")
	case "gateway.deployment.network.proxy.bypass":
		used("the gateway's NO_PROXY in the prod profile (promote)", "prod.proxy.noProxy")
	case "gateway.deployment.dns.hostAliases":
		na("apimdev renders no hostAliases: on a laptop the names resolve through the node's DNS (the host's resolver)")
	case "gateway.deployment.annotations":
		na("pod annotations are for the production cluster's tooling; apimdev adds none")
	case "gateway.configuration.uri":
		used("the configuration endpoint (config.service.endpoint)", "gateway.endpoint")
	case "gateway.configuration.backup.enabled":
		adapted("the dev profile keeps no backup; promote mounts the backup volume at /apim/config", "prod.backup.enabled", v)
	case "gateway.configuration.backup.persistentVolumeClaim.create":
		if v == "true" {
			used("apimdev creates the backup claim itself", "")
		} else {
			na("apimdev always creates its own backup claim; an existing one is the production cluster's")
		}
	case "gateway.configuration.backup.persistentVolumeClaim.existingName":
		na("a claim of the production cluster: apimdev creates its own")
	case "gateway.configuration.backup.persistentVolumeClaim.storageClassName":
		na("a class of the production cluster: kind has only its own (standard), so the claim uses it (or a shared hostPath volume with workers); set prod.backup.storageClass for export")
	case "gateway.configuration.backup.persistentVolumeClaim.accessMode":
		how := "the backup claim's access mode"
		if v == "ReadWriteMany" {
			how = "kind has no ReadWriteMany class: one node uses its local volume (one pod writes at a time), several nodes a shared hostPath volume; kept for export"
		}
		adapted(how, "prod.backup.accessMode", v)
	case "gateway.configuration.backup.persistentVolumeClaim.size":
		used("the backup claim's size", "prod.backup.size")
	case "gateway.configuration.additional":
		m.additional(n)
	case "gateway.auth.type":
		mode, ok := map[string]string{"gatewaytoken": config.AuthToken, "azureadapp": config.AuthEntraApp, "workloadidentity": config.AuthWorkloadIdentity}[strings.ToLower(v)]
		if !ok {
			na(fmt.Sprintf("%s is not one of the chart's auth types (GatewayToken, AzureAdApp, WorkloadIdentity)", quote(v)))
			return
		}
		how := map[string]string{
			config.AuthToken:            "the gateway token; its value comes from --token-file or APIMDEV_TOKEN, never from the values file",
			config.AuthEntraApp:         "Microsoft Entra app; the client secret comes from --client-secret-file or APIMDEV_CLIENT_SECRET",
			config.AuthWorkloadIdentity: "workload identity; a kind cluster has no OIDC issuer Entra ID trusts, so it runs only where the webhook and federation exist",
		}[mode]
		status := Used
		if mode == config.AuthWorkloadIdentity {
			status = Adapted
		}
		m.add(key, n, status, how, "gateway.auth.type", mode)
	case "gateway.auth.azureAd.tenant.id":
		used("the Entra tenant id", "gateway.auth.tenantId")
	case "gateway.auth.azureAd.app.id":
		used("the Entra application (client) id", "gateway.auth.clientId")
	case "gateway.auth.azureAd.authority":
		used("the Entra authority", "gateway.auth.authority")
	case "secret.createSecret":
		if v == "true" {
			used("apimdev makes the credential's Secret itself, from a file or variable", "")
		} else {
			na("apimdev always makes the credential's Secret itself, from --token-file / APIMDEV_TOKEN (or the client secret's)")
		}
	case "secret.existingSecretName":
		na("a Secret of the production cluster: apimdev makes its own from --token-file / APIMDEV_TOKEN")
	case "observability.logs.std.format":
		if v == "json" {
			used("the prod profile logs JSON", "")
		} else {
			adapted(fmt.Sprintf("the dev profile keeps the portal's default; the prod profile logs json (apimdev reads the pods' logs), not %s", v), "", "")
		}
	case "observability.logs.std.level":
		used("the prod profile's log level (telemetry.logs.std.level)", "prod.logLevel")
	case "observability.logs.std.useColor":
		na("apimdev reads the gateway's logs itself and strips colour; the setting is left to the gateway")
	case "observability.logs.local.type":
		lt := strings.ToLower(v)
		if lt == "localsyslog" {
			na("localsyslog needs the node's /dev/log socket: a kind node has no syslog daemon")
			return
		}
		if lt == "none" {
			lt = "" // apimdev's way of saying none: the gateway's default
		}
		m.add(key, n, Used, "the prod profile's local logs (telemetry.logs.local)", "prod.logs.local", lt)
	case "observability.logs.local.localsyslog.endpoint", "observability.logs.local.rfc5424.endpoint",
		"observability.logs.local.journal.endpoint", "observability.logs.local.json.endpoint":
		form := strings.Split(key, ".")[3]
		if strings.ToLower(m.get("observability.logs.local.type")) != strings.ToLower(form) || form == "localsyslog" || form == "journal" {
			na(fmt.Sprintf("not used: observability.logs.local.type is %s, not %s (apimdev keeps one local log endpoint)", orNone(m.get("observability.logs.local.type")), form))
			return
		}
		used("the local logs' endpoint (prod profile)", "prod.logs.endpoint")
	case "observability.logs.local.localsyslog.facility", "observability.logs.local.rfc5424.facility":
		form := strings.Split(key, ".")[3]
		if strings.ToLower(m.get("observability.logs.local.type")) != strings.ToLower(form) || form == "localsyslog" {
			na(fmt.Sprintf("not used: observability.logs.local.type is %s, not %s", orNone(m.get("observability.logs.local.type")), form))
			return
		}
		used("the local logs' facility (prod profile)", "prod.logs.facility")
	case "observability.azureMonitor.metrics.enabled":
		used("telemetry.metrics.cloud in the prod profile", "prod.cloudMetrics")
	case "observability.opentelemetry.enabled":
		if v == "true" {
			adapted("the prod profile sends metrics to an OpenTelemetry Collector apimdev runs in the cluster", "prod.metrics", config.MetricsOpenTelemetry)
		} else if m.get("observability.statsD.enabled") != "true" {
			adapted("neither OpenTelemetry nor StatsD: the prod profile runs no metrics exporter", "prod.metrics", config.MetricsNone)
		} else {
			used("OpenTelemetry off (StatsD is on)", "")
		}
	case "observability.opentelemetry.collector.uri":
		m.otherCollector(key, n, "observability.opentelemetry.enabled", "apimdev runs its own Collector in the cluster and points the gateway at it; the production collector is not reachable from a laptop")
	case "observability.opentelemetry.histogram.buckets", "observability.opentelemetry.systemMetrics.enabled":
		if v == "false" {
			used("off, as in apimdev's profiles", "")
			return
		}
		na("apimdev's Collector setup keeps the gateway's default buckets and no system metrics")
	case "observability.statsD.enabled":
		if v == "true" {
			adapted("the prod profile sends StatsD metrics to a statsd exporter apimdev runs in the cluster", "prod.metrics", config.MetricsStatsd)
		} else if m.get("observability.opentelemetry.enabled") == "true" {
			used("StatsD off (OpenTelemetry is on)", "")
		} else {
			adapted("neither StatsD nor OpenTelemetry: the prod profile runs no metrics exporter", "prod.metrics", config.MetricsNone)
		}
	case "observability.statsD.endpoint":
		m.otherCollector(key, n, "observability.statsD.enabled", "apimdev runs its own statsd exporter in the cluster and points the gateway at it; the production endpoint is not reachable from a laptop")
	case "observability.statsD.sampling", "observability.statsD.tagFormat":
		if m.get("observability.statsD.enabled") != "true" {
			na("not used: StatsD is off")
			return
		}
		na("apimdev's statsd exporter reads the gateway's defaults (all samples, its default tag format)")
	case "security.tls.server.ciphers.allowedSuites", "security.tls.client.ciphers.allowedSuites":
		na("apimdev sets no cipher suites: the gateway's defaults apply on the laptop")
	case "dapr.enabled":
		if v == "false" {
			used("no Dapr, as in apimdev's profiles", "")
		} else {
			na("a kind cluster has no Dapr control plane; apimdev runs no Dapr sidecar")
		}
	case "dapr.app.id", "dapr.config", "dapr.logging.useJsonOutput", "dapr.logging.level":
		na("Dapr is not run locally")
	case "service.type", "service.loadBalancer.allocateNodePorts", "service.loadBalancer.ip", "service.annotations":
		na("apimdev reaches the gateway through its own Services and the forward on 127.0.0.1 (forward.httpPort, forward.httpsPort)")
	case "service.ports.http", "service.ports.https":
		if (key == "service.ports.http" && v == "80") || (key == "service.ports.https" && v == "443") {
			used("the same port as apimdev's Service (the portal's 80/443)", "")
			return
		}
		na("in-cluster ports of the production Service; apimdev's Service keeps the portal's 80/443 and its forward listens on forward.httpPort/httpsPort")
	case "service.ports.instance.synchronization", "service.ports.instance.heartbeat":
		if v == "4290" || v == "4291" {
			used("the same discovery ports as apimdev's profiles", "")
		} else {
			na("apimdev's profiles keep the gateway's discovery ports 4290/4291")
		}
	case "ingress.controller.enabled":
		if v == "false" {
			used("no ingress controller, as in apimdev's profiles", "")
		} else {
			na("the chart's ingress controller mode is experimental; apimdev does not run it")
		}
	case "ingress.controller.namespace", "ingress.controller.annotations", "ingress.controller.dns.suffix",
		"ingress.controller.ingressClass.controller", "ingress.controller.ingressClass.annotations":
		na("the ingress controller mode is not run locally")
	case "serviceAccount.create":
		if v == "true" {
			used("the prod profile runs with its own ServiceAccount", "")
		} else {
			na("the prod profile always makes its own ServiceAccount")
		}
	case "serviceAccountName", "serviceAccount.name", "serviceAccount.annotations", "serviceAccount.labels":
		na("apimdev's ServiceAccount is named after the gateway and carries only what the auth mode needs")
	case "probes.readiness", "probes.liveness", "probes.startup":
		m.probe(key, n)
	case "resources":
		m.resources(key, n)
	case "highAvailability.enabled":
		if v == "true" {
			adapted("the dev profile runs one pod; promote adds the disruption budget and zone + hostname spread", "", "")
		} else {
			na("the prod profile always has the disruption budget and spread (a production recommendation)")
		}
	case "highAvailability.disruption.maximumUnavailable":
		if v == "1" {
			used("the prod profile's disruption budget allows 1 unavailable", "")
		} else {
			adapted("the prod profile's disruption budget allows 1 pod unavailable, whatever the replicas (25% of 3 rounds up to 1 too)", "", "")
		}
	case "highAvailability.podTopologySpread.whenUnsatisfiable":
		if v == "ScheduleAnyway" {
			used("the prod profile spreads over zones and hostnames, ScheduleAnyway", "")
		} else {
			na("the prod profile spreads with ScheduleAnyway: a laptop cluster has fewer nodes than zones")
		}
	case "nodeSelector", "tolerations", "affinity":
		na("the production cluster's node labels and taints: kind nodes have none of them")
	case "securityContext", "podSecurityContext":
		adapted("the prod profile runs as UID/GID 1001 with fsGroup 1001 (non-root, what the backup volume needs); the file's contexts are not applied", "", "")
	case "commonLabels":
		na("apimdev labels its objects with its own labels (app, app.kubernetes.io/managed-by)")
	default:
		na("apimdev has no setting for it")
	}
}

func orNone(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

// otherCollector is an endpoint of a metrics pipeline of the production cluster.
func (m *mapper) otherCollector(key string, n *yaml.Node, enabled, why string) {
	if m.get(enabled) != "true" {
		m.add(key, n, NotApplicable, "not used: "+enabled+" is not true", "", "")
		return
	}
	m.add(key, n, Adapted, why, "", "")
}

// image makes one row of image.repository and image.tag: the chart's tag
// defaults to its appVersion.
func (m *mapper) image() {
	repo, tag := m.get("image.repository"), m.get("image.tag")
	if repo == "" && tag == "" {
		return
	}
	if repo == "" {
		repo = "mcr.microsoft.com/azure-api-management/gateway"
	}
	how := "the gateway image"
	if tag == "" {
		tag = m.appVersion
		how = fmt.Sprintf("the gateway image; no tag: the chart's appVersion %s", tag)
	}
	img := repo + ":" + tag
	key := "image.repository"
	n := m.values[key]
	if n == nil || !set(n) {
		key, n = "image.tag", m.values["image.tag"]
	}
	m.Rows = append(m.Rows, Row{Key: key, Value: text(n), Status: Used, How: how + " (" + img + ")", Setting: "gateway.image"})
	if key == "image.repository" && m.get("image.tag") != "" {
		m.Rows = append(m.Rows, Row{Key: "image.tag", Value: m.get("image.tag"), Status: Used, How: "with image.repository", Setting: "gateway.image"})
	}
	m.Sets = append(m.Sets, Set{Path: "gateway.image", Value: img})
}

// strategy maps the Deployment's rollout strategy.
func (m *mapper) strategy(key string, n *yaml.Node) {
	var s struct {
		Type          string `yaml:"type"`
		RollingUpdate struct {
			MaxUnavailable string `yaml:"maxUnavailable"`
			MaxSurge       string `yaml:"maxSurge"`
		} `yaml:"rollingUpdate"`
	}
	if err := n.Decode(&s); err != nil {
		m.add(key, n, NotApplicable, "not a Deployment strategy apimdev can read: "+err.Error(), "", "")
		return
	}
	if s.Type == "Recreate" {
		m.add(key, n, NotApplicable, "apimdev rolls out with RollingUpdate (Recreate stops every pod first: calls fail during a rollout)", "", "")
		return
	}
	if ru := s.RollingUpdate; ru.MaxUnavailable != "" {
		m.Sets = append(m.Sets, Set{Path: "prod.maxUnavailable", Value: ru.MaxUnavailable})
	}
	if ru := s.RollingUpdate; ru.MaxSurge != "" {
		m.Sets = append(m.Sets, Set{Path: "prod.maxSurge", Value: ru.MaxSurge})
	}
	m.Rows = append(m.Rows, Row{Key: key, Value: text(n), Status: Adapted,
		How: "the dev profile rolls out with maxUnavailable 0; the file's rolling update is kept for promote", Setting: "prod.maxUnavailable, prod.maxSurge"})
}

// probe maps a probe: its path is used, its timings are apimdev's.
func (m *mapper) probe(key string, n *yaml.Node) {
	var p struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	_ = n.Decode(&p)
	path := p.HTTPGet.Path
	if path == "" {
		m.add(key, n, NotApplicable, "not an httpGet probe: apimdev probes the gateway's status path over HTTP", "", "")
		return
	}
	how := "the probe path (gateway.probePath); timings are apimdev's"
	if key != "probes.readiness" {
		how = "the probe path; the prod profile adds liveness and startup probes on the same path"
		m.add(key, n, Adapted, how, "", "")
		return
	}
	m.add(key, n, Used, how, "gateway.probePath", path)
}

// resources maps requests and limits onto the prod profile's.
func (m *mapper) resources(key string, n *yaml.Node) {
	var r struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
	if err := n.Decode(&r); err != nil {
		m.add(key, n, NotApplicable, "not resources apimdev can read: "+err.Error(), "", "")
		return
	}
	var sets []string
	put := func(path, v string) {
		if v != "" {
			m.Sets = append(m.Sets, Set{Path: path, Value: v})
			sets = append(sets, path)
		}
	}
	put("prod.cpu", r.Requests["cpu"])
	put("prod.memory", r.Requests["memory"])
	put("prod.ephemeralStorage", r.Requests["ephemeral-storage"])
	put("prod.memoryLimit", r.Limits["memory"])
	how := "the dev profile requests nothing; promote requests these, fitted to the laptop's free room (export keeps them as they are)"
	if r.Limits["cpu"] != "" {
		how += "; the CPU limit is not applied (apimdev sets none: throttling hurts a gateway's latency)"
	}
	m.Rows = append(m.Rows, Row{Key: key, Value: text(n), Status: Adapted, How: how, Setting: strings.Join(sets, ", ")})
}

// additional maps gateway.configuration.additional, one row per setting.
func (m *mapper) additional(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		m.add("gateway.configuration.additional", n, NotApplicable, "expected a map of gateway settings", "", "")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		key := "gateway.configuration.additional." + k
		if s, ok := settingOf[k]; ok {
			val := text(v)
			if k == "telemetry.logs.local" {
				val = strings.ToLower(val)
			}
			m.add(key, v, Used, "gateway setting "+k, s, val)
			continue
		}
		m.add(key, v, NotApplicable, fmt.Sprintf("apimdev has no setting for %s: it is not passed to the local gateway", k), "", "")
	}
}
