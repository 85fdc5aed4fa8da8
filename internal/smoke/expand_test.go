package smoke

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

const canaryToken = "contoso-gw&202612301200&Q0FOQVJZLXNtb2tlLXRlc3Q="

func expander() Expander {
	env := map[string]string{"APIMDEV_TOKEN": canaryToken, "APIM_SUBSCRIPTION_KEY": "k-123", "COPY_OF_TOKEN": "GatewayKey " + canaryToken}
	return Expander{Getenv: func(k string) string { return env[k] }, Protected: []string{"APIMDEV_TOKEN", "APIMDEV_CLIENT_SECRET"}, Secrets: []string{canaryToken}}
}

// A spec that would send the gateway's token through the gateway is refused
// before any call, naming the call, the place and the variable.
func TestASpecThatWouldSendACredentialIsRefused(t *testing.T) {
	spec := `apiVersion: apimdev.io/v1alpha1
kind: SmokeSpec
calls:
- name: orders
  path: /orders
  headers: {Ocp-Apim-Subscription-Key: "${APIM_SUBSCRIPTION_KEY}"}
- name: leak
  path: /echo
  headers: {Authorization: "GatewayKey ${APIMDEV_TOKEN}"}
`
	s, err := Parse("spec.yaml", strings.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	err = expander().Check(s.Calls)
	var se *SecretError
	if !errors.As(err, &se) || se.Var != "APIMDEV_TOKEN" || !strings.Contains(err.Error(), `smoke call "leak" header Authorization`) || !strings.Contains(se.Hint(), "APIM_SUBSCRIPTION_KEY") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), canaryToken) {
		t.Fatal("the error quotes the token")
	}
	for _, c := range []Call{
		{Name: "body", Body: `{"secret": "$APIMDEV_CLIENT_SECRET"}`},
		{Name: "copy", Headers: map[string]string{"X-Token": "${COPY_OF_TOKEN}"}},
	} {
		if err := expander().Check([]Call{c}); !errors.As(err, &se) {
			t.Errorf("%s: err = %v", c.Name, err)
		}
	}
	if !se.Held || se.Var != "COPY_OF_TOKEN" {
		t.Errorf("a variable holding the token: %+v", se)
	}
}

// A call that would send a credential fails unsent; the others go.
func TestRunNeverSendsACredential(t *testing.T) {
	var got atomic.Int32
	var leaked atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		for _, v := range r.Header {
			if strings.Contains(strings.Join(v, ""), canaryToken) {
				leaked.Store(true)
			}
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	r := &Runner{HTTPBase: srv.URL, Expand: expander()}
	rs := r.Run(context.Background(), []Call{
		{Name: "orders", Path: "/orders", Headers: map[string]string{"Ocp-Apim-Subscription-Key": "${APIM_SUBSCRIPTION_KEY}"}},
		{Name: "leak", Path: "/echo", Headers: map[string]string{"Authorization": "${APIMDEV_TOKEN}"}},
	})
	if got.Load() != 1 || leaked.Load() {
		t.Fatalf("calls received %d, token received %v", got.Load(), leaked.Load())
	}
	if !rs[0].Pass || rs[1].Pass || !strings.Contains(rs[1].Reason, "APIMDEV_TOKEN") {
		t.Fatalf("results %+v", rs)
	}
}
