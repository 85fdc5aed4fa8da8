// Package statsd sends the gateway's local metrics as DogStatsD-tagged UDP
// packets, the way the real gateway does with telemetry.metrics.local=statsd.
//
// Metrics are best effort: a request never waits for, or fails because of, the
// metrics endpoint. Packets go through a bounded queue drained by one goroutine
// that resolves the endpoint lazily (it may be a Service that does not exist yet)
// and drops packets while the endpoint cannot be reached.
package statsd

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
)

// DefaultPort is the statsd port used when the endpoint names none.
const DefaultPort = "8125"

// Request describes one finished request.
type Request struct {
	API      string
	Method   string
	Status   int
	Duration time.Duration
}

// Client queues packets for Run to send. The zero value is not usable; use New.
type Client struct {
	endpoint string
	queue    chan string
	log      *slog.Logger
	// RetryDelay is how long to wait after a failed resolve before trying again.
	RetryDelay time.Duration
	// DialTimeout bounds name resolution of the endpoint.
	DialTimeout time.Duration
	now         func() time.Time
}

// New returns a client for endpoint (host[:port]).
func New(endpoint string, log *slog.Logger) *Client {
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		endpoint = net.JoinHostPort(strings.Trim(endpoint, "[]"), DefaultPort)
	}
	return &Client{
		endpoint:    endpoint,
		queue:       make(chan string, 1024),
		log:         log,
		RetryDelay:  10 * time.Second,
		DialTimeout: 2 * time.Second,
		now:         time.Now,
	}
}

// Endpoint is the host:port packets are sent to.
func (c *Client) Endpoint() string { return c.endpoint }

// Observe queues the counter and timer for one request. It never blocks.
func (c *Client) Observe(r Request) {
	tags := "|#api:" + tag(r.API) + ",status:" + strconv.Itoa(r.Status) + ",method:" + tag(r.Method)
	ms := strconv.FormatFloat(float64(r.Duration.Microseconds())/1000, 'f', 3, 64)
	c.enqueue("requests:1|c" + tags)
	c.enqueue("request_duration:" + ms + "|ms" + tags)
}

func (c *Client) enqueue(line string) {
	select {
	case c.queue <- line:
	default: // Queue full: the sender is stuck, so drop rather than slow requests.
	}
}

// Run sends queued packets until ctx is done.
func (c *Client) Run(ctx context.Context) {
	var conn net.Conn
	var nextDial time.Time
	failing := false
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		var line string
		select {
		case <-ctx.Done():
			return
		case line = <-c.queue:
		}
		if conn == nil && !c.now().Before(nextDial) {
			var err error
			conn, err = c.dial(ctx)
			if err != nil {
				nextDial = c.now().Add(c.RetryDelay)
				if !failing {
					c.log.Warn("statsd endpoint cannot be resolved; dropping metrics until it can", standinlog.Event(standinlog.EvMetrics), standinlog.Source(standinlog.SrcStandinTelemetry), "endpoint", c.endpoint, "error", err)
				}
				failing = true
				continue
			}
			if failing {
				c.log.Info("statsd endpoint resolved; sending metrics again", standinlog.Event(standinlog.EvMetrics), standinlog.Source(standinlog.SrcStandinTelemetry), "endpoint", c.endpoint)
			}
			failing = false
		}
		if conn == nil {
			continue
		}
		if _, err := conn.Write([]byte(line)); err != nil {
			// Typically ICMP port unreachable: nobody listens yet. Re-resolve later
			// in case the endpoint moved.
			c.log.Debug("statsd packet dropped", standinlog.Event(standinlog.EvMetrics), standinlog.Source(standinlog.SrcStandinTelemetry), "endpoint", c.endpoint, "error", err)
			conn.Close()
			conn = nil
		}
	}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "udp", c.endpoint)
}

// tag keeps a tag value to characters that cannot break the DogStatsD line
// (HTTP methods may legally contain '|' and '#').
func tag(s string) string {
	if s == "" {
		return "none"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
