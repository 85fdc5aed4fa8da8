package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/docker/docker/api/types/container"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/exec"
)

// startingKind is one running cluster whose kubeconfig points at server.
type startingKind struct{ server string }

func (k startingKind) List() ([]string, error) { return []string{"apimdev"}, nil }
func (k startingKind) ListNodes(string) ([]nodes.Node, error) {
	return []nodes.Node{fakeNode("apimdev-control-plane")}, nil
}
func (k startingKind) Create(string, ...kindcluster.CreateOption) error { return nil }
func (k startingKind) Delete(string, string) error                      { return nil }
func (k startingKind) KubeConfig(string, bool) (string, error) {
	return fmt.Sprintf("apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: %q}\nusers:\n- name: u\n  user: {}\n", k.server), nil
}

type fakeNode string

func (n fakeNode) String() string                                             { return string(n) }
func (n fakeNode) Role() (string, error)                                      { return "control-plane", nil }
func (n fakeNode) IP() (string, string, error)                                { return "172.18.0.2", "", nil }
func (n fakeNode) SerialLogs(io.Writer) error                                 { return nil }
func (n fakeNode) Command(string, ...string) exec.Cmd                         { return nil }
func (n fakeNode) CommandContext(context.Context, string, ...string) exec.Cmd { return nil }

// nodeDocker says the node container runs, created and started when told.
type nodeDocker struct {
	*enginefake.Engine
	created, started time.Time
}

func (d *nodeDocker) ContainerInspect(ctx context.Context, _ string) (container.InspectResponse, error) {
	if err := ctx.Err(); err != nil {
		return container.InspectResponse{}, err // as the engine's client does
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{Created: d.created.Format(time.RFC3339Nano),
		State: &container.State{Running: true, StartedAt: d.started.Format(time.RFC3339Nano)}}}, nil
}

// An API server that has just started refuses the admin while its RBAC
// bootstraps (403), then 503: for a while after the node started that is
// "starting", with what it waits for; long after, "broken".
func TestInspectSaysStartingWhileTheAPIServerComesUp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		status int
		body   string
		delay  time.Duration
	}{
		{"RBAC not bootstrapped yet", http.StatusForbidden, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"apimdev\" is forbidden: User \"kubernetes-admin\" cannot get resource \"configmaps\"","reason":"Forbidden","code":403}`, 0},
		{"not ready", http.StatusServiceUnavailable, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}`, 0},
		// Under load the read times out: the look at the node must not
		// inherit its spent deadline (CI once saw "broken" 9 s after a restart).
		{"slower than the read's deadline", http.StatusForbidden, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`, 5200 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(tt.delay):
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			now := time.Now()
			for _, c := range []struct {
				started time.Duration // ago
				want    ClusterState
			}{{5 * time.Second, ClusterStarting}, {10 * time.Minute, ClusterBroken}} {
				d := &nodeDocker{Engine: enginefake.New(), created: now.Add(-time.Hour), started: now.Add(-c.started)}
				m := &Manager{Kind: startingKind{server: srv.URL}, Docker: d, Name: "apimdev", Kubeconfig: testdir.New(t) + "/none"}
				st, detail := m.Inspect(context.Background())
				if st != c.want {
					t.Errorf("node started %s ago: %s (%s), want %s", c.started, st, detail, c.want)
				}
				if st == ClusterStarting && (!strings.Contains(detail, "waiting for the API server") || tt.delay == 0 && !strings.Contains(detail, "node started 5s ago")) {
					t.Errorf("starting detail: %s", detail)
				}
				if _, ok := m.restartedWithin(context.Background(), StartingWindow); ok != (c.want == ClusterStarting) {
					t.Errorf("restartedWithin = %v for a node started %s ago (created an hour ago)", ok, c.started)
				}
			}
		})
	}
}

// A node restarted soon after it was made (a cluster made in seconds, then an
// engine restart) is a restart; a node whose start came with its creation is
// not.
func TestRestartedWithinSoonAfterTheCreate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, c := range []struct {
		createdBefore time.Duration // before the start
		want          bool
	}{{25 * time.Second, true}, {time.Hour, true}, {300 * time.Millisecond, false}} {
		d := &nodeDocker{Engine: enginefake.New(), created: now.Add(-5 * time.Second).Add(-c.createdBefore), started: now.Add(-5 * time.Second)}
		m := &Manager{Kind: startingKind{server: "http://127.0.0.1:1"}, Docker: d, Name: "apimdev"}
		if _, ok := m.restartedWithin(context.Background(), StartingWindow); ok != c.want {
			t.Errorf("node made %s before its start: restartedWithin = %v, want %v", c.createdBefore, ok, c.want)
		}
	}
}
