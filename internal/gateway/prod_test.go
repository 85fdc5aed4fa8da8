package gateway

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/kubefake"
	"github.com/apimdev/apimdev/internal/token"
)

func prodProfile(t *testing.T) (Profile, token.Token) {
	t.Helper()
	cfg := config.Default()
	cfg.Gateway.Name = "contoso-gw"
	cfg.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	cfg.Gateway.Image = "mcr.microsoft.com/azure-api-management/gateway:2.11.1"
	p, err := Prod(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := token.Parse("contoso-gw&202612301200&" + canary)
	return p, tok
}

func golden(t *testing.T, name string, out []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		os.WriteFile(path, out, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		t.Fatalf("%s differs (go test -update rewrites it):\n%s", path, out)
	}
}

func TestProdGolden(t *testing.T) {
	p, tok := prodProfile(t)
	out, err := YAML(p.Objects(tok, true))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "prod.golden.yaml", out)
	// A 2-CPU kind node with 1 CPU already requested: fitted.
	fitted, note := p.Fit(resource.MustParse("1050m"), resource.MustParse("20Gi"), 1)
	if note == "" {
		t.Fatal("no fitting note")
	}
	out, _ = YAML(fitted.Objects(tok, true))
	golden(t, "prod-fitted.golden.yaml", out)
}

func TestProdCoversTheGuidance(t *testing.T) {
	t.Parallel()
	p, tok := prodProfile(t)
	objs := p.Objects(tok, false)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "PersistentVolumeClaim": 1, "Deployment": 2, "Service": 3, "PodDisruptionBudget": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s: %d, want %d", k, kinds[k], n)
		}
	}
	var d *appsv1.Deployment
	var cm *corev1.ConfigMap
	for _, o := range objs {
		switch x := o.(type) {
		case *appsv1.Deployment:
			if x.Name == "contoso-gw" {
				d = x
			}
		case *corev1.ConfigMap:
			cm = x
		}
	}
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	checks := map[string]bool{
		"replicas 3":           *d.Spec.Replicas == 3,
		"maxUnavailable 0":     d.Spec.Strategy.RollingUpdate.MaxUnavailable.String() == "0",
		"maxSurge 1":           d.Spec.Strategy.RollingUpdate.MaxSurge.String() == "1",
		"requests 2 CPU":       c.Resources.Requests.Cpu().String() == "2",
		"requests 2Gi":         c.Resources.Requests.Memory().String() == "2Gi",
		"startup probe":        c.StartupProbe != nil && c.StartupProbe.HTTPGet.Path == "/status-0123456789abcdef",
		"liveness probe":       c.LivenessProbe != nil,
		"preStop sleep":        c.Lifecycle != nil && c.Lifecycle.PreStop.Sleep.Seconds > 0,
		"grace 60":             *spec.TerminationGracePeriodSeconds == 60,
		"spread on 2 keys":     len(spec.TopologySpreadConstraints) == 2 && spec.TopologySpreadConstraints[0].WhenUnsatisfiable == corev1.ScheduleAnyway,
		"uid 1001":             *spec.SecurityContext.RunAsUser == 1001 && *spec.SecurityContext.FSGroup == 1001,
		"no token automount":   !*spec.AutomountServiceAccountToken,
		"rootfs writable":      c.SecurityContext.ReadOnlyRootFilesystem == nil,
		"backup mounted":       len(c.VolumeMounts) == 1 && c.VolumeMounts[0].MountPath == "/apim/config",
		"json logs":            cm.Data["telemetry.logs.std"] == "json" && cm.Data["telemetry.logs.std.level"] == "warn",
		"statsd metrics":       cm.Data["telemetry.metrics.local"] == "statsd" && cm.Data["telemetry.metrics.local.statsd.endpoint"] == "contoso-gw-statsd:8125",
		"same selector as dev": d.Spec.Selector.MatchLabels["app"] == "contoso-gw" && len(d.Spec.Selector.MatchLabels) == 1,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("prod profile lacks: %s", name)
		}
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	p, _ := prodProfile(t)
	same, note := p.Fit(resource.MustParse("16"), resource.MustParse("64Gi"), 1)
	if note != "" || same.Requests.Cpu().String() != "2" {
		t.Fatalf("fitted although it fits: %s", note)
	}
	f, note := p.Fit(resource.MustParse("1"), resource.MustParse("8Gi"), 1)
	// 4 pods (3 + 1 surge) in 90% of 1 CPU: 220m each; 8Gi*0.9/4 = 1.8Gi, rounded to 16Mi, capped at 2Gi.
	if f.Requests.Cpu().String() != "220m" || f.Requests.Memory().Value() > 2<<30 {
		t.Fatalf("fitted to %s / %s", f.Requests.Cpu(), f.Requests.Memory())
	}
	for _, w := range []string{"production requests 2 CPU / 2Gi per pod × 4 pods", "fitted to 220m CPU", "keep 2 / 2Gi"} {
		if !strings.Contains(note, w) {
			t.Errorf("note lacks %q: %s", w, note)
		}
	}
	if p.Requests.Cpu().String() != "2" {
		t.Fatal("Fit changed the original profile")
	}
}

