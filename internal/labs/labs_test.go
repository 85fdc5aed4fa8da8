package labs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/testdir"
)

var now = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// world is a fake machine: a cluster state, the objects in it, the forward,
// the smoke results and the pods' logs.
type world struct {
	state   cluster.ClusterState
	objs    []runtime.Object
	forward bool
	smoke   []smoke.Result
	logs    map[string]string
	answer  string
	base    string
	demo    *demo.State
	kubecfg string
}

func (w *world) env(t *testing.T) Env {
	cfg := config.Default()
	cfg.Gateway.Name = "demo-gw"
	cs := fake.NewClientset(w.objs...)
	return Env{
		Inspect:      func(context.Context) (cluster.ClusterState, string) { return w.state, "" },
		Client:       func() (kubernetes.Interface, error) { return cs, nil },
		Profile:      gateway.Dev(cfg),
		ProdReplicas: 3,
		Forward:      func() (bool, int) { return w.forward, 58080 },
		Kubeconfig:   w.kubecfg,
		Smoke:        func(context.Context) ([]smoke.Result, error) { return w.smoke, nil },
		Logs: func(_ context.Context, pod string) (string, error) {
			if l, ok := w.logs[pod]; ok {
				return l, nil
			}
			return "", errors.New("no such pod")
		},
		Answer:   w.answer,
		Baseline: w.base,
		Demo:     w.demo,
		Now:      func() time.Time { return now },
	}
}

func deployment(profile string, replicas, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-gw", Namespace: "apim-gateway", Labels: map[string]string{gateway.LabelProfile: profile}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "demo-gw", Image: demo.DefaultImage}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: ready, Replicas: replicas},
	}
}

func pod(name string, created time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apim-gateway", Labels: map[string]string{"app": "demo-gw"}, CreationTimestamp: metav1.NewTime(created)},
		Spec:       corev1.PodSpec{NodeName: "apimdev-ws-control-plane", Containers: []corev1.Container{{Name: "demo-gw", Image: demo.DefaultImage}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func secret(value string, changed time.Time) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-gw-token", Namespace: "apim-gateway", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour)),
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "apimdev", Time: ptr.To(metav1.NewTime(now.Add(-time.Hour)))}, {Manager: "kubectl", Time: ptr.To(metav1.NewTime(changed))}}},
		Data: map[string][]byte{"value": []byte(value)},
	}
}

// Gateway logs as the gateway writes them: text in ANSI colours (the default).
const textLog = "version: 2.11.1-standin\n" +
	"\x1b[37m[Info] 2026-05-1T09:59:00.120 [GatewayLogs], source: GatewayLogs (stand-in, not Azure API Management), isRequestSuccess: True, totalTime: 0, category: GatewayLogs, method: GET, url: http://127.0.0.1:8080/echo/apimdev-demo, responseCode: 200, apiId: echo\x1b[0m\n"
const lab2Log = textLog +
	"\x1b[37m[Info] 2026-05-1T09:59:30.450 [GatewayLogs], source: GatewayLogs (stand-in, not Azure API Management), isRequestSuccess: True, totalTime: 0, category: GatewayLogs, method: GET, url: http://127.0.0.1:8080/echo/lab2, responseCode: 200, apiId: echo\x1b[0m\n"

