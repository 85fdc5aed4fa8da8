package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/testdir"
)

// usersKubeconfig is a user's ~/.kube/config with three contexts.
const usersKubeconfig = `apiVersion: v1
kind: Config
current-context: work
contexts:
- {name: work, context: {cluster: work, user: work}}
- {name: home, context: {cluster: home, user: home}}
- {name: staging, context: {cluster: work, user: work, namespace: staging}}
clusters:
- {name: work, cluster: {server: 'https://work.example:6443'}}
- {name: home, cluster: {server: 'https://home.example:6443'}}
users:
- {name: work, user: {token: w}}
- {name: home, user: {token: h}}
`

// `up --kubeconfig ~/.kube/config` over a file of three contexts is refused
// in preflight with the fix, before anything is created, and the file is
// byte for byte as it was.
func TestUpRefusesAKubeconfigItDidNotCreate(t *testing.T) {
	w := newWorld(t)
	user := filepath.Join(testdir.New(t), "config")
	if err := os.WriteFile(user, []byte(usersKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	w.asks = func(c *config.Config) { c.Cluster.Kubeconfig = user }
	_, err := w.up(UpOptions{})
	var ke *cluster.KubeconfigError
	if !errors.As(err, &ke) || ke.Path != user || len(ke.Others) != 7 {
		t.Fatalf("err = %v", err)
	}
	if n := w.kind.asked("Ensure"); n != 0 {
		t.Errorf("the cluster step ran %d time(s) after the refusal", n)
	}
	if b, _ := os.ReadFile(user); string(b) != usersKubeconfig {
		t.Errorf("the user's kubeconfig changed:\n%s", b)
	}
}

// With --merge-kubeconfig the same file is the target of a merge of the
// cluster's context (without switching to it unless asked), and apimdev
// keeps its own file for itself.
func TestUpMergesIntoTheUsersKubeconfigWhenAsked(t *testing.T) {
	w := newWorld(t)
	user := filepath.Join(testdir.New(t), "config")
	if err := os.WriteFile(user, []byte(usersKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	w.asks = func(c *config.Config) { c.Cluster.Kubeconfig, c.Cluster.MergeKubeconfig = user, true }
	if _, err := w.up(UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := w.kind.asked("MergeKubeconfig " + user + " false"); n != 1 {
		t.Errorf("merges into %s: %d; calls %v", user, n, w.kind.calls)
	}
	if _, err := w.up(UpOptions{SwitchContext: true}); err != nil {
		t.Fatal(err)
	}
	if n := w.kind.asked("MergeKubeconfig " + user + " true"); n != 1 {
		t.Errorf("--switch-context was not passed on: %v", w.kind.calls)
	}
}

// A smoke spec with ${APIMDEV_TOKEN} stops up in preflight, before the
// cluster step, naming the variable.
func TestUpRefusesASmokeSpecThatWouldSendTheToken(t *testing.T) {
	w := newWorld(t)
	spec := filepath.Join(testdir.New(t), "smoke.yaml")
	body := "apiVersion: apimdev.io/v1alpha1\nkind: SmokeSpec\ncalls:\n- name: leak\n  path: /echo\n  headers: {Authorization: \"GatewayKey ${APIMDEV_TOKEN}\"}\n"
	if err := os.WriteFile(spec, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	w.asks = func(c *config.Config) { c.Smoke.File = spec }
	_, err := w.up(UpOptions{})
	var se *smoke.SecretError
	if !errors.As(err, &se) || se.Var != "APIMDEV_TOKEN" {
		t.Fatalf("err = %v", err)
	}
	if n := w.kind.asked("Ensure"); n != 0 {
		t.Errorf("the cluster step ran after the refusal")
	}
}
