package helmvalues

import (
	"fmt"
	"slices"
	"strings"
)

// Chart is the official chart's name.
const Chart = "azure-api-management-gateway"

// DefaultChartVersion is the chart version values are read as and written
// for unless another is asked.
const DefaultChartVersion = "1.15.1"

// chartVersion is what apimdev knows of one chart version: the gateway
// version it deploys by default (its appVersion) and its values keys.
type chartVersion struct {
	appVersion string
	keys       []string
}

// versions are the chart versions apimdev knows. 1.15.1's keys are its
// published values.yaml (held to it by a test that reads the chart). The
// 1.15.2 and 1.16.x entries come from the chart repository's index (chart
// version → appVersion); their values.yaml was not available to compare, so
// their keys are taken to be 1.15.1's: no key of theirs is known to differ.
var versions = map[string]chartVersion{
	"1.15.1": {appVersion: "2.11.1", keys: keys115},
	"1.15.2": {appVersion: "2.11.2", keys: keys115},
	"1.16.0": {appVersion: "2.12.0", keys: keys115},
	"1.16.1": {appVersion: "2.12.1", keys: keys115},
}

// KnownVersions are the chart versions Read and Export take, oldest first.
func KnownVersions() []string {
	var out []string
	for v := range versions {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// lookup is the chart version v, or an error listing the known ones.
func lookup(v string) (chartVersion, error) {
	if v == "" {
		v = DefaultChartVersion
	}
	cv, ok := versions[v]
	if !ok {
		return cv, fmt.Errorf("chart version %q is not one apimdev knows: known are %s", v, strings.Join(KnownVersions(), ", "))
	}
	return cv, nil
}

// AppVersion is the gateway version chart version v deploys by default.
func AppVersion(v string) (string, error) {
	cv, err := lookup(v)
	return cv.appVersion, err
}

// keys115 are chart 1.15.1's values keys, as dotted paths. A path ending in
// "*" holds a map or list the chart passes through whole (resources, probes,
// hostAliases...): what is under it is not checked key by key here.
var keys115 = []string{
	"replicaCount",
	"image.repository", "image.pullPolicy", "image.tag",
	"imagePullSecrets*", "nameOverride", "fullnameOverride",
	"gateway.name",
	"gateway.deployment.terminationGracePeriodSeconds",
	"gateway.deployment.strategy*",
	"gateway.deployment.network.proxy.http", "gateway.deployment.network.proxy.https", "gateway.deployment.network.proxy.bypass",
	"gateway.deployment.dns.hostAliases*",
	"gateway.deployment.annotations*",
	"gateway.configuration.uri",
	"gateway.configuration.backup.enabled",
	"gateway.configuration.backup.persistentVolumeClaim.existingName",
	"gateway.configuration.backup.persistentVolumeClaim.create",
	"gateway.configuration.backup.persistentVolumeClaim.storageClassName",
	"gateway.configuration.backup.persistentVolumeClaim.accessMode",
	"gateway.configuration.backup.persistentVolumeClaim.size",
	"gateway.configuration.additional*",
	"gateway.auth.type", "gateway.auth.key",
	"gateway.auth.azureAd.tenant.id", "gateway.auth.azureAd.authority",
	"gateway.auth.azureAd.app.id", "gateway.auth.azureAd.app.secret",
	"secret.createSecret", "secret.existingSecretName",
	"observability.logs.std.format", "observability.logs.std.level", "observability.logs.std.useColor",
	"observability.logs.local.type",
	"observability.logs.local.localsyslog.endpoint", "observability.logs.local.localsyslog.facility",
	"observability.logs.local.rfc5424.endpoint", "observability.logs.local.rfc5424.facility",
	"observability.logs.local.journal.endpoint",
	"observability.logs.local.json.endpoint",
	"observability.azureMonitor.metrics.enabled",
	"observability.opentelemetry.enabled", "observability.opentelemetry.collector.uri",
	"observability.opentelemetry.histogram.buckets", "observability.opentelemetry.systemMetrics.enabled",
	"observability.statsD.enabled", "observability.statsD.endpoint", "observability.statsD.sampling", "observability.statsD.tagFormat",
	"security.tls.server.ciphers.allowedSuites", "security.tls.client.ciphers.allowedSuites",
	"dapr.enabled", "dapr.app.id", "dapr.config", "dapr.logging.useJsonOutput", "dapr.logging.level",
	"service.type", "service.loadBalancer.allocateNodePorts", "service.loadBalancer.ip",
	"service.ports.http", "service.ports.https",
	"service.ports.instance.synchronization", "service.ports.instance.heartbeat",
	"service.annotations*",
	"ingress.controller.enabled", "ingress.controller.namespace", "ingress.controller.annotations*",
	"ingress.controller.dns.suffix",
	"ingress.controller.ingressClass.controller", "ingress.controller.ingressClass.annotations*",
	"serviceAccountName",
	"serviceAccount.name", "serviceAccount.create", "serviceAccount.annotations*", "serviceAccount.labels*",
	"probes.readiness*", "probes.liveness*", "probes.startup*",
	"resources*",
	"highAvailability.enabled", "highAvailability.disruption.maximumUnavailable",
	"highAvailability.podTopologySpread.whenUnsatisfiable",
	"nodeSelector*", "tolerations*", "affinity*",
	"securityContext*", "podSecurityContext*",
	"commonLabels*",
}