func TestPinned(t *testing.T) {
	t.Parallel()
	for img, want := range map[string]bool{
		"mcr.microsoft.com/azure-api-management/gateway:v2":             false,
		"mcr.microsoft.com/azure-api-management/gateway:latest":         false,
		"mcr.microsoft.com/azure-api-management/gateway:beta":           false,
		"mcr.microsoft.com/azure-api-management/gateway":                false,
		"mcr.microsoft.com/azure-api-management/gateway:2.11":           false,
		"mcr.microsoft.com/azure-api-management/gateway:2.11.1":         true,
		"localhost:5000/gateway:2.11.1-standin":                         true,
		"apimdev-e2e/standin-gateway@sha256:" + strings.Repeat("a", 64): true,
	} {
		if Pinned(img) != want {
			t.Errorf("Pinned(%s) = %v", img, !want)
		}
	}
	if Repo("localhost:5000/gw:v2") != "localhost:5000/gw" || Tag("localhost:5000/gw") != "" {
		t.Error("Repo/Tag mishandle a registry port")
	}
}

func TestPlanDevToProdAgainstTheLiveObjects(t *testing.T) {
	t.Parallel()
	p, tok := prodProfile(t)
	cfg := config.Default()
	cfg.Gateway.Name, cfg.Gateway.Endpoint = "contoso-gw", "contoso.configuration.azure-api.net"
	dev := Dev(cfg)
	ctx := context.Background()
	cs := kubefake.New()
	if _, err := Apply(ctx, cs, dev.Objects(tok, false)); err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(ctx, cs, p, p.Objects(tok, false))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Action{}
	for _, c := range plan {
		got[c.Ref()] = c.Action
	}
	for k, want := range map[string]Action{"Namespace/apim-gateway": Unchanged, "Secret/contoso-gw-token": Update, "Deployment/contoso-gw": Update,
		"PodDisruptionBudget/contoso-gw": Create, "Deployment/contoso-gw-statsd": Create, "Service/contoso-gw-instance-discovery": Update} {
		if got[k] != want {
			t.Errorf("%s: %s, want %s", k, got[k], want)
		}
	}
	// The dry run changed nothing.
	if d, _ := cs.AppsV1().Deployments("apim-gateway").Get(ctx, "contoso-gw", metav1.GetOptions{}); *d.Spec.Replicas != 1 {
		t.Fatalf("the plan's dry run scaled the Deployment to %d", *d.Spec.Replicas)
	}
	text := FormatPlan(plan, 1)
	for _, w := range []string{"~ Deployment/contoso-gw", "-   replicas: 1", "+   replicas: 3", "+ PodDisruptionBudget/contoso-gw", "= Namespace/apim-gateway"} {
		if !strings.Contains(text, w) {
			t.Errorf("plan text lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, canary) {
		t.Fatalf("the plan shows the token:\n%s", text)
	}
	// Applied, then planned back to dev: what only prod has is pruned.
	if _, err := Execute(ctx, cs, plan); err != nil {
		t.Fatal(err)
	}
	back, err := Plan(ctx, cs, dev, dev.Objects(tok, false))
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, c := range back {
		if c.Action == Remove {
			removed = append(removed, c.Ref())
		}
	}
	want := []string{"ServiceAccount/contoso-gw", "PersistentVolumeClaim/contoso-gw-config-backup", "Deployment/contoso-gw-statsd", "Service/contoso-gw-statsd", "PodDisruptionBudget/contoso-gw", "NetworkPolicy/contoso-gw", "NetworkPolicy/contoso-gw-statsd"}
	if !reflect.DeepEqual(removed, want) {
		t.Fatalf("demotion prunes %v, want %v", removed, want)
	}
	gone, err := Prune(ctx, cs, back)
	if err != nil || len(gone) != len(want) {
		t.Fatalf("prune: %v %v", gone, err)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("apim-gateway").Get(ctx, "contoso-gw", metav1.GetOptions{}); err == nil {
		t.Fatal("the PodDisruptionBudget survived the prune")
	}
}

func TestPlanShowsDriftAndSecretChangesWithoutValues(t *testing.T) {
	t.Parallel()
	p, tok := prodProfile(t)
	ctx := context.Background()
	cs := kubefake.New()
	if _, err := Apply(ctx, cs, p.Objects(tok, false)); err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(ctx, cs, p, p.Objects(tok, false))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := Counts(plan); n != 0 {
		t.Fatalf("a second plan of the same objects changes %d:\n%s", n, FormatPlan(plan, 1))
	}
	// Someone scales the gateway by hand (kubectl scale).
	d, _ := cs.AppsV1().Deployments("apim-gateway").Get(ctx, "contoso-gw", metav1.GetOptions{})
	d.Spec.Replicas = ptr.To[int32](5)
	if _, err := cs.AppsV1().Deployments("apim-gateway").Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	other, _ := token.Parse("GatewayKey contoso-gw&202612301200&T1RIRVItdG9rZW4tbm90LXRoZS1jYW5hcnk=")
	plan, err = Plan(ctx, cs, p, p.Objects(other, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan {
		switch c.Ref() {
		case "Deployment/contoso-gw":
			if c.Action != Update || c.OnlySecretData() || !strings.Contains(strings.Join(c.Lines, "\n"), "-   replicas: 5") {
				t.Errorf("drift not shown: %s %v", c.Action, c.Lines)
			}
		case "Secret/contoso-gw-token":
			if !c.OnlySecretData() {
				t.Errorf("a new token is not a data-only change: %v", c.Lines)
			}
		default:
			if c.Changed() {
				t.Errorf("%s changes: %v", c.Ref(), c.Lines)
			}
		}
	}
	text := FormatPlan(plan, 1)
	if strings.Contains(text, canary) || strings.Contains(text, "T1RIRVIt") {
		t.Fatalf("the plan shows a token:\n%s", text)
	}
}
