package gateway

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Backend is one backend the gateway calls inside the cluster under a
// stable name (`apimdev backend add`): a program on the user's machine
// reached through the relay (Target), or a container image run in the
// cluster (Image). It lives in the cluster's record.
type Backend struct {
	Name string `json:"name"`
	// Port is the port the gateway calls: http://Name:Port.
	Port int `json:"port"`
	// Target is the loopback address on the user's machine the relay's
	// connections are dialled to ("127.0.0.1:8080"); empty for an image.
	Target string `json:"target,omitempty"`
	// Image is the container the backend runs in the cluster; empty for a
	// program on the user's machine.
	Image string `json:"image,omitempty"`
}

// Local says the backend is a program on the user's machine.
func (b Backend) Local() bool { return b.Image == "" }

// URL is the backend's address from anywhere in the cluster.
func (b Backend) URL(namespace string) string {
	return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d", b.Name, namespace, b.Port)
}

// ShortURL is the backend's address from the gateway's namespace.
func (b Backend) ShortURL() string { return fmt.Sprintf("http://%s:%d", b.Name, b.Port) }

// Backends' objects: the relay (one pod for every local backend) and its
// control Service, a Service per backend, a Deployment per image backend,
// and with the gateway's network policy the rule that lets it call them.
const (
	RelayName         = "apimdev-relay"
	RelayControlPort  = 4700
	LabelBackend      = "apimdev.io/backend"        // the backend's name; "relay" on the relay
	AnnotationTarget  = "apimdev.io/backend-target" // a local backend's loopback target
	BackendPolicyName = "apimdev-backends"
	// RelayKeySecret holds the relay's key (RelayKeyField): the relay asks
	// it of whoever takes its tunnel, so a pod that reaches the relay's
	// control port cannot take the gateway's calls to your machine.
	RelayKeySecret  = "apimdev-relay"
	RelayKeyField   = "key"
	relayKeyEnv     = "APIMDEV_RELAY_KEY"
	backendPodLabel = "apimdev.io/backend-pod"
)

// BackendSelector selects every object apimdev made for backends in a
// namespace (what `backend remove` and convergence prune among).
const BackendSelector = LabelManagedBy + "=" + ManagedBy + "," + LabelBackend

// BackendObjects are the objects for bs in namespace: relayImage runs the
// relay when any backend is local; with gatewayPolicy (the gateway's
// pods are held by a NetworkPolicy) a policy lets the gateway's pods
// (selected by gwSelector) reach the backends' pods.
func BackendObjects(namespace string, gwSelector map[string]string, gatewayPolicy bool, relayImage string, bs []Backend) []runtime.Object {
	sorted := append([]Backend(nil), bs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	meta := func(name, backend string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{LabelManagedBy: ManagedBy, LabelBackend: backend}}
	}
	var out []runtime.Object
	var relayPorts []corev1.ContainerPort
	for _, b := range sorted {
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(b.Name, b.Name),
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tcp", Port: int32(b.Port), TargetPort: intstr.FromInt32(int32(b.Port)), Protocol: corev1.ProtocolTCP}}},
		}
		if b.Local() {
			svc.Annotations = map[string]string{AnnotationTarget: b.Target}
			svc.Spec.Selector = map[string]string{"app": RelayName}
			relayPorts = append(relayPorts, corev1.ContainerPort{Name: portName(b), ContainerPort: int32(b.Port), Protocol: corev1.ProtocolTCP})
		} else {
			svc.Spec.Selector = map[string]string{"app": b.Name}
			out = append(out, imageBackend(meta(b.Name, b.Name), b))
		}
		out = append(out, svc)
	}
	if len(relayPorts) > 0 {
		out = append(out, relay(meta(RelayName, "relay"), relayImage, relayPorts))
		ctl := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta(RelayName, "relay"),
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": RelayName},
				Ports: []corev1.ServicePort{{Name: "control", Port: RelayControlPort, TargetPort: intstr.FromInt32(RelayControlPort), Protocol: corev1.ProtocolTCP}}},
		}
		out = append(out, ctl)
	}
	if gatewayPolicy && len(sorted) > 0 {
		out = append(out, &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta(BackendPolicyName, "policy"),
			Spec: networkingv1.NetworkPolicySpec{
				// Added to the gateway's own policy (policies add up): its
				// pods may also call the backends' pods, on any port.
				PodSelector: metav1.LabelSelector{MatchLabels: gwSelector},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{
					PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{backendPodLabel: "true"}}}}}},
			},
		})
	}
	return out
}

func portName(b Backend) string { return "p" + strconv.Itoa(b.Port) }

func podTemplate(m metav1.ObjectMeta, app string) corev1.PodTemplateSpec {
	labels := map[string]string{"app": app, LabelManagedBy: ManagedBy, LabelBackend: m.Labels[LabelBackend], backendPodLabel: "true"}
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
}

func relay(m metav1.ObjectMeta, image string, ports []corev1.ContainerPort) *appsv1.Deployment {
	t := podTemplate(m, RelayName)
	low := false
	for _, p := range ports {
		low = low || p.ContainerPort < 1024
	}
	ports = append([]corev1.ContainerPort{{Name: "control", ContainerPort: RelayControlPort, Protocol: corev1.ProtocolTCP}}, ports...)
	t.Spec = corev1.PodSpec{
		AutomountServiceAccountToken:  ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](GatewayUID), RunAsGroup: ptr.To[int64](GatewayUID)},
		Containers: []corev1.Container{{
			Name:            "relay",
			Image:           image,
			ImagePullPolicy: corev1.PullNever, // made on this machine from apimdev's own program; its entrypoint is `apimdev relay`
			Ports:           ports,
			Env: []corev1.EnvVar{{Name: relayKeyEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: RelayKeySecret}, Key: RelayKeyField}}}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(RelayControlPort)}},
				PeriodSeconds: 1,
			},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		}},
	}
	if low {
		// A backend on a port below 1024 (http://name:80): the relay
		// listens there without root.
		t.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			// One relay: a new one takes over when the old has gone, so
			// the laptop's one session is never split between two.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": RelayName}},
			Template: t,
		},
	}
}

func imageBackend(m metav1.ObjectMeta, b Backend) *appsv1.Deployment {
	t := podTemplate(m, b.Name)
	t.Spec = corev1.PodSpec{
		AutomountServiceAccountToken: ptr.To(false),
		Containers: []corev1.Container{{
			Name:            b.Name,
			Image:           b.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports:           []corev1.ContainerPort{{Name: "tcp", ContainerPort: int32(b.Port), Protocol: corev1.ProtocolTCP}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(b.Port))}},
				PeriodSeconds: 1,
			},
		}},
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": b.Name}},
			Template: t,
		},
	}
}

// TargetPort is the port of a local backend's loopback target.
func (b Backend) TargetPort() int {
	_, p, err := net.SplitHostPort(b.Target)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
