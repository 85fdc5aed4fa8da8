package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/apimdev/apimdev/internal/testdir"
	"reflect"
	"sort"
)

func TestValidFixtures(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	if len(files) < 2 {
		t.Fatalf("fixtures missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, found, err := LoadFile(f, false)
			if err != nil || !found {
				t.Fatalf("LoadFile: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	full, _, _ := LoadFile("testdata/valid-full.yaml", false)
	if full.Forward.HTTPPort != 80 || full.Cluster.Name != "workshop" || full.Output != "json" || full.Gateway.Namespace != "apim" {
		t.Fatalf("fields not decoded: %+v", full)
	}
	min, _, _ := LoadFile("testdata/valid-minimal.yaml", false)
	if min.Gateway.Image != DefaultImage || min.Forward.HTTPSPort != DefaultHTTPSPort || min.Gateway.Namespace != DefaultNamespace {
		t.Fatalf("defaults lost: %+v", min)
	}
}

func TestInvalidFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // every one must appear
	}{
		{"invalid-typo.yaml", []string{`line 5: unknown field "endpiont" in gateway (did you mean "endpoint"?)`, `line 8: unknown field "htppsPort" in forward (did you mean "httpsPort"?)`}},
		{"invalid-version.yaml", []string{`apiVersion is "apimdev.io/v9"`, `kind is "Settings"`}},
		{"invalid-type.yaml", []string{"line 4:", "eighty"}},
		{"invalid-prod.yaml", []string{"prod.memoryLimit: 1Gi is below the memory request 2Gi", `prod.ephemeralStorage: "lots" is not a Kubernetes quantity`,
			`prod.logs.local: "syslog" is not a local log form`, "prod.logs.facility: is set, but only the syslog forms", `prod.networkPolicy.from: "10.0.0.0/33" is not a CIDR`,
			`"10.20.0.0/16:http" has an invalid port`, `"backend.contoso" is not CIDR or CIDR:port`, "7 problem(s)"}},
		{"invalid-values.yaml", []string{"gateway.name", "contoso-gw", "gateway.endpoint", "HTTPS only", "gateway.image", "gateway.namespace", "belongs to Kubernetes", "cluster.name", "forward.httpPort", "forward.httpsPort: 70000", "same as forward.httpPort", "output", "9 problem(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := LoadFile(filepath.Join("testdata", tt.file), false)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestTabsAreExplained(t *testing.T) {
	t.Parallel()
	_, err := Decode("x.yaml", strings.NewReader("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n\tname: a\n"), Default())
	if err == nil || !strings.Contains(err.Error(), "x.yaml line 4: indentation uses a tab") {
		t.Fatalf("got %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	cfg, _, err := LoadFile("testdata/valid-full.yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"APIMDEV_HTTP_PORT": "9080", "APIMDEV_CLUSTER_NAME": "from-env", "APIMDEV_TOKEN": "ignored-here"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Forward.HTTPPort != 9080 || cfg.Cluster.Name != "from-env" || cfg.Forward.HTTPSPort != 443 {
		t.Fatalf("env not applied over file: %+v", cfg.Forward)
	}
	bad := map[string]string{"APIMDEV_HTTPS_PORT": "x"}
	if err := cfg.ApplyEnv(func(k string) string { return bad[k] }); err == nil || !strings.Contains(err.Error(), "APIMDEV_HTTPS_PORT") {
		t.Fatalf("bad env value not named: %v", err)
	}
}

func TestMissingOptionalFile(t *testing.T) {
	t.Parallel()
	cfg, found, err := LoadFile(filepath.Join(testdir.New(t), "apimdev.yaml"), true)
	if err != nil || found || cfg.Cluster.Name != DefaultCluster {
		t.Fatalf("got %v %v %+v", err, found, cfg)
	}
	if _, _, err := LoadFile(filepath.Join(testdir.New(t), "nope.yaml"), false); err == nil {
		t.Fatal("an explicit missing file must be an error")
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"contoso.configuration.azure-api.net", "https://contoso.configuration.azure-api.net/", "cfg.apim-e2e.svc:8443", "contoso.management.azure-api.net"} {
		if p := endpointProblem(ok); p != "" {
			t.Errorf("%s: %s", ok, p)
		}
	}
	for _, bad := range []string{"", "contoso", "http://contoso.azure-api.net", "contoso.azure-api.net/path", "a..b", "host.example:99999", "user@host.example"} {
		if endpointProblem(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

const canarySig = "Q0FOQVJZLWNvbmZpZy10ZXN0LTAwMDE="

func TestLoadToken(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("\"GatewayKey gw&202612301200&"+canarySig+"\"\n"), 0o600)
	cfg := Default()
	cfg.Gateway.TokenFile = file
	tok, src, err := LoadToken(cfg, func(string) string { return "" }, nil)
	if err != nil || tok.GatewayID != "gw" || !strings.HasPrefix(string(src), "file ") {
		t.Fatalf("file: %v %v %s", tok, err, src)
	}
	cfg.Gateway.TokenFile = "-"
	tok, src, err = LoadToken(cfg, nil, strings.NewReader("gw2&202612301200&"+canarySig+"\n"))
	if err != nil || tok.GatewayID != "gw2" || src != "stdin" {
		t.Fatalf("stdin: %v %v", tok, err)
	}
	cfg.Gateway.TokenFile = ""
	tok, _, err = LoadToken(cfg, func(k string) string {
		if k == "APIMDEV_TOKEN" {
			return "gw3&202612301200&" + canarySig
		}
		return ""
	}, nil)
	if err != nil || tok.GatewayID != "gw3" {
		t.Fatalf("env: %v %v", tok, err)
	}
	_, _, err = LoadToken(cfg, func(string) string { return "" }, nil)
	var p *Problem
	if !errors.As(err, &p) || !strings.Contains(p.Fix, "--token-file") {
		t.Fatalf("no source: %v", err)
	}
	_, _, err = LoadToken(cfg, func(string) string { return "gw&" + canarySig }, nil)
	if err == nil || strings.Contains(err.Error(), canarySig) || !strings.Contains(err.Error(), "APIMDEV_TOKEN") {
		t.Fatalf("malformed: %v", err)
	}
	cfg.Gateway.TokenFile = filepath.Join(dir, "missing")
	if _, _, err := LoadToken(cfg, nil, nil); err == nil || !testdir.NotFound(err.Error()) {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, fx := range []string{"valid-full.yaml", "invalid-typo.yaml", "invalid-values.yaml"} {
		b, _ := os.ReadFile(filepath.Join("testdata", fx))
		f.Add(string(b))
	}
	f.Add("apiVersion: [\nkind: {")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Decode("f.yaml", strings.NewReader(s), Default())
		if err == nil {
			_ = cfg.Validate()
			return
		}
		// Every problem is a DecodeError that names the file and, when it
		// names a line, one the file has (yaml may point just past the end).
		lines := yamlLines(s)
		for _, e := range leaves(err) {
			var de *DecodeError
			if !errors.As(e, &de) {
				t.Fatalf("error of type %T: %v", e, e)
			}
			if de.File != "f.yaml" || de.Line < 0 || de.Line > lines+1 || de.Problem == "" {
				t.Fatalf("problem %+v for a file of %d line(s)", de, lines)
			}
		}
	})
}

// yamlLines counts lines as the YAML scanner does: it reads UTF-16 when the
// file starts with its byte-order mark, and breaks at \n, \r\n, a lone \r,
// and at NEL (U+0085), LS (U+2028) and PS (U+2029). The fuzz corpus in
// testdata/fuzz/FuzzDecode holds a file of each kind that taught this.
func yamlLines(s string) int {
	if len(s) >= 2 && (s[:2] == "\xfe\xff" || s[:2] == "\xff\xfe") {
		u := make([]uint16, 0, len(s)/2)
		for i := 2; i+1 < len(s); i += 2 {
			if s[0] == 0xfe {
				u = append(u, uint16(s[i])<<8|uint16(s[i+1]))
			} else {
				u = append(u, uint16(s[i+1])<<8|uint16(s[i]))
			}
		}
		s = string(utf16.Decode(u))
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// leaves flattens errors.Join trees.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// Files and records from before prod.metrics took a mode said true/false.
func TestMetricsModeReadsTheOlderBool(t *testing.T) {
	for in, want := range map[string]MetricsMode{"true": MetricsStatsd, "false": MetricsNone, "opentelemetry": MetricsOpenTelemetry, "statsd": MetricsStatsd} {
		c, err := Decode("f.yaml", strings.NewReader("apiVersion: apimdev.io/v1alpha1\nkind: Config\nprod:\n  metrics: "+in+"\n"), Default())
		if err != nil || c.Prod.Metrics != want {
			t.Errorf("yaml %s: %q, %v", in, c.Prod.Metrics, err)
		}
		var p Prod
		js := in
		if in != "true" && in != "false" {
			js = `"` + in + `"`
		}
		if err := json.Unmarshal([]byte(`{"metrics":`+js+`}`), &p); err != nil || p.Metrics != want {
			t.Errorf("json %s: %q, %v", js, p.Metrics, err)
		}
	}
	c := Default()
	c.Prod.Metrics = "prometheus"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `"prometheus" is not where metrics can go`) {
		t.Errorf("bad mode: %v", err)
	}
}

// The known-field lists that typo errors offer are the structs' YAML keys,
// every one of them (cluster.runtime was once missing).
func TestKnownFieldsAreEveryYAMLKey(t *testing.T) {
	for _, v := range []any{Config{}, Prod{}, Logs{}, NetworkPolicy{}, Backup{}, Proxy{}, Gateway{}, Auth{}, Cluster{}, Forward{}, Smoke{}} {
		typ := reflect.TypeOf(v)
		var keys []string
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
		}
		sec, ok := sections[typ.Name()]
		if !ok {
			t.Errorf("%s has no entry in sections", typ.Name())
			continue
		}
		got, want := append([]string(nil), sec.keys...), keys
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: sections lists %v, the struct has %v", typ.Name(), got, want)
		}
	}
}

func TestLineFindsWhereAFieldIsSet(t *testing.T) {
	data := []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  name: gw\n  auth:\n    type: entraApp\n    clientSecretFile: secret.txt\n  tokenFile: gw.token\n")
	for field, want := range map[string]int{"gateway.tokenFile": 8, "gateway.auth.clientSecretFile": 7, "gateway.name": 4, "cluster.name": 0, "gateway.nothing": 0} {
		if got := Line(data, field); got != want {
			t.Errorf("Line(%s) = %d, want %d", field, got, want)
		}
	}
}
