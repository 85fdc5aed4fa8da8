package gateway

import (
	"context"
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

var update = flag.Bool("update", false, "rewrite golden files")

const canary = "Q0FOQVJZLWdhdGV3YXktdGVzdC03NzE="

func testProfile(t *testing.T) (Profile, token.Token) {
	t.Helper()
	cfg := config.Default()
	cfg.Gateway.Name = "contoso-gw"
	cfg.Gateway.Endpoint = "https://contoso.configuration.azure-api.net"
	tok, err := token.Parse("GatewayKey contoso-gw&202612301200&" + canary)
	if err != nil {
		t.Fatal(err)
	}
	return Dev(cfg), tok
}

func TestDevGolden(t *testing.T) {
	p, tok := testProfile(t)
	out, err := YAML(p.Objects(tok, true))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), canary) {
		t.Fatal("render leaked the token")
	}
	golden := "testdata/dev.golden.yaml"
	if *update {
		os.WriteFile(golden, out, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		t.Fatalf("dev profile differs from %s (run go test -update):\n%s", golden, out)
	}
}

// The portal's facts, asserted directly so the golden file cannot drift from them.
func TestDevMatchesPortal(t *testing.T) {
	t.Parallel()
	p, tok := testProfile(t)
	objs := p.Objects(tok, false)
	if len(objs) != 6 {
		t.Fatalf("want namespace + 5 objects, got %d", len(objs))
	}
	sec := objs[1].(*corev1.Secret)
	if sec.Name != "contoso-gw-token" || string(sec.Data["value"]) != "GatewayKey contoso-gw&202612301200&"+canary {
		t.Fatalf("secret: %s", sec.Name)
	}
	cm := objs[2].(*corev1.ConfigMap)
	if cm.Data["config.service.endpoint"] != "contoso.configuration.azure-api.net" || cm.Data["neighborhood.host"] != "contoso-gw-instance-discovery" {
		t.Fatalf("configmap: %v", cm.Data)
	}
	d := objs[3].(*appsv1.Deployment)
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		*d.Spec.Template.Spec.TerminationGracePeriodSeconds != 60 || c.Image != config.DefaultImage ||
		c.ReadinessProbe.HTTPGet.Path != "/status-0123456789abcdef" || c.ReadinessProbe.PeriodSeconds != 5 || c.ReadinessProbe.FailureThreshold != 3 ||
		c.Env[0].Name != "config.service.auth" || c.Env[0].ValueFrom.SecretKeyRef.Name != "contoso-gw-token" || c.EnvFrom[0].ConfigMapRef.Name != "contoso-gw-env" {
		t.Fatalf("deployment differs from the portal's: %+v", d.Spec)
	}
	if len(c.Ports) != 4 || c.Ports[2].Protocol != corev1.ProtocolUDP {
		t.Fatalf("ports: %+v", c.Ports)
	}
	live := objs[4].(*corev1.Service)
	if live.Name != "contoso-gw-live-traffic" || live.Spec.Type != corev1.ServiceTypeLoadBalancer || live.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal ||
		live.Spec.Ports[0].Port != 80 || live.Spec.Ports[0].TargetPort.IntValue() != 8080 || live.Spec.Ports[1].Port != 443 || live.Spec.Ports[1].TargetPort.IntValue() != 8081 {
		t.Fatalf("live service: %+v", live.Spec)
	}
	disc := objs[5].(*corev1.Service)
	if disc.Spec.ClusterIP != corev1.ClusterIPNone || disc.Spec.Ports[0].Port != 4290 || disc.Spec.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Fatalf("discovery service: %+v", disc.Spec)
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	p, tok := testProfile(t)
	cs := fake.NewClientset()
	ctx := context.Background()
	first, err := Apply(ctx, cs, p.Objects(tok, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range first {
		if !a.Created {
			t.Fatalf("first apply: %s", a)
		}
	}
	sec, err := cs.CoreV1().Secrets("apim-gateway").Get(ctx, "contoso-gw-token", metav1.GetOptions{})
	if err != nil || !strings.HasSuffix(string(sec.Data["value"]), canary) {
		t.Fatalf("secret not stored: %v", err)
	}
	// The fake clientset keeps no resourceVersion, so "unchanged" versus
	// "configured" is proven on a real API server by the e2e suite; here the
	// second apply must find every object and update it in place.
	p.Image = "example.azurecr.io/gateway:2.11.1"
	again, err := Apply(ctx, cs, p.Objects(tok, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range again {
		if a.Created {
			t.Fatalf("re-apply created %s again", a)
		}
	}
	d, _ := cs.AppsV1().Deployments("apim-gateway").Get(ctx, "contoso-gw", metav1.GetOptions{})
	if d.Spec.Template.Spec.Containers[0].Image != p.Image {
		t.Fatalf("image not updated in place: %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	// An empty target prunes everything the gateway has but its namespace.
	plan, err := Plan(ctx, cs, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := Prune(ctx, cs, plan)
	if err != nil || len(gone) != 5 {
		t.Fatalf("delete: %v %v", gone, err)
	}
}

// world is a fake cluster whose Deployment and pods the test shapes.
func world(t *testing.T, p Profile, d *appsv1.Deployment, pods ...*corev1.Pod) *fake.Clientset {
	t.Helper()
	objs := []runtime.Object{d}
	for _, pod := range pods {
		objs = append(objs, pod)
	}
	return fake.NewClientset(objs...)
}

func deployment(p Profile, replicas, ready, updated, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: p.DeploymentName(), Namespace: p.Namespace, Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: total, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: ready},
	}
}

func pod(p Profile, name string, st corev1.ContainerStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: p.Selector()},
		Status:     corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{st}},
	}
}

func waiting(reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "contoso-gw", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
}

func TestWaitReady(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	cs := world(t, p, deployment(p, 1, 0, 1, 1))
	// The Deployment becomes ready on the third look.
	looks := 0
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		looks++
		if looks >= 3 {
			return true, deployment(p, 1, 1, 1, 1), nil
		}
		return false, nil, nil
	})
	var progress []string
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: 5 * time.Second, Progress: func(s string) { progress = append(progress, s) }}
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || progress[0] != "pods ready 0/1" {
		t.Fatalf("progress: %q", progress)
	}
}

