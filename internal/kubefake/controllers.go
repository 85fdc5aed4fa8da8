package kubefake

import (
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// Cluster is a fake clientset with just enough of Kubernetes' controllers
// and kubelet for apimdev's flows to run to the end: a Deployment's pods are
// made (ready at once, unless held) whenever it is written, its status says
// so, Services get EndpointSlices of the ready pods they select, claims are
// bound to host-path volumes, and the node has capacity.
type Cluster struct {
	*fake.Clientset

	mu     sync.Mutex
	held   map[string]bool // Deployments whose pods never get ready
	serial int
}

var (
	podsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	svcGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	pvcGVR    = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	pvGVR     = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
	deployGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	sliceGVR  = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// NewCluster returns a fake cluster with one node, holding objs.
func NewCluster(objs ...runtime.Object) *Cluster {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "fake-control-plane", Labels: map[string]string{"kubernetes.io/hostname": "fake-control-plane"}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: mustQ("2"), corev1.ResourceMemory: mustQ("8Gi")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.34.4"},
		},
	}
	c := &Cluster{held: map[string]bool{}}
	c.Clientset = newClientset(append([]runtime.Object{node}, objs...), c.after)
	return c
}

// Hold keeps the pods of Deployment ns/name from ever getting ready (true),
// or lets them be (false) from its next write on.
func (c *Cluster) Hold(ns, name string, hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[ns+"/"+name] = hold
}

// after runs, under the clientset's lock, after every real write.
func (c *Cluster) after(tr k8stesting.ObjectTracker, gvr schema.GroupVersionResource, ns, name string) {
	switch gvr {
	case deployGVR:
		c.roll(tr, ns, name) // a deleted Deployment leaves no pods
		c.endpoints(tr, ns)
	case svcGVR:
		c.endpoints(tr, ns)
	case pvcGVR:
		c.bind(tr, ns, name)
	}
}

// roll replaces the Deployment's pods with new ones from its template.
func (c *Cluster) roll(tr k8stesting.ObjectTracker, ns, name string) {
	c.mu.Lock()
	held := c.held[ns+"/"+name]
	c.serial++
	serial := c.serial
	c.mu.Unlock()
	pods, _ := tr.List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	if l, ok := pods.(*corev1.PodList); ok {
		for _, p := range l.Items {
			if p.Labels["fake.apimdev.io/deployment"] == name {
				_ = tr.Delete(podsGVR, ns, p.Name)
			}
		}
	}
	o, err := tr.Get(deployGVR, ns, name)
	if err != nil {
		return
	}
	d := o.(*appsv1.Deployment)
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	ready := corev1.ConditionTrue
	if held {
		ready = corev1.ConditionFalse
	}
	for i := range want {
		lbl := map[string]string{"fake.apimdev.io/deployment": name}
		for k, v := range d.Spec.Template.Labels {
			lbl[k] = v
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d-%d", name, serial, i), Namespace: ns, Labels: lbl,
				Annotations: d.Spec.Template.Annotations},
			Spec: *d.Spec.Template.Spec.DeepCopy(),
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: d.Spec.Template.Spec.Containers[0].Name, Ready: !held,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
		p.Spec.NodeName = "fake-control-plane"
		_ = tr.Add(p)
	}
	readyN := want
	if held {
		readyN = 0
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: readyN, AvailableReplicas: readyN}
	_ = tr.Update(deployGVR, d, ns)
}

// endpoints gives every Service in ns an EndpointSlice of the ready pods it
// selects, with its ports' target ports.
func (c *Cluster) endpoints(tr k8stesting.ObjectTracker, ns string) {
	svcs, err := tr.List(svcGVR, corev1.SchemeGroupVersion.WithKind("Service"), ns)
	if err != nil {
		return
	}
	pods, _ := tr.List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	pl, _ := pods.(*corev1.PodList)
	for _, svc := range svcs.(*corev1.ServiceList).Items {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-fake", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for _, p := range svc.Spec.Ports {
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.TargetPort.IntVal), Protocol: ptr.To(p.Protocol)})
		}
		if pl != nil {
			for _, p := range pl.Items {
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
					continue
				}
				ready := len(p.Status.Conditions) > 0 && p.Status.Conditions[0].Status == corev1.ConditionTrue
				es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.1"},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p.Name, Namespace: ns}})
			}
		}
		if _, err := tr.Get(sliceGVR, ns, es.Name); err == nil {
			_ = tr.Update(sliceGVR, es, ns)
		} else {
			_ = tr.Add(es)
		}
	}
}

// bind binds a claim to a host-path volume of its own.
func (c *Cluster) bind(tr k8stesting.ObjectTracker, ns, name string) {
	o, err := tr.Get(pvcGVR, ns, name)
	if err != nil {
		return
	}
	pvc := o.(*corev1.PersistentVolumeClaim)
	if pvc.Status.Phase == corev1.ClaimBound {
		return
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + ns + "-" + name},
		Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/local-path/" + name}}}}
	_ = tr.Add(pv)
	pvc.Spec.VolumeName = pv.Name
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pvc.Spec.AccessModes,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: mustQ("50Mi")}}
	_ = tr.Update(pvcGVR, pvc, ns)
}
