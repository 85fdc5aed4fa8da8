package helmvalues

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

// File is one file of an export, by its path inside the export's directory.
type File struct {
	Name string
	Data []byte
}

// Names in what Export writes.
const (
	ValuesFile = "values.yaml"
	OverlayDir = "overlay"
	// ChartRender is the file the overlay reads the chart's rendered
	// objects from (helm template's output, or the post-renderer's input).
	ChartRender = "chart.yaml"
	// ContainerName is the chart's name for the gateway container.
	ContainerName = Chart
	// SecretKey is the key of the chart's Secret that holds the token.
	SecretKey = "gateway-key"
)

// Export writes the prod profile p for Microsoft's chart (version
// chartVersion, "" is DefaultChartVersion): values.yaml with all the chart
// can express, an overlay/ kustomization for the rest, and a README saying
// which is which. The release is to be named after the gateway (helm
// install GATEWAY ... --namespace NAMESPACE). No secret is in any file: the
// chart reads the credential from an existing Secret.
func Export(p gateway.Profile, chartVersion string) ([]File, error) {
	if chartVersion == "" {
		chartVersion = DefaultChartVersion
	}
	if _, err := lookup(chartVersion); err != nil {
		return nil, err
	}
	if len(p.CACerts) > 0 {
		return nil, fmt.Errorf("private CA certificates (gateway.caCertificates) are not exported for the chart yet: use apimdev export's default format")
	}
	objs := p.Objects(token.Token{}, true)
	var dep *appsv1.Deployment
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == p.DeploymentName() {
			dep = d
		}
	}
	if dep == nil {
		return nil, fmt.Errorf("the profile renders no Deployment %s", p.DeploymentName())
	}
	values, err := chartValues(p, dep)
	if err != nil {
		return nil, err
	}
	vy, err := yaml.Marshal(values)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Values for Microsoft's chart %s %s: apimdev's prod profile for gateway %s.\n"+
		"# Install with the release named after the gateway, in its namespace:\n"+
		"#   helm template %s <chart> -n %s -f values.yaml > overlay/%s && kubectl kustomize overlay\n"+
		"# The chart cannot express everything the profile has: overlay/ adds the rest (see README.md).\n",
		Chart, chartVersion, p.Gateway, p.Gateway, p.Namespace, ChartRender)
	files := []File{{Name: ValuesFile, Data: append([]byte(header), vy...)}}
	overlay, err := overlayFiles(p, dep, objs)
	if err != nil {
		return nil, err
	}
	files = append(files, overlay...)
	files = append(files, File{Name: "README.md", Data: []byte(readme(p, chartVersion, overlay))})
	return files, nil
}

