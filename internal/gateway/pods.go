package gateway

import (
	"context"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodState is one gateway pod as `apimdev top` shows it.
type PodState struct {
	Name     string `json:"name"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	Node     string `json:"node,omitempty"`
}

// PodStates reads p's gateway pods that are not terminating, by name.
func PodStates(ctx context.Context, c kubernetes.Interface, p Profile) ([]PodState, error) {
	pods, err := c.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + p.Gateway})
	if err != nil {
		return nil, err
	}
	var out []PodState
	for _, x := range pods.Items {
		if x.DeletionTimestamp != nil {
			continue
		}
		ps := PodState{Name: x.Name, Node: x.Spec.NodeName}
		for _, c := range x.Status.Conditions {
			ps.Ready = ps.Ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}
		for _, c := range x.Status.ContainerStatuses {
			ps.Restarts += c.RestartCount
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReadyPod names a ready pod (not terminating) of the app label in namespace,
// "" when there is none.
func ReadyPod(ctx context.Context, c kubernetes.Interface, namespace, app string) (string, error) {
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return "", err
	}
	pod := ""
	for _, x := range pods.Items {
		for _, c := range x.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && x.DeletionTimestamp == nil {
				pod = x.Name
			}
		}
	}
	return pod, nil
}
