// Package gateway is the stand-in for the Azure API Management self-hosted
// gateway container. It honours the container's observable contract (ports,
// environment, probe paths, configuration polling and backup, token expiry,
// subscription keys, graceful shutdown, local logs and statsd metrics) and
// nothing more: its API kinds are an echo and a proxy to a backend URL.
//
// It must not import the config service: it talks to it over HTTP only, as the
// real gateway talks to Azure.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/selfsigned"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

// Probe paths of the real gateway: the current one and the one older YAML uses.
const (
	// DefaultVersion is the gateway release the stand-in emulates.
	DefaultVersion   = "2.11.1-standin"
	StatusPath       = "/status-0123456789abcdef"
	LegacyStatusPath = "/internal-status-0123456789abcdef"
)

// BackupFile is the name of the configuration backup inside the backup directory.
const BackupFile = "standin-configuration.json"

// Metrics receives one observation per API request.
type Metrics interface {
	Observe(statsd.Request)
}

// Clock is the time source; tests replace it to control the drain delay.
type Clock interface {
	Now() time.Time
	After(time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type noMetrics struct{}

func (noMetrics) Observe(statsd.Request) {}

// Options configure a Gateway. Zero durations get the real gateway's defaults.
type Options struct {
	// Endpoint is config.service.endpoint: host[:port], optionally with a scheme.
	Endpoint string
	// Auth is config.service.auth: the token, with or without "GatewayKey ".
	Auth string
	// Entra, when set, is config.service.auth=azureAdApp: Auth is unused.
	Entra *EntraApp
	// GatewayName is gateway.name (needed with Entra ID).
	GatewayName string
	// Version is the stand-in version it reports (STANDIN_VERSION; default
	// DefaultVersion), so a test can tell two builds apart during an upgrade.
	Version string
	// HTTPAddr and HTTPSAddr are the traffic listeners (":8080", ":8081").
	HTTPAddr, HTTPSAddr string
	// UDPAddrs are the rate-limit-dc and dc-heartbeat ports; traffic is discarded.
	UDPAddrs []string
	// BackupDir holds the configuration backup; empty disables backup.
	BackupDir string
	// PodName is reported by the echo API and put in the certificate.
	PodName string
	// PollInterval is how often to ask for configuration (10 s).
	PollInterval time.Duration
	// FetchTimeout bounds one configuration request (5 s).
	FetchTimeout time.Duration
	// DrainDelay is how long to keep serving after SIGTERM with health failing (5 s).
	DrainDelay time.Duration
	// ShutdownTimeout bounds waiting for in-flight requests after the drain (30 s).
	ShutdownTimeout time.Duration
	// BackendTimeout bounds a proxy API's wait for its backend to connect
	// and send response headers (DefaultBackendTimeout).
	BackendTimeout time.Duration
	Logger         *slog.Logger
	Metrics        Metrics
	Clock          Clock
}

// loaded is one installed configuration; it is replaced whole, never mutated.
type loaded struct {
	cfg    apimconfig.Configuration
	source string
}

// Gateway is the stand-in gateway. Create it with New, bind with Listen, then Run.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	tok       token.Token
	tokParsed bool
	configURL *url.URL
	setupErr  error // why configuration can never load (missing or bad settings)
	client    *http.Client
	// backends and proxy forward proxy APIs' requests.
	backends *backendTransport
	proxy    http.Handler

	httpLn, httpsLn net.Listener
	udp             []net.PacketConn
	cert            tls.Certificate

	state         atomic.Pointer[loaded]
	draining      atomic.Bool
	inFlight      atomic.Int64
	expiredWarned atomic.Bool
	busyUntil     atomic.Int64 // UnixNano until which status answers 503 (BusyPath)
	stopOnce      sync.Once
	stop          chan struct{}

	// Touched only by the polling goroutine.
	lastOutcome string
	// refusedBare is set while the configuration endpoint refuses a
	// gateway that has no configuration yet: the real gateway's host runs
	// on, its status path answers 200 and API calls get 200 with an empty
	// body (public issue #287; the record has it for an expired token, the
	// stand-in does the same for any 401/403 at start).
	refusedBare   atomic.Bool
	lastBackupErr string
	// syncFailedLogged: the initial sync's failure for want of a backup was logged.
	syncFailedLogged bool
	// synced: a configuration came from the endpoint (the initial sync completed).
	synced      bool
	access      string // Entra ID access token, until accessUntil
	accessUntil time.Time
}

// New fills defaults and reads the settings. Bad settings are not an error: the
// real gateway keeps running unready, so the stand-in does too (see Run).
func New(opts Options) *Gateway {
	opts = withDefaults(opts)
	g := &Gateway{opts: opts, log: opts.Logger, stop: make(chan struct{})}
	g.setupErr = g.readSettings()
	g.backends = newBackendTransport(opts.BackendTimeout)
	g.proxy = g.newProxy()
	g.client = &http.Client{
		Timeout: opts.FetchTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment, // The real gateway honours HTTP(S)_PROXY.
			DialContext:         (&net.Dialer{Timeout: opts.FetchTimeout}).DialContext,
			TLSHandshakeTimeout: opts.FetchTimeout,
			// As the real gateway, trust the endpoint's certificate only if
			// a known CA signed it: the image's (the stand-in's well-known
			// CA) or one mounted in SSL_CERT_DIR. Host names are not
			// checked (see selfsigned.VerifyChain), so verification is
			// done there rather than by crypto/tls.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, //nolint:gosec // the chain is verified in VerifyConnection
				VerifyConnection: selfsigned.VerifyChain(selfsigned.Trusted(), time.Now)},
		},
	}
	return g
}

