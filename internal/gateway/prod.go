package gateway

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/config"
)

// Ports and paths of the prod profile's additions.
const (
	StatsdPort  = 8125 // UDP, where the gateway sends local metrics
	MetricsPort = 9102 // the exporter's Prometheus endpoint
	BackupPath  = "/apim/config"
	GatewayUID  = 1001 // the gateway runs as non-root UID/GID 1001
	// RestartedAtKey is the pod-template annotation that restarts the pods
	// (as `kubectl rollout restart` does), applied by its own field manager
	// so the profile's apply never takes it back.
	RestartedAtKey = "apimdev.io/restartedAt"
	// LivenessPeriod × LivenessFailures is how long the prod profile's
	// liveness probe fails before the kubelet restarts a gateway.
	LivenessPeriod   = 10
	LivenessFailures = 12
)

// StatsdName names the statsd exporter's Deployment and Service.
func (p Profile) StatsdName() string { return p.Gateway + "-statsd" }

// BackupClaimName names the configuration backup PVC.
func (p Profile) BackupClaimName() string { return p.Gateway + "-config-backup" }

// BackupVolumeName names the volume that serves the claim from the shared
// directory (cluster-scoped: it carries the namespace in its name).
func (p Profile) BackupVolumeName() string {
	return "apimdev-" + p.Namespace + "-" + p.Gateway + "-backup"
}

// LabelNamespace tells which namespace's gateway a cluster-scoped object is for.
const LabelNamespace = "apimdev.io/namespace"

// NodeLossSeconds is the prod profile's time before a pod on a node that
// stopped answering is replaced: a gateway replica is stateless and starts
// in seconds, so waiting Kubernetes' 5 minutes only keeps a zone short.
const NodeLossSeconds = 30

// Prod is the production-like profile from the same configuration: same
// names, namespace, endpoint, token and image as dev, so promotion is an
// in-place upgrade. The image must be pinned first (see Pin).
func Prod(c config.Config) (Profile, error) {
	pr := c.Prod
	p := Dev(c)
	p.Name = "prod"
	p.Replicas = int32(pr.Replicas)
	p.MaxSurge = intstr.Parse(pr.MaxSurge)
	p.MaxUnavailable = intstr.Parse(pr.MaxUnavailable)
	cpu, err := resource.ParseQuantity(pr.CPU)
	if err != nil {
		return p, fmt.Errorf("prod.cpu: %w", err)
	}
	mem, err := resource.ParseQuantity(pr.Memory)
	if err != nil {
		return p, fmt.Errorf("prod.memory: %w", err)
	}
	p.Requests = corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	if pr.EphemeralStorage != "" {
		eph, err := resource.ParseQuantity(pr.EphemeralStorage)
		if err != nil {
			return p, fmt.Errorf("prod.ephemeralStorage: %w", err)
		}
		p.Requests[corev1.ResourceEphemeralStorage] = eph
	}
	switch pr.MemoryLimit {
	case "none":
	case "":
		p.MemoryLimit = mem.String()
	default:
		lim, err := resource.ParseQuantity(pr.MemoryLimit)
		if err != nil {
			return p, fmt.Errorf("prod.memoryLimit: %w", err)
		}
		p.MemoryLimit = lim.String()
	}
	p.CloudMetrics = ptr.To(pr.CloudMetrics)
	p.LocalLogs = pr.Logs
	p.HighAvailability = true
	if np := pr.NetworkPolicy; np.Enabled {
		p.NetworkPolicy = &NetworkPolicy{From: np.From, Backends: np.Backends}
	}
	p.PDB, p.Spread, p.AllProbes, p.NonRoot = true, true, true, true
	// Long enough for the endpoint removal to reach every proxy before the
	// gateway gets SIGTERM; the gateway then drains within the grace period.
	p.PreStopSeconds = 10
	p.NodeLossSeconds = NodeLossSeconds
	p.DNSPolicy = corev1.DNSPolicy(pr.DNSPolicy)
	if len(pr.DNSNameservers) > 0 || len(pr.DNSSearches) > 0 || pr.DNSNdots != "" {
		p.DNSConfig = &corev1.PodDNSConfig{Nameservers: pr.DNSNameservers, Searches: pr.DNSSearches}
		if pr.DNSNdots != "" {
			p.DNSConfig.Options = []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To(pr.DNSNdots)}}
		}
	}
	if pr.Backup.Enabled {
		p.Backup = &BackupVolume{StorageClass: pr.Backup.StorageClass, AccessMode: corev1.PersistentVolumeAccessMode(pr.Backup.AccessMode), Size: pr.Backup.Size}
		if p.Backup.AccessMode == "" {
			p.Backup.AccessMode = corev1.ReadWriteMany
		}
	}
	p.LogFormat, p.LogLevel = "json", pr.LogLevel
	switch pr.Metrics {
	case config.MetricsStatsd:
		p.StatsdImage = pr.StatsdImage
	case config.MetricsOpenTelemetry:
		p.CollectorImage = pr.CollectorImage
	}
	p.Proxy = pr.Proxy
	return p, nil
}