func TestWaitReportsRolloutCounts(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	cs := world(t, p, deployment(p, 3, 3, 0, 3))
	// A rolling update of three replicas with maxSurge 1: one new pod at a
	// time, the old ones leaving as the new ones get ready.
	steps := []*appsv1.Deployment{
		deployment(p, 3, 3, 0, 3), deployment(p, 3, 3, 1, 4), deployment(p, 3, 3, 1, 4),
		deployment(p, 3, 4, 1, 4), deployment(p, 3, 3, 2, 4), deployment(p, 3, 3, 3, 3),
	}
	looks := 0
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := steps[min(looks, len(steps)-1)]
		looks++
		return true, d, nil
	})
	var got []RolloutCounts
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: 5 * time.Second, OnStatus: func(c RolloutCounts) { got = append(got, c) }}
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []RolloutCounts{
		{Desired: 3, Old: 3, New: 0, Ready: 3}, {Desired: 3, Old: 3, New: 1, Ready: 3}, // the repeat is not reported
		{Desired: 3, Old: 3, New: 1, Ready: 4}, {Desired: 3, Old: 2, New: 2, Ready: 3}, {Desired: 3, Old: 0, New: 3, Ready: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts:\n got %+v\nwant %+v", got, want)
	}
}

func TestWaitWakesOnWatchEvents(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	cs := world(t, p, deployment(p, 1, 0, 1, 1))
	// With an hour between looks, only a watch event can end the wait soon.
	first := make(chan struct{}, 1)
	w := &Waiter{Client: cs, Profile: p, Interval: time.Hour, Timeout: time.Minute,
		Progress: func(string) {
			select {
			case first <- struct{}{}:
			default:
			}
		}}
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background()) }()
	<-first
	if _, err := cs.AppsV1().Deployments(p.Namespace).UpdateStatus(context.Background(), deployment(p, 1, 1, 1, 1), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not look again when the Deployment changed")
	}
}

