package gateway

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
)

// Subscription key carriers, as in API Management.
const (
	SubscriptionKeyHeader = "Ocp-Apim-Subscription-Key"
	SubscriptionKeyQuery  = "subscription-key"
)

// maxEchoBody bounds the request body the echo API reads back.
const maxEchoBody = 1 << 20

// Error bodies worded as API Management words them, so smoke tests written
// against the stand-in match the real gateway.
const (
	msgMissingKey = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."
	msgInvalidKey = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
	msgNotFound   = "Resource not found"
)

// apimError is API Management's error body.
type apimError struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// Handler serves both traffic ports. It routes by exact path rather than with
// http.ServeMux, which would clean paths and redirect where APIM does not.
func (g *Gateway) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.opts.Clock.Now()
		g.inFlight.Add(1)
		defer g.inFlight.Add(-1)

		w.Header().Set(standinhttp.Header, standinhttp.HeaderValue)
		if g.draining.Load() {
			// Tell keep-alive clients to reconnect, which lands them on a pod that
			// is not going away.
			w.Header().Set("Connection", "close")
		}
		rec := &standinhttp.RecordingWriter{ResponseWriter: w}
		api, fields := g.route(rec, r)
		g.observe(r, rec.StatusOrOK(), api, g.opts.Clock.Now().Sub(start), fields...)
	})
}

// route serves r and returns the API name for logs and metrics ("status" for
// probes, "none" when no API matched), and the GatewayLogs fields of a
// forward to a backend.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request) (string, []any) {
	if r.URL.Path == StatusPath || r.URL.Path == LegacyStatusPath {
		g.status(w)
		return "status", nil
	}
	st := g.state.Load()
	if st == nil && g.refusedBare.Load() {
		w.WriteHeader(http.StatusOK) // what #287 reports: 200, nothing else
		return "none", nil
	}
	if st == nil {
		standinhttp.WriteJSON(w, http.StatusServiceUnavailable, apimError{http.StatusServiceUnavailable,
			"The stand-in gateway has not loaded its configuration yet."})
		return "none", nil
	}
	if r.URL.Path == BusyPath {
		g.busy(w, r, st.cfg)
		return "standin-busy", nil
	}
	if g.checkExpiry() {
		// What users report of the real gateway with an expired token: 200 and
		// nothing else. Smoke tests must therefore check bodies, not statuses.
		w.WriteHeader(http.StatusOK)
		return "expired", nil
	}
	api, ok := st.cfg.Match(r.URL.Path)
	if !ok {
		standinhttp.WriteJSON(w, http.StatusNotFound, apimError{http.StatusNotFound, msgNotFound})
		return "none", nil
	}
	sub := ""
	if api.SubscriptionRequired {
		if sub, ok = g.authorize(w, r, st.cfg); !ok {
			return api.Name, nil
		}
	}
	if api.Kind == apimconfig.KindProxy {
		return api.Name, g.proxyAPI(w, r, api)
	}
	g.echo(w, r, api, sub)
	return api.Name, nil
}

func (g *Gateway) status(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case g.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "stand-in gateway is shutting down")
	case g.state.Load() == nil && g.refusedBare.Load():
		fmt.Fprintln(w, "stand-in gateway runs without its configuration: the configuration endpoint refused it")
	case g.state.Load() == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "stand-in gateway has no configuration yet")
	case g.opts.Clock.Now().UnixNano() < g.busyUntil.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "stand-in gateway is busy (test hook)")
	default:
		fmt.Fprintln(w, "stand-in gateway is ready")
	}
}

// BusyPath is a test hook of the stand-in (not of the real gateway): POST
// with a subscription key and ?for=DURATION (at most 10m), and the status
// endpoint answers 503 for that long while every API keeps serving, as a
// gateway too busy to answer its probes in time would. Tests use it to show
// that readiness takes such a pod out of rotation and liveness does not
// restart it.
const BusyPath = "/standin/busy"