func withDefaults(o Options) Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	def(&o.PollInterval, 10*time.Second)
	def(&o.FetchTimeout, 5*time.Second)
	def(&o.ShutdownTimeout, 30*time.Second)
	def(&o.BackendTimeout, DefaultBackendTimeout)
	if o.DrainDelay < 0 {
		o.DrainDelay = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o
}

// readSettings checks endpoint and token; the error it returns names the
// setting at fault and never quotes the token.
func (g *Gateway) readSettings() error {
	var errs []error
	if strings.TrimSpace(g.opts.Endpoint) == "" {
		errs = append(errs, errors.New("config.service.endpoint is not set"))
	} else if u, err := configURL(g.opts.Endpoint); err != nil {
		errs = append(errs, err)
	} else {
		g.configURL = u
	}
	switch {
	case g.opts.Entra != nil:
		if m := g.opts.Entra.missing(g.opts.GatewayName); len(m) > 0 {
			errs = append(errs, fmt.Errorf("config.service.auth is azureAdApp but %s not set", strings.Join(m, ", ")))
		}
		if _, err := g.opts.Entra.tokenURL(); err != nil {
			errs = append(errs, err)
		}
	case strings.TrimSpace(token.StripPrefix(g.opts.Auth)) == "":
		errs = append(errs, errors.New("config.service.auth is not set"))
	default:
		if t, err := token.Parse(g.opts.Auth); err == nil {
			g.tok, g.tokParsed = t, true
		}
	}
	return errors.Join(errs...)
}

// configURL turns config.service.endpoint into the configuration URL. Without a
// scheme the endpoint is HTTPS, as Azure's is.
func configURL(endpoint string) (*url.URL, error) {
	e := strings.TrimSpace(endpoint)
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("config.service.endpoint %q is not host[:port] with an optional http:// or https://", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + apimconfig.Path
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u, nil
}

// Listen binds the TCP and UDP ports so their addresses are known before Run.
// Failing to bind a UDP port is logged, not fatal: nothing real uses them.
func (g *Gateway) Listen() error {
	var err error
	if g.cert, err = selfsigned.Certificate(g.opts.Clock.Now(), g.opts.PodName); err != nil {
		return err
	}
	if g.httpLn, err = net.Listen("tcp", g.opts.HTTPAddr); err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", g.opts.HTTPAddr, err)
	}
	if g.httpsLn, err = net.Listen("tcp", g.opts.HTTPSAddr); err != nil {
		g.httpLn.Close()
		return fmt.Errorf("listen for HTTPS on %s: %w", g.opts.HTTPSAddr, err)
	}
	for _, addr := range g.opts.UDPAddrs {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			g.log.Warn("cannot listen on UDP; continuing without it", standinlog.Event(standinlog.EvUDPListenerFailed), standinlog.Source(standinlog.SrcStandin),
				"addr", addr, "error", err)
			continue
		}
		g.udp = append(g.udp, pc)
	}
	return nil
}

// HTTPAddr and HTTPSAddr are the bound addresses (after Listen).
func (g *Gateway) HTTPAddr() string  { return g.httpLn.Addr().String() }
func (g *Gateway) HTTPSAddr() string { return g.httpsLn.Addr().String() }

// Ready reports what the status endpoints report.
func (g *Gateway) Ready() bool { return g.state.Load() != nil && !g.draining.Load() }

// InFlight is the number of requests being served now.
func (g *Gateway) InFlight() int64 { return g.inFlight.Load() }

