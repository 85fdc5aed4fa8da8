package pipeline

import "github.com/apimdev/apimdev/internal/topology"

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