// asMap is a Kubernetes value as the generic map YAML holds.
func asMap(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

// chartValues is everything of p the chart's values can say.
func chartValues(p gateway.Profile, dep *appsv1.Deployment) (map[string]any, error) {
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	auth := map[string]any{}
	switch p.Auth.Mode() {
	case config.AuthEntraApp:
		auth["type"] = "AzureAdApp"
		ad := map[string]any{"tenant": map[string]any{"id": p.Auth.TenantID}, "app": map[string]any{"id": p.Auth.ClientID}}
		if p.Auth.Authority != "" {
			ad["authority"] = p.Auth.Authority
		}
		auth["azureAd"] = ad
	case config.AuthWorkloadIdentity:
		auth["type"] = "WorkloadIdentity"
		auth["azureAd"] = map[string]any{"app": map[string]any{"id": p.Auth.ClientID}}
	default:
		auth["type"] = "GatewayToken"
	}
	gw := map[string]any{
		"name": p.Gateway,
		"configuration": map[string]any{
			"uri":    p.Endpoint,
			"backup": map[string]any{"enabled": p.Backup != nil},
		},
		"auth": auth,
		"deployment": map[string]any{
			"terminationGracePeriodSeconds": *pod.TerminationGracePeriodSeconds,
			"strategy": map[string]any{"type": "RollingUpdate",
				"rollingUpdate": map[string]any{"maxUnavailable": p.MaxUnavailable, "maxSurge": p.MaxSurge}},
		},
	}
	if b := p.Backup; b != nil {
		pvc := map[string]any{"create": true, "accessMode": string(b.AccessMode), "size": b.Size}
		if b.StorageClass != "" {
			pvc["storageClassName"] = b.StorageClass
		}
		gw["configuration"].(map[string]any)["backup"] = map[string]any{"enabled": true, "persistentVolumeClaim": pvc}
	}
	if px := p.Proxy; px != (config.Proxy{}) {
		proxy := map[string]any{}
		for k, v := range map[string]string{"http": px.HTTP, "https": px.HTTPS, "bypass": px.NoProxy} {
			if v != "" {
				proxy[k] = v
			}
		}
		gw["deployment"].(map[string]any)["network"] = map[string]any{"proxy": proxy}
	}
	local := map[string]any{"type": "none", "json": map[string]any{"endpoint": nil}}
	if l := p.LocalLogs; l.Local != "" {
		local["type"] = l.Local
		form := map[string]any{}
		if l.Endpoint != "" {
			form["endpoint"] = l.Endpoint
		}
		if l.Facility != "" {
			form["facility"] = l.Facility
		}
		if len(form) > 0 {
			local[l.Local] = form
		}
	}
	format, level := p.LogFormat, p.LogLevel
	if format == "" {
		format, level = "text", "info"
	}
	obs := map[string]any{
		"logs":          map[string]any{"std": map[string]any{"format": format, "level": level, "useColor": format != "json"}, "local": local},
		"azureMonitor":  map[string]any{"metrics": map[string]any{"enabled": p.CloudMetrics == nil || *p.CloudMetrics}},
		"statsD":        map[string]any{"enabled": p.StatsdImage != ""},
		"opentelemetry": map[string]any{"enabled": p.CollectorImage != ""},
	}
	if p.StatsdImage != "" {
		obs["statsD"] = map[string]any{"enabled": true, "endpoint": fmt.Sprintf("%s:%d", p.StatsdName(), gateway.StatsdPort)}
	}
	if p.CollectorImage != "" {
		obs["opentelemetry"] = map[string]any{"enabled": true, "collector": map[string]any{"uri": p.CollectorURI()}}
	}
	v := map[string]any{
		"fullnameOverride": p.Gateway,
		"replicaCount":     p.Replicas,
		"image":            map[string]any{"repository": gateway.Repo(p.Image), "tag": gateway.Tag(p.Image), "pullPolicy": string(c.ImagePullPolicy)},
		"gateway":          gw,
		// The credential's Secret is made outside the chart (README.md):
		// no secret in values.
		"secret":           map[string]any{"createSecret": false, "existingSecretName": p.SecretName()},
		"observability":    obs,
		"service":          map[string]any{"type": "LoadBalancer", "ports": map[string]any{"http": gateway.ServiceHTTP, "https": gateway.ServiceHTTPS}},
		"serviceAccount":   map[string]any{"create": true, "name": p.Gateway},
		"highAvailability": map[string]any{"enabled": p.HighAvailability, "disruption": map[string]any{"maximumUnavailable": 1}, "podTopologySpread": map[string]any{"whenUnsatisfiable": "ScheduleAnyway"}},
	}
	if p.Auth.Mode() == config.AuthWorkloadIdentity {
		v["secret"] = map[string]any{"createSecret": false}
	}
	gwv, err := asMap(gw)
	if err != nil {
		return nil, err
	}
	v["gateway"] = gwv
	for key, val := range map[string]any{
		"probes":    map[string]any{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe},
		"resources": c.Resources, "securityContext": c.SecurityContext, "podSecurityContext": pod.SecurityContext,
		"tolerations": pod.Tolerations,
	} {
		m, err := asMap(val)
		if err != nil {
			return nil, err
		}
		if m != nil {
			v[key] = m
		}
	}
	return v, nil
}

// chartCovers says the chart renders o itself (from values.yaml).
func chartCovers(p gateway.Profile, o runtime.Object) bool {
	switch x := o.(type) {
	case *corev1.ServiceAccount:
		return x.Name == p.Gateway
	case *corev1.Secret:
		return true // made outside the chart, from the user's token file
	case *corev1.ConfigMap:
		return x.Name == p.ConfigMapName()
	case *corev1.PersistentVolumeClaim:
		return x.Name == p.BackupClaimName()
	case *appsv1.Deployment:
		return x.Name == p.DeploymentName()
	case *corev1.Service:
		return x.Name == p.LiveService() || x.Name == p.DiscoveryService()
	case *policyv1.PodDisruptionBudget:
		return x.Name == p.Gateway
	}
	return false
}

// overlayFiles is the kustomization that adds to the chart's render what the
// chart cannot express.
func overlayFiles(p gateway.Profile, dep *appsv1.Deployment, objs []runtime.Object) ([]File, error) {
	var files []File
	var resources []string
	for _, o := range objs {
		if chartCovers(p, o) {
			continue
		}
		y, err := gateway.YAML([]runtime.Object{o})
		if err != nil {
			return nil, err
		}
		kind := strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
		name := fmt.Sprintf("%02d-%s.yaml", len(resources)+1, kind)
		files = append(files, File{Name: OverlayDir + "/" + name, Data: y})
		resources = append(resources, name)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	// The Deployment: apimdev's pod label (its NetworkPolicies and the
	// exporter's select the gateway's pods by it), no service account token,
	// the preStop pause, the spread over hostnames as well as zones, DNS.
	podSpec := map[string]any{
		"automountServiceAccountToken": false,
		"containers":                   []any{map[string]any{"name": ContainerName, "lifecycle": c.Lifecycle}},
	}
	spread, err := asMap(pod.TopologySpreadConstraints)
	if err != nil {
		return nil, err
	}
	if spread != nil {
		podSpec["topologySpreadConstraints"] = spread
	}
	if pod.DNSPolicy != "" {
		podSpec["dnsPolicy"] = string(pod.DNSPolicy)
	}
	if pod.DNSConfig != nil {
		d, err := asMap(pod.DNSConfig)
		if err != nil {
			return nil, err
		}
		podSpec["dnsConfig"] = d
	}
	depPatch := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"namespace": p.Namespace, "name": p.DeploymentName()},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"labels": p.Selector()},
			"spec":     podSpec,
		}},
	}
	svcPatch := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"namespace": p.Namespace, "name": p.Gateway},
		"spec":     map[string]any{"externalTrafficPolicy": "Local"},
	}
	saPatch := map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata":                     map[string]any{"namespace": p.Namespace, "name": p.Gateway},
		"automountServiceAccountToken": false,
	}
	var patches []string
	for _, pt := range []struct {
		name string
		v    map[string]any
	}{{"patch-deployment.yaml", depPatch}, {"patch-service.yaml", svcPatch}, {"patch-serviceaccount.yaml", saPatch}} {
		y, err := yaml.Marshal(pt.v)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: OverlayDir + "/" + pt.name, Data: y})
		patches = append(patches, pt.name)
	}
	var k strings.Builder
	fmt.Fprintf(&k, "# What apimdev's prod profile has that chart %s cannot express.\n", Chart)
	fmt.Fprintf(&k, "# %s is the chart's render: helm template %s <chart> -n %s -f ../values.yaml > %s\n", ChartRender, p.Gateway, p.Namespace, ChartRender)
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + ChartRender + "\n")
	for _, r := range resources {
		k.WriteString("- " + r + "\n")
	}
	k.WriteString("patches:\n")
	for _, pt := range patches {
		k.WriteString("- path: " + pt + "\n")
	}
	files = append(files, File{Name: OverlayDir + "/kustomization.yaml", Data: []byte(k.String())})
	files = append(files, File{Name: OverlayDir + "/post-render.sh", Data: []byte(`#!/bin/sh
# A Helm post-renderer: helm install ... --post-renderer ./overlay/post-render.sh
# Helm's render arrives on stdin; the overlay's result goes to stdout.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
cat >"$dir/` + ChartRender + `"
kubectl kustomize "$dir"
`)})
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

