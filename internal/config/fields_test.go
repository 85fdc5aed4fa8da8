package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every setting of Config is reachable from text, by its variable and by
// Set (what flags and --set use), without a table to keep by hand: a field
// added to the struct is a setting at once.
func TestEveryFieldIsSetByItsVariable(t *testing.T) {
	if len(Fields()) < 50 {
		t.Fatalf("only %d fields found", len(Fields()))
	}
	seen := map[string]string{}
	for _, f := range Fields() {
		if other, dup := seen[f.Env]; dup {
			t.Errorf("%s and %s share %s", f.Path, other, f.Env)
		}
		seen[f.Env] = f.Path
		var c Config
		text, want := sampleFor(t, f, reflect.ValueOf(&c).Elem().FieldByIndex(f.index).Type())
		if err := c.ApplyEnv(func(k string) string {
			if k == f.Env {
				return text
			}
			return ""
		}); err != nil {
			t.Errorf("%s=%q: %v", f.Env, text, err)
			continue
		}
		if got := reflect.ValueOf(&c).Elem().FieldByIndex(f.index).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s=%q set %s to %#v, want %#v", f.Env, text, f.Path, got, want)
		}
	}
}

func sampleFor(t *testing.T, f Field, typ reflect.Type) (string, any) {
	switch {
	case f.Path == "gateway.auth.type":
		return "entra-app", AuthEntraApp
	case f.Path == "cluster.runtime":
		return "Podman", "podman"
	case f.Path == "prod.metrics":
		return "opentelemetry", MetricsMode(MetricsOpenTelemetry)
	case f.Path == "gateway.caCertificates":
		return "a.pem" + string(filepath.ListSeparator) + "b,c.pem", []string{"a.pem", "b,c.pem"}
	}
	switch typ.Kind() {
	case reflect.String:
		return "x-" + f.Path, reflect.ValueOf("x-" + f.Path).Convert(typ).Interface()
	case reflect.Int:
		return "7", 7
	case reflect.Bool:
		return "true", true
	case reflect.Slice:
		return "10.0.0.0/8, 10.20.0.0/16:8080", []string{"10.0.0.0/8", "10.20.0.0/16:8080"}
	}
	t.Fatalf("%s: no sample for %s", f.Path, typ)
	return "", nil
}

func TestVariablesKeepTheirNamesAndNewOnesFollowTheRule(t *testing.T) {
	for env, path := range map[string]string{
		"APIMDEV_NAME": "gateway.name", "APIMDEV_TOKEN_FILE": "gateway.tokenFile", "APIMDEV_WORKERS": "cluster.workers",
		"APIMDEV_PROD_MEMORY_LIMIT": "prod.memoryLimit", "APIMDEV_PROD_BACKUP_STORAGE_CLASS": "prod.backup.storageClass",
		"APIMDEV_PROD_NETWORK_POLICY_BACKENDS": "prod.networkPolicy.backends", "APIMDEV_CLUSTER_ZONES": "cluster.zones", "APIMDEV_PROD_DNS_NDOTS": "prod.dnsNdots",
	} {
		if EnvVars[env] != path {
			t.Errorf("%s sets %q, want %q", env, EnvVars[env], path)
		}
	}
	for _, f := range Fields() {
		if f.Path == "apiVersion" || f.Path == "kind" || strings.Contains(f.Path, "caCerts") {
			t.Errorf("%s is not a setting", f.Path)
		}
	}
}

func TestSetNamesAnUnknownFieldAndItsNearest(t *testing.T) {
	var c Config
	err := c.Set("prod.memoryLimt", "1Gi")
	if err == nil || !strings.Contains(err.Error(), `unknown config field "prod.memoryLimt" (did you mean "prod.memoryLimit"?)`) {
		t.Fatalf("err = %v", err)
	}
	for field, value := range map[string]string{"prod.replicas": "three", "prod.backup.enabled": "yes please", "forward.httpPort": "http"} {
		if err := c.Set(field, value); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s=%q: %v", field, value, err)
		}
	}
}
