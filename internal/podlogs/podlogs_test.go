package podlogs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "gw", Labels: map[string]string{"app": "contoso-gw"}},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func stamp(d time.Duration, text string) string {
	return t0.Add(d).Format(time.RFC3339Nano) + " " + text + "\n"
}

// streams is an Opener of canned logs; a pod's stream is the text given,
// then, when follow is set, open until ctx ends.
type streams struct {
	mu   sync.Mutex
	text map[string]string
	opts map[string]*corev1.PodLogOptions
}

func (s *streams) open(ctx context.Context, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts == nil {
		s.opts = map[string]*corev1.PodLogOptions{}
	}
	s.opts[pod] = o
	t, ok := s.text[pod]
	if !ok {
		return nil, fmt.Errorf("no logs for %s", pod)
	}
	if !o.Follow {
		return io.NopCloser(strings.NewReader(t)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, t)
		<-ctx.Done()
		pw.Close()
	}()
	return pr, nil
}

// Two pods' lines come out in time order, each with its pod, and a pod that
// has not started is skipped.
func TestDumpInterleavesByTime(t *testing.T) {
	pending := pod("contoso-gw-abc-3")
	pending.Status = corev1.PodStatus{}
	cs := fake.NewClientset(pod("contoso-gw-abc-1"), pod("contoso-gw-abc-2"), pending)
	st := &streams{text: map[string]string{
		"contoso-gw-abc-1": stamp(0, "one-a") + stamp(2*time.Second, "one-b"),
		"contoso-gw-abc-2": stamp(time.Second, "two-a") + stamp(3*time.Second, "two-b"),
	}}
	var got []string
	err := Stream(context.Background(), Options{Client: cs, Namespace: "gw", Selector: "app=contoso-gw", Since: 10 * time.Minute, Open: st.open},
		func(l Line) { got = append(got, l.Pod[len("contoso-gw-abc-"):]+":"+l.Text) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "1:one-a 2:two-a 1:one-b 2:two-b" {
		t.Errorf("order %v", got)
	}
	if o := st.opts["contoso-gw-abc-1"]; !o.Timestamps || o.SinceSeconds == nil || *o.SinceSeconds != 600 {
		t.Errorf("log options %+v", o)
	}
	if err := Stream(context.Background(), Options{Client: cs, Namespace: "gw", Selector: "app=contoso-gw", Pod: "nope", Open: st.open}, func(Line) {}); err == nil || !strings.Contains(err.Error(), "no pod nope") {
		t.Errorf("unknown pod: %v", err)
	}
}

// Following: a pod that appears during the run (a rollout's new pod) is
// streamed too, lines stay in time order, and cancelling stops cleanly with
// every goroutine joined (the race detector and the return prove it).
func TestFollowPicksUpNewPods(t *testing.T) {
	cs := fake.NewClientset(pod("contoso-gw-old-1"))
	st := &streams{text: map[string]string{
		"contoso-gw-old-1": stamp(0, "old-a") + stamp(2*time.Second, "old-b"),
		"contoso-gw-new-1": stamp(time.Second, "new-a") + stamp(3*time.Second, "new-b"),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got, events []string
	done := make(chan error, 1)
	go func() {
		done <- Stream(ctx, Options{Client: cs, Namespace: "gw", Selector: "app=contoso-gw", Follow: true, Reorder: 100 * time.Millisecond, Open: st.open,
			Events: func(p string, started bool) {
				mu.Lock()
				events = append(events, fmt.Sprintf("%s %v", p, started))
				mu.Unlock()
			}},
			func(l Line) { mu.Lock(); got = append(got, l.Text); mu.Unlock() })
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (got %v, events %v)", what, got, events)
			}
		}
	}
	count := func(n int) func() bool { return func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n } }
	waitFor("the old pod's lines", count(2))
	if _, err := cs.CoreV1().Pods("gw").Create(ctx, pod("contoso-gw-new-1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the new pod's lines", count(4))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a cancelled follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "old-a old-b new-a new-b" {
		// The new pod's lines arrive after the old pod's were emitted: time
		// order holds within the reorder window only.
		t.Errorf("lines %v", got)
	}
	if strings.Join(events, " ") != "contoso-gw-old-1 true contoso-gw-new-1 true" {
		t.Errorf("events %v", events)
	}
}

// JSON lines are read into level, message and fields; logfmt too; the
// level filter keeps lines that name none.
func TestReadAndFormat(t *testing.T) {
	e := Read(`{"time":"2026-12-01T12:00:00Z","level":"WARN","msg":"configuration endpoint unreachable","error":"dial tcp: i/o timeout","ready":true,"request":{"path":"/echo"}}`)
	if e.Level != "warn" || e.Message != "configuration endpoint unreachable" || len(e.Fields) != 3 {
		t.Fatalf("%+v", e)
	}
	l := Line{Time: t0, Pod: "contoso-gw-abc-1", Text: "x"}
	text := e.Text(l, Short(l.Pod, "contoso-gw"))
	if !strings.Contains(text, " abc-1 WARN  configuration endpoint unreachable error=\"dial tcp: i/o timeout\" ready=true request=") {
		t.Errorf("text %q", text)
	}
	if b, _ := e.JSONLine(l); !strings.Contains(string(b), `"pod":"contoso-gw-abc-1"`) || !strings.Contains(string(b), `"log":{`) {
		t.Errorf("json %s", b)
	}
	lf := Read(`time=2026-12-01T12:00:00Z level=ERROR msg="the token \"x\" expired" standin=yes`)
	if lf.Level != "error" || lf.Message != `the token "x" expired` {
		t.Errorf("logfmt %+v", lf)
	}
	for _, c := range []struct {
		e    Entry
		min  string
		want bool
	}{{e, "warn", true}, {e, "error", false}, {Read("panic: boom"), "error", true}, {Read(`{"level":"Information","msg":"x"}`), "warn", false}} {
		if got := c.e.AtLeast(c.min); got != c.want {
			t.Errorf("%+v at least %s = %v", c.e, c.min, got)
		}
	}
	if _, err := Level("loud"); err == nil {
		t.Error("--level loud accepted")
	}
	p := &Painter{}
	if a, b := p.Paint("a", "x"), p.Paint("b", "x"); a == b || p.Paint("a", "x") != a {
		t.Error("colours are not one per pod")
	}
}
