package forward

import (
	"context"
	"net"
	"time"
)

// Direct is a path to the gateway's Service that does not go through the API
// server: a loopback address (a port the cluster's node publishes) per
// Service port, behind which kube-proxy picks a ready pod.
//
// What it cannot do that the tunnels do is retry: the engine's proxy takes
// the connection before it knows whether anything is behind it, so a
// connection sent while kube-proxy still routes to a pod that has gone is
// lost. The forward therefore uses it only while it is known good: after a
// probe through it succeeded, and not while the ready pods are changing.
// From a change until Settle after the last one, and whenever a probe or a
// dial fails, connections take the tunnels, which follow the EndpointSlices
// and retry another pod themselves.
type Direct struct {
	// Addr is the loopback address by Service port (80, 443).
	Addr map[int]string
	// Probe makes one call through the path and says whether a gateway
	// answered.
	Probe func(ctx context.Context) error
	// Settle is how long the ready pods must stay unchanged before the path
	// is probed and used again; 0 means 2 s (kube-proxy's rules follow the
	// EndpointSlices within about a second).
	Settle time.Duration
	// Retry is how often a path that is down is probed again; 0 means 2 s.
	Retry time.Duration
	// Recheck is how often a path that is up is probed again; 0 means 30 s.
	Recheck time.Duration
}

func (d *Direct) durations() (settle, retry, recheck time.Duration) {
	settle, retry, recheck = d.Settle, d.Retry, d.Recheck
	if settle == 0 {
		settle = 2 * time.Second
	}
	if retry == 0 {
		retry = 2 * time.Second
	}
	if recheck == 0 {
		recheck = 30 * time.Second
	}
	return
}

// DirectUp says whether connections take the direct path now.
func (f *Forwarder) DirectUp() bool { return f.directUp.Load() }

func (f *Forwarder) setDirect(up bool, why string) {
	if f.directUp.Swap(up) == up {
		return
	}
	if up {
		f.logf("direct path up (%s)", why)
	} else {
		f.logf("direct path paused, connections take the API-server tunnel (%s)", why)
	}
}

// openDirect dials the direct path when it is up.
func (f *Forwarder) openDirect(m Mapping) (Stream, bool) {
	if f.Direct == nil || !f.directUp.Load() {
		return nil, false
	}
	addr, ok := f.Direct.Addr[m.ServicePort]
	if !ok {
		return nil, false
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		f.setDirect(false, "dial "+addr+": "+err.Error())
		select {
		case f.directKick <- struct{}{}: // probe again on the retry schedule
		default:
		}
		return nil, false
	}
	f.Stats.Direct.Add(1)
	return c.(*net.TCPConn), true
}

// watchDirect owns the direct path's state: it probes the path, pauses it
// while the ready pods change, and probes it again once they have settled.
func (f *Forwarder) watchDirect(ctx context.Context) {
	settle, retry, recheck := f.Direct.durations()
	defer f.directUp.Store(false)
	for {
		changed := f.Backends.Changed()
		next := retry
		// A paused cluster cannot answer a probe: none is made (it would
		// wake nothing and cost a timeout), and the path stays as it was,
		// to be used at once after the resume.
		if !f.Sleep.Paused() {
			up, why := f.probeDirect(ctx)
			f.setDirect(up, why)
			if up {
				next = recheck
			}
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			continue
		case <-f.directKick:
			// A dial failed (the engine or the node restarting): probe on
			// the retry schedule, not the recheck's.
			t.Stop()
			if !sleepCtx(ctx, retry) {
				return
			}
			continue
		case <-changed:
			t.Stop()
		}
		f.setDirect(false, "the ready gateway pods are changing")
		// Wait until nothing has changed for settle.
		for quiet := false; !quiet; {
			changed = f.Backends.Changed()
			t := time.NewTimer(settle)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changed:
				t.Stop()
			case <-t.C:
				quiet = true
			}
		}
	}
}

func (f *Forwarder) probeDirect(ctx context.Context) (bool, string) {
	ready := false
	for sp := range f.Direct.Addr {
		ready = ready || len(f.Backends.Ready(sp)) > 0
	}
	if !ready {
		return false, "no ready gateway pod"
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.Direct.Probe(pctx); err != nil {
		return false, "probe: " + err.Error()
	}
	return true, "a probe through it answered"
}

// sleepCtx waits d, or less when ctx ends; it says whether ctx is still on.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
