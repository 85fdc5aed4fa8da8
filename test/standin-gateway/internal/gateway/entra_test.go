package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
)

const (
	tenantID     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID     = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	clientSecret = "CANARY-entra-secret~9Qx.1"
)

func entraService(t *testing.T, logs *lockedBuffer, secrets ...string) string {
	t.Helper()
	return startConfigServiceWith(t, logs, configservice.Options{SubscriptionKeys: []string{subKey},
		Entra: &configservice.EntraApp{TenantID: tenantID, ClientID: clientID, Secrets: secrets}})
}

func entraGateway(t *testing.T, addr, secret string, logs *lockedBuffer) *fixture {
	t.Helper()
	return startGateway(t, gateway.Options{Endpoint: addr, Auth: "azureAdApp", GatewayName: "contoso-gw",
		Entra: &gateway.EntraApp{TenantID: tenantID, ClientID: clientID, ClientSecret: secret, Authority: "https://" + addr}}, logs)
}

// The right client secret gets an access token from the stand-in token
// endpoint, the configuration endpoint takes it as a bearer token, and the
// gateway serves; either of two secrets works (a rotation's overlap).
func TestEntraAppGetsConfigurationWithAnAccessToken(t *testing.T) {
	svcLogs, gwLogs := &lockedBuffer{}, &lockedBuffer{}
	addr := entraService(t, svcLogs, "old-secret-1", clientSecret)
	f := entraGateway(t, addr, clientSecret, gwLogs)
	f.waitReady(t)
	if r := do(t, http.MethodGet, f.httpURL+"/echo/x", withKey(subKey), nil); r.status != http.StatusOK {
		t.Fatalf("echo through an Entra-authenticated gateway: %d %s", r.status, r.body)
	}
	if svcLogs.count("access token granted") == 0 {
		t.Errorf("no access token granted:\n%s", svcLogs)
	}
	for name, logs := range map[string]*lockedBuffer{"service": svcLogs, "gateway": gwLogs} {
		if strings.Contains(logs.String(), clientSecret) {
			t.Errorf("the %s log holds the client secret", name)
		}
	}
}

// A wrong secret is refused by the token endpoint with Entra ID's own error
// code; the gateway stays unready and says why, without the secret.
func TestEntraAppWrongSecretIsRefusedAndSaid(t *testing.T) {
	svcLogs, gwLogs := &lockedBuffer{}, &lockedBuffer{}
	addr := entraService(t, svcLogs, clientSecret)
	wrong := "CANARY-wrong-secret~0"
	f := entraGateway(t, addr, wrong, gwLogs)
	// A second refusal is logged only after the first was acted on in full.
	waitFor(t, "the refusal, repeated, in the gateway's log", func() bool { return gwLogs.count("AADSTS7000215") >= 2 })
	if f.g.Ready() {
		t.Fatal("ready with a wrong client secret")
	}
	if n := gwLogs.count("Microsoft Entra ID refused the gateway's app credentials"); n == 0 {
		t.Errorf("gateway log:\n%s", gwLogs)
	}
	if strings.Contains(gwLogs.String()+svcLogs.String(), wrong) {
		t.Error("a log holds the wrong secret")
	}
}

// A gateway token is no bearer token, and an access token no gateway token.
func TestBearerAndGatewayKeyAreNotInterchangeable(t *testing.T) {
	addr := entraService(t, &lockedBuffer{}, clientSecret)
	c := newClient()
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/configuration", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(goodToken(t), "GatewayKey "))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a gateway token as a bearer token: %d", resp.StatusCode)
	}
}

// Missing Entra settings keep the gateway unready and name each one.
func TestEntraAppMissingSettingsAreNamed(t *testing.T) {
	logs := &lockedBuffer{}
	f := startGateway(t, gateway.Options{Endpoint: closedAddr(t), Auth: "azureAdApp", Entra: &gateway.EntraApp{TenantID: tenantID}}, logs)
	waitFor(t, "the settings problem", func() bool { return logs.count("config.service.auth.azureAd.clientSecret") > 0 })
	if f.g.Ready() || logs.count("gateway.name") == 0 || logs.count("config.service.auth.azureAd.clientId") == 0 {
		t.Fatalf("log:\n%s", logs)
	}
}
