package kubefake

import (
	"fmt"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
	refuse int // evictions still to refuse (429), as a disruption budget would
	next   int // round-robin over the schedulable nodes
}

var (
	podsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	svcGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	pvcGVR    = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	pvGVR     = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
	nodesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	deployGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	sliceGVR  = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// NewCluster returns a fake cluster with one node, holding objs.
func NewCluster(objs ...runtime.Object) *Cluster { return NewMultiNode(0, objs...) }

// NewMultiNode returns a fake cluster with a control plane and workers
// workers, as apimdev's kind cluster has them: the control plane tainted
// NoSchedule, the workers in zones local-1, local-2, local-3 round-robin,
// every node mounting the shared directory. Pods go to the schedulable
// nodes round-robin; an eviction deletes the pod and starts its
// replacement elsewhere, unless RefuseEvictions says otherwise.
func NewMultiNode(workers int, objs ...runtime.Object) *Cluster {
	node := func(name string, labels map[string]string) *corev1.Node {
		labels["kubernetes.io/hostname"] = name
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: mustQ("2"), corev1.ResourceMemory: mustQ("8Gi")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.34.4"},
			},
		}
	}
	nodes := []runtime.Object{}
	if workers == 0 {
		nodes = append(nodes, node("fake-control-plane", map[string]string{}))
	} else {
		cp := node("fake-control-plane", map[string]string{"topology.kubernetes.io/region": "local", "apimdev.io/shared-dir": "true"})
		cp.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
		nodes = append(nodes, cp)
		for i := range workers {
			name := "fake-worker"
			if i > 0 {
				name = fmt.Sprintf("fake-worker%d", i+1)
			}
			nodes = append(nodes, node(name, map[string]string{"topology.kubernetes.io/region": "local",
				"topology.kubernetes.io/zone": fmt.Sprintf("local-%d", i%3+1), "apimdev.io/shared-dir": "true"}))
		}
	}
	c := &Cluster{held: map[string]bool{}}
	c.Clientset = newClientset(append(nodes, objs...), c.after)
	c.PrependReactor("create", "pods", c.evict)
	return c
}

// RefuseEvictions makes the next n evictions fail with 429, as the API
// server answers when a disruption budget allows none.
func (c *Cluster) RefuseEvictions(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = n
}

// evict is the Eviction API: the pod goes, and (its Deployment's
// ReplicaSet would) a replacement starts on another schedulable node.
func (c *Cluster) evict(a k8stesting.Action) (bool, runtime.Object, error) {
	if a.GetSubresource() != "eviction" {
		return false, nil, nil
	}
	ev, ok := a.(k8stesting.CreateActionImpl).Object.(*policyv1.Eviction)
	if !ok {
		return true, nil, fmt.Errorf("not an eviction")
	}
	c.mu.Lock()
	if c.refuse > 0 {
		c.refuse--
		c.mu.Unlock()
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 1)
	}
	c.mu.Unlock()
	tr := c.Tracker()
	o, err := tr.Get(podsGVR, ev.Namespace, ev.Name)
	if err != nil {
		return true, nil, err
	}
	old := o.(*corev1.Pod)
	if err := tr.Delete(podsGVR, ev.Namespace, ev.Name); err != nil {
		return true, nil, err
	}
	if old.Labels["fake.apimdev.io/deployment"] != "" {
		c.mu.Lock()
		c.serial++
		serial := c.serial
		c.mu.Unlock()
		p := old.DeepCopy()
		p.Name, p.UID, p.ResourceVersion = fmt.Sprintf("%s-%d-r", old.Labels["fake.apimdev.io/deployment"], serial), "", ""
		p.Spec.NodeName = c.place(tr)
		_ = tr.Add(p)
	}
	c.endpoints(tr, ev.Namespace)
	return true, nil, nil
}

// place picks the next schedulable node (no NoSchedule taint, not cordoned).
func (c *Cluster) place(tr k8stesting.ObjectTracker) string {
	o, err := tr.List(nodesGVR, corev1.SchemeGroupVersion.WithKind("Node"), "")
	if err != nil {
		return "fake-control-plane"
	}
	var ok []string
	for _, n := range o.(*corev1.NodeList).Items {
		tainted := n.Spec.Unschedulable
		for _, t := range n.Spec.Taints {
			tainted = tainted || t.Effect == corev1.TaintEffectNoSchedule
		}
		if !tainted {
			ok = append(ok, n.Name)
		}
	}
	if len(ok) == 0 {
		return "fake-control-plane"
	}
	sort.Strings(ok)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return ok[(c.next-1)%len(ok)]
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
				Annotations: d.Spec.Template.Annotations,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("%s-%d", name, serial),
					UID: types.UID(fmt.Sprintf("rs-%s-%d", name, serial)), Controller: ptr.To(true)}}},
			Spec: *d.Spec.Template.Spec.DeepCopy(),
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: d.Spec.Template.Spec.Containers[0].Name, Ready: !held,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
		p.Spec.NodeName = c.place(tr)
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
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}, NodeName: ptr.To(p.Spec.NodeName),
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: p.Name, Namespace: ns}})
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
	if pvc.Spec.VolumeName != "" {
		// Bound by name to a volume of its own (the shared directory's).
		if _, err := tr.Get(pvGVR, "", pvc.Spec.VolumeName); err != nil {
			return
		}
		pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pvc.Spec.AccessModes,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: mustQ("50Mi")}}
		_ = tr.Update(pvcGVR, pvc, ns)
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
