package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// The kubelet's summary API (/stats/summary, stats/v1alpha1), the part of it
// top reads: each pod's CPU and memory. It is read through the API server's
// node proxy, so no metrics-server is needed; the kubelet refreshes it about
// every ten seconds.

// Summary is a node's stats summary.
type Summary struct {
	Node struct {
		NodeName string       `json:"nodeName"`
		CPU      *CPUStats    `json:"cpu,omitempty"`
		Memory   *MemoryStats `json:"memory,omitempty"`
	} `json:"node"`
	Pods []PodStats `json:"pods"`
}

// PodStats is one pod in the summary.
type PodStats struct {
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"podRef"`
	CPU        *CPUStats        `json:"cpu,omitempty"`
	Memory     *MemoryStats     `json:"memory,omitempty"`
	Containers []ContainerStats `json:"containers,omitempty"`
}

// ContainerStats is one container of a pod.
type ContainerStats struct {
	Name   string       `json:"name"`
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
}

// CPUStats is a CPU reading: the rate the kubelet computed over its last
// interval, and the cumulative usage.
type CPUStats struct {
	Time                 time.Time `json:"time"`
	UsageNanoCores       *uint64   `json:"usageNanoCores,omitempty"`
	UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is a memory reading; the working set is what the kubelet
// evicts on and what `kubectl top` shows.
type MemoryStats struct {
	Time            time.Time `json:"time"`
	WorkingSetBytes *uint64   `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64   `json:"rssBytes,omitempty"`
}

// ParseSummary reads a summary's JSON.
func ParseSummary(data []byte) (Summary, error) {
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return Summary{}, fmt.Errorf("reading the kubelet's stats summary: %w", err)
	}
	return s, nil
}

// PodUsage is one pod's CPU and memory at one reading. A figure the summary
// did not have is nil.
type PodUsage struct {
	Namespace string
	Pod       string
	// Time is the reading's time (the memory's, else the CPU's).
	Time time.Time
	// NanoCores is the kubelet's CPU rate; CoreNanoSeconds the cumulative
	// CPU time, for a rate between two readings when there is no NanoCores.
	NanoCores       *uint64
	CoreNanoSeconds *uint64
	CPUTime         time.Time
	WorkingSetBytes *uint64
}

