package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/testdir"
)

// Bad input to `demo api add` is refused before any cluster is looked
// for, each with what is wrong and the fix.
func TestDemoAPIAddRefusesBadInput(t *testing.T) {
	env := map[string]string{"APIMDEV_HOME": testdir.New(t)}
	for _, tt := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"mine", "--path", "/mine"}, ExitUsage, []string{"needs --path /PATH and --backend URL"}},
		{[]string{"mine", "--backend", "http://mine:8080"}, ExitUsage, []string{"needs --path /PATH and --backend URL"}},
		{[]string{"Mine", "--path", "/mine", "--backend", "http://mine:8080"}, ExitFailure, []string{`API name "Mine" is not a DNS label`, "fix: use lower-case"}},
		{[]string{"mine", "--path", "/echo", "--backend", "http://mine:8080"}, ExitFailure, []string{"clashes with it", "fix: pick another name and path"}},
		{[]string{"mine", "--path", "/mine", "--backend", "mine:8080"}, ExitFailure, []string{"must start with http:// or https://", "fix: give the backend as http://HOST:PORT"}},
		{[]string{"mine", "--path", "/mine", "--backend", "http://mine:8080/?debug=1"}, ExitFailure, []string{"query", "fix: the gateway appends the caller's path and query"}},
		{[]string{"mine", "--path", "mine", "--backend", "http://mine:8080"}, ExitFailure, []string{`--path "mine" is not a path such as /mine`}},
	} {
		r := apimdev(t, env, "", append([]string{"demo", "api", "add"}, tt.args...)...)
		if r.code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, tt.code, r.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.err, w) {
				t.Errorf("%v: missing %q in %s", tt.args, w, r.err)
			}
		}
	}
}

// A cluster without the demo (or a real gateway's) gets the error that
// says what to do on Azure.
func TestDemoAPIStateOutsideTheDemo(t *testing.T) {
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	cfg := config.Default()
	cfg.Cluster.Name = "contoso"
	s := &pipeline.Session{Client: fake.NewClientset(), Config: cfg}
	_, err := demoAPIState(cmd, s)
	var nd *demo.NotDemoError
	if !errors.As(err, &nd) || !strings.Contains(err.Error(), `cluster "contoso" runs no demo`) || !strings.Contains(nd.Hint(), "portal") ||
		!strings.Contains(nd.Hint(), "backend URL") {
		t.Fatalf("no demo: %v", err)
	}
	// The demo's Secret is there, but the gateway polls Azure, not the demo.
	s.Client = fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: demo.ServiceName, Namespace: demo.Namespace},
		Data: map[string][]byte{"STANDIN_GATEWAY_KEY": []byte("k")}})
	if _, err := demoAPIState(cmd, s); !errors.As(err, &nd) {
		t.Errorf("a real gateway's cluster: %v", err)
	}
	s.Config.Gateway.Endpoint = demo.Endpoint
	if st, err := demoAPIState(cmd, s); err != nil || !st.Found {
		t.Errorf("the demo: %+v, %v", st, err)
	}
}

// add prints the URL through the forward and a curl line with the key's
// placeholder, never the key; without a forward it says how to start one.
func TestPrintDemoAPI(t *testing.T) {
	files, err := state.ForCluster(testdir.New(t), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Forward.HTTPPort = 18080
	var out, errb bytes.Buffer
	a := &app{streams: Streams{Out: &out, Err: &errb}, getenv: func(string) string { return "" }}
	s := &pipeline.Session{Config: cfg, Files: files}
	a.printDemoAPI(s, demo.API{Name: "mine", Path: "/mine", BackendURL: "http://mine:8080", SubscriptionRequired: true})
	for _, want := range []string{"added API mine: /mine → http://mine:8080 (" + demo.Label + ")", "next poll (every 10s)",
		"http://127.0.0.1:18080/mine/", `curl -H "Ocp-Apim-Subscription-Key: $(apimdev demo key)" http://127.0.0.1:18080/mine/`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "apimdev forward") {
		t.Errorf("no word on the missing forward: %q", errb.String())
	}
	out.Reset()
	a.printDemoAPI(s, demo.API{Name: "open", Path: "/open", BackendURL: "http://mine:8080"})
	if !strings.Contains(out.String(), "  curl http://127.0.0.1:18080/open/\n") || strings.Contains(out.String(), "Subscription-Key") {
		t.Errorf("an API without a key:\n%s", out.String())
	}
}
