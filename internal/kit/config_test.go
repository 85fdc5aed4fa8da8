package kit

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/config"
)

// Every string setting of apimdev.yaml whose name says it is a file, a
// path, a directory, a kubeconfig or certificates is one kits refuse: a
// setting added to internal/config later fails here until it is in
// RefusedSettings.
func TestRefusedSettingsCoverEveryPathValuedSetting(t *testing.T) {
	t.Parallel()
	pathy := regexp.MustCompile(`(?i)(file|files|path|paths|dir|directory|kubeconfig|certificates|certs)$`)
	notPaths := map[string]bool{"gateway.probePath": true} // an HTTP path on the gateway
	known := map[string]bool{}
	for _, r := range RefusedSettings {
		known[r.Key] = true
	}
	var keys []string
	yamlKeys(reflect.TypeOf(config.Config{}), "", &keys)
	if len(keys) < 20 {
		t.Fatalf("found only %d settings: %v", len(keys), keys)
	}
	for _, k := range keys {
		last := k[strings.LastIndex(k, ".")+1:]
		if pathy.MatchString(last) && !notPaths[k] && !known[k] {
			t.Errorf("%s looks path-valued but kits do not refuse it: add it to RefusedSettings", k)
		}
	}
	for k := range known {
		if !contains(keys, k) && k != "cluster.mergeKubeconfig" {
			t.Errorf("RefusedSettings names %s, which apimdev.yaml does not have", k)
		}
	}
	// Each one is refused by the YAML key it names, and left out of what
	// kit create writes.
	for _, r := range RefusedSettings {
		value := "x"
		switch {
		case strings.HasSuffix(r.Key, "Certificates"):
			value = "[x]"
		case strings.HasPrefix(r.Key, "cluster.merge"):
			value = "true"
		}
		doc := "apiVersion: apimdev.io/v1alpha1\nkind: Config\n" + nested(r.Key, value)
		cfg, err := checkConfig("k.tar", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), r.Key+" (line ") {
			t.Errorf("%s: %v", r.Key, err)
			continue
		}
		out, dropped, err := KitConfig(cfg)
		if err != nil || len(dropped) != 1 || dropped[0] != r {
			t.Errorf("KitConfig with %s: %v %v", r.Key, dropped, err)
		}
		if _, err := checkConfig("k.tar", out); err != nil {
			t.Errorf("what KitConfig writes is refused: %v\n%s", err, out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nested is key (a.b.c) as YAML with value.
func nested(key, value string) string {
	var b strings.Builder
	parts := strings.Split(key, ".")
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + value)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// yamlKeys lists a type's string and string-list settings as dotted YAML
// keys.
func yamlKeys(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+name, ".")
		switch {
		case f.Type.Kind() == reflect.Struct:
			yamlKeys(f.Type, key, out)
		case f.Type.Kind() == reflect.String, f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			*out = append(*out, key)
		}
	}
}

func TestSettingsListWhatAKitConfigChanges(t *testing.T) {
	t.Parallel()
	got, err := settings([]byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ncluster:\n  name: ws\ngateway:\n  endpoint: e.configuration.azure-api.net\n  name: apimdev-gw\n"))
	if err != nil || strings.Join(got, "|") != "gateway.endpoint: e.configuration.azure-api.net|cluster.name: ws" {
		t.Errorf("%v %q", err, got)
	}
}
