package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/apimconfig"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/configservice"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/gateway"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/otlp"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/selfsigned"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/statsd"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

func runGateway(ctx context.Context, s settings, stdout io.Writer) error {
	log, problems := s.logger(stdout, "gateway")
	opts := s.gatewayOptions(log, &problems)
	version := opts.Version
	if version == "" {
		version = gateway.DefaultVersion
	}
	if err := standinlog.Banner(stdout, version); err != nil {
		return err
	}
	log = log.With(standinlog.Source(standinlog.SrcStandin))
	endpoint := s.statsdEndpoint(&problems)
	collector := s.otelCollector(&problems)
	interval := s.duration(envOTLPInterval, 10*time.Second, &problems)
	for _, p := range problems {
		log.Warn(p, standinlog.Event(standinlog.EvSettingProblem))
	}
	if name := s.get(envGatewayName); name != "" {
		log.Info("gateway name", standinlog.Event(standinlog.EvGatewayName), "gateway.name", name)
	}

	// Metrics outlive ctx: requests served during the drain are counted too.
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMetrics()
	switch {
	case collector != "":
		m, err := otlp.New(metricsCtx, collector, interval, opts.PodName)
		if err != nil {
			return err
		}
		opts.Metrics = m
		defer func() {
			// Flush what the drain counted; bounded, as a pod's grace period is.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.Shutdown(sctx); err != nil {
				log.Warn("last OpenTelemetry export failed", standinlog.Event(standinlog.EvMetrics), "error", err.Error())
			}
		}()
		log.Info("sending metrics to the OpenTelemetry collector", standinlog.Event(standinlog.EvMetrics), "uri", collector, "interval", interval.String())
	case endpoint != "":
		m := statsd.New(endpoint, log)
		opts.Metrics = m
		go m.Run(metricsCtx)
		log.Info("sending local metrics to statsd", standinlog.Event(standinlog.EvMetrics), "endpoint", m.Endpoint())
	}

	g := gateway.New(opts)
	if err := g.Listen(); err != nil {
		return err
	}
	return g.Run(ctx)
}

func runConfigService(ctx context.Context, s settings, stdout io.Writer) error {
	log, problems := s.logger(stdout, "config-service")
	log = log.With(standinlog.Source(standinlog.SrcConfigService))
	opts := s.configServiceOptions(log, &problems)
	for _, p := range problems {
		log.Warn(p, standinlog.Event(standinlog.EvSettingProblem))
	}
	if cert, key := s.get(envTLSCACert), s.get(envTLSCAKey); cert != "" || key != "" {
		ca, err := selfsigned.ParseAuthority([]byte(cert), []byte(key))
		if err != nil {
			return fmt.Errorf("%s and %s: %w", envTLSCACert, envTLSCAKey, err)
		}
		opts.Issuer = ca
		log.Info("serving a certificate of a private CA: gateways trust it only when that CA is mounted", standinlog.Event(standinlog.EvConfigServicePrivateCA), "ca", ca.Cert.Subject.String())
	}
	apis, err := apimconfig.ParseAPIs([]byte(s.get(envAPIs)))
	if err != nil {
		// Exit 1: a configuration service that silently dropped an API would
		// leave its caller wondering why the path answers 404.
		log.Error(envAPIs+" is not a valid list of APIs; the config service does not start", standinlog.Event(standinlog.EvConfigServiceBadAPIs), "error", err.Error())
		return fmt.Errorf("%s: %w", envAPIs, err)
	}
	opts.APIs = apis
	if len(opts.SubscriptionKeys) == 0 {
		log.Warn(envSubKeys+" is empty: every call to the echo API will be refused with 401", standinlog.Event(standinlog.EvConfigServiceNoSubKeys))
	}
	svc, err := configservice.New(opts)
	if err != nil {
		return err
	}
	if err := svc.Listen(); err != nil {
		return err
	}
	return svc.Run(ctx)
}

// mintToken prints a token signed with STANDIN_GATEWAY_KEY. The key comes from
// the environment, never argv, so it stays out of process listings.
func mintToken(args []string, s settings, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mint-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "gateway id (the first field of the token)")
	expiry := fs.String("expiry", "", "expiry as yyyyMMddHHmm in UTC, e.g. 203001311200 (may be in the past)")
	validFor := fs.Duration("valid-for", 0, "expiry as a duration from now, e.g. 720h (negative: already expired)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("mint-token takes no arguments, got %q", fs.Args())}
	case *id == "":
		return usageError{"mint-token needs --id"}
	case (*expiry == "") == (*validFor == 0):
		return usageError{"mint-token needs exactly one of --expiry and --valid-for"}
	}
	key := s.get(envGatewayKey)
	if key == "" {
		return errors.New(envGatewayKey + " is not set: it is the key the config service verifies tokens with")
	}
	field := *expiry
	if field == "" {
		field = time.Now().Add(*validFor).UTC().Format(token.ExpiryLayout)
	}
	tok, err := token.MintField([]byte(key), strings.TrimSpace(*id), field)
	if err != nil {
		return usageError{err.Error()}
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
