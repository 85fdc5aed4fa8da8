package topology

import (
	"strings"
	"testing"
)

func TestSpreadOfCountsZonesAndNodes(t *testing.T) {
	t.Parallel()
	topo := Topology{Nodes: []NodeInfo{
		{Name: "cp"}, {Name: "w1", Zone: "z1", Schedulable: true, Workload: true}, {Name: "w2", Zone: "z2", Cordoned: true, Workload: true},
		{Name: "w3", Zone: "z3", Schedulable: true, Workload: true}}}
	for _, c := range []struct {
		pods []string
		even bool
		text string
	}{
		{[]string{"w1", "w2", "w3"}, true, "1/1/1 over 3 zone(s)"},
		{[]string{"w1", "w1", "w3"}, false, "2/0/1 over 3 zone(s)"},
		{[]string{"w1", "w2"}, true, "1/1/0 over 3 zone(s)"},
	} {
		sp := SpreadOf(topo, c.pods)
		if sp.Even != c.even || !strings.HasPrefix(sp.Text, c.text) {
			t.Errorf("%v: even %v, %s", c.pods, sp.Even, sp.Text)
		}
	}
}
