package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
)

// The busy hook fails the status endpoint for a while; APIs keep serving,
// and it needs a subscription key.
func TestBusyHookFailsStatusOnly(t *testing.T) {
	addr := startConfigService(t, &lockedBuffer{}, subKey)
	f := startGateway(t, gateway.Options{Endpoint: addr, Auth: goodToken(t)}, nil)
	f.waitReady(t)
	if r := do(t, http.MethodPost, f.httpURL+gateway.BusyPath+"?for=300ms", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", r.status)
	}
	if r := do(t, http.MethodPost, f.httpURL+gateway.BusyPath+"?for=1h", withKey(subKey), nil); r.status != http.StatusBadRequest {
		t.Fatalf("for=1h: %d", r.status)
	}
	if r := do(t, http.MethodPost, f.httpURL+gateway.BusyPath+"?for=300ms", withKey(subKey), nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "gw-pod-0") {
		t.Fatalf("busy: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, f.httpURL+gateway.StatusPath, nil, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("status while busy: %d", r.status)
	}
	if r := do(t, http.MethodGet, f.httpURL+"/echo/x", withKey(subKey), nil); r.status != http.StatusOK {
		t.Errorf("echo while busy: %d", r.status)
	}
	waitFor(t, "status 200 again", func() bool {
		return do(t, http.MethodGet, f.httpURL+gateway.StatusPath, nil, nil).status == http.StatusOK
	})
}
