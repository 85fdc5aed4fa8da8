package traffic

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsHonestly(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(503)
			return
		}
		if r.Header.Get("X-K") != "v" {
			w.WriteHeader(401)
		}
	}))
	defer s.Close()
	st := Run(context.Background(), Options{URL: s.URL, Header: http.Header{"X-K": {"v"}}, Rate: 500, Max: 100, Limit: 10 * time.Second})
	if st.Sent != 100 || st.Failed != 10 || st.P50 <= 0 || st.P99 < st.P50 || len(st.Errors) != 1 || st.Errors[0] != "status 503" {
		t.Fatalf("%+v", st)
	}
}

func TestRunIsBoundedInTime(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer s.Close()
	start := time.Now()
	st := Run(context.Background(), Options{URL: s.URL, Rate: 50, Limit: 300 * time.Millisecond})
	if time.Since(start) > 3*time.Second || st.Sent == 0 || st.Sent > 20 {
		t.Fatalf("%+v in %s", st, time.Since(start))
	}
}

// A sample's RecentP99 covers only the calls answered since the sample
// before: a slow start shows in the run's p99 but not in a later window.
func TestSamplesCarryTheRecentWindow(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		if n.Add(1) <= 10 {
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer s.Close()
	var samples []Stats
	Run(context.Background(), Options{URL: s.URL, Rate: 50, Limit: 2500 * time.Millisecond, OnSample: func(st Stats) { samples = append(samples, st) }})
	if len(samples) < 2 {
		t.Fatalf("%d sample(s) in 2.5s", len(samples))
	}
	last := samples[len(samples)-1]
	if last.P99 < 200*time.Millisecond || last.RecentP99 <= 0 || last.RecentP99 >= 100*time.Millisecond {
		t.Fatalf("last sample: run p99 %s, recent p99 %s; want the slow start in the first only", last.P99, last.RecentP99)
	}
}
