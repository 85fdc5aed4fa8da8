// Package podlogs streams the logs of every pod of a selector, interleaved
// in time order with the pod's name, following pods as they come and go (a
// rollout replaces them under it), as stern does for a Deployment.
package podlogs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Line is one log line of one pod.
type Line struct {
	Time time.Time
	Pod  string
	Text string // the container's line, without the kubelet's timestamp
}

// Opener opens one container's log stream; the default is the API server's
// pods/log. Tests give canned streams.
type Opener func(ctx context.Context, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error)

// Options say whose logs, from when, and how.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	Selector  string // label selector of the pods
	Container string // "" is the pod's only (first) container
	Pod       string // only this pod
	Follow    bool
	Since     time.Duration // 0: everything the kubelet keeps
	Previous  bool          // the previous container's (a crash)
	// Reorder is how long a followed line waits for earlier lines of other
	// pods before it is emitted (default 250 ms).
	Reorder time.Duration
	Open    Opener
	// Events, if set, is told when a pod's stream starts and ends.
	Events func(pod string, started bool)
	// Redact, if set, rewrites each line's text before anything reads it
	// (a credential is scrubbed).
	Redact func(string) string
}

// Stream emits every line to emit, in time order, from one goroutine. It
// returns when the logs end (not following) or ctx is done (following):
// ctx's end is a clean stop, not an error.
func Stream(ctx context.Context, o Options, emit func(Line)) error {
	return stream(ctx, o, emit, nil)
}

// Entries is Stream with each pod's lines grouped into entries (see
// Grouper), emitted in the order of their first lines. Following, an
// entry is closed once its pod has said nothing more for Reorder.
func Entries(ctx context.Context, o Options, emit func(Logged)) error {
	if o.Reorder <= 0 {
		o.Reorder = 250 * time.Millisecond
	}
	g := &Grouper{Emit: emit}
	err := stream(ctx, o, g.Add, func(now time.Time) { g.Close(now.Add(-o.Reorder)) })
	g.Flush()
	return err
}

