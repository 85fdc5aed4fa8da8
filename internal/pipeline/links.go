package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gwlink"
	"github.com/apimdev/apimdev/internal/podlogs"
)

// PodLink is one gateway pod's link to its configuration endpoint, as the
// pod's own log tells it (package gwlink).
type PodLink struct {
	Pod   string       `json:"pod"`
	State gwlink.State `json:"state"`
	// Seen is the kubelet's time of the log entry that decided State.
	Seen     time.Time `json:"seen,omitzero"`
	Event    string    `json:"event,omitempty"`
	Evidence string    `json:"evidence,omitempty"`
	link     gwlink.Link
}

// linkTail is how many of a pod's newest log lines are read for its link;
// a longer log has its head read too (up to linkHead bytes), where the
// start and the first sync are.
const (
	linkTail = 2000
	linkHead = 256 << 10
)

// Links reads each running gateway pod's log and says its link to the
// configuration endpoint, pods in name order. It changes nothing.
func (s *Session) Links(ctx context.Context) ([]PodLink, error) {
	if err := s.Connect(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Read)
	defer cancel()
	tails, err := s.logEntries(ctx, "", func(o *corev1.PodLogOptions) { o.TailLines = ptr.To[int64](linkTail) })
	if err != nil {
		return nil, err
	}
	list, err := s.Client.CoreV1().Pods(s.Names.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + s.Names.Gateway})
	if err != nil {
		return nil, fmt.Errorf("listing the gateway's pods: %w", err)
	}
	var out []PodLink
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || !runs(p, s.Names.Gateway) {
			continue // going, or not started: no link to tell
		}
		pod, entries := p.Name, tails[p.Name] // none: a silent pod is unknown
		if lines(entries) >= linkTail {
			// A long log: its head too, where the start and the first
			// sync are, before its tail.
			head, err := s.logEntries(ctx, pod, func(o *corev1.PodLogOptions) { o.LimitBytes = ptr.To[int64](linkHead) })
			if err == nil {
				entries = append(head[pod], entries...)
			}
		}
		l := gwlink.Classify(entries, s.now())
		out = append(out, PodLink{Pod: pod, State: l.State, Seen: l.Seen, Event: l.Event, Evidence: l.Evidence, link: l})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out, nil
}

// logEntries reads the log entries of the gateway's started pods (only pod,
// when set), each pod's oldest first, with the log options set.
func (s *Session) logEntries(ctx context.Context, pod string, set func(*corev1.PodLogOptions)) (map[string][]podlogs.Logged, error) {
	p := s.Names
	open := s.openLog
	if open == nil {
		open = func(ctx context.Context, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
			return s.Client.CoreV1().Pods(p.Namespace).GetLogs(pod, o).Stream(ctx)
		}
	}
	out := map[string][]podlogs.Logged{}
	err := podlogs.Entries(ctx, podlogs.Options{Client: s.Client, Namespace: p.Namespace, Selector: "app=" + p.Gateway, Container: p.Gateway, Pod: pod,
		Open: func(ctx context.Context, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
			set(o)
			return open(ctx, pod, o)
		}}, func(l podlogs.Logged) { out[l.Pod] = append(out[l.Pod], l) })
	if err != nil {
		return nil, fmt.Errorf("reading the gateway pods' logs: %w", err)
	}
	return out, nil
}

// runs says pod's container runs now.
func runs(pod corev1.Pod, container string) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container && cs.State.Running != nil {
			return true
		}
	}
	return false
}

// lines counts the log lines entries were read from.
func lines(entries []podlogs.Logged) int {
	n := 0
	for _, e := range entries {
		n += len(e.Lines)
	}
	return n
}

