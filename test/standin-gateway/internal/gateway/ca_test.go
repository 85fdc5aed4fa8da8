package gateway_test

import (
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/selfsigned"
)

// A config service whose certificate a private CA signed is not trusted: the
// gateway stays unready and logs why, at error, once. (With the CA in
// SSL_CERT_DIR it is; the e2e suite proves that on the cluster, as the pool
// is read once per process.)
func TestPrivateCAEndpointIsNotTrusted(t *testing.T) {
	ca, err := selfsigned.NewAuthority("Contoso Private Root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	addr := startConfigServiceWith(t, &lockedBuffer{}, configservice.Options{SubscriptionKeys: []string{subKey}, Issuer: ca})
	logs := &lockedBuffer{}
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t)}, logs)
	// A second refusal is logged only after the first fetch's outcome was
	// acted on in full (the backup looked for): readiness is settled.
	waitFor(t, "the refusal, repeated, in the log", func() bool { return logs.count("x509: certificate signed by unknown authority") >= 2 })
	if f.g.Ready() {
		t.Fatal("ready against an endpoint signed by an unknown CA")
	}
	if n := logs.count(`"level":"Error"`); n != 1 {
		t.Errorf("%d error lines, want 1 (then debug while it repeats):\n%s", n, logs)
	}
	if logs.count(`"level":"Error","timestamp"`, `"eventType":"Error"`, "UntrustedRoot", `"source":"ConfigurationApiClient (stand-in`) != 1 {
		t.Errorf("the error is not the Error event of ConfigurationApiClient with an UntrustedRoot exception:\n%s", logs)
	}

	// The well-known CA's endpoint is trusted.
	ok := startConfigServiceWith(t, &lockedBuffer{}, configservice.Options{SubscriptionKeys: []string{subKey}})
	startGateway(t, gateway.Options{Endpoint: ok, Auth: goodToken(t)}, nil).waitReady(t)
}
