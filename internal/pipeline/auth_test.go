package pipeline

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/token"
)

const (
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraClient = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
)

func entraWorld(t *testing.T) (*world, token.Token) {
	t.Helper()
	w := newWorld(t)
	w.cfg.Gateway.Auth = config.Auth{Type: config.AuthEntraApp, TenantID: entraTenant, ClientID: entraClient}
	sec, err := token.AppSecret("CANARY-app-secret-" + testCanary)
	if err != nil {
		t.Fatal(err)
	}
	return w, sec
}

func (w *world) secret() *corev1.Secret {
	w.t.Helper()
	s, err := w.kube.CoreV1().Secrets("apim-gateway").Get(context.Background(), "contoso-gw-token", metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// Entra app authentication through up, a re-run without the secret, status,
// promote, and a rotation of the client secret: the secret is only ever in
// the Secret, under the chart's key; the ids are in the ConfigMap.
func TestEntraAppLifecycle(t *testing.T) {
	t.Parallel()
	w, sec := entraWorld(t)
	mustUp(t, w, UpOptions{Token: sec})
	s := w.secret()
	if string(s.Data[gateway.AppSecretKey]) != sec.SecretValue() || len(s.Data) != 1 {
		t.Fatalf("Secret data keys %v", keys(s.Data))
	}
	cm, _ := w.kube.CoreV1().ConfigMaps("apim-gateway").Get(context.Background(), "contoso-gw-env", metav1.GetOptions{})
	if cm.Data["config.service.auth"] != "azureAdApp" || cm.Data["config.service.auth.azureAd.clientId"] != entraClient || cm.Data["gateway.name"] != "contoso-gw" {
		t.Fatalf("ConfigMap %v", cm.Data)
	}
	// A second up with no secret and no auth flags keeps the mode and the
	// cluster's secret (the record says entraApp).
	w.cfg.Gateway.Auth = config.Auth{}
	before := len(w.kube.Actions())
	if _, err := w.up(UpOptions{NoToken: true}); err != nil {
		t.Fatalf("up without the secret: %v\n%s", err, w.log.text())
	}
	if w.writes(before) != 0 {
		t.Errorf("the re-run wrote %d objects\n%s", w.writes(before), w.log.text())
	}
	w.kind.state = cluster.ClusterOurs
	st := w.session().Status(context.Background())
	if st.Auth == nil || st.Auth.Type != config.AuthEntraApp || st.Auth.ClientID != entraClient || st.TokenExpiry != nil {
		t.Fatalf("status auth %+v, token expiry %+v", st.Auth, st.TokenExpiry)
	}
	res := promote(t, w, PromoteOptions{To: "prod"})
	found := false
	for _, c := range res.Checks {
		if c.Name == "credentials" && strings.Contains(c.Detail, entraClient) {
			found = true
		}
	}
	if !found {
		t.Errorf("promote checks %+v", res.Checks)
	}
	next, _ := token.AppSecret("CANARY-next-secret-" + testCanary)
	rot, err := w.session().RotateToken(context.Background(), next, PromoteOptions{})
	if err != nil || rot.Traffic.Failed != 0 {
		t.Fatalf("rotate: %+v %v\n%s", rot, err, w.log.text())
	}
	if got := string(w.secret().Data[gateway.AppSecretKey]); got != next.SecretValue() {
		t.Fatal("the Secret does not hold the new client secret")
	}
	if strings.Contains(w.log.text(), "CANARY") {
		t.Error("a client secret reached the event log")
	}
	if b, ok := w.files.CachedRecord(); !ok || strings.Contains(string(b), "CANARY") || !strings.Contains(string(b), entraClient) {
		t.Errorf("record copy (has secret? has ids?):\n%s", b)
	}
}

// With no secret anywhere, the first up names the Entra flags.
func TestEntraAppWithoutASecretSaysHow(t *testing.T) {
	t.Parallel()
	w, _ := entraWorld(t)
	_, err := w.up(UpOptions{NoToken: true})
	if err == nil || !strings.Contains(w.log.text()+err.Error(), "--client-secret-file") {
		t.Fatalf("up with no client secret: %v\n%s", err, w.log.text())
	}
}

// Workload identity cannot run on a local cluster: preflight says why and
// what to do, and nothing is made.
func TestWorkloadIdentityIsRefusedOnKind(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.cfg.Gateway.Auth = config.Auth{Type: config.AuthWorkloadIdentity, ClientID: entraClient}
	_, err := w.up(UpOptions{NoToken: true})
	if err == nil || !strings.Contains(w.log.text()+err.Error(), "OIDC issuer") || w.kind.asked("Ensure") != 0 {
		t.Fatalf("up with workload identity on kind: %v (Ensure called %d)\n%s", err, w.kind.asked("Ensure"), w.log.text())
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
