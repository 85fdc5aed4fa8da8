package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Field is one setting: its dotted YAML path (the key in apimdev.yaml), the
// APIMDEV_* variable that sets it, and where it is in Config. Every field is
// set the same three ways: the config file, its variable, and a flag (a named
// one where a command has it, else --set PATH=VALUE on every command that
// takes settings). The table is Config's own struct tags: a new field is a
// setting with nothing else to edit.
type Field struct {
	Path string
	Env  string
	// List says the value is a list: comma-separated in a variable or
	// --set (gateway.caCertificates: separated as PATH is, paths may hold
	// commas).
	List  bool
	index []int
}

// shortEnv are the variables of the fields most used, named before the
// rule that names every other one (APIMDEV_ and the path in upper snake
// case: prod.memoryLimit is APIMDEV_PROD_MEMORY_LIMIT).
var shortEnv = map[string]string{
	"gateway.name":                  "APIMDEV_NAME",
	"gateway.endpoint":              "APIMDEV_ENDPOINT",
	"gateway.image":                 "APIMDEV_IMAGE",
	"gateway.namespace":             "APIMDEV_NAMESPACE",
	"gateway.tokenFile":             "APIMDEV_TOKEN_FILE",
	"gateway.auth.type":             "APIMDEV_AUTH",
	"gateway.auth.tenantId":         "APIMDEV_TENANT_ID",
	"gateway.auth.clientId":         "APIMDEV_CLIENT_ID",
	"gateway.auth.clientSecretFile": "APIMDEV_CLIENT_SECRET_FILE",
	"gateway.auth.authority":        "APIMDEV_AUTHORITY",
	"gateway.probePath":             "APIMDEV_PROBE_PATH",
	"gateway.caCertificates":        "APIMDEV_CA_CERTS",
	"cluster.name":                  "APIMDEV_CLUSTER_NAME",
	"cluster.nodeImage":             "APIMDEV_NODE_IMAGE",
	"cluster.runtime":               "APIMDEV_RUNTIME",
	"cluster.kubeconfig":            "APIMDEV_KUBECONFIG",
	"cluster.mergeKubeconfig":       "APIMDEV_MERGE_KUBECONFIG",
	"cluster.workers":               "APIMDEV_WORKERS",
	"forward.httpPort":              "APIMDEV_HTTP_PORT",
	"forward.httpsPort":             "APIMDEV_HTTPS_PORT",
	"smoke.file":                    "APIMDEV_SMOKE_FILE",
	"output":                        "APIMDEV_OUTPUT",
}

// notSettings are Config's keys that identify the file rather than set
// anything.
var notSettings = map[string]bool{"apiVersion": true, "kind": true}

var fields, sections = collect()

// Fields are every setting, in the order of Config's struct.
func Fields() []Field { return append([]Field(nil), fields...) }

// FieldOf is the setting at path.
func FieldOf(path string) (Field, bool) {
	for _, f := range fields {
		if f.Path == path {
			return f, true
		}
	}
	return Field{}, false
}

// EnvVars lists the APIMDEV_* variables and the field each one sets.
var EnvVars = func() map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[f.Env] = f.Path
	}
	return m
}()

// section is a struct type's YAML path and keys, for decode errors.
type section struct {
	path string
	keys []string
}

// collect walks Config's struct tags: its settings, and each struct type's
// known keys.
func collect() ([]Field, map[string]section) {
	var out []Field
	secs := map[string]section{}
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		sec := section{path: strings.TrimSuffix(prefix, ".")}
		if sec.path == "" {
			sec.path = "the top level"
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			sec.keys = append(sec.keys, name)
			if notSettings[prefix+name] {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, prefix+name+".", idx)
				continue
			}
			path := prefix + name
			env, ok := shortEnv[path]
			if !ok {
				env = "APIMDEV_" + upperSnake(path)
			}
			out = append(out, Field{Path: path, Env: env, List: sf.Type.Kind() == reflect.Slice, index: idx})
		}
		secs[t.Name()] = sec
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out, secs
}

