package helmchart

import (
	"os"
	"strings"
	"testing"
)

const (
	release   = "contoso-gw"
	namespace = "apim-gateway"
)

// renames are the chart's names for objects apimdev names otherwise.
var renames = map[string]string{
	"ConfigMap/contoso-gw":             "ConfigMap/contoso-gw-env",
	"Service/contoso-gw":               "Service/contoso-gw-live-traffic",
	"PersistentVolumeClaim/contoso-gw": "PersistentVolumeClaim/contoso-gw-config-backup",
}

// recommended are the fields that carry a production recommendation of
// Microsoft's pages (the production guidance table of the reference notes:
// replicas, rollout, resources, image tag, DNS, external traffic, the
// endpoint, backup volume and fsGroup, local logs and metrics, security
// context, proxies, log level, namespace). No accepted difference may touch
// one of them. A trailing "*" covers what is under the path.
var recommended = []string{
	"Deployment/contoso-gw: spec.replicas",
	"Deployment/contoso-gw: spec.strategy*",
	"Deployment/contoso-gw: metadata.namespace",
	"Deployment/contoso-gw: spec.template.spec.containers[0].resources*",
	"Deployment/contoso-gw: spec.template.spec.containers[0].image",
	"Deployment/contoso-gw: spec.template.spec.containers[0].securityContext*",
	"Deployment/contoso-gw: spec.template.spec.containers[0].volumeMounts[0].mountPath",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=HTTP_PROXY]*",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=HTTPS_PROXY]*",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=NO_PROXY]*",
	"Deployment/contoso-gw: spec.template.spec.dnsPolicy",
	"Deployment/contoso-gw: spec.template.spec.dnsConfig*",
	"Deployment/contoso-gw: spec.template.spec.securityContext*",
	"Deployment/contoso-gw: spec.template.spec.topologySpreadConstraints[topologyKey=topology.kubernetes.io/zone].whenUnsatisfiable",
	"PodDisruptionBudget/contoso-gw: spec.maxUnavailable",
	"Service/contoso-gw: spec.externalTrafficPolicy",
	"Service/contoso-gw: spec.type",
	"ConfigMap/contoso-gw: data.config.service.endpoint",
	"ConfigMap/contoso-gw: data.telemetry.logs.std",
	"ConfigMap/contoso-gw: data.telemetry.logs.std.level",
	"ConfigMap/contoso-gw: data.telemetry.metrics.local",
	"ConfigMap/contoso-gw: data.telemetry.metrics.local.statsd.endpoint",
	"ConfigMap/contoso-gw: data.telemetry.metrics.cloud",
	"PersistentVolumeClaim/contoso-gw: spec*",
}

// accepted are the differences between the chart's render (with the
// exported values and overlay) and apimdev's prod render, each with why it
// does not matter. "*" as the object stands for any; a path ending in "*"
// covers what is under it.
var accepted = map[string]string{
	"*: metadata.labels*": "each tool labels its own objects (helm.sh/chart, app.kubernetes.io/* against app, apimdev.io/profile); only the tools themselves read them",
	"*: spec.selector*":   "the chart's Deployment, Services and budget select the chart's pod labels, apimdev's select app: the same pods (the overlay puts app on the chart's pods too, for apimdev's NetworkPolicies)",
	"Deployment/contoso-gw: spec.template.metadata.labels*":                                                                       "the chart's pod labels beside app, which the overlay adds",
	"Deployment/contoso-gw: spec.template.spec.topologySpreadConstraints[topologyKey=topology.kubernetes.io/zone].labelSelector*": "the chart's zone spread selects its own labels, to which the overlay's patch adds app: the same pods",
	"ConfigMap/contoso-gw: metadata.name":                                                                                         "the chart names its ConfigMap after the release; apimdev adds -env, as the portal's YAML does",
	"Service/contoso-gw: metadata.name":                                                                                           "the chart names the traffic Service after the release; apimdev adds -live-traffic, as the portal's YAML does",
	"PersistentVolumeClaim/contoso-gw: metadata.name":                                                                             "the chart names the backup claim after the release; apimdev adds -config-backup (same size, access mode, mount path)",
	"Service/contoso-gw-instance-discovery: metadata.annotations*":                                                                "the chart's descriptive note on the headless Service",
	"Service/contoso-gw-instance-discovery: spec.ports[name=rate-limit-discovery].targetPort":                                     "the chart names the container port (rate-limit-dc), apimdev gives its number (4290): the same port",
	"Service/contoso-gw-instance-discovery: spec.ports[name=discovery-heartbeat].targetPort":                                      "the chart names the container port (dc-heartbeat), apimdev gives its number (4291): the same port",
	"Service/contoso-gw-instance-discovery: spec.type":                                                                            "the chart writes ClusterIP, the API server's default type that apimdev leaves unset (both headless: clusterIP None)",
	"Service/contoso-gw: spec.ports[name=http].targetPort":                                                                        "the chart names the container port (http), apimdev gives its number (8080): the same port",
	"Service/contoso-gw: spec.ports[name=https].targetPort":                                                                       "the chart names the container port (https), apimdev gives its number (8081): the same port",
	"Deployment/contoso-gw: spec.template.spec.containers[0].name":                                                                "the chart names the container after itself, apimdev after the gateway (the overlay's patch uses the chart's name)",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=config.service.auth].valueFrom.secretKeyRef.key":            "the chart reads the token under its key gateway-key (the README creates the Secret so), apimdev under value, as the portal does",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=runtime.deployment*":                                        "how the gateway was deployed (Helm/Official), reported to Azure only; apimdev puts its own (YAML/apimdev) in the ConfigMap",
	"Deployment/contoso-gw: spec.template.spec.containers[0].env[name=neighborhood.host]":                                         "the chart sets the instance-discovery Service as env, apimdev in the ConfigMap: the same name",
	"Deployment/contoso-gw: spec.template.spec.containers[0].envFrom[0].configMapRef.name":                                        "the ConfigMap's name (see ConfigMap/contoso-gw: metadata.name)",
	"Deployment/contoso-gw: spec.template.spec.containers[0].ports[name=http].protocol":                                           "the chart leaves the protocol to the API server's default, TCP; apimdev writes it",
	"Deployment/contoso-gw: spec.template.spec.containers[0].ports[name=https].protocol":                                          "the chart leaves the protocol to the API server's default, TCP; apimdev writes it",
	"Deployment/contoso-gw: spec.template.spec.containers[0].volumeMounts[0].name":                                                "the backup volume's name in the pod; the mount path is the same /apim/config",
	"Deployment/contoso-gw: spec.template.spec.volumes[0].name":                                                                   "the backup volume's name in the pod",
	"Deployment/contoso-gw: spec.template.spec.volumes[0].persistentVolumeClaim.claimName":                                        "the backup claim's name (see PersistentVolumeClaim/contoso-gw: metadata.name)",
	"Deployment/contoso-gw: spec.template.spec.serviceAccount":                                                                    "apimdev also writes the deprecated alias of serviceAccountName; both name the same ServiceAccount",
	"ConfigMap/contoso-gw: data.runtime.deployment*":                                                                              "apimdev's telemetry of how the gateway was deployed; the chart sets its own as env",
	"ConfigMap/contoso-gw: data.neighborhood.host":                                                                                "the chart sets it as env, to the same Service",
	"ConfigMap/contoso-gw: data.telemetry.logs.local":                                                                             "the chart always writes it; none is the gateway's default, which apimdev leaves unset",
	"ConfigMap/contoso-gw: data.observability.opentelemetry.enabled":                                                              "the chart always writes false, the gateway's default",
	"ConfigMap/contoso-gw: data.observability.opentelemetry.system-metrics.enabled":                                               "the chart always writes false, the gateway's default",
	"ConfigMap/contoso-gw: data.telemetry.metrics.local.statsd.sampling":                                                          "the chart writes its default 1 (every request), which is the gateway's default",
	"ConfigMap/contoso-gw: data.telemetry.metrics.local.statsd.tag-format":                                                        "the chart writes dogStatsD; the statsd exporter apimdev runs reads DogStatsD tags as well as the gateway's default: how tags are spelt, not a recommendation",
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("%v: run go test ./internal/helmvalues -run TestHelmchartTestdataIsCurrent -update in apimdev's module", err)
	}
	return b
}

