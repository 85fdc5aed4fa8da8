package smoke

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind and APIVersion of a smoke spec file.
const (
	APIVersion = "apimdev.io/v1alpha1"
	Kind       = "SmokeSpec"
)

// Spec is a list of calls.
type Spec struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Calls      []Call `yaml:"calls"`
}

// Call is one request and what its answer must be.
type Call struct {
	Name   string `yaml:"name"`
	Method string `yaml:"method,omitempty"`
	Path   string `yaml:"path"`
	// Port is "http" (default) or "https".
	Port string `yaml:"port,omitempty"`
	// Headers may use ${VAR} to take values such as subscription keys from the
	// environment, so the spec file holds no secret.
	Headers map[string]string `yaml:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty"`
	Expect  Expect            `yaml:"expect"`
}

// Expect is what a call's answer must satisfy.
type Expect struct {
	Status       int               `yaml:"status,omitempty"`
	BodyContains string            `yaml:"bodyContains,omitempty"`
	JSON         map[string]string `yaml:"json,omitempty"` // dotted path -> value as text
	NonEmpty     *bool             `yaml:"nonEmptyBody,omitempty"`
}

// Parse reads a spec strictly and checks every call, reporting all problems.
func Parse(name string, r io.Reader) (Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Spec{}, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	if s.APIVersion != APIVersion || s.Kind != Kind {
		errs = append(errs, fmt.Errorf("%s: apiVersion/kind must be %s/%s", name, APIVersion, Kind))
	}
	seen := map[string]bool{}
	for i, c := range s.Calls {
		at := fmt.Sprintf("%s: calls[%d]", name, i)
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is empty", at))
		} else if seen[c.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q is used twice", at, c.Name))
		}
		seen[c.Name] = true
		if !strings.HasPrefix(c.Path, "/") {
			errs = append(errs, fmt.Errorf("%s (%s): path %q must start with '/'", at, c.Name, c.Path))
		}
		switch c.Port {
		case "", "http", "https":
		default:
			errs = append(errs, fmt.Errorf("%s (%s): port %q must be http or https", at, c.Name, c.Port))
		}
		m := strings.ToUpper(c.Method)
		if m != "" && !validMethod[m] {
			errs = append(errs, fmt.Errorf("%s (%s): method %q is not an HTTP method", at, c.Name, c.Method))
		}
		if c.Expect.Status != 0 && (c.Expect.Status < 100 || c.Expect.Status > 599) {
			errs = append(errs, fmt.Errorf("%s (%s): expect.status %d is not an HTTP status", at, c.Name, c.Expect.Status))
		}
	}
	return s, errors.Join(errs...)
}

var validMethod = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// Load reads a spec file; an empty path is an empty spec.
func Load(path string) (Spec, error) {
	if path == "" {
		return Spec{APIVersion: APIVersion, Kind: Kind}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("smoke spec: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}
