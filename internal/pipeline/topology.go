package pipeline

import (
	"context"

	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/topology"
)

// The cluster's nodes as the gateway's placement sees them (see package
// topology).
type (
	NodeInfo      = topology.NodeInfo
	Topology      = topology.Topology
	CapacityError = topology.CapacityError
	Spread        = topology.Spread
	ZoneCount     = topology.ZoneCount
	NodePorts     = topology.NodePorts
)

// oneNodeNote is what promote and status say where spread cannot be shown.
const oneNodeNote = topology.OneNodeNote

// topology reads the nodes.
func (s *Session) topology(ctx context.Context) (Topology, error) {
	return topology.Read(ctx, s.Client)
}

// fitLocal fits the prod profile's requests to the local cluster's
// schedulable nodes, the session's own gateway's pods leaving their room.
func (s *Session) fitLocal(ctx context.Context, prod gateway.Profile, t Topology) (gateway.Profile, string, error) {
	return topology.FitLocal(ctx, s.Client, s.Names, prod, t)
}

// checkCapacity refuses a plan whose pods the schedulable nodes cannot hold.
func (s *Session) checkCapacity(ctx context.Context, p gateway.Profile, kctx string, fresh bool) error {
	return topology.CheckCapacity(ctx, s.Client, s.Names, p, kctx, fresh)
}

// spread reads where p's running pods (not terminating) are.
func (s *Session) spread(ctx context.Context, p gateway.Profile) (Spread, Topology, error) {
	return topology.ReadSpread(ctx, s.Client, p)
}

// nodePorts reads which nodes answer p's live Service's NodePorts.
func (s *Session) nodePorts(ctx context.Context, p gateway.Profile, t Topology) (*NodePorts, error) {
	return topology.ReadNodePorts(ctx, s.Client, p, t)
}