func (g *Gateway) busy(w http.ResponseWriter, r *http.Request, cfg apimconfig.Configuration) {
	if r.Method != http.MethodPost {
		standinhttp.WriteJSON(w, http.StatusMethodNotAllowed, apimError{http.StatusMethodNotAllowed, "POST " + BusyPath + "?for=30s"})
		return
	}
	if _, ok := g.authorize(w, r, cfg); !ok {
		return
	}
	d, err := time.ParseDuration(r.URL.Query().Get("for"))
	if err != nil || d <= 0 || d > 10*time.Minute {
		standinhttp.WriteJSON(w, http.StatusBadRequest, apimError{http.StatusBadRequest, "for must be a duration up to 10m, e.g. ?for=30s"})
		return
	}
	until := g.opts.Clock.Now().Add(d)
	g.busyUntil.Store(until.UnixNano())
	g.log.Warn("test hook: the status endpoint answers 503 while APIs keep serving", standinlog.Event(standinlog.EvBusyHook), standinlog.Source(standinlog.SrcStandin),
		"for", d.String())
	standinhttp.WriteJSON(w, http.StatusOK, map[string]string{"pod": g.opts.PodName, "until": until.UTC().Format(time.RFC3339)})
}

// authorize checks the subscription key and answers 401 itself when it fails.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, cfg apimconfig.Configuration) (string, bool) {
	key := r.Header.Get(SubscriptionKeyHeader)
	if key == "" {
		key = r.URL.Query().Get(SubscriptionKeyQuery)
	}
	if key == "" {
		standinhttp.WriteJSON(w, http.StatusUnauthorized, apimError{http.StatusUnauthorized, msgMissingKey})
		return "", false
	}
	name, ok := cfg.SubscriptionFor(key)
	if !ok {
		standinhttp.WriteJSON(w, http.StatusUnauthorized, apimError{http.StatusUnauthorized, msgInvalidKey})
		return "", false
	}
	return name, true
}

// EchoResponse is what the echo API answers.
type EchoResponse struct {
	Gateway      string              `json:"gateway"`
	API          string              `json:"api"`
	Subscription string              `json:"subscription,omitempty"`
	Pod          string              `json:"pod"`
	Version      string              `json:"version"`
	Method       string              `json:"method"`
	Path         string              `json:"path"`
	Query        map[string][]string `json:"query"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
}

func (g *Gateway) echo(w http.ResponseWriter, r *http.Request, api apimconfig.API, sub string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		standinhttp.WriteJSON(w, http.StatusRequestEntityTooLarge, apimError{http.StatusRequestEntityTooLarge,
			"The stand-in echo API reads at most 1 MiB of body."})
		return
	}
	// The caller's key is theirs; the echo must not hand it to whatever logs the body.
	headers := r.Header.Clone()
	headers.Del(SubscriptionKeyHeader)
	query := r.URL.Query()
	query.Del(SubscriptionKeyQuery)
	standinhttp.WriteJSON(w, http.StatusOK, EchoResponse{
		Gateway:      "stand-in",
		API:          api.Name,
		Subscription: sub,
		Pod:          g.opts.PodName,
		Version:      g.opts.Version,
		Method:       r.Method,
		Path:         r.URL.Path,
		Query:        query,
		Headers:      headers,
		Body:         string(body),
	})
}

// observe logs the request and records its metrics. Probes are logged at debug
// and not counted: every pod is probed every few seconds, which would drown
// the API traffic a user wants to see.
func (g *Gateway) observe(r *http.Request, status int, api string, d time.Duration, fields ...any) {
	// A GatewayLogs entry (record section 7) with field names from Azure
	// Monitor's GatewayLogs table. The URL without its query: the query may
	// carry a subscription key.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	args := []any{standinlog.Event(standinlog.EvRequest), standinlog.Source(standinlog.SrcRequest),
		"isRequestSuccess", status < 400, "totalTime", d.Milliseconds(), "category", "GatewayLogs",
		"method", r.Method, "url", scheme + "://" + r.Host + r.URL.EscapedPath(), "responseCode", status, "apiId", api}
	args = append(args, fields...)
	if api == "status" {
		g.log.Debug("", args...)
		return
	}
	g.log.Info("", args...)
	g.opts.Metrics.Observe(statsd.Request{API: api, Method: r.Method, Status: status, Duration: d})
}