// LinkSummary says the pods' links in one line, e.g. "synced (3 pods, last
// sync seen 4s ago)" or "refused on 2 of 3 pods: ...".
func LinkSummary(links []PodLink, now time.Time) string {
	if len(links) == 0 {
		return "no running gateway pod"
	}
	by := map[gwlink.State][]PodLink{}
	var order []gwlink.State
	for _, l := range links {
		if _, ok := by[l.State]; !ok {
			order = append(order, l.State)
		}
		by[l.State] = append(by[l.State], l)
	}
	var parts []string
	for _, st := range order {
		ls := by[st]
		part := string(st)
		if len(order) > 1 || len(links) > 1 {
			part += fmt.Sprintf(" on %d of %d pod(s)", len(ls), len(links))
		}
		newest := ls[0]
		for _, l := range ls {
			if l.Seen.After(newest.Seen) {
				newest = l
			}
		}
		switch {
		case st == gwlink.Unknown:
			part += ": " + newest.link.Cause()
		case !newest.Seen.IsZero():
			part += fmt.Sprintf(" (%s %s ago)", newest.Event, now.Sub(newest.Seen).Round(time.Second))
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

// LinkError says every running gateway pod is cut off from its
// configuration endpoint, although its status path may answer: a gateway
// in that state serves no configured API. Smoke, when set, is the failed
// smoke calls it explains.
type LinkError struct {
	State gwlink.State
	Links []PodLink
	Smoke *SmokeError
}

func (e *LinkError) Error() string {
	l := e.Links[0]
	msg := fmt.Sprintf("the gateway's link to its configuration endpoint is %s on every pod (%d): %s; the pod's log says: %s",
		e.State, len(e.Links), l.link.Cause(), l.Evidence)
	if e.Smoke != nil {
		return e.Smoke.Error() + "; " + msg
	}
	return msg
}

// smokeFailure is the error of failed smoke calls: the link's, naming the
// cause, when the link failed too.
func smokeFailure(se *SmokeError, link error) error {
	var le *LinkError
	if errors.As(link, &le) {
		le.Smoke = se
		return le
	}
	return se
}

// Hint is what to do.
func (e *LinkError) Hint() string { return e.Links[0].link.Fix() }

// linkFailure is the LinkError when every pod's link is refused or
// untrusted (named by the first pod's); nil otherwise. Neither passes by
// itself: the credential or the trust has to change, and the pods restart
// with it. Unreachable is not a failure: a pod that says it serves (its
// last configuration, or its backup) and retries every 10 s, as after an
// engine restart while the cluster's DNS or the endpoint comes back; on
// the prod profile (warn) the gateway does not log that it is back.
func linkFailure(links []PodLink) *LinkError {
	if len(links) == 0 {
		return nil
	}
	for _, l := range links {
		if l.State != gwlink.Refused && l.State != gwlink.Untrusted {
			return nil
		}
	}
	return &LinkError{State: links[0].State, Links: links}
}

// CheckLinks reads the pods' links after the smoke calls: an error when
// every pod is refused or untrusted by its configuration endpoint (the
// status path answers all the same: such a gateway serves no API), a
// warning on st for each other state that is not synced, starting or from
// backup (unreachable, unknown), or when the logs cannot be read. st may be
// nil (no step to warn on).
func (s *Session) CheckLinks(ctx context.Context, st *events.Step) ([]PodLink, error) {
	warn := func(msg, hint string) {
		if st != nil {
			st.Warn(msg, hint)
		}
	}
	links, err := s.Links(ctx)
	if err != nil {
		warn("configuration link: cannot read the gateway's logs ("+err.Error()+")", "`apimdev logs` shows them")
		return nil, nil
	}
	if le := linkFailure(links); le != nil {
		return links, le
	}
	for _, st := range []gwlink.State{gwlink.Unreachable, gwlink.Refused, gwlink.Untrusted, gwlink.Unknown} {
		var these []PodLink
		for _, l := range links {
			if l.State == st {
				these = append(these, l)
			}
		}
		if len(these) > 0 {
			warn(fmt.Sprintf("configuration link %s on %d of %d pod(s): %s", st, len(these), len(links), these[0].link.Cause()), these[0].link.Fix())
		}
	}
	return links, nil
}
