package diagnose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (c *Collector) kubernetes(ctx context.Context, add func(string, []byte) error) error {
	if c.Client == nil {
		err := c.ClientErr
		if err == nil {
			err = errors.New("no cluster to talk to")
		}
		return errors.Join(add("kubernetes/unavailable.txt", []byte(err.Error()+"\n")), fmt.Errorf("not collected: %w", err))
	}
	ns := c.Profile.Namespace
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		keep(add("kubernetes/nodes.txt", describeNodes(nodes.Items)))
	} else {
		keep(fmt.Errorf("nodes: %w", err))
	}
	if all, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
		keep(add("kubernetes/all-pods.txt", podTable(all.Items, c.now())))
	} else {
		keep(fmt.Errorf("pods: %w", err))
	}
	events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		keep(fmt.Errorf("events of %s: %w", ns, err))
		events = &corev1.EventList{}
	}
	sortEvents(events.Items)
	keep(add(ns+"/events.txt", eventLines(events.Items, "")))
	keep(c.workloads(ctx, ns, add))
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		keep(fmt.Errorf("pods of %s: %w", ns, err))
		return errors.Join(errs...)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var desc bytes.Buffer
	for i := range pods.Items {
		describePod(&desc, &pods.Items[i], events.Items)
	}
	if len(pods.Items) == 0 {
		fmt.Fprintf(&desc, "no pods in namespace %s\n", ns)
	}
	keep(add(ns+"/pods.txt", desc.Bytes()))
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			keep(c.podLog(ctx, add, p.Namespace, p.Name, cs.Name, false))
			if cs.RestartCount > 0 {
				keep(c.podLog(ctx, add, p.Namespace, p.Name, cs.Name, true))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Collector) podLog(ctx context.Context, add func(string, []byte) error, ns, pod, container string, previous bool) error {
	n := c.LogLines
	if n == 0 {
		n = 2000
	}
	limit := int64(4 << 20)
	req := c.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &n, Previous: previous, LimitBytes: &limit, Timestamps: true})
	name := fmt.Sprintf("%s/logs/%s/%s.log", ns, pod, container)
	if previous {
		name = fmt.Sprintf("%s/logs/%s/%s.previous.log", ns, pod, container)
	}
	rc, err := req.Stream(ctx)
	if err != nil {
		return add(name, []byte("logs not available: "+err.Error()+"\n"))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		b = append(b, []byte("\n(reading the log stopped: "+err.Error()+")\n")...)
	}
	return add(name, b)
}

func (c *Collector) workloads(ctx context.Context, ns string, add func(string, []byte) error) error {
	var b bytes.Buffer
	var errs []error
	if ds, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range ds.Items {
			describeDeployment(&b, &d)
		}
		if len(ds.Items) == 0 {
			fmt.Fprintf(&b, "no Deployments in namespace %s\n\n", ns)
		}
	} else {
		errs = append(errs, fmt.Errorf("deployments: %w", err))
	}
	if rss, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, rs := range rss.Items {
			want := int32(0)
			if rs.Spec.Replicas != nil {
				want = *rs.Spec.Replicas
			}
			fmt.Fprintf(&b, "ReplicaSet %s: %d desired, %d ready, revision %s\n", rs.Name, want, rs.Status.ReadyReplicas, rs.Annotations["deployment.kubernetes.io/revision"])
		}
	} else {
		errs = append(errs, fmt.Errorf("replicasets: %w", err))
	}
	if svcs, err := c.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range svcs.Items {
			var ports []string
			for _, p := range s.Spec.Ports {
				ports = append(ports, fmt.Sprintf("%d>%s/%s", p.Port, p.TargetPort.String(), p.Protocol))
			}
			fmt.Fprintf(&b, "Service %s: %s %s ports %s selector %s\n", s.Name, s.Spec.Type, s.Spec.ClusterIP, strings.Join(ports, " "), labelsText(s.Spec.Selector))
		}
	} else {
		errs = append(errs, fmt.Errorf("services: %w", err))
	}
	if eps, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, es := range eps.Items {
			var addrs []string
			for _, e := range es.Endpoints {
				ready := e.Conditions.Ready != nil && *e.Conditions.Ready
				target := ""
				if e.TargetRef != nil {
					target = " " + e.TargetRef.Name
				}
				addrs = append(addrs, fmt.Sprintf("%s%s ready=%v", strings.Join(e.Addresses, ","), target, ready))
			}
			fmt.Fprintf(&b, "EndpointSlice %s (service %s): %s\n", es.Name, es.Labels["kubernetes.io/service-name"], strings.Join(addrs, "; "))
		}
	} else {
		errs = append(errs, fmt.Errorf("endpointslices: %w", err))
	}
	errs = append(errs, add(ns+"/workloads.txt", b.Bytes()))
	return errors.Join(errs...)
}