func TestWaitExplainsFailures(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	crash := waiting("CrashLoopBackOff", "back-off 10s restarting failed container")
	crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	tests := []struct {
		name string
		st   corev1.ContainerStatus
		want []string
	}{
		{"image pull", waiting("ImagePullBackOff", `Back-off pulling image "mcr.microsoft.com/azure-api-management/gateway:v2"`), []string{"ImagePullBackOff", "cannot pull", "Back-off pulling image", "docker image ls"}},
		{"crash loop", crash, []string{"CrashLoopBackOff", "last exit code 3", "last log lines:", "fake logs", "wrong --endpoint"}},
		{"config error", waiting("CreateContainerConfigError", `secret "contoso-gw-token" not found`), []string{"CreateContainerConfigError", "contoso-gw-token", "re-run `apimdev up`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pd := pod(p, "contoso-gw-abc", tt.st)
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: p.Namespace}, InvolvedObject: corev1.ObjectReference{Name: pd.Name},
				Type: corev1.EventTypeWarning, Reason: "Failed", Message: "seen by the kubelet " + canary, Count: 3}
			cs := fake.NewClientset(deployment(p, 1, 0, 1, 1), pd, ev)
			w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: 5 * time.Second,
				Redact: func(s string) string { return strings.ReplaceAll(s, canary, "[redacted]") }}
			err := w.Wait(context.Background())
			var re *RolloutError
			if !errors.As(err, &re) {
				t.Fatalf("want RolloutError, got %v", err)
			}
			all := err.Error() + "\nfix: " + re.Hint()
			for _, s := range append(tt.want, "Failed: seen by the kubelet [redacted] (x3)") {
				if !strings.Contains(all, s) {
					t.Errorf("missing %q in:\n%s", s, all)
				}
			}
			if strings.Contains(all, canary) {
				t.Error("canary leaked through events")
			}
		})
	}
}

// The kubelet's "failed to sync secret cache" while it mounts the Secret on
// a busy node passes by itself: the wait goes on through it, and the
// rollout that follows succeeds.
func TestWaitRidesOutTheKubeletsSecretCache(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	cs := fake.NewClientset(deployment(p, 1, 0, 1, 1), pod(p, "contoso-gw-y", waiting("CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition")))
	// The pods are looked at on every look the Deployment is not ready; it
	// becomes ready once the waiter has seen the error three times.
	var podLooks atomic.Int32
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		podLooks.Add(1)
		return false, nil, nil
	})
	cs.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if podLooks.Load() >= 3 {
			return true, deployment(p, 1, 1, 1, 1), nil
		}
		return false, nil, nil
	})
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: time.Minute}
	if err := w.Wait(context.Background()); err != nil {
		t.Fatalf("the kubelet's passing error failed the wait: %v", err)
	}
	if n := podLooks.Load(); n < 3 {
		t.Fatalf("ready after %d look(s) at the pods, want 3", n)
	}
}

// The same error lasting to the deadline fails the wait then, and says
// what the kubelet says, with the Secret's fix.
func TestWaitTimeoutNamesALastingSecretCacheError(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	msg := "failed to sync secret cache: timed out waiting for the condition"
	cs := fake.NewClientset(deployment(p, 1, 0, 1, 1), pod(p, "contoso-gw-y", waiting("CreateContainerConfigError", msg)))
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: 30 * time.Millisecond}
	err := w.Wait(context.Background())
	var re *RolloutError
	if !errors.As(err, &re) || re.Reason != "NotReady" {
		t.Fatalf("a passing kubelet error failed the wait at once: %v", err)
	}
	if want := "not ready after 30ms; CreateContainerConfigError: " + msg; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q: %v", want, err)
	}
	if h := re.Hint(); !strings.Contains(h, "check that Secret "+p.SecretName()) {
		t.Errorf("hint: %s", h)
	}
}

func TestWaitTimeoutExplains(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	running := corev1.ContainerStatus{Name: "contoso-gw", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: p.Namespace}, InvolvedObject: corev1.ObjectReference{Name: "contoso-gw-x"},
		Type: corev1.EventTypeWarning, Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503"}
	cs := fake.NewClientset(deployment(p, 1, 0, 1, 1), pod(p, "contoso-gw-x", running), ev)
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: 30 * time.Millisecond}
	err := w.Wait(context.Background())
	for _, s := range []string{"NotReady", "not ready after 30ms", "readiness probe not passing", "Unhealthy: Readiness probe failed", "fake logs"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("missing %q in %v", s, err)
		}
	}
	if h := (err.(*RolloutError)).Hint(); !strings.Contains(h, "contoso.configuration.azure-api.net") {
		t.Errorf("hint: %s", h)
	}
}

func TestWaitCancelled(t *testing.T) {
	t.Parallel()
	p, _ := testProfile(t)
	cs := world(t, p, deployment(p, 1, 0, 1, 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &Waiter{Client: cs, Profile: p, Interval: time.Millisecond, Timeout: time.Minute}
	if err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