func chartPath(t *testing.T) string {
	p := DefaultChart()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Microsoft's chart is not at %s (the repository's ../shared/reference/charts/, or set APIMDEV_CHARTS_DIR): %v", p, err)
	}
	return p
}

// matches says path is covered by pattern ("ID: path", ID may be "*",
// path may end in "*").
func matches(pattern, path string) bool {
	pid, ppath, _ := strings.Cut(pattern, ": ")
	id, rest, _ := strings.Cut(path, ": ")
	if pid != "*" && pid != id {
		return false
	}
	if strings.HasSuffix(ppath, "*") {
		return strings.HasPrefix(rest, strings.TrimSuffix(ppath, "*"))
	}
	return rest == ppath
}

func TestChartRoundTrip(t *testing.T) {
	rendered, err := Render(chartPath(t), readTestdata(t, "values.yaml"), release, namespace)
	if err != nil {
		t.Fatal(err)
	}
	final, err := Overlay("testdata/overlay", rendered)
	if err != nil {
		t.Fatal(err)
	}
	chartObjs, err := Objects(final)
	if err != nil {
		t.Fatal(err)
	}
	apimdevObjs, err := Objects(readTestdata(t, "apimdev-prod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	diffs := Compare(chartObjs, apimdevObjs, renames)
	used := map[string]bool{}
	for _, d := range diffs {
		why := ""
		for pat, w := range accepted {
			if matches(pat, d.Path) {
				why, used[pat] = w, true
				break
			}
		}
		if why == "" {
			t.Errorf("unexplained difference: %s", d)
			continue
		}
		t.Logf("%s\n    why: %s", d, why)
		for _, r := range recommended {
			if matches(r, d.Path) {
				t.Errorf("difference in a production recommendation (%s): %s", r, d)
			}
		}
	}
	for pat := range accepted {
		if !used[pat] {
			t.Errorf("accepted difference %q no longer occurs: take it out of the list", pat)
		}
	}
	t.Logf("%d objects from the chart and overlay, %d from apimdev, %d difference(s)", len(chartObjs), len(apimdevObjs), len(diffs))
}

// TestCompareSeesARecommendation: a values file that drifts from the prod
// profile in a recommended field gives a difference there, which no
// accepted entry covers.
func TestCompareSeesARecommendation(t *testing.T) {
	values := strings.Replace(string(readTestdata(t, "values.yaml")), "replicaCount: 3", "replicaCount: 2", 1)
	rendered, err := Render(chartPath(t), []byte(values), release, namespace)
	if err != nil {
		t.Fatal(err)
	}
	chartObjs, err := Objects(rendered)
	if err != nil {
		t.Fatal(err)
	}
	apimdevObjs, err := Objects(readTestdata(t, "apimdev-prod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range Compare(chartObjs, apimdevObjs, renames) {
		if d.Path == "Deployment/contoso-gw: spec.replicas" && d.Chart == "2" && d.Apimdev == "3" {
			found = true
			for pat := range accepted {
				if matches(pat, d.Path) {
					t.Errorf("accepted entry %q covers a recommended field", pat)
				}
			}
		}
	}
	if !found {
		t.Error("replicas 2 against 3 was not seen")
	}
}
