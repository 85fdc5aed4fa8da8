package pipeline

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
)

// Ways a forward reaches the gateway (--via).
const (
	ViaAuto   = "auto"   // the direct path where the cluster has one, else the tunnel
	ViaTunnel = "tunnel" // client-go's port-forward through the API server only
	ViaNode   = "node"   // the direct path, even where the marker does not record it
)

// directAddrs is what *cluster.Manager tells of the node's published ports.
type directAddrs interface {
	DirectAddrs(ctx context.Context) (map[int]string, error)
}

// directPath is the forward's path around the API server on a cluster
// apimdev created: the node ports its control-plane node publishes on
// 127.0.0.1 (kind's extraPortMappings, made at create time), a NodePort
// Service to the gateway's pods behind them. Through the API server every
// connection is a stream in an SPDY tunnel to the kubelet; this is one
// loopback TCP connection to the engine's proxy and kube-proxy's rules, and
// it needs no API server once kube-proxy has its rules. The tunnel stays
// for clusters apimdev did not make (--context, a cluster made before the
// mapping) and as the fallback the forwarder turns to whenever the path is
// not known good. It returns nil (and says why, in the forward's log) when
// there is no such path.
func (s *Session) directPath(ctx context.Context) (*forward.Direct, error) {
	via := s.ForwardVia
	if via == "" {
		via = ViaAuto
	}
	say := func(format string, a ...any) { s.Rep.Info("forward", fmt.Sprintf(format, a...)) }
	switch via {
	case ViaTunnel:
		return nil, nil
	case ViaAuto, ViaNode:
	default:
		return nil, fmt.Errorf("--via %q: say auto, tunnel or node", via)
	}
	refuse := func(why string) (*forward.Direct, error) {
		if via == ViaNode {
			return nil, fmt.Errorf("--via node: %s; `--via auto` uses the API-server tunnel instead", why)
		}
		say("through the API server (%s)", why)
		return nil, nil
	}
	dc, ok := s.Cluster.(directAddrs)
	if !s.localCluster || !ok || s.Client == nil {
		return refuse("not a kind cluster apimdev made")
	}
	if via == ViaAuto {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		recorded := cluster.RecordsDirect(mctx, s.Client)
		cancel()
		if !recorded {
			return refuse("the cluster was made without the direct path's port mapping; `apimdev up --recreate` adds it")
		}
	}
	addrs, err := dc.DirectAddrs(ctx)
	if err != nil {
		return refuse(err.Error())
	}
	nh, ns := cluster.DirectNodePorts[0], cluster.DirectNodePorts[1]
	svc := s.Names.DirectService(nh, ns)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = gateway.Apply(actx, s.Client, []runtime.Object{svc})
	cancel()
	if err != nil {
		return refuse(fmt.Sprintf("Service %s: %v", svc.Name, err))
	}
	d := &forward.Direct{
		Addr:  map[int]string{gateway.ServiceHTTP: addrs[nh], gateway.ServiceHTTPS: addrs[ns]},
		Probe: forward.ProbeHTTP(addrs[nh], s.Names.ProbePath),
	}
	say("direct through the node's ports %s and %s (Service %s); the API-server tunnel is the fallback", addrs[nh], addrs[ns], svc.Name)
	return d, nil
}
