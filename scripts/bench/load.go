//go:build !windows

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one closed-loop load run: n requests by conc workers.
type loadResult struct {
	Path     string
	KeepOpen bool // keep-alive connections (else one new connection per request)
	Sent     int
	Failed   int
	P50, P99 time.Duration
	Dur      time.Duration
	Errors   []string
	ProxyCPU time.Duration // CPU time of the forwarding process during the run
}

// RPS is the throughput: answered requests per second of the run.
func (l loadResult) RPS() float64 {
	if l.Dur <= 0 {
		return 0
	}
	return float64(l.Sent-l.Failed) / l.Dur.Seconds()
}

// load sends n GETs to url (127.0.0.1 only) from conc workers, each sending
// its next request when the last one is answered, and stops early at limit.
func load(ctx context.Context, url string, hdr http.Header, n, conc int, keepOpen bool, limit time.Duration) (loadResult, error) {
	if err := loopback(url); err != nil {
		return loadResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tr := &http.Transport{Proxy: nil, MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableKeepAlives: !keepOpen}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		next  atomic.Int64
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, n)
		fails int
		errs  = map[string]bool{}
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				for k, v := range hdr {
					req.Header[k] = v
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				why := ""
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						why = resp.Status
					}
				} else {
					why = err.Error()
				}
				d := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					return // cut off by the time limit: not a forward failure
				}
				mu.Lock()
				lat = append(lat, d)
				if why != "" {
					fails++
					if len(errs) < 3 && !errs[why] {
						errs[why] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r := loadResult{Path: url, KeepOpen: keepOpen, Sent: len(lat), Failed: fails, Dur: time.Since(start)}
	for e := range errs {
		r.Errors = append(r.Errors, e)
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	r.P50, r.P99 = quantile(sorted, 0.50), quantile(sorted, 0.99)
	if r.Sent < n {
		return r, fmt.Errorf("only %d of %d requests within %s", r.Sent, n, limit)
	}
	return r, nil
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

// median of durations (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianF(fs []float64) float64 {
	if len(fs) == 0 {
		return 0
	}
	s := append([]float64(nil), fs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// The forward comparison's paths, as the tables name them.
const (
	viaNodePort = "NodePort (extraPortMapping)"
	viaKubectl  = "kubectl port-forward"
	viaTunnel   = "apimdev forward, tunnel"
	viaDirect   = "apimdev forward, direct"
)