// Drain starts the graceful stop SIGTERM starts: health fails at once, traffic
// is served (with Connection: close) for the drain delay, then the servers shut
// down, letting in-flight requests finish. Run returns when that is done.
func (g *Gateway) Drain() {
	g.draining.Store(true)
	g.stopOnce.Do(func() { close(g.stop) })
}

// Run serves and polls configuration until ctx is done or Drain is called,
// then drains and returns. Listen must have been called.
func (g *Gateway) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-runCtx.Done():
		}
	}()

	g.logStart()

	var wg sync.WaitGroup
	// Polling and UDP outlive runCtx: traffic is still served during the drain.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer g.client.CloseIdleConnections() // Let the config service stop promptly.
	defer g.backends.CloseIdleConnections()
	defer wg.Wait()
	defer stopBackground()
	for _, pc := range g.udp {
		wg.Go(func() { discard(pc) })
		context.AfterFunc(bgCtx, func() { pc.Close() })
	}
	if g.setupErr == nil {
		wg.Go(func() { g.poll(bgCtx) })
	}

	h := g.Handler()
	servers := []standinhttp.Server{
		// HTTP/2 on both: negotiated on the TLS port, with prior knowledge
		// (h2c, as gRPC clients send it) on the plain one.
		{Name: "http", Listener: g.httpLn, Handler: h, HTTP2: true},
		{Name: "https", Listener: g.httpsLn, Handler: h, TLS: &g.cert, HTTP2: true},
	}
	return standinhttp.ServeAll(runCtx, g.log, servers, g.shutdown)
}

// logStart logs what the real gateway logs as its host starts (record 1.4,
// 1.19, 1.15), with the stand-in's own warnings in between.
func (g *Gateway) logStart() {
	g.log.Info("stand-in gateway starting (emulates Azure API Management self-hosted gateway "+strings.TrimSuffix(g.opts.Version, "-standin")+")",
		standinlog.Event(standinlog.EvHostStarting), standinlog.Source(standinlog.SrcHost), "version", g.opts.Version,
		"http", g.httpLn.Addr().String(), "https", g.httpsLn.Addr().String(),
		"pollInterval", g.opts.PollInterval.String(), "backupDir", g.opts.BackupDir)
	defer g.log.Info("", standinlog.Event(standinlog.EvHostStarted), standinlog.Source(standinlog.SrcHost))
	if g.setupErr != nil {
		g.log.Error("the gateway cannot load configuration and will never become ready; set config.service.endpoint and config.service.auth",
			standinlog.Event(standinlog.EvGatewayStartup), standinlog.Source(standinlog.SrcHost), "error", g.setupErr.Error())
		return
	}
	g.log.Info("Connected service is enabled. 'config.service.endpoint' is set.", standinlog.Event(standinlog.EvConfigStarted),
		standinlog.Source(standinlog.SrcComposite), "url", g.configURL.String())
	if !g.tokParsed {
		g.log.Warn("the gateway token is not <gatewayId>&<yyyyMMddHHmm>&<signature>; cannot tell when it expires",
			standinlog.Event(standinlog.EvTokenUnparsable), standinlog.Source(standinlog.SrcStandin))
	} else if now := g.opts.Clock.Now(); !g.tok.Expired(now) && g.tok.Expiry.Sub(now) < 7*24*time.Hour {
		// Azure Advisor warns 7 days ahead; so does the stand-in.
		g.log.Warn("the gateway token expires within 7 days; regenerate it", standinlog.Event(standinlog.EvTokenExpiringSoon), standinlog.Source(standinlog.SrcStandin))
	}
	g.checkBackupDir()
}

// shutdown is the SIGTERM sequence, run once the servers must stop.
func (g *Gateway) shutdown(servers []*http.Server) {
	g.draining.Store(true)
	stopping := []any{standinlog.Event(standinlog.EvStopping), standinlog.Source(standinlog.SrcHost)}
	g.log.Info("stop requested: health now fails; draining before shutdown", append(stopping, "drainDelay", g.opts.DrainDelay.String())...)
	<-g.opts.Clock.After(g.opts.DrainDelay)
	g.log.Info("shutting down; waiting for in-flight requests", append(stopping, "inFlight", g.InFlight(), "timeout", g.opts.ShutdownTimeout.String())...)
	if err := standinhttp.Shutdown(servers, g.opts.ShutdownTimeout); err != nil {
		g.log.Warn("in-flight requests did not finish in time", append(stopping, "error", err)...)
		return
	}
	g.log.Info("stand-in gateway stopped", standinlog.Event(standinlog.EvStopped), standinlog.Source(standinlog.SrcHost))
}

// discard reads and drops datagrams until pc is closed.
func discard(pc net.PacketConn) {
	buf := make([]byte, 64*1024)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			return
		}
	}
}
