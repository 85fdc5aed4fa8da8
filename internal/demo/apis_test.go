package demo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// readyClientset is a fake cluster whose configuration service Deployment
// reads as rolled out and ready (the fake runs no controllers) while the
// object applied stays what the tracker holds.
func readyClientset() *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		g := a.(k8stesting.GetAction)
		obj, err := cs.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), g.GetNamespace(), g.GetName())
		if err != nil {
			return true, nil, err
		}
		d := obj.(*appsv1.Deployment).DeepCopy()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1}
		return true, d, nil
	})
	return cs
}

func deployment(t *testing.T, cs *fake.Clientset) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(Namespace).Get(context.Background(), ServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// apisEnv is the configuration service's STANDIN_APIS, if it has one.
func apisEnv(d *appsv1.Deployment) *corev1.EnvVar {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == EnvAPIs {
			return &e
		}
	}
	return nil
}

func TestDemoAPIsSurviveUpReruns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := readyClientset()
	nop := func(string, ...any) {}
	up := func() {
		t.Helper()
		// What `up --demo` does on every run: a Setup that knows nothing of
		// the APIs added since.
		s := &Setup{Keys: Keys{Signing: "sk", Subscription: "sub"}, Image: DefaultImage, GatewayID: "demo-gw", TokenSHA256: "first"}
		if _, err := s.DeployDemo(ctx, cs, nop); err != nil {
			t.Fatal(err)
		}
	}
	up()
	plain := deployment(t, cs)
	if apisEnv(plain) != nil || plain.Spec.Template.Annotations[annotationAPIs] != "" {
		t.Fatalf("a demo without APIs carries the list: %+v", plain.Spec.Template)
	}

	st, err := Read(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	mine := API{Name: "mine", Path: "/mine", BackendURL: "http://mine:8080", SubscriptionRequired: true}
	if err := AddAPI(ctx, cs, st, mine, nop); err != nil {
		t.Fatal(err)
	}
	st, _ = Read(ctx, cs)
	open := API{Name: "open", Path: "/v1/open", BackendURL: "https://open.example/base"}
	if err := AddAPI(ctx, cs, st, open, nop); err != nil {
		t.Fatal(err)
	}
	withTwo := deployment(t, cs)
	hash := withTwo.Spec.Template.Annotations[annotationAPIs]
	env := apisEnv(withTwo)
	if hash == "" || env == nil || env.ValueFrom == nil || env.ValueFrom.ConfigMapKeyRef == nil ||
		env.ValueFrom.ConfigMapKeyRef.Name != RecordName || env.ValueFrom.ConfigMapKeyRef.Key != RecordAPIsKey {
		t.Fatalf("the configuration service does not read the list: env %+v, hash %q", env, hash)
	}
	cm, _ := cs.CoreV1().ConfigMaps(Namespace).Get(ctx, RecordName, metav1.GetOptions{})
	var inRecord []map[string]any
	if err := json.Unmarshal([]byte(cm.Data[RecordAPIsKey]), &inRecord); err != nil || len(inRecord) != 2 ||
		inRecord[1]["backendUrl"] != "https://open.example/base" || inRecord[1]["subscriptionRequired"] != false {
		t.Fatalf("record's list = %s (%v)", cm.Data[RecordAPIsKey], err)
	}

	// up again, twice: the APIs stay, and nothing restarts the service.
	up()
	up()
	st, err = Read(ctx, cs)
	if err != nil || len(st.APIs) != 2 || st.APIs[0] != mine || st.APIs[1] != open {
		t.Fatalf("after up re-runs: %+v, %v", st.APIs, err)
	}
	if d := deployment(t, cs); d.Spec.Template.Annotations[annotationAPIs] != hash || apisEnv(d) == nil {
		t.Errorf("up changed the list's hash or dropped the env: %v", d.Spec.Template.Annotations)
	}

	gone, err := RemoveAPI(ctx, cs, st, "mine", nop)
	if err != nil || gone != mine {
		t.Fatalf("RemoveAPI = %+v, %v", gone, err)
	}
	st, _ = Read(ctx, cs)
	if len(st.APIs) != 1 || st.APIs[0] != open {
		t.Fatalf("after remove: %+v", st.APIs)
	}
	if d := deployment(t, cs); d.Spec.Template.Annotations[annotationAPIs] == hash {
		t.Error("removing an API did not change the pod template: the service would keep serving it")
	}
	if _, err := RemoveAPI(ctx, cs, st, "mine", nop); err == nil || !strings.Contains(err.Error(), "no API named mine") {
		t.Errorf("removing it twice = %v", err)
	}
	if _, err := RemoveAPI(ctx, cs, st, "echo", nop); err == nil {
		t.Error("the echo API was removed")
	}
}

func TestCheckAPI(t *testing.T) {
	t.Parallel()
	existing := []API{{Name: "mine", Path: "/mine", BackendURL: "http://mine:8080", SubscriptionRequired: true}}
	ok := API{Name: "other", Path: "/v2/other", BackendURL: "https://other.apimdev-backends.svc.cluster.local:8443/base"}
	if err := CheckAPI(ok, existing); err != nil {
		t.Fatalf("CheckAPI(%+v) = %v", ok, err)
	}
	for _, tc := range []struct {
		a    API
		want string
	}{
		{API{Name: "Mine2", Path: "/x", BackendURL: "http://x"}, "not a DNS label"},
		{API{Name: "x", Path: "x", BackendURL: "http://x"}, "not a path"},
		{API{Name: "x", Path: "/x/", BackendURL: "http://x"}, "not a path"},
		{API{Name: "x", Path: "/x", BackendURL: "mine:8080"}, "must start with http"},
		{API{Name: "x", Path: "/x", BackendURL: "http://"}, "has no host"},
		{API{Name: "x", Path: "/x", BackendURL: "http://x?a=b"}, "query"},
		{API{Name: "x", Path: "/x", BackendURL: "http://x:0"}, "not 1-65535"},
		{API{Name: "x", Path: "/Echo", BackendURL: "http://x"}, "clashes"},
		{API{Name: "echo", Path: "/x", BackendURL: "http://x"}, "clashes"},
		{API{Name: "mine", Path: "/x", BackendURL: "http://x"}, "already has an API named mine"},
		{API{Name: "x", Path: "/MINE", BackendURL: "http://x"}, "is the demo's API mine already"},
	} {
		err := CheckAPI(tc.a, existing)
		var ae *APIError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) || ae.Hint() == "" {
			t.Errorf("CheckAPI(%+v) = %v, want an APIError with %q and a fix", tc.a, err, tc.want)
		}
	}
}

// A list edited into something unreadable is not overwritten by up.
func TestDeployDemoRefusesAnUnreadableList(t *testing.T) {
	t.Parallel()
	cs := readyClientset()
	cs.Tracker().Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RecordName, Namespace: Namespace}, Data: map[string]string{RecordAPIsKey: "[{"}})
	s := &Setup{Keys: Keys{Signing: "sk", Subscription: "sub"}, Image: DefaultImage, GatewayID: "demo-gw"}
	if _, err := s.DeployDemo(context.Background(), cs, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), RecordAPIsKey) {
		t.Fatalf("DeployDemo over a bad list = %v", err)
	}
}
