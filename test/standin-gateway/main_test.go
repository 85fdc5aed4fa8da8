package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/test/standin-gateway/internal/standinlog"
	"github.com/apimdev/apimdev/test/standin-gateway/internal/token"
)

func envOf(m map[string]string) lookupEnv {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestMintToken(t *testing.T) {
	t.Parallel()
	key := map[string]string{envGatewayKey: "mint-test-key"}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantUsage bool
		wantErr   bool
		expired   bool
	}{
		{"expiry", []string{"--id", "gw-1", "--expiry", "203001020304"}, key, false, false, false},
		{"valid for", []string{"--id=gw-1", "--valid-for=720h"}, key, false, false, false},
		{"already expired", []string{"--id", "gw-1", "--valid-for", "-1h"}, key, false, false, true},
		{"past expiry", []string{"--id", "gw-1", "--expiry", "202001010000"}, key, false, false, true},
		{"no key", []string{"--id", "gw-1", "--expiry", "203001020304"}, nil, false, true, false},
		{"no id", []string{"--expiry", "203001020304"}, key, true, true, false},
		{"no expiry", []string{"--id", "gw-1"}, key, true, true, false},
		{"both expiries", []string{"--id", "gw-1", "--expiry", "203001020304", "--valid-for", "1h"}, key, true, true, false},
		{"bad expiry", []string{"--id", "gw-1", "--expiry", "2030-01-02"}, key, true, true, false},
		{"stray argument", []string{"--id", "gw-1", "--expiry", "203001020304", "extra"}, key, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"mint-token"}, tc.args...), envOf(tc.env), &stdout, &stderr)
			if (err != nil) != tc.wantErr || errors.As(err, new(usageError)) != tc.wantUsage {
				t.Fatalf("run() = %v; want error %v, usage error %v", err, tc.wantErr, tc.wantUsage)
			}
			if err != nil {
				if stdout.Len() != 0 {
					t.Errorf("stdout on failure: %q", stdout.String())
				}
				return
			}
			out := stdout.String()
			if !strings.HasPrefix(out, "GatewayKey gw-1&") || strings.Count(out, "\n") != 1 {
				t.Fatalf("stdout = %q, want one GatewayKey line", out)
			}
			tok, err := token.Verify([]byte("mint-test-key"), out)
			if err != nil {
				t.Fatalf("minted token does not verify: %v", err)
			}
			if tok.Expired(time.Now()) != tc.expired {
				t.Errorf("expired = %v, want %v", !tc.expired, tc.expired)
			}
		})
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"help"}, envOf(nil), &stdout, &stdout); err != nil || !strings.Contains(stdout.String(), "stand-in") {
		t.Errorf("help = %v, %q", err, stdout.String())
	}
	if err := run(context.Background(), []string{"serve"}, envOf(nil), &stdout, &stdout); !errors.As(err, new(usageError)) {
		t.Errorf("unknown mode = %v, want a usage error", err)
	}
	// STANDIN_MODE picks the mode when no argument does; this one fails fast.
	err := run(context.Background(), nil, envOf(map[string]string{"STANDIN_MODE": "config-service"}), &stdout, &stdout)
	if err == nil || !strings.Contains(err.Error(), envGatewayKey) {
		t.Errorf("config-service without a key = %v, want an error naming %s", err, envGatewayKey)
	}
}

func TestGatewayOptions(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		var problems []string
		o := settings{envOf(map[string]string{"HOSTNAME": "pod-1"})}.gatewayOptions(standinlog.Discard(), &problems)
		if o.HTTPAddr != ":8080" || o.HTTPSAddr != ":8081" || len(o.UDPAddrs) != 2 || o.BackupDir != "/apim/config" ||
			o.PollInterval != 10*time.Second || o.DrainDelay != 5*time.Second || o.PodName != "pod-1" || len(problems) != 0 {
			t.Errorf("defaults = %+v, problems %v", o, problems)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		t.Parallel()
		var problems []string
		o := settings{envOf(map[string]string{
			envEndpoint: " cfg:8443 ", envAuth: "GatewayKey a&b&c",
			envHTTPAddr: "127.0.0.1:0", envRateLimitAddr: "", envBackupDir: "",
			envPollInterval: "50ms", envDrainDelay: "soon",
		})}.gatewayOptions(standinlog.Discard(), &problems)
		if o.Endpoint != "cfg:8443" || o.Auth != "GatewayKey a&b&c" || o.HTTPAddr != "127.0.0.1:0" ||
			len(o.UDPAddrs) != 1 || o.BackupDir != "" || o.PollInterval != 50*time.Millisecond || o.DrainDelay != 5*time.Second {
			t.Errorf("overrides = %+v", o)
		}
		if len(problems) != 1 || !strings.Contains(problems[0], envDrainDelay) {
			t.Errorf("problems = %v, want one about %s", problems, envDrainDelay)
		}
	})
	t.Run("auth key variant", func(t *testing.T) {
		t.Parallel()
		o := settings{envOf(map[string]string{envAuth: "key", envAuthKey: "GatewayKey x&y&z"})}.gatewayOptions(standinlog.Discard(), new([]string))
		if o.Auth != "GatewayKey x&y&z" {
			t.Errorf("Auth = %q, want the token from %s", o.Auth, envAuthKey)
		}
	})
}

func TestStatsdEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env          map[string]string
		want         string
		wantProblems int
	}{
		{map[string]string{}, "", 0},
		{map[string]string{envMetrics: "statsd", envStatsd: "statsd-exporter:8125"}, "statsd-exporter:8125", 0},
		{map[string]string{envMetrics: "STATSD", envStatsd: "exporter"}, "exporter", 0},
		{map[string]string{envMetrics: "statsd"}, "", 1},
		{map[string]string{envMetrics: "statsd", envStatsd: "udp://x:1"}, "", 1},
		{map[string]string{envMetrics: "prometheus"}, "", 1},
	}
	for _, tc := range tests {
		var problems []string
		if got := (settings{envOf(tc.env)}).statsdEndpoint(&problems); got != tc.want || len(problems) != tc.wantProblems {
			t.Errorf("statsdEndpoint(%v) = %q, problems %v; want %q and %d problems", tc.env, got, problems, tc.want, tc.wantProblems)
		}
	}
}

func TestSubscriptionKeys(t *testing.T) {
	t.Parallel()
	o := settings{envOf(map[string]string{envSubKeys: " a, ,b ,", envGatewayKey: "k"})}.configServiceOptions(standinlog.Discard(), new([]string))
	if len(o.SubscriptionKeys) != 2 || o.SubscriptionKeys[0] != "a" || o.SubscriptionKeys[1] != "b" || string(o.Key) != "k" || o.HTTPSAddr != ":8443" {
		t.Errorf("config service options = %+v", o)
	}
}

// The ConfigMap keys telemetry.logs.std, .level and .color reach the logger as
// the environment variables of the same names.
func TestLogSettingsFromEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env       map[string]string
		wantColor bool
		wantJSON  bool
		wantDebug bool
	}{
		{map[string]string{}, true, false, false},
		{map[string]string{envLogColor: "false"}, false, false, false},
		{map[string]string{envLogColor: "true", envLogLevel: "all"}, true, false, true},
		{map[string]string{envLogFormat: "json", envLogLevel: "debug"}, false, true, true},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		log, problems := settings{envOf(tc.env)}.logger(&buf, "gateway")
		if len(problems) != 0 {
			t.Fatalf("%v: problems %v", tc.env, problems)
		}
		log.Debug("dbg", standinlog.Event("D"))
		log.Info("inf", standinlog.Event("I"))
		out := buf.String()
		if strings.Contains(out, "\x1b[") != tc.wantColor || strings.HasPrefix(out, "{") != tc.wantJSON || strings.Contains(out, "dbg") != tc.wantDebug {
			t.Errorf("%v: output %q: want colour=%v json=%v debug=%v", tc.env, out, tc.wantColor, tc.wantJSON, tc.wantDebug)
		}
	}
}

// A bad STANDIN_APIS stops the config service (exit 1 from main) with a log
// entry that says which variable and what is wrong, before it listens.
func TestConfigServiceRefusesBadAPIs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ apis, want string }{
		{`[{"name":"mine","path":"/mine"`, "not a JSON list"},
		{`[{"name":"mine","path":"/echo","backendUrl":"http://mine:8080"}]`, `path /echo is api "echo"'s already`},
	} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"config-service"}, envOf(map[string]string{
			envGatewayKey: "k", envAPIs: tc.apis, envLogColor: "false",
			envConfigHTTPS: "127.0.0.1:0", envConfigHTTP: "",
		}), &out, &out)
		if err == nil || !strings.Contains(err.Error(), envAPIs) || !strings.Contains(err.Error(), tc.want) || errors.As(err, new(usageError)) {
			t.Errorf("STANDIN_APIS=%s: run() = %v, want a (non-usage) error naming %s and %q", tc.apis, err, envAPIs, tc.want)
		}
		if log := out.String(); !strings.Contains(log, "[Error]") || !strings.Contains(log, "["+standinlog.EvConfigServiceBadAPIs+"]") || !strings.Contains(log, tc.want) {
			t.Errorf("log = %q, want an error entry %s with %q", log, standinlog.EvConfigServiceBadAPIs, tc.want)
		}
		if strings.Contains(out.String(), "listening") {
			t.Errorf("the config service listened with a bad list: %q", out.String())
		}
	}
}
