package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/docker/go-connections/nat"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster/constants"
)

// DirectNodePorts are the node ports of the gateway's direct path: a cluster
// apimdev creates publishes them from its control-plane node on 127.0.0.1
// (on ports kind picks), and the forward sends connections there instead of
// through the API server. kube-proxy takes them on to a ready pod, so pod
// restarts and rollouts are Kubernetes' own business.
var DirectNodePorts = [2]int{31080, 31443}

// markerDirect is the marker's key that says the cluster has the mapping
// (clusters made before it do not, and keep the API-server tunnel).
const markerDirect = "directNodePorts"

func directMarkerValue() string {
	return fmt.Sprintf("%d,%d", DirectNodePorts[0], DirectNodePorts[1])
}

// HasDirect says whether a marker's data records the direct path's mapping.
func HasDirect(marker map[string]string) bool { return marker[markerDirect] == directMarkerValue() }

// RecordsDirect reads the cluster's marker: whether the cluster was made
// with the direct path's port mapping (false when the marker cannot be read).
func RecordsDirect(ctx context.Context, c kubernetes.Interface) bool {
	cm, err := c.CoreV1().ConfigMaps(MarkerNamespace).Get(ctx, MarkerName, metav1.GetOptions{})
	return err == nil && HasDirect(cm.Data)
}

// directMappings publish the direct path's node ports on loopback; host
// port 0 lets kind pick free ones (then fixed for the container's life,
// restarts included).
func directMappings() []v1alpha4.PortMapping {
	out := make([]v1alpha4.PortMapping, 0, len(DirectNodePorts))
	for _, p := range DirectNodePorts {
		out = append(out, v1alpha4.PortMapping{ContainerPort: int32(p), HostPort: 0, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP})
	}
	return out
}

// DirectAddrs are the loopback addresses on this machine that reach the
// direct path's node ports, by node port, as the engine publishes them from
// the control-plane node. An error says why there is no direct path (no
// such mapping: a cluster kind made without it).
func (m *Manager) DirectAddrs(ctx context.Context) (map[int]string, error) {
	ns, err := m.listNodes()
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if r, _ := n.Role(); r != constants.ControlPlaneNodeRoleValue {
			continue
		}
		ci, err := m.Docker.ContainerInspect(ctx, n.String())
		if err != nil {
			return nil, fmt.Errorf("inspecting node %s: %w", n, err)
		}
		if ci.NetworkSettings == nil {
			return nil, fmt.Errorf("node %s publishes no ports (is it running?)", n)
		}
		return loopbackBindings(ci.NetworkSettings.Ports, DirectNodePorts[:])
	}
	return nil, fmt.Errorf("cluster %q has no control-plane node", m.Name)
}

// loopbackBindings finds, for each container port, the host port the engine
// publishes it on 127.0.0.1; any other binding address does not count (test
// and user traffic stays on loopback).
func loopbackBindings(pm nat.PortMap, ports []int) (map[int]string, error) {
	out := map[int]string{}
	var missing []string
	for _, p := range ports {
		for _, b := range pm[nat.Port(strconv.Itoa(p)+"/tcp")] {
			if ip := net.ParseIP(b.HostIP); ip != nil && ip.IsLoopback() && b.HostPort != "" && b.HostPort != "0" {
				out[p] = net.JoinHostPort(b.HostIP, b.HostPort)
				break
			}
		}
		if out[p] == "" {
			missing = append(missing, strconv.Itoa(p))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the node publishes no loopback port for node port %s (a cluster made without the direct path: `apimdev up --recreate` adds it)", strings.Join(missing, ", "))
	}
	return out, nil
}
