package demo

import (
	"bytes"
	"context"
	"errors"
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
)

// The vector was printed by the stand-in itself:
// STANDIN_GATEWAY_KEY=workshop-test-key standin-gateway mint-token --id demo-gw --expiry 203001011200
const standinVector = "GatewayKey demo-gw&203001011200&0B6vLfRcW5IrGtUhmJzVihTB9HdMCXcZ/FcQ1KyV/Ht8+7JUDf8URMfLSlXZZdrOoys9lGITZcUjAfMs2zDHQw=="

func TestMintMatchesTheStandin(t *testing.T) {
	t.Parallel()
	got := Mint("workshop-test-key", "demo-gw", time.Date(2030, 1, 1, 12, 0, 42, 0, time.UTC))
	if got != standinVector {
		t.Fatalf("Mint = %s\nwant   %s", got, standinVector)
	}
	tok, err := Verify("workshop-test-key", standinVector)
	if err != nil || tok.GatewayID != "demo-gw" || !tok.HasExpiry {
		t.Fatalf("Verify: %v %+v", err, tok)
	}
	if _, err := Verify("another-key", standinVector); !errors.Is(err, ErrSignature) {
		t.Fatalf("another key verified: %v", err)
	}
}

func TestKeysAreRandomAndTokensReused(t *testing.T) {
	t.Parallel()
	a, err := NewKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKeys(nil)
	if a.Signing == b.Signing || a.Subscription == b.Subscription || len(a.Signing) != 48 || a.Signing == a.Subscription {
		t.Fatalf("keys: %+v %+v", a, b)
	}
	fixed, _ := NewKeys(bytes.NewReader(bytes.Repeat([]byte{7}, 48)))
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	tok, reused, err := fixed.Token("demo-gw", "", now)
	if err != nil || reused || !tok.Expiry.Equal(now.Add(TokenValidity)) {
		t.Fatalf("new token: %v %v %v", tok, reused, err)
	}
	for _, tt := range []struct {
		name, existing string
		at             time.Time
		reused         bool
	}{
		{"same demo, weeks left", tok.SecretValue(), now.Add(24 * time.Hour), true},
		{"same demo, days left", tok.SecretValue(), now.Add(TokenValidity - 3*24*time.Hour), false},
		{"another demo's token", Mint(a.Signing, "demo-gw", now.Add(TokenValidity)), now, false},
		{"another gateway", Mint(fixed.Signing, "other-gw", now.Add(TokenValidity)), now, false},
		{"garbage", "GatewayKey x", now, false},
	} {
		_, reused, err := fixed.Token("demo-gw", tt.existing, tt.at)
		if err != nil || reused != tt.reused {
			t.Errorf("%s: reused %v, err %v", tt.name, reused, err)
		}
	}
}

func TestDeployDemoKeepsTheFirstTokenAndWaits(t *testing.T) {
	t.Parallel()
	cs := fake.NewClientset()
	// The fake has no controllers: mark the Deployment ready when applied.
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace, Generation: 1},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1}}
		cs.Tracker().Add(d)
		return true, d, nil
	})
	ctx := context.Background()
	s := &Setup{Keys: Keys{Signing: "sk", Subscription: "sub"}, Image: DefaultImage, GatewayID: "demo-gw", TokenSHA256: "first", Poll: time.Millisecond}
	var lines []string
	what, err := s.DeployDemo(ctx, cs, func(f string, a ...any) { lines = append(lines, f) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, Label) || !strings.Contains(what, Endpoint) {
		t.Errorf("done line: %s", what)
	}
	st, err := Read(ctx, cs)
	if err != nil || !st.Found || st.Keys != s.Keys || st.InitialTokenSHA != "first" || st.Image != DefaultImage {
		t.Fatalf("read back: %v %+v", err, st)
	}
	// A second run with a rotated token keeps the first fingerprint.
	s.TokenSHA256 = "second"
	if _, err := s.DeployDemo(ctx, cs, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if st, _ := Read(ctx, cs); st.InitialTokenSHA != "first" {
		t.Errorf("initial token fingerprint became %q", st.InitialTokenSHA)
	}
}

func TestWaitExplainsAMissingImage(t *testing.T) {
	t.Parallel()
	cs := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "standin-config-1", Namespace: Namespace, Labels: map[string]string{"app": ServiceName}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "dial tcp: lookup registry-1.docker.io: no such host"}}}}},
	})
	s := &Setup{Image: DefaultImage, Poll: time.Millisecond, Timeout: time.Second}
	err := s.wait(context.Background(), cs)
	var ie *ImageError
	if !errors.As(err, &ie) || !strings.Contains(ie.Hint(), "make demo-image") {
		t.Fatalf("got %v", err)
	}
}

func TestObjectsAreLabelled(t *testing.T) {
	t.Parallel()
	s := &Setup{Keys: Keys{Signing: "sk", Subscription: "sub"}, Image: DefaultImage}
	for _, o := range s.Objects("x") {
		m := o.(metav1.Object)
		if m.GetLabels()[LabelDemo] != "true" || m.GetAnnotations()["apimdev.io/note"] != Label {
			t.Errorf("%T %s is not labelled as the demo", o, m.GetName())
		}
	}
	if !IsStandinImage(DefaultImage) || IsStandinImage("mcr.microsoft.com/azure-api-management/gateway:2.11.1") {
		t.Error("IsStandinImage")
	}
	calls := SmokeCalls("sub")
	if calls[0].Headers[SubscriptionHeader] != "sub" || calls[1].Expect.Status != 401 {
		t.Errorf("smoke calls: %+v", calls)
	}
}

// The kubelet's "failed to sync secret cache" on a new node passes by
// itself: the wait goes on (and times out here, as nothing becomes ready),
// while a real configuration error fails at once.
func TestWaitRidesOutTheKubeletsSecretCache(t *testing.T) {
	t.Parallel()
	pod := func(msg string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "standin-config-1", Namespace: Namespace, Labels: map[string]string{"app": ServiceName}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}}}}},
		}
	}
	s := &Setup{Image: DefaultImage, Poll: time.Millisecond, Timeout: 50 * time.Millisecond}
	msg := "failed to sync secret cache: timed out waiting for the condition"
	err := s.wait(context.Background(), fake.NewClientset(pod(msg)))
	if err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("the cache race was taken as fatal: %v", err)
	}
	// Lasting to the deadline, it is what the error says.
	if want := "(pod standin-config-1: CreateContainerConfigError: " + msg + ")"; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q: %v", want, err)
	}
	// Passing, it is waited out: the service becomes ready after the
	// waiter has seen the error three times.
	cs := fake.NewClientset(pod(msg), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace}})
	var looks atomic.Int32
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		looks.Add(1)
		return false, nil, nil
	})
	cs.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if looks.Load() < 3 {
			return false, nil, nil
		}
		return true, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace},
			Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, ReadyReplicas: 1, Replicas: 1}}, nil
	})
	long := &Setup{Image: DefaultImage, Poll: time.Millisecond, Timeout: time.Minute}
	if err := long.wait(context.Background(), cs); err != nil || looks.Load() < 3 {
		t.Fatalf("the passing cache race: %v after %d look(s)", err, looks.Load())
	}
	err = s.wait(context.Background(), fake.NewClientset(pod(`secret "standin-config" not found`)))
	if err == nil || !strings.Contains(err.Error(), "configuration service's pod standin-config-1: CreateContainerConfigError") {
		t.Fatalf("a missing Secret: %v", err)
	}
}