// harden adds the prod profile's pod settings to a rendered Deployment.
func (p Profile) harden(d *appsv1.Deployment) {
	spec := &d.Spec.Template.Spec
	c := &spec.Containers[0]
	if p.Requests != nil {
		c.Resources.Requests = p.Requests
	}
	if p.MemoryLimit != "" {
		// No CPU limit: throttling a gateway adds latency to every call,
		// while a spare core helps it; memory is what a leak exhausts.
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(p.MemoryLimit)}
	}
	if p.AllProbes {
		get := c.ReadinessProbe.ProbeHandler
		c.StartupProbe = &corev1.Probe{ProbeHandler: get, PeriodSeconds: 2, TimeoutSeconds: 1, FailureThreshold: 90, SuccessThreshold: 1}
		// Liveness asks the same question as readiness but with a far
		// longer window (12 × 10 s, against readiness' 3 × 5 s) and a longer
		// timeout: a busy or briefly unconfigured gateway is taken out of
		// rotation within 15 s and restarted only if it stays so for two
		// minutes, not exactly when it is busiest.
		c.LivenessProbe = &corev1.Probe{ProbeHandler: get, PeriodSeconds: LivenessPeriod, TimeoutSeconds: 5, FailureThreshold: LivenessFailures, SuccessThreshold: 1}
	}
	if p.PreStopSeconds > 0 {
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: p.PreStopSeconds}}}
	}
	if p.NodeLossSeconds > 0 {
		for _, key := range []string{"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"} {
			spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(p.NodeLossSeconds)})
		}
	}
	if p.Spread {
		for _, key := range []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"} {
			spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
				MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: p.Selector()},
				// Each rollout's pods spread among themselves: counting the
				// old ReplicaSet's pods, which are about to go, would crowd
				// the new ones onto the nodes the old ones leave.
				MatchLabelKeys: []string{"pod-template-hash"},
			})
		}
	}
	if p.DNSPolicy != "" && p.DNSPolicy != corev1.DNSClusterFirst || p.DNSConfig != nil {
		spec.DNSPolicy, spec.DNSConfig = p.DNSPolicy, p.DNSConfig
	}
	if p.Backup != nil {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "config-backup", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: p.BackupClaimName()}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "config-backup", MountPath: BackupPath})
	}
	if p.ownServiceAccount() {
		spec.ServiceAccountName = p.Gateway
		// The deprecated twin field too: the API server fills it in from
		// serviceAccountName, and a field apimdev's apply does not own would
		// survive the demotion to dev and keep naming the ServiceAccount the
		// demotion deletes (every later rollout: "serviceaccount not found").
		spec.DeprecatedServiceAccount = p.Gateway
		spec.AutomountServiceAccountToken = ptr.To(false)
	}
	if p.NonRoot {
		spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](GatewayUID), RunAsGroup: ptr.To[int64](GatewayUID),
			// The backup volume must be writable by GID 1001, or the gateway
			// fails with UnauthorizedAccessException.
			FSGroup: ptr.To[int64](GatewayUID),
		}
		// Not readOnlyRootFilesystem: the gateway does not support it.
		c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	for _, e := range []struct{ k, v string }{{"HTTP_PROXY", p.Proxy.HTTP}, {"HTTPS_PROXY", p.Proxy.HTTPS}, {"NO_PROXY", p.Proxy.NoProxy}} {
		if e.v != "" {
			c.Env = append(c.Env, corev1.EnvVar{Name: e.k, Value: e.v})
		}
	}
}

func (p Profile) serviceAccount() *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   p.meta(p.Gateway),
		AutomountServiceAccountToken: ptr.To(false),
	}
	if p.Auth.Mode() == config.AuthWorkloadIdentity {
		// The Azure workload identity webhook projects a token for the
		// identity named here into pods labelled to use it.
		sa.Labels[WorkloadIdentityUse] = "true"
		sa.Annotations = map[string]string{WorkloadIdentityClientID: p.Auth.ClientID}
	}
	return sa
}

func (p Profile) backupClaim() *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: p.meta(p.BackupClaimName()),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{p.Backup.AccessMode},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(p.Backup.Size)}},
		},
	}
	if p.Backup.StorageClass != "" {
		pvc.Spec.StorageClassName = ptr.To(p.Backup.StorageClass)
	}
	if p.Backup.SharedPath != "" {
		// Bound by name to the profile's own volume; the PV controller
		// fills in the volume's side.
		pvc.Spec.StorageClassName = ptr.To(SharedStorageClass)
		pvc.Spec.VolumeName = p.BackupVolumeName()
	}
	return pvc
}

