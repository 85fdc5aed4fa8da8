package gateway

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/config"
)

// NetworkPolicy is what the prod profile's policies allow besides what every
// gateway needs (callers on 8080/8081, its own pods on UDP 4290/4291, DNS,
// HTTPS out).
type NetworkPolicy struct {
	// From are the CIDRs that may call the gateway; empty is anyone.
	From []string `json:"from,omitempty"`
	// Backends are CIDR or CIDR:port destinations of the APIs it fronts.
	Backends []string `json:"backends,omitempty"`
}

// ScrapeLabel marks pods (a Prometheus of the user's) that may read the
// statsd exporter's metrics; apimdev's own scrape is a port-forward, which
// no NetworkPolicy governs.
const ScrapeLabel = "apimdev.io/scrape"

// NetworkPolicyName and SinkPolicyName name the two policies: the
// gateway's, and that of what receives its metrics ("" when nothing does).
func (p Profile) NetworkPolicyName() string { return p.Gateway }
func (p Profile) SinkPolicyName() string {
	name, _, _ := p.MetricsSink()
	return name
}

// sinkPorts are the ports the gateway sends its metrics to.
func (p Profile) sinkPorts() []networkingv1.NetworkPolicyPort {
	if p.CollectorImage != "" {
		return []networkingv1.NetworkPolicyPort{tcp(OTLPPort)}
	}
	return []networkingv1.NetworkPolicyPort{udp(StatsdPort), tcp(StatsdPort)}
}

// egressPorts are the TCP ports the gateway must reach outside the cluster:
// 443 (Azure's endpoints, Entra ID, Azure Monitor), the configuration
// endpoint's and the authority's own ports, and the proxy's.
func (p Profile) egressPorts() []int32 {
	ports := []int32{443}
	add := func(hostport string) {
		if _, port, err := net.SplitHostPort(hostport); err == nil {
			if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 && !slices.Contains(ports, int32(n)) {
				ports = append(ports, int32(n))
			}
		}
	}
	add(p.Endpoint)
	if p.Auth.Mode() == config.AuthEntraApp {
		add(hostOf(config.AuthorityOr(p.Auth.Authority)))
	}
	for _, u := range []string{p.Proxy.HTTP, p.Proxy.HTTPS} {
		add(hostOf(u))
	}
	return ports
}

// hostOf is the host[:port] of a URL, "" when it is none.
func hostOf(u string) string {
	if x, err := url.Parse(u); err == nil {
		return x.Host
	}
	return ""
}

func tcp(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}

func udp(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(port))}
}

// networkPolicies are the gateway's policy and, with local metrics, the
// exporter's: each pod may receive and send only what its job needs.
func (p Profile) networkPolicies() []*networkingv1.NetworkPolicy {
	np := p.NetworkPolicy
	self := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: p.Selector()}}}
	var callers []networkingv1.NetworkPolicyPeer // none listed: anyone
	for _, c := range np.From {
		callers = append(callers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	out := []networkingv1.NetworkPolicyPort{}
	for _, port := range p.egressPorts() {
		out = append(out, tcp(port))
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		// Cluster DNS (or the node's resolvers), TCP for large answers.
		{Ports: []networkingv1.NetworkPolicyPort{udp(53), tcp(53)}},
		// The configuration endpoint, Entra ID, Azure Monitor, the proxy.
		{Ports: out},
		// Rate-limit sync and heartbeat with the other replicas.
		{To: self, Ports: []networkingv1.NetworkPolicyPort{udp(RateLimitPort), udp(HeartbeatPort)}},
	}
	for _, b := range np.Backends {
		cidr, port, err := config.ParseBackend(b)
		if err != nil {
			continue // validation refused it already
		}
		rule := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}}}
		if port > 0 {
			rule.Ports = []networkingv1.NetworkPolicyPort{tcp(int32(port))}
		}
		egress = append(egress, rule)
	}
	sink, _, promPort := p.MetricsSink()
	if sink != "" {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": sink}}}},
			Ports: p.sinkPorts(),
		})
	}
	gw := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: p.meta(p.NetworkPolicyName()),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: p.Selector()},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: callers, Ports: []networkingv1.NetworkPolicyPort{tcp(ContainerHTTP), tcp(ContainerHTTPS)}},
				{From: self, Ports: []networkingv1.NetworkPolicyPort{udp(RateLimitPort), udp(HeartbeatPort)}},
			},
			Egress: egress,
		},
	}
	policies := []*networkingv1.NetworkPolicy{gw}
	if sink != "" {
		policies = append(policies, &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: p.meta(p.SinkPolicyName()),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": sink}},
				// Metrics in from the gateway only; the Prometheus endpoint
				// for pods labelled apimdev.io/scrape in any namespace;
				// nothing out.
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: self, Ports: p.sinkPorts()},
					{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{},
						PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ScrapeLabel: "true"}}}},
						Ports: []networkingv1.NetworkPolicyPort{tcp(int32(promPort))}},
				},
			},
		})
	}
	return policies
}

// NetworkPolicySummary says in one line what the policies allow.
func (p Profile) NetworkPolicySummary() string {
	np := p.NetworkPolicy
	if np == nil {
		return "none"
	}
	from := "anyone"
	if len(np.From) > 0 {
		from = strings.Join(np.From, ", ")
	}
	var out []string
	for _, port := range p.egressPorts() {
		out = append(out, strconv.Itoa(int(port)))
	}
	s := fmt.Sprintf("in: %d/%d from %s, UDP %d/%d between replicas; out: DNS, TCP %s, the replicas", ContainerHTTP, ContainerHTTPS, from, RateLimitPort, HeartbeatPort, strings.Join(out, "/"))
	switch {
	case p.CollectorImage != "":
		s += ", the OpenTelemetry Collector (which takes metrics from the gateway only and serves them to pods labelled " + ScrapeLabel + "=true)"
	case p.StatsdImage != "":
		s += ", the statsd exporter (which takes metrics from the gateway only and serves them to pods labelled " + ScrapeLabel + "=true)"
	}
	if len(np.Backends) > 0 {
		s += ", backends " + strings.Join(np.Backends, ", ")
	} else {
		s += "; an API backend on another port needs prod.networkPolicy.backends"
	}
	return s
}

// NetworkPoliciesIn counts p's NetworkPolicy objects that are in the
// cluster; err when the gateway's own is not (the sink's is optional).
func NetworkPoliciesIn(ctx context.Context, c kubernetes.Interface, p Profile) (int, error) {
	n := 0
	for _, name := range []string{p.NetworkPolicyName(), p.SinkPolicyName()} {
		if name == "" {
			continue
		}
		if _, err := c.NetworkingV1().NetworkPolicies(p.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			n++
		} else if name == p.NetworkPolicyName() {
			return n, fmt.Errorf("NetworkPolicy %s/%s: %v", p.Namespace, name, err)
		}
	}
	return n, nil
}
