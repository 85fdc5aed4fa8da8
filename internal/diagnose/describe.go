package diagnose

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/apimdev/apimdev/internal/gateway"
)

func describeDeployment(b *bytes.Buffer, d *appsv1.Deployment) {
	want := gateway.Desired(d)
	fmt.Fprintf(b, "Deployment %s: %d desired, %d updated, %d ready, %d available (generation %d, observed %d)\n",
		d.Name, want, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Generation, d.Status.ObservedGeneration)
	for _, ct := range d.Spec.Template.Spec.Containers {
		fmt.Fprintf(b, "  container %s: image %s (pull %s)\n", ct.Name, ct.Image, ct.ImagePullPolicy)
	}
	for _, cond := range d.Status.Conditions {
		fmt.Fprintf(b, "  %s=%s %s: %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	b.WriteString("\n")
}

func describeNodes(ns []corev1.Node) []byte {
	var b bytes.Buffer
	for _, n := range ns {
		fmt.Fprintf(&b, "Node %s\n  kubelet %s, %s, %s\n", n.Name, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.OSImage, n.Status.NodeInfo.ContainerRuntimeVersion)
		fmt.Fprintf(&b, "  allocatable: cpu %s, memory %s, pods %s\n", n.Status.Allocatable.Cpu(), n.Status.Allocatable.Memory(), n.Status.Allocatable.Pods())
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.Bytes()
}

func podTable(ps []corev1.Pod, now time.Time) []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tAGE\tNODE")
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
	for i := range ps {
		p := &ps[i]
		ready, restarts := 0, int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		age := now.Sub(p.CreationTimestamp.Time).Truncate(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\t%s\n", p.Namespace, p.Name, ready, len(p.Spec.Containers), podStatus(p), restarts, age, p.Spec.NodeName)
	}
	tw.Flush()
	return b.Bytes()
}

// podStatus is the one word kubectl get pods shows.
func podStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			return cs.State.Terminated.Reason
		}
	}
	return string(p.Status.Phase)
}

func describePod(b *bytes.Buffer, p *corev1.Pod, events []corev1.Event) {
	fmt.Fprintf(b, "Pod %s/%s\n", p.Namespace, p.Name)
	fmt.Fprintf(b, "  Status:     %s (phase %s)\n", podStatus(p), p.Status.Phase)
	fmt.Fprintf(b, "  Node:       %s\n", p.Spec.NodeName)
	fmt.Fprintf(b, "  IP:         %s\n", p.Status.PodIP)
	if p.Status.StartTime != nil {
		fmt.Fprintf(b, "  Started:    %s\n", p.Status.StartTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(b, "  Labels:     %s\n", labelsText(p.Labels))
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	fmt.Fprintf(b, "  Conditions: %s\n", strings.Join(conds, " "))
	statuses := map[string]corev1.ContainerStatus{}
	for _, cs := range p.Status.ContainerStatuses {
		statuses[cs.Name] = cs
	}
	for _, ct := range p.Spec.Containers {
		cs := statuses[ct.Name]
		fmt.Fprintf(b, "  Container %s\n", ct.Name)
		fmt.Fprintf(b, "    Image:      %s %s\n", ct.Image, cs.ImageID)
		fmt.Fprintf(b, "    State:      %s\n", stateText(cs.State))
		if cs.LastTerminationState.Terminated != nil {
			fmt.Fprintf(b, "    Last state: %s\n", stateText(cs.LastTerminationState))
		}
		fmt.Fprintf(b, "    Ready:      %v, restarts %d\n", cs.Ready, cs.RestartCount)
		if pr := ct.ReadinessProbe; pr != nil && pr.HTTPGet != nil {
			fmt.Fprintf(b, "    Readiness:  http-get %s on port %s every %ds (timeout %ds, failure threshold %d)\n", pr.HTTPGet.Path, pr.HTTPGet.Port.String(), pr.PeriodSeconds, pr.TimeoutSeconds, pr.FailureThreshold)
		}
		// Names and sources only: an env value may be a secret.
		for _, e := range ct.Env {
			src := "value set in the spec (not shown)"
			if vf := e.ValueFrom; vf != nil {
				switch {
				case vf.SecretKeyRef != nil:
					src = fmt.Sprintf("from Secret %s key %s", vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
				case vf.ConfigMapKeyRef != nil:
					src = fmt.Sprintf("from ConfigMap %s key %s", vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
				default:
					src = "from the pod's fields"
				}
			}
			fmt.Fprintf(b, "    Env:        %s %s\n", e.Name, src)
		}
		for _, ef := range ct.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				fmt.Fprintf(b, "    Env from:   ConfigMap %s\n", ef.ConfigMapRef.Name)
			case ef.SecretRef != nil:
				fmt.Fprintf(b, "    Env from:   Secret %s\n", ef.SecretRef.Name)
			}
		}
	}
	b.WriteString("  Events:\n")
	b.Write(eventLines(events, p.Name))
	b.WriteString("\n")
}

func stateText(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Waiting != nil:
		return fmt.Sprintf("Waiting (%s) %s", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		t := s.Terminated
		return fmt.Sprintf("Terminated (%s, exit code %d, at %s) %s", t.Reason, t.ExitCode, t.FinishedAt.UTC().Format(time.RFC3339), t.Message)
	}
	return "unknown"
}

func labelsText(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func sortEvents(es []corev1.Event) {
	sort.SliceStable(es, func(i, j int) bool { return eventTime(es[i]).Before(eventTime(es[j])) })
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// eventLines lists events, all of them or only those about object.
func eventLines(es []corev1.Event, object string) []byte {
	var b bytes.Buffer
	n := 0
	for _, e := range es {
		if object != "" && e.InvolvedObject.Name != object {
			continue
		}
		n++
		line := fmt.Sprintf("  %s %-7s %-20s %s/%s: %s", eventTime(e).UTC().Format(time.RFC3339), e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, strings.TrimSpace(e.Message))
		if e.Count > 1 {
			line += fmt.Sprintf(" (x%d)", e.Count)
		}
		b.WriteString(line + "\n")
	}
	if n == 0 {
		b.WriteString("  (none)\n")
	}
	return b.Bytes()
}