func readme(p gateway.Profile, chartVersion string, overlay []File) string {
	var extra []string
	for _, f := range overlay {
		extra = append(extra, "- `"+f.Name+"`")
	}
	secret := fmt.Sprintf("kubectl -n %s create secret generic %s --from-file=%s=gateway.token   # gateway.token: GatewayKey <token>, one line",
		p.Namespace, p.SecretName(), SecretKey)
	switch p.Auth.Mode() {
	case config.AuthEntraApp:
		secret = fmt.Sprintf("kubectl -n %s create secret generic %s --from-file=azure-ad-app-secret=client-secret.txt   # the Entra app's client secret",
			p.Namespace, p.SecretName())
	case config.AuthWorkloadIdentity:
		secret = "# workload identity: no Secret; the ServiceAccount names the identity (federate it with system:serviceaccount:" + p.Namespace + ":" + p.Gateway + ")"
	}
	return fmt.Sprintf(`# %s: apimdev's prod profile for Microsoft's Helm chart

Made by `+"`apimdev export --format helm-values`"+` for chart %s %s. Two parts:

- `+"`values.yaml`"+` is everything the chart's values can say: replicas, image (pinned), rollout
  (maxUnavailable %s, maxSurge %s), resources and the memory limit, probes with their timings, security
  contexts (UID/GID 1001, fsGroup 1001), tolerations, the configuration backup, telemetry, proxy, the
  disruption budget and zone spread, and the Service.
- `+"`overlay/`"+` is a kustomization over the chart's render for what the chart cannot say:
  the NetworkPolicies, the metrics exporter or collector apimdev runs beside the gateway, the namespace,
  a preStop pause, the spread over hostnames as well as zones, no service account token in the pods,
  externalTrafficPolicy Local, and the pod label the NetworkPolicies select. Its files:

%s

No secret is in these files: the chart reads the credential from an existing Secret (values:
`+"`secret.existingSecretName`"+`). Create it first:

    kubectl create namespace %s
    %s

Then either render and apply (the release must be named after the gateway):

    helm template %s <chart>-%s.tgz -n %s -f values.yaml > overlay/%s
    kubectl kustomize overlay | kubectl apply -f -

or let Helm install it with the overlay as a post-renderer:

    helm install %s <chart>-%s.tgz -n %s -f values.yaml --post-renderer ./overlay/post-render.sh
`, p.Gateway, Chart, chartVersion, p.MaxUnavailable.String(), p.MaxSurge.String(), strings.Join(extra, "\n"),
		p.Namespace, secret, p.Gateway, chartVersion, p.Namespace, ChartRender, p.Gateway, chartVersion, p.Namespace)
}