// stream is Stream; tick, when set, is called after each emitting pass
// while following.
func stream(ctx context.Context, o Options, emit func(Line), tick func(time.Time)) error {
	if o.Reorder <= 0 {
		o.Reorder = 250 * time.Millisecond
	}
	if o.Open == nil {
		o.Open = func(ctx context.Context, pod string, lo *corev1.PodLogOptions) (io.ReadCloser, error) {
			return o.Client.CoreV1().Pods(o.Namespace).GetLogs(pod, lo).Stream(ctx)
		}
	}
	list, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	if err != nil {
		return fmt.Errorf("listing the pods (%s) in %s: %w", o.Selector, o.Namespace, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if o.Pod == "" || p.Name == o.Pod {
			pods = append(pods, p)
		}
	}
	if o.Pod != "" && len(pods) == 0 && !o.Follow {
		return fmt.Errorf("no pod %s among %s in %s", o.Pod, o.Selector, o.Namespace)
	}
	if !o.Follow {
		return dump(ctx, o, pods, emit)
	}
	return follow(ctx, o, list.ResourceVersion, pods, emit, tick)
}

func (o Options) logOptions() *corev1.PodLogOptions {
	lo := &corev1.PodLogOptions{Container: o.Container, Follow: o.Follow, Timestamps: true, Previous: o.Previous}
	if o.Since > 0 {
		lo.SinceSeconds = ptr.To(int64(o.Since.Seconds()))
	}
	return lo
}

// dump reads every pod's logs to the end and emits them sorted by time.
func dump(ctx context.Context, o Options, pods []corev1.Pod, emit func(Line)) error {
	var all []Line
	var errs []error
	for _, p := range pods {
		if !started(p, o.Previous) {
			continue
		}
		if o.Events != nil {
			o.Events(p.Name, true)
		}
		lines, err := read(ctx, o, p.Name, o.logOptions(), nil)
		if o.Events != nil {
			o.Events(p.Name, false)
		}
		all = append(all, lines...)
		if err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", p.Name, err))
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	for _, l := range all {
		emit(l)
	}
	return errors.Join(errs...)
}

// started says the pod has a container whose logs can be asked for.
func started(p corev1.Pod, previous bool) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if previous && cs.LastTerminationState.Terminated != nil || !previous && (cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// read reads one stream to its end; each line goes to each (when set) or is
// kept and returned.
func read(ctx context.Context, o Options, pod string, lo *corev1.PodLogOptions, each func(Line)) ([]Line, error) {
	rc, err := o.Open(ctx, pod, lo)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []Line
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := parse(pod, sc.Text())
		if o.Redact != nil {
			l.Text = o.Redact(l.Text)
		}
		if each != nil {
			each(l)
		} else {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return out, err
	}
	return out, nil
}

// parse splits the kubelet's RFC 3339 timestamp from the line.
func parse(pod, s string) Line {
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			return Line{Time: t, Pod: pod, Text: rest}
		}
	}
	return Line{Time: time.Now(), Pod: pod, Text: s}
}

// follow streams every running pod and every pod that starts while it
// runs; lines wait Reorder for earlier ones of other pods.
func follow(ctx context.Context, o Options, rv string, pods []corev1.Pod, emit func(Line), tick func(time.Time)) error {
	lines := make(chan Line, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// streaming and last are touched by this goroutine only.
	streaming := map[string]bool{}
	last := map[string]time.Time{}
	ended := make(chan string, 16)
	start := func(p corev1.Pod) {
		if streaming[p.Name] || !started(p, false) || o.Pod != "" && p.Name != o.Pod {
			return
		}
		streaming[p.Name] = true
		lo := o.logOptions()
		if t, ok := last[p.Name]; ok {
			// A restarted container: from just after the last line seen.
			lo.SinceSeconds, lo.SinceTime = nil, &metav1.Time{Time: t.Add(time.Nanosecond)}
		}
		if o.Events != nil {
			o.Events(p.Name, true)
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			_, _ = read(ctx, o, name, lo, func(l Line) {
				select {
				case lines <- l:
				case <-ctx.Done():
				}
			})
			select {
			case ended <- name:
			case <-ctx.Done():
			}
		}(p.Name)
	}
	for _, p := range pods {
		start(p)
	}
	w, err := o.Client.CoreV1().Pods(o.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: o.Selector, ResourceVersion: rv})
	if err != nil {
		return fmt.Errorf("watching the pods: %w", err)
	}
	defer func() { w.Stop() }() // the last watch, after a rewatch

	var held []heldLine
	ticker := time.NewTicker(o.Reorder / 2)
	defer ticker.Stop()
	flush := func(all bool) {
		sort.SliceStable(held, func(i, j int) bool { return held[i].Time.Before(held[j].Time) })
		cut := time.Now().Add(-o.Reorder)
		n := 0
		for n < len(held) && (all || held[n].arrived(cut)) {
			emit(held[n].Line)
			n++
		}
		held = held[n:]
	}
	events := w.ResultChan()
	for {
		select {
		case <-ctx.Done():
			flush(true)
			return nil
		case l := <-lines:
			last[l.Pod] = l.Time
			held = append(held, heldLine{l, time.Now()})
		case name := <-ended:
			delete(streaming, name)
			if o.Events != nil {
				o.Events(name, false)
			}
		case ev, ok := <-events:
			if !ok {
				// The watch expired: list again and go on from there.
				w.Stop()
				if w, err = rewatch(ctx, o, start); err != nil {
					flush(true)
					return err
				}
				events = w.ResultChan()
				continue
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				start(*p)
			}
		case now := <-ticker.C:
			flush(false)
			if tick != nil {
				tick(now)
			}
		}
	}
}

// heldLine is a line waiting for its turn; when it arrived.
type heldLine struct {
	Line
	at time.Time
}

func (h heldLine) arrived(before time.Time) bool { return h.at.Before(before) }

// rewatch lists the pods again (starting any new), then watches from there.
func rewatch(ctx context.Context, o Options, start func(corev1.Pod)) (watch.Interface, error) {
	list, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	if err != nil {
		return nil, err
	}
	for _, p := range list.Items {
		start(p)
	}
	return o.Client.CoreV1().Pods(o.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: o.Selector, ResourceVersion: list.ResourceVersion})
}