// upperSnake is prod.memoryLimit as PROD_MEMORY_LIMIT.
func upperSnake(path string) string {
	var b strings.Builder
	for i, r := range path {
		switch {
		case r == '.':
			b.WriteByte('_')
		case unicode.IsUpper(r) && i > 0 && path[i-1] != '.':
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// parse is how a field's text becomes its value where the type alone does
// not say (a mode's spellings, a message naming what the number is).
var parse = map[string]func(field, value string) (any, error){
	"gateway.auth.type": func(field, value string) (any, error) {
		m, ok := AuthModes[strings.TrimSpace(value)]
		if !ok {
			return nil, fmt.Errorf("%s: %q is not an authentication mode (token, entra-app or workload-identity)", field, value)
		}
		return m, nil
	},
	"cluster.runtime": func(field, value string) (any, error) {
		v := strings.ToLower(strings.TrimSpace(value))
		if v != "" && v != "auto" && v != "docker" && v != "podman" {
			return nil, fmt.Errorf("%s: %q is not a container runtime apimdev drives (auto, docker or podman)", field, value)
		}
		return v, nil
	},
	"cluster.workers":   number("a number of worker nodes"),
	"forward.httpPort":  number("a port number"),
	"forward.httpsPort": number("a port number"),
	"gateway.caCertificates": func(_, value string) (any, error) {
		var paths []string
		for _, p := range filepath.SplitList(value) {
			if p = strings.TrimSpace(p); p != "" {
				paths = append(paths, p)
			}
		}
		return paths, nil
	},
}

// trimmed are fields whose surrounding spaces are never meant (IDs, URLs).
var trimmed = map[string]bool{"gateway.auth.tenantId": true, "gateway.auth.clientId": true, "gateway.auth.authority": true}

func number(what string) func(field, value string) (any, error) {
	return func(field, value string) (any, error) {
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not %s", field, value, what)
		}
		return n, nil
	}
}

// Set assigns one field by its YAML path, from text: the file's keys aside,
// flags, --set and the environment all use it. Lists are comma-separated.
func (c *Config) Set(field, value string) error {
	f, ok := FieldOf(field)
	if !ok {
		return unknownField(field)
	}
	dst := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	if p, ok := parse[field]; ok {
		v, err := p(field, value)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(v).Convert(dst.Type()))
		return nil
	}
	if trimmed[field] {
		value = strings.TrimSpace(value)
	}
	switch dst.Kind() {
	case reflect.String:
		dst.SetString(value)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", field, value)
		}
		dst.SetInt(int64(n))
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", field, value)
		}
		dst.SetBool(b)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		dst.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("%s: cannot be set from text", field)
	}
	return nil
}

// unknownField names a path that is no setting, with the nearest that is.
func unknownField(path string) error {
	paths := make([]string, len(fields))
	for i, f := range fields {
		paths[i] = f.Path
	}
	if s := closest(path, paths); s != "" {
		return fmt.Errorf("unknown config field %q (did you mean %q?)", path, s)
	}
	return fmt.Errorf("unknown config field %q (apimdev.yaml's keys, e.g. prod.memoryLimit: see `apimdev render --help`)", path)
}

// ApplyEnv sets every field whose APIMDEV_* variable is set and non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	names := make([]string, 0, len(EnvVars))
	for n := range EnvVars {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if v := getenv(n); v != "" {
			if err := c.Set(EnvVars[n], v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Get is the field's value in c as text (lists comma-separated).
func (f Field) Get(c Config) string {
	v := reflect.ValueOf(c).FieldByIndex(f.index)
	if v.Kind() == reflect.Slice {
		items := make([]string, v.Len())
		for i := range items {
			items[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(items, ",")
	}
	return fmt.Sprint(v.Interface())
}