func run(t *testing.T, n int, w *world) Result {
	t.Helper()
	r, err := Run(context.Background(), n, w.env(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func failed(r Result) string {
	var s []string
	for _, c := range r.Checks {
		if !c.OK {
			s = append(s, c.Name+": "+c.Detail)
		}
	}
	return strings.Join(s, "; ")
}

// Every lab fails before its commands and passes after them.
func TestLabsFailBeforeAndPassAfter(t *testing.T) {
	key := demo.Keys{Signing: "signing", Subscription: "sub"}
	first := demo.Mint(key.Signing, "demo-gw", now.Add(30*24*time.Hour))
	second := demo.Mint(key.Signing, "demo-gw", now.Add(29*24*time.Hour))
	rotatedAt := now.Add(-10 * time.Minute)
	ds := &demo.State{Found: true, Keys: key, InitialTokenSHA: demo.TokenSHA256(first)}
	kubecfg := filepath.Join(testdir.New(t), "kubeconfig")
	os.WriteFile(kubecfg, []byte("x"), 0o600)
	okSmoke := []smoke.Result{{Name: "health (http)", Pass: true}, {Name: "demo echo with key", Pass: true}}

	for _, tt := range []struct {
		lab           int
		before, after *world
		checks        int
	}{
		{1, &world{state: cluster.ClusterAbsent},
			&world{state: cluster.ClusterOurs, forward: true, objs: []runtime.Object{deployment("dev", 1, 1)}}, 3},
		{2, &world{state: cluster.ClusterOurs, forward: true, smoke: okSmoke, objs: []runtime.Object{deployment("dev", 1, 1), pod("demo-gw-a", now)}, logs: map[string]string{"demo-gw-a": textLog}},
			&world{state: cluster.ClusterOurs, forward: true, smoke: okSmoke, objs: []runtime.Object{deployment("dev", 1, 1), pod("demo-gw-a", now)}, logs: map[string]string{"demo-gw-a": lab2Log}}, 3},
		{3, &world{state: cluster.ClusterOurs, objs: []runtime.Object{pod("demo-gw-a", now)}, logs: map[string]string{"demo-gw-a": lab2Log}},
			&world{state: cluster.ClusterOurs, objs: []runtime.Object{pod("demo-gw-a", now)}, logs: map[string]string{"demo-gw-a": lab2Log}, answer: "demo-gw-a"}, 3},
		{4, &world{state: cluster.ClusterOurs, objs: []runtime.Object{deployment("dev", 1, 1)}},
			&world{state: cluster.ClusterOurs, objs: []runtime.Object{deployment("prod", 3, 3), &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "demo-gw", Namespace: "apim-gateway"}, Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}}}}, 4},
		{5, &world{state: cluster.ClusterOurs, demo: ds, base: ds.InitialTokenSHA, objs: []runtime.Object{deployment("prod", 3, 3), secret(first, now.Add(-time.Hour)), pod("demo-gw-a", now.Add(-30*time.Minute))}},
			&world{state: cluster.ClusterOurs, demo: ds, base: ds.InitialTokenSHA, objs: []runtime.Object{deployment("prod", 3, 3), secret(second, rotatedAt),
				pod("demo-gw-b", rotatedAt.Add(time.Second)), pod("demo-gw-c", rotatedAt.Add(20*time.Second)), pod("demo-gw-d", rotatedAt.Add(40*time.Second))}}, 4},
		{6, &world{state: cluster.ClusterOurs, forward: true, kubecfg: kubecfg},
			&world{state: cluster.ClusterAbsent, kubecfg: filepath.Join(testdir.New(t), "gone")}, 3},
	} {
		before, after := run(t, tt.lab, tt.before), run(t, tt.lab, tt.after)
		if before.Passed {
			t.Errorf("lab %d passes before its commands: %+v", tt.lab, before.Checks)
		}
		if !after.Passed {
			t.Errorf("lab %d fails after its commands: %s", tt.lab, failed(after))
		}
		if len(before.Checks) != tt.checks || len(after.Checks) != tt.checks {
			t.Errorf("lab %d: %d checks before, %d after, want %d each", tt.lab, len(before.Checks), len(after.Checks), tt.checks)
		}
		for _, c := range before.Checks {
			if !c.OK && c.Hint == "" && !strings.HasPrefix(c.Detail, "not checked") {
				t.Errorf("lab %d: failed check %s has no hint", tt.lab, c.Name)
			}
		}
	}
}

