// Package configservice is the stand-in for the Azure API Management
// configuration endpoint (<apim>.configuration.azure-api.net): it checks the
// gateway token and hands out the gateway's configuration.
//
// Like Azure, it refuses a token it cannot verify with 401, and it does not
// refuse a well-signed token because it has expired: what an expired token
// does is the gateway's behaviour to emulate, not the service's.
package configservice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/selfsigned"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinhttp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

// Options configure a Service. Key is required.
type Options struct {
	// Key verifies gateway tokens (STANDIN_GATEWAY_KEY).
	Key []byte
	// SubscriptionKeys are the keys the gateway will accept on its APIs.
	SubscriptionKeys []string
	// APIs are published after the echo API (STANDIN_APIS, checked with
	// apimconfig.ParseAPIs); New refuses a list that does not validate.
	APIs []apimconfig.API
	// HTTPSAddr serves the configuration; HTTPAddr serves health only.
	HTTPSAddr, HTTPAddr string
	// Hostnames go into the certificate's SANs besides localhost.
	Hostnames []string
	Logger    *slog.Logger
	Now       func() time.Time
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// Entra, when set, serves a stand-in Microsoft Entra ID token endpoint
	// for this app and accepts the access tokens it grants.
	Entra *EntraApp
	// Issuer signs the service's TLS certificate; nil is the stand-in's
	// well-known CA, which every stand-in gateway trusts.
	Issuer *selfsigned.Authority
}

// Service is a running (or ready to run) stand-in config service.
type Service struct {
	opts            Options
	httpsLn, httpLn net.Listener
	cert            tls.Certificate
}

// New checks opts and fills defaults.
func New(opts Options) (*Service, error) {
	if len(opts.Key) == 0 {
		return nil, errors.New("the config service needs a gateway key to verify tokens (STANDIN_GATEWAY_KEY is empty)")
	}
	if err := apimconfig.New("-", nil, opts.APIs...).Validate(); err != nil {
		return nil, fmt.Errorf("the config service's APIs: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = opts.Logger.With(standinlog.Source(standinlog.SrcConfigService))
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	return &Service{opts: opts}, nil
}

// Listen binds both ports, so callers (and tests using port 0) know the
// addresses before Run.
func (s *Service) Listen() error {
	var err error
	issuer := s.opts.Issuer
	if issuer == nil {
		issuer = selfsigned.WellKnown()
	}
	if s.cert, err = issuer.Issue(s.opts.Now(), s.opts.Hostnames...); err != nil {
		return err
	}
	if s.httpsLn, err = net.Listen("tcp", s.opts.HTTPSAddr); err != nil {
		return fmt.Errorf("listen for HTTPS on %s: %w", s.opts.HTTPSAddr, err)
	}
	if s.opts.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", s.opts.HTTPAddr); err != nil {
			s.httpsLn.Close()
			return fmt.Errorf("listen for HTTP on %s: %w", s.opts.HTTPAddr, err)
		}
	}
	return nil
}

// HTTPSAddr is the bound HTTPS address (after Listen).
func (s *Service) HTTPSAddr() string { return s.httpsLn.Addr().String() }

// HTTPAddr is the bound health-only HTTP address, or "" when there is none.
func (s *Service) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Run serves until ctx is done. Listen must have been called.
func (s *Service) Run(ctx context.Context) error {
	servers := []standinhttp.Server{{Name: "https", Listener: s.httpsLn, Handler: s.Handler(), TLS: &s.cert}}
	if s.httpLn != nil {
		servers = append(servers, standinhttp.Server{Name: "http", Listener: s.httpLn, Handler: s.healthOnly()})
	}
	log := s.opts.Logger
	log.Info("stand-in config service listening", standinlog.Event(standinlog.EvConfigServiceListening),
		"https", s.httpsLn.Addr().String(), "path", apimconfig.Path,
		"subscriptionKeys", len(s.opts.SubscriptionKeys), "apis", len(s.opts.APIs)+1)
	for _, a := range s.opts.APIs {
		log.Info("publishing a proxy API", standinlog.Event(standinlog.EvConfigServiceAPI),
			"name", a.Name, "path", a.Path, "backendUrl", a.BackendURL, "subscriptionRequired", a.SubscriptionRequired)
	}
	return standinhttp.ServeAll(ctx, log, servers, func(hs []*http.Server) {
		log.Info("stand-in config service stopping", standinlog.Event(standinlog.EvConfigServiceStopping))
		if err := standinhttp.Shutdown(hs, s.opts.ShutdownTimeout); err != nil {
			log.Warn("stand-in config service did not stop cleanly", standinlog.Event(standinlog.EvConfigServiceStopping), "error", err)
		}
	})
}

// Handler serves the configuration and health on the HTTPS port.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET "+apimconfig.Path, s.configuration)
	if s.opts.Entra != nil {
		mux.HandleFunc("POST /{tenant}"+TokenPath, s.token)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		standinhttp.WriteJSON(w, http.StatusNotFound, apiError("NotFound", "Resource not found"))
	})
	return s.logged(mux)
}

func (s *Service) healthOnly() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	return s.logged(mux)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok (stand-in config service)")
}

func (s *Service) configuration(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		s.refuse(w, r, "no Authorization header")
		return
	}
	bearer := false
	if word, rest, ok := strings.Cut(strings.TrimSpace(auth), " "); ok && strings.EqualFold(word, "Bearer") {
		// An access token from the stand-in token endpoint (Entra app auth).
		auth, bearer = rest, true
	}
	tok, err := token.Verify(s.opts.Key, auth)
	if err == nil && bearer != strings.HasPrefix(tok.GatewayID, entraID) {
		err = errors.New("a gateway token sent as a bearer token, or an access token sent as a gateway token")
	}
	if err == nil && bearer && tok.Expired(s.opts.Now()) {
		err = errors.New("the access token has expired")
	}
	if err != nil {
		// err says why (malformed, bad signature) and never quotes the token.
		s.refuse(w, r, err.Error())
		return
	}
	cfg := apimconfig.New(tok.GatewayID, s.opts.SubscriptionKeys, s.opts.APIs...)
	// The gateway id is part of the token, so it stays out of the log too.
	s.opts.Logger.Debug("configuration served", standinlog.Event(standinlog.EvConfigServed), "revision", cfg.Revision, "tokenExpired", tok.Expired(s.opts.Now()))
	w.Header().Set("ETag", `"`+cfg.Revision+`"`)
	standinhttp.WriteJSON(w, http.StatusOK, cfg)
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	s.opts.Logger.Warn("configuration request refused", standinlog.Event(standinlog.EvConfigRefused), "reason", reason, "remote", r.RemoteAddr)
	w.Header().Set("WWW-Authenticate", "GatewayKey")
	standinhttp.WriteJSON(w, http.StatusUnauthorized,
		apiError("Unauthorized", "Access denied: the gateway token is missing, malformed or not valid for this service."))
}

// apiError is shaped like Azure management-plane errors.
func apiError(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

// logged marks and logs every request.
func (s *Service) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		w.Header().Set(standinhttp.Header, standinhttp.HeaderValue)
		rec := &standinhttp.RecordingWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" {
			level = slog.LevelDebug // Probes every few seconds would drown the log.
		}
		s.opts.Logger.Log(r.Context(), level, "request", standinlog.Event(standinlog.EvConfigServiceRequest),
			"method", r.Method, "path", r.URL.Path, "status", rec.StatusOrOK(),
			"durationMs", s.opts.Now().Sub(start).Milliseconds())
	})
}
