package gateway

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPodStatesAndReadyPod(t *testing.T) {
	t.Parallel()
	p := Profile{Namespace: "apim", Gateway: "gw"}
	now := metav1.Now()
	pod := func(name, app string, ready bool, restarts int32, gone bool) *corev1.Pod {
		x := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apim", Name: name, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{NodeName: "n1"}}
		if gone {
			x.DeletionTimestamp = &now
			x.Finalizers = []string{"keep"}
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		x.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		x.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}, {RestartCount: 1}}
		return x
	}
	c := fake.NewClientset(pod("gw-b", "gw", true, 2, false), pod("gw-a", "gw", false, 0, false), pod("gw-old", "gw", true, 0, true),
		pod("sink-1", "gw-statsd", false, 0, false), pod("sink-2", "gw-statsd", true, 0, false))
	ctx := context.Background()
	got, err := PodStates(ctx, c, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []PodState{{Name: "gw-a", Restarts: 1, Node: "n1"}, {Name: "gw-b", Ready: true, Restarts: 3, Node: "n1"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%+v", got)
	}
	if name, err := ReadyPod(ctx, c, "apim", "gw-statsd"); err != nil || name != "sink-2" {
		t.Fatalf("ready sink pod %q, %v", name, err)
	}
	if name, err := ReadyPod(ctx, c, "apim", "nothing"); err != nil || name != "" {
		t.Fatalf("no pod: %q, %v", name, err)
	}
}
