package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// BackendStats is one backend as one end of the tunnel sees it. Answering
// and Reason are the agent's probe of the target; the counts are that end's
// connections and bytes.
type BackendStats struct {
	Name             string `json:"name"`
	Port             int    `json:"port"`
	Target           string `json:"target"`
	Answering        bool   `json:"answering"`
	Reason           string `json:"reason,omitempty"`
	Active           int64  `json:"active"`
	Total            int64  `json:"total"`
	Failed           int64  `json:"failed"`
	BytesToBackend   int64  `json:"bytesToBackend"`
	BytesFromBackend int64  `json:"bytesFromBackend"`
	LastError        string `json:"lastError,omitempty"`
}

// Stats is the relay's /stats.
type Stats struct {
	AgentConnected bool           `json:"agentConnected"`
	AgentSince     time.Time      `json:"agentSince,omitzero"`
	Backends       []BackendStats `json:"backends"`
}

// counters are one backend's connections and bytes at one end.
type counters struct {
	active, total, failed, toBackend, fromBackend atomic.Int64

	mu        sync.Mutex
	lastError string
}

func (c *counters) fail(err string) {
	c.failed.Add(1)
	c.mu.Lock()
	c.lastError = err
	c.mu.Unlock()
}

func (c *counters) fill(b *BackendStats) {
	b.Active, b.Total, b.Failed = c.active.Load(), c.total.Load(), c.failed.Load()
	b.BytesToBackend, b.BytesFromBackend = c.toBackend.Load(), c.fromBackend.Load()
	c.mu.Lock()
	b.LastError = c.lastError
	c.mu.Unlock()
}

// declared is one backend in a declare frame.
type declared struct {
	Name      string `json:"name"`
	Port      int    `json:"port"`
	Target    string `json:"target"`
	Answering bool   `json:"answering"`
	Reason    string `json:"reason,omitempty"`
}

type declaration struct {
	Backends []declared `json:"backends"`
}

// FetchStats reads the relay's /stats over a connection dial makes to its
// control port.
func FetchStats(ctx context.Context, dial func(context.Context) (net.Conn, error), key string) (Stats, error) {
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relay/stats", nil)
	if err != nil {
		return Stats{}, err
	}
	if key != "" {
		req.Header.Set(KeyHeader, key)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("reading the relay's stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Stats{}, fmt.Errorf("reading the relay's stats: it answered %s", resp.Status)
	}
	var s Stats
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4<<20)).Decode(&s); err != nil {
		return Stats{}, fmt.Errorf("reading the relay's stats: %w", err)
	}
	return s, nil
}