// sharedVolume serves the backup claim from a directory of the shared mount
// every node of a multi-node kind cluster has: one directory, whichever node
// a pod runs on.
func (p Profile) sharedVolume() *corev1.PersistentVolume {
	meta := p.meta(p.BackupVolumeName())
	meta.Namespace = ""
	meta.Labels[LabelNamespace] = p.Namespace
	return &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: meta,
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(p.Backup.Size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              SharedStorageClass,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: p.Backup.SharedPath, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
		},
	}
}

func (p Profile) disruptionBudget() *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: p.meta(p.Gateway),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: p.Selector()},
		},
	}
}

func (p Profile) statsdDeployment() *appsv1.Deployment {
	return p.sinkDeployment(p.StatsdName(), 65534, corev1.Container{
		Name:  "statsd-exporter",
		Image: p.StatsdImage,
		Args: []string{fmt.Sprintf("--statsd.listen-udp=:%d", StatsdPort), fmt.Sprintf("--statsd.listen-tcp=:%d", StatsdPort),
			fmt.Sprintf("--web.listen-address=:%d", MetricsPort)},
		Ports: []corev1.ContainerPort{
			{Name: "statsd", ContainerPort: StatsdPort, Protocol: corev1.ProtocolUDP},
			{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
	}, nil)
}

func (p Profile) statsdService() *corev1.Service {
	return p.sinkService(p.StatsdName(), []corev1.ServicePort{
		{Name: "statsd", Port: StatsdPort, TargetPort: intstr.FromInt32(StatsdPort), Protocol: corev1.ProtocolUDP},
		{Name: "metrics", Port: MetricsPort, TargetPort: intstr.FromInt32(MetricsPort), Protocol: corev1.ProtocolTCP},
	})
}

// Fit shrinks the per-pod requests so replicas plus the rollout's surge,
// spread over nodes nodes, fit what each node has left, and says so. It
// returns the profile unchanged when they already fit. free is the least any
// of the nodes has: allocatable minus what other pods request.
func (p Profile) Fit(freeCPU, freeMem resource.Quantity, nodes int) (Profile, string) {
	if p.Requests == nil {
		return p, ""
	}
	nodes = max(nodes, 1)
	surge, _ := intstr.GetScaledValueFromIntOrPercent(&p.MaxSurge, int(p.Replicas), true)
	pods := int64(p.Replicas) + int64(surge)
	perNode := (pods + int64(nodes) - 1) / int64(nodes)
	cpu, mem := p.Requests[corev1.ResourceCPU], p.Requests[corev1.ResourceMemory]
	needCPU, needMem := cpu.MilliValue()*perNode, mem.Value()*perNode
	if needCPU <= freeCPU.MilliValue() && needMem <= freeMem.Value() {
		return p, ""
	}
	// Keep 10% of what is free for everything else, round down to 10m / 16Mi.
	fitCPU := min(cpu.MilliValue(), freeCPU.MilliValue()*9/10/perNode/10*10)
	fitMem := min(mem.Value(), freeMem.Value()*9/10/perNode/(16<<20)*(16<<20))
	fitCPU, fitMem = max(fitCPU, 10), max(fitMem, 64<<20)
	q := p
	q.Requests = p.Requests.DeepCopy()
	q.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(fitCPU, resource.DecimalSI)
	q.Requests[corev1.ResourceMemory] = *resource.NewQuantity(fitMem, resource.BinarySI)
	fc, fm := q.Requests[corev1.ResourceCPU], q.Requests[corev1.ResourceMemory]
	where := "this node has"
	if nodes > 1 {
		where = fmt.Sprintf("they go %d to a node over %d nodes, and the fullest has", perNode, nodes)
	}
	note := fmt.Sprintf("production requests %s CPU / %s per pod × %d pods (%d replicas + %d surge) need %s CPU / %s, but %s %s CPU / %s free: "+
		"fitted to %s CPU / %s per pod here; `apimdev export` and `promote --context` keep %s / %s",
		cpu.String(), mem.String(), pods, p.Replicas, surge, milli(needCPU), bytesQ(needMem), where, freeCPU.String(), bytesQ(freeMem.Value()),
		fc.String(), fm.String(), cpu.String(), mem.String())
	return q, note
}

func milli(m int64) string { return resource.NewMilliQuantity(m, resource.DecimalSI).String() }

func bytesQ(b int64) string {
	return fmt.Sprintf("%.1fGi", float64(b)/(1<<30))
}

// Pinned reports whether an image reference names an exact version: a digest,
// or a tag that starts with major.minor.patch (2.11.1, 2.11.1-standin).
func Pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	tag := Tag(image)
	parts := strings.SplitN(strings.TrimPrefix(tag, "v"), ".", 3)
	if len(parts) != 3 {
		return false
	}
	for i, s := range parts {
		if i == 2 {
			s = strings.SplitN(s, "-", 2)[0]
		}
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return false
		}
	}
	return true
}

// Tag returns the image's tag ("" when it has none).
func Tag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// Repo returns the image without tag or digest.
func Repo(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[:i]
	}
	return image
}