func TestLab3WrongAnswer(t *testing.T) {
	w := &world{state: cluster.ClusterOurs, objs: []runtime.Object{pod("demo-gw-a", now)}, logs: map[string]string{"demo-gw-a": lab2Log}, answer: "demo-gw"}
	r := run(t, 3, w)
	if r.Passed || !strings.Contains(r.Checks[1].Detail, `"demo-gw" is not one of the gateway's 1 pod(s)`) || !strings.Contains(r.Checks[1].Hint, `"pod" field`) {
		t.Fatalf("%+v", r.Checks)
	}
}

func TestLab5Explains(t *testing.T) {
	key := demo.Keys{Signing: "signing"}
	first := demo.Mint(key.Signing, "demo-gw", now.Add(30*24*time.Hour))
	ds := &demo.State{Found: true, Keys: key}
	rotatedAt := now.Add(-time.Minute)
	for _, tt := range []struct {
		name  string
		value string
		pods  []runtime.Object
		want  string
	}{
		{"signed by someone else", demo.Mint("other", "demo-gw", now.Add(time.Hour)), []runtime.Object{pod("demo-gw-b", now)}, "not signed with this demo's key"},
		{"expired", demo.Mint(key.Signing, "demo-gw", now.Add(-time.Hour)), []runtime.Object{pod("demo-gw-b", now)}, "expired"},
		{"not restarted", demo.Mint(key.Signing, "demo-gw", now.Add(time.Hour)), []runtime.Object{pod("demo-gw-a", rotatedAt.Add(-time.Minute))}, "started before the Secret last changed"},
	} {
		objs := append([]runtime.Object{deployment("dev", 1, 1), secret(tt.value, rotatedAt)}, tt.pods...)
		r := run(t, 5, &world{state: cluster.ClusterOurs, demo: ds, base: demo.TokenSHA256(first), objs: objs})
		if r.Passed || !strings.Contains(failed(r), tt.want) {
			t.Errorf("%s: %s", tt.name, failed(r))
		}
	}
}

func TestUnknownLab(t *testing.T) {
	if _, err := Run(context.Background(), 9, Env{}); err == nil || !strings.Contains(err.Error(), "lab list") {
		t.Fatalf("got %v", err)
	}
}

func TestServedCallFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  string
		want bool
	}{
		{"text in colour", lab2Log, true},
		{"text without colour", "[Info] 2026-05-1T09:59:30.450 [GatewayLogs], source: GatewayLogs (stand-in, not Azure API Management), isRequestSuccess: True, totalTime: 0, category: GatewayLogs, method: GET, url: https://localhost:8081/echo/lab2, responseCode: 200, apiId: echo\n", true},
		{"json", `{"level":"Info","timestamp":"2026-05-01T09:59:30.4500000Z","eventType":"GatewayLogs","source":"GatewayLogs (stand-in, not Azure API Management)","isRequestSuccess":true,"totalTime":0,"category":"GatewayLogs","method":"GET","url":"http://127.0.0.1:8080/echo/lab2","responseCode":200,"apiId":"echo"}`, true},
		{"text, another path", textLog, false},
		{"text, 401", "[Info] 2026-05-1T09:59:30.450 [GatewayLogs], url: http://h/echo/lab2, responseCode: 401\n", false},
		{"json, 401", `{"eventType":"GatewayLogs","url":"http://h/echo/lab2","responseCode":401}`, false},
		{"json, a longer path", `{"eventType":"GatewayLogs","url":"http://h/echo/lab2/x","responseCode":200}`, false},
		{"json, not a request", `{"eventType":"ConfigInitialSyncCompleted","message":"url /echo/lab2 responseCode 200","url":"http://h/echo/lab2","responseCode":200}`, false},
		{"text, not a request", "[Info] 2026-05-1T09:59:30.450 [Other], url: http://h/echo/lab2, responseCode: 200\n", false},
	}
	for _, tc := range tests {
		if got := servedCall(tc.log); got != tc.want {
			t.Errorf("%s: servedCall = %v, want %v", tc.name, got, tc.want)
		}
	}
}
