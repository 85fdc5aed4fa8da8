package gateway

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

const (
	tenant      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	appClientID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	appCanary   = "CANARY-client-secret-Xq8~4fGh.77"
	wiClientID  = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	sovereignly = "https://login.microsoftonline.us"
)

func authConfig(mode string) config.Config {
	cfg := config.Default()
	cfg.Gateway.Name = "contoso-gw"
	cfg.Gateway.Endpoint = "contoso.configuration.azure-api.net"
	cfg.Gateway.Image = "mcr.microsoft.com/azure-api-management/gateway:2.11.1"
	switch mode {
	case config.AuthEntraApp:
		cfg.Gateway.Auth = config.Auth{Type: mode, TenantID: tenant, ClientID: appClientID, Authority: sovereignly}
	case config.AuthWorkloadIdentity:
		cfg.Gateway.Auth = config.Auth{Type: mode, ClientID: wiClientID}
	}
	return cfg
}

func find[T runtime.Object](objs []runtime.Object) (T, bool) {
	for _, o := range objs {
		if x, ok := o.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// Each authentication mode, dev and prod, rendered as render and export show
// it (secret placeholders), against golden files.
func TestAuthModesGolden(t *testing.T) {
	for _, mode := range []string{config.AuthEntraApp, config.AuthWorkloadIdentity} {
		cfg := authConfig(mode)
		prod, err := Prod(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range map[string]Profile{"dev": Dev(cfg), "prod": prod} {
			out, err := YAML(p.Objects(token.Token{}, true))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "auth-"+mode+"-"+name+".golden.yaml", out)
		}
	}
}

func TestEntraAppPutsTheSecretOnlyInTheSecret(t *testing.T) {
	cfg := authConfig(config.AuthEntraApp)
	sec, err := token.AppSecret("  " + appCanary + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Profile{Dev(cfg), must(Prod(cfg))} {
		objs := p.Objects(sec, false)
		s, _ := find[*corev1.Secret](objs)
		if got := string(s.Data[AppSecretKey]); got != appCanary {
			t.Errorf("%s: Secret %s = %q, want the client secret as it is", p.Name, AppSecretKey, got)
		}
		if _, ok := s.Data[TokenKey]; ok {
			t.Errorf("%s: the Secret still has a token key", p.Name)
		}
		cm, _ := find[*corev1.ConfigMap](objs)
		want := map[string]string{"config.service.auth": "azureAdApp", "config.service.auth.azureAd.tenantId": tenant,
			"config.service.auth.azureAd.clientId": appClientID, "config.service.auth.azureAd.authority": sovereignly, "gateway.name": "contoso-gw"}
		for k, v := range want {
			if cm.Data[k] != v {
				t.Errorf("%s: ConfigMap %s = %q, want %q", p.Name, k, cm.Data[k], v)
			}
		}
		d, _ := find[*appsv1.Deployment](objs)
		env := d.Spec.Template.Spec.Containers[0].Env
		if len(env) == 0 || env[0].Name != "config.service.auth.azureAd.clientSecret" || env[0].ValueFrom.SecretKeyRef.Key != AppSecretKey {
			t.Errorf("%s: container env %+v", p.Name, env)
		}
		for _, e := range env {
			if e.Name == "config.service.auth" {
				t.Errorf("%s: config.service.auth from the Secret would override azureAdApp", p.Name)
			}
		}
		y, _ := YAML(objs)
		if n := strings.Count(string(y), "Q0FOQVJZLWNsaWVudC1zZWNyZXQtWHE4fjRmR2guNzc="); n != 1 {
			t.Errorf("%s: the secret's base64 appears %d times in the objects, want once (the Secret)", p.Name, n)
		}
		red, _ := YAML(p.Objects(sec, true))
		if strings.Contains(string(red), appCanary) {
			t.Errorf("%s: the redacted render shows the client secret", p.Name)
		}
	}
}

func TestWorkloadIdentityHasNoSecretAndMarksTheServiceAccount(t *testing.T) {
	cfg := authConfig(config.AuthWorkloadIdentity)
	for _, p := range []Profile{Dev(cfg), must(Prod(cfg))} {
		objs := p.Objects(token.Token{}, false)
		if _, ok := find[*corev1.Secret](objs); ok {
			t.Errorf("%s: workload identity renders a Secret", p.Name)
		}
		sa, ok := find[*corev1.ServiceAccount](objs)
		if !ok || sa.Labels[WorkloadIdentityUse] != "true" || sa.Annotations[WorkloadIdentityClientID] != wiClientID {
			t.Fatalf("%s: ServiceAccount %+v", p.Name, sa)
		}
		d, _ := find[*appsv1.Deployment](objs)
		spec := d.Spec.Template
		if spec.Labels[WorkloadIdentityUse] != "true" || spec.Spec.ServiceAccountName != "contoso-gw" {
			t.Errorf("%s: pod labels %v, serviceAccountName %q", p.Name, spec.Labels, spec.Spec.ServiceAccountName)
		}
		if len(spec.Spec.Containers[0].Env) != 0 && p.Name == "dev" {
			t.Errorf("%s: env %+v", p.Name, spec.Spec.Containers[0].Env)
		}
		cm, _ := find[*corev1.ConfigMap](objs)
		if cm.Data["config.service.auth"] != "workloadIdentity" || cm.Data["gateway.name"] != "contoso-gw" {
			t.Errorf("%s: ConfigMap %v", p.Name, cm.Data)
		}
	}
}

func must(p Profile, err error) Profile {
	if err != nil {
		panic(err)
	}
	return p
}

func TestAuthFixNamesTheWrongInput(t *testing.T) {
	for _, c := range []struct{ log, want string }{
		{`{"level":"ERROR","msg":"Microsoft Entra ID refused the gateway's app credentials","error":"(invalid_client): AADSTS7000215: Invalid client secret provided."}`, "client secret (AADSTS7000215)"},
		{`AADSTS700016: Application with identifier 'x' was not found`, "--client-id"},
		{`AADSTS90002: Tenant 'x' not found`, "--tenant-id"},
		{`configuration endpoint refused the token`, ""},
	} {
		got := authFix([]string{"first line", c.log})
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("authFix(%q) = %q, want it to say %q", c.log, got, c.want)
		}
	}
}