// Usages is the pods of s that keep says to keep (nil keeps all), by name.
// A pod without its own CPU or memory figures gets its containers' sums.
func Usages(s Summary, keep func(namespace, pod string) bool) []PodUsage {
	var out []PodUsage
	for _, p := range s.Pods {
		if keep != nil && !keep(p.PodRef.Namespace, p.PodRef.Name) {
			continue
		}
		u := PodUsage{Namespace: p.PodRef.Namespace, Pod: p.PodRef.Name}
		cpu, mem := p.CPU, p.Memory
		if cpu == nil || cpu.UsageNanoCores == nil && cpu.UsageCoreNanoSeconds == nil {
			cpu = sumCPU(p.Containers)
		}
		if mem == nil || mem.WorkingSetBytes == nil {
			mem = sumMemory(p.Containers)
		}
		if cpu != nil {
			u.NanoCores, u.CoreNanoSeconds, u.CPUTime, u.Time = cpu.UsageNanoCores, cpu.UsageCoreNanoSeconds, cpu.Time, cpu.Time
		}
		if mem != nil {
			// A pod the kubelet has not measured yet (just started) has a
			// working set of 0: no figure, not a reading of nothing.
			if mem.WorkingSetBytes != nil && *mem.WorkingSetBytes > 0 {
				u.WorkingSetBytes = mem.WorkingSetBytes
			}
			if !mem.Time.IsZero() {
				u.Time = mem.Time
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Pod < out[j].Pod
	})
	return out
}

func sumCPU(cs []ContainerStats) *CPUStats {
	var out *CPUStats
	for _, c := range cs {
		if c.CPU == nil {
			continue
		}
		if out == nil {
			out = &CPUStats{}
		}
		out.UsageNanoCores = addOpt(out.UsageNanoCores, c.CPU.UsageNanoCores)
		out.UsageCoreNanoSeconds = addOpt(out.UsageCoreNanoSeconds, c.CPU.UsageCoreNanoSeconds)
		if c.CPU.Time.After(out.Time) {
			out.Time = c.CPU.Time
		}
	}
	return out
}

func sumMemory(cs []ContainerStats) *MemoryStats {
	var out *MemoryStats
	for _, c := range cs {
		if c.Memory == nil {
			continue
		}
		if out == nil {
			out = &MemoryStats{}
		}
		out.WorkingSetBytes = addOpt(out.WorkingSetBytes, c.Memory.WorkingSetBytes)
		if c.Memory.Time.After(out.Time) {
			out.Time = c.Memory.Time
		}
	}
	return out
}

func addOpt(a, b *uint64) *uint64 {
	if b == nil {
		return a
	}
	v := *b
	if a != nil {
		v += *a
	}
	return &v
}

// Millicores is the pod's CPU in thousandths of a core: the kubelet's rate,
// else the cumulative usage's change since prev (the same pod's earlier
// reading, nil when there is none). ok is false when neither gives one.
func Millicores(prev *PodUsage, cur PodUsage) (mc float64, ok bool) {
	if cur.NanoCores != nil {
		return float64(*cur.NanoCores) / 1e6, true
	}
	if prev == nil || prev.CoreNanoSeconds == nil || cur.CoreNanoSeconds == nil || *cur.CoreNanoSeconds < *prev.CoreNanoSeconds {
		return 0, false
	}
	dt := cur.CPUTime.Sub(prev.CPUTime).Seconds()
	if dt <= 0 {
		return 0, false
	}
	return float64(*cur.CoreNanoSeconds-*prev.CoreNanoSeconds) / 1e9 / dt * 1000, true
}

// MiB is bytes in mebibytes; ok is false for a missing figure.
func MiB(b *uint64) (float64, bool) {
	if b == nil {
		return 0, false
	}
	return float64(*b) / (1 << 20), true
}

// Point is one reading of a value over time.
type Point struct {
	T time.Time
	V float64
}

// MinSlopePoints is the fewest readings a slope is drawn from.
const MinSlopePoints = 3

// SlopePerMinute is the least-squares slope of ps, per minute; ok is false
// with fewer than MinSlopePoints readings or no time between them.
func SlopePerMinute(ps []Point) (slope float64, ok bool) {
	if len(ps) < MinSlopePoints {
		return 0, false
	}
	t0 := ps[0].T
	n := float64(len(ps))
	var sx, sy float64
	for _, p := range ps {
		sx += p.T.Sub(t0).Minutes()
		sy += p.V
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for _, p := range ps {
		dx := p.T.Sub(t0).Minutes() - mx
		sxx += dx * dx
		sxy += dx * (p.V - my)
	}
	if sxx == 0 {
		return 0, false
	}
	s := sxy / sxx
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, false
	}
	return s, true
}

// Growth is what GrowthOf found in a pod's memory over a window.
type Growth struct {
	// Slope is the working set's slope over the window, MiB per minute.
	Slope float64
	// Growing: the window is full and the memory grew faster than the
	// threshold over it and over each of its halves (not one step).
	Growing bool
	// LoadKnown says there were request rates in both halves; LoadRose that
	// the second half's mean rate was above the first's (by 20 % and 1/s).
	LoadKnown, LoadRose bool
}

// Warn is the rule top warns on: memory growing while the load did not
// rise (steady, falling, or not measured).
func (g Growth) Warn() bool { return g.Growing && !g.LoadRose }

// GrowthOf judges mem (a pod's working set in MiB, in time order) over a
// window of span: growing when it covers at least 90 % of span and its
// slope, and each half's, is above minSlope MiB per minute. load is the
// requests/s over the same time, in order (empty when not measured).
func GrowthOf(mem, load []Point, span time.Duration, minSlope float64) Growth {
	var g Growth
	slope, ok := SlopePerMinute(mem)
	if !ok {
		return g
	}
	g.Slope = slope
	if first, second := halves(load); len(first) > 0 && len(second) > 0 {
		g.LoadKnown = true
		a, b := mean(first), mean(second)
		g.LoadRose = b > a*1.2+1
	}
	if mem[len(mem)-1].T.Sub(mem[0].T) < span*9/10 || slope <= minSlope {
		return g
	}
	first, second := halves(mem)
	s1, ok1 := SlopePerMinute(first)
	s2, ok2 := SlopePerMinute(second)
	g.Growing = ok1 && ok2 && s1 > minSlope && s2 > minSlope
	return g
}

// halves splits ps at the middle of its time span.
func halves(ps []Point) (first, second []Point) {
	if len(ps) < 2 {
		return nil, nil
	}
	mid := ps[0].T.Add(ps[len(ps)-1].T.Sub(ps[0].T) / 2)
	for i, p := range ps {
		if p.T.After(mid) {
			return ps[:i], ps[i:]
		}
	}
	return ps, nil
}

func mean(ps []Point) float64 {
	sum := 0.0
	for _, p := range ps {
		sum += p.V
	}
	return sum / float64(len(ps))
}
