// Package traffic drives steady, bounded HTTP traffic through the forward and
// measures it: sent, failed, latency percentiles. promote and token rotate use
// it to prove a rollout loses no requests. It imports nothing from apimdev.
package traffic

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Options bound a run: it stops at ctx's end, after Max requests, or after
// Limit, whichever comes first.
type Options struct {
	URL     string
	Header  http.Header
	Rate    int // requests per second
	Max     int
	Limit   time.Duration
	Timeout time.Duration // per request; 0 means 10s
	// OnSample, if set, is called about once a second with the figures so far.
	OnSample func(Stats)
}

// Stats are the figures of a run.
type Stats struct {
	Sent     int           `json:"sent"`
	Failed   int           `json:"failed"`
	P50      time.Duration `json:"-"`
	P99      time.Duration `json:"-"`
	Max      time.Duration `json:"-"`
	P50MS    float64       `json:"p50Ms"`
	P99MS    float64       `json:"p99Ms"`
	MaxMS    float64       `json:"maxMs"`
	Errors   []string      `json:"errors,omitempty"` // the first few distinct reasons
	Duration time.Duration `json:"-"`
	// RecentP99 is the p99 of the calls answered since the previous sample
	// (OnSample only; 0 when none were): what a live graph draws.
	RecentP99 time.Duration `json:"-"`
}

func (s Stats) String() string {
	return fmt.Sprintf("%d sent, %d failed, p50 %.1fms, p99 %.1fms", s.Sent, s.Failed, s.P50MS, s.P99MS)
}

// Run sends GET requests at a steady rate until stopped, each in its own
// goroutine so a slow answer does not slow the rate. Keep-alive connections
// are used as a real client would; Go's transport retries an idempotent
// request that finds its reused connection closed.
func Run(ctx context.Context, o Options) Stats {
	if o.Rate <= 0 {
		o.Rate = 20
	}
	if o.Max <= 0 {
		o.Max = 100000
	}
	if o.Limit <= 0 {
		o.Limit = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Limit)
	defer cancel()
	client := &http.Client{Timeout: o.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 32, Proxy: nil}}
	defer client.CloseIdleConnections()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		st   Stats
		errs = map[string]bool{}
		wg   sync.WaitGroup
	)
	start := time.Now()
	sampled := 0 // calls answered at the previous sample
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
loop:
	for st.Sent < o.Max {
		select {
		case <-ctx.Done():
			break loop
		case <-sample.C:
			if o.OnSample != nil {
				mu.Lock()
				s := summarize(st, lat)
				if recent := summarize(Stats{}, lat[sampled:]); len(lat) > sampled {
					s.RecentP99 = recent.P99
				}
				sampled = len(lat)
				mu.Unlock()
				o.OnSample(s)
			}
			continue
		case <-tick.C:
		}
		mu.Lock()
		st.Sent++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A request already sent is allowed to finish even after the
			// run's end, so it is counted honestly.
			req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, o.URL, nil)
			for k, v := range o.Header {
				req.Header[k] = v
			}
			t0 := time.Now()
			resp, err := client.Do(req)
			d := time.Since(t0)
			reason := ""
			if err != nil {
				reason = err.Error()
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					reason = fmt.Sprintf("status %d", resp.StatusCode)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			if reason != "" {
				st.Failed++
				if len(errs) < 5 && !errs[reason] {
					errs[reason] = true
					st.Errors = append(st.Errors, reason)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	st.Duration = time.Since(start)
	return summarize(st, lat)
}

func summarize(st Stats, lat []time.Duration) Stats {
	if len(lat) == 0 {
		return st
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	st.P50, st.P99, st.Max = q(0.50), q(0.99), s[len(s)-1]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	st.P50MS, st.P99MS, st.MaxMS = ms(st.P50), ms(st.P99), ms(st.Max)
	return st
}
