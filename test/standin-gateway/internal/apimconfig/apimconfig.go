// Package apimconfig is the configuration document the stand-in config service
// serves and the stand-in gateway consumes and backs up.
//
// Subscription keys travel as SHA-256 hashes, not in clear, so the backup file on
// a volume and any debug dump hold nothing a caller could replay.
package apimconfig

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Path is where the gateway fetches its configuration from the config service.
const Path = "/configuration"

// The API kinds the stand-in implements.
const (
	// KindEcho answers with a description of the request it received.
	KindEcho = "echo"
	// KindProxy forwards the request to BackendURL, as an API with a
	// backend URL set in Azure does.
	KindProxy = "proxy"
)

// Configuration is what GET /configuration returns.
type Configuration struct {
	// GatewayID is the gateway the document was issued for (from the token).
	GatewayID string `json:"gatewayId"`
	// Revision changes whenever the content changes, so the gateway can tell a
	// new configuration from a repeat.
	Revision      string         `json:"revision"`
	APIs          []API          `json:"apis"`
	Subscriptions []Subscription `json:"subscriptions"`
}

// API is one API published on the gateway.
type API struct {
	Name string `json:"name"`
	// Path is the URL path prefix, such as "/echo".
	Path                 string `json:"path"`
	Kind                 string `json:"kind"`
	SubscriptionRequired bool   `json:"subscriptionRequired"`
	// BackendURL is where a proxy API forwards to (http or https); the
	// path after Path is appended to it. Empty for the echo API, so an
	// echo-only document (and its revision) is what it always was.
	BackendURL string `json:"backendUrl,omitempty"`
}

// Subscription is one accepted subscription key, stored as a hash.
type Subscription struct {
	Name      string `json:"name"`
	KeySHA256 string `json:"keySha256"`
}

// New builds the configuration for gatewayID: one echo API on /echo that needs a
// subscription key, then the extra APIs (from ParseAPIs), accepting each of keys.
func New(gatewayID string, keys []string, extra ...API) Configuration {
	c := Configuration{
		GatewayID: gatewayID,
		APIs:      append([]API{EchoAPI()}, extra...),
	}
	for i, k := range keys {
		c.Subscriptions = append(c.Subscriptions, Subscription{
			Name:      fmt.Sprintf("subscription-%d", i+1),
			KeySHA256: HashKey(k),
		})
	}
	c.Revision = c.contentHash()
	return c
}

// EchoAPI is the echo API every configuration publishes.
func EchoAPI() API {
	return API{Name: "echo", Path: "/echo", Kind: KindEcho, SubscriptionRequired: true}
}

// HashKey returns the hex SHA-256 of a subscription key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Decode parses and validates a configuration document.
func Decode(data []byte) (Configuration, error) {
	var c Configuration
	if err := json.Unmarshal(data, &c); err != nil {
		return Configuration{}, fmt.Errorf("decode configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Configuration{}, err
	}
	return c, nil
}

// Validate reports every problem in c, joined.
func (c Configuration) Validate() error {
	var errs []error
	if c.GatewayID == "" {
		errs = append(errs, errors.New("configuration has no gatewayId"))
	}
	names, paths := map[string]bool{}, map[string]string{}
	for i, a := range c.APIs {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("api %d has no name", i))
		}
		if !strings.HasPrefix(a.Path, "/") || strings.HasSuffix(a.Path, "/") {
			errs = append(errs, fmt.Errorf("api %q: path %q must start with / and not end with /", a.Name, a.Path))
		}
		switch a.Kind {
		case KindEcho:
			if a.BackendURL != "" {
				errs = append(errs, fmt.Errorf("api %q: an echo API has no backendUrl", a.Name))
			}
		case KindProxy:
			if err := CheckBackendURL(a.BackendURL); err != nil {
				errs = append(errs, fmt.Errorf("api %q: %w", a.Name, err))
			}
		default:
			errs = append(errs, fmt.Errorf("api %q: kind %q is not supported by the stand-in", a.Name, a.Kind))
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("api %q: two APIs have that name", a.Name))
		}
		names[a.Name] = true
		if other, ok := paths[strings.ToLower(a.Path)]; ok {
			errs = append(errs, fmt.Errorf("api %q: path %s is api %q's already", a.Name, a.Path, other))
		}
		paths[strings.ToLower(a.Path)] = a.Name
	}
	for i, s := range c.Subscriptions {
		if b, err := hex.DecodeString(s.KeySHA256); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("subscription %d: keySha256 is not a hex SHA-256", i))
		}
	}
	return errors.Join(errs...)
}

// APIInput is one entry of the extra APIs' list (STANDIN_APIS): a proxy API.
// SubscriptionRequired defaults to true, as a new API's does in API Management.
type APIInput struct {
	Name                 string `json:"name"`
	Path                 string `json:"path"`
	BackendURL           string `json:"backendUrl"`
	SubscriptionRequired *bool  `json:"subscriptionRequired,omitempty"`
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	pathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
)

// ParseAPIs reads the extra APIs' list, a JSON array of APIInput, and checks
// every entry: a name that is a DNS label, a path of plain segments that is
// not the echo API's (nor another's), an http or https backend URL. The
// error names each problem.
func ParseAPIs(data []byte) ([]API, error) {
	if strings.TrimSpace(string(data)) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var in []APIInput
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("not a JSON list of {name, path, backendUrl, subscriptionRequired}: %w", err)
	}
	var errs []error
	out := make([]API, 0, len(in))
	for i, a := range in {
		if !nameRE.MatchString(a.Name) {
			errs = append(errs, fmt.Errorf("api %d: name %q must be a DNS label (lower-case letters, digits and -, at most 63)", i, a.Name))
		}
		if !pathRE.MatchString(a.Path) {
			errs = append(errs, fmt.Errorf("api %q: path %q must be /segment[/segment…] of letters, digits, '.', '_', '~' or '-'", a.Name, a.Path))
		}
		req := true
		if a.SubscriptionRequired != nil {
			req = *a.SubscriptionRequired
		}
		out = append(out, API{Name: a.Name, Path: a.Path, Kind: KindProxy, SubscriptionRequired: req, BackendURL: a.BackendURL})
	}
	// Clashes (with the echo API too) and backend URLs.
	if err := (Configuration{GatewayID: "-", APIs: append([]API{EchoAPI()}, out...)}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckBackendURL accepts an absolute http or https URL with a host and
// neither user information, query nor fragment (the caller's path and query
// are what the gateway appends).
func CheckBackendURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("backendUrl is empty")
	case err != nil:
		return fmt.Errorf("backendUrl %q is not a URL: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("backendUrl %q must start with http:// or https://", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("backendUrl %q has no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("backendUrl %q must have no user, query or fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("backendUrl %q: port %s is not 1-65535", raw, p)
		}
	}
	return nil
}

// Match returns the API whose path prefix owns path, preferring the longest
// prefix as APIM does. "/echo" owns "/echo" and "/echo/x" but not "/echoes".
func (c Configuration) Match(path string) (API, bool) {
	var best API
	found := false
	for _, a := range c.APIs {
		if path != a.Path && !strings.HasPrefix(path, a.Path+"/") {
			continue
		}
		if !found || len(a.Path) > len(best.Path) {
			best, found = a, true
		}
	}
	return best, found
}

// SubscriptionFor returns the name of the subscription whose key is key.
func (c Configuration) SubscriptionFor(key string) (string, bool) {
	h := []byte(HashKey(key))
	for _, s := range c.Subscriptions {
		// Constant time, so response timing does not reveal how close a guess was.
		if subtle.ConstantTimeCompare(h, []byte(strings.ToLower(s.KeySHA256))) == 1 {
			return s.Name, true
		}
	}
	return "", false
}

// contentHash is a short digest of everything but the revision itself.
func (c Configuration) contentHash() string {
	c.Revision = ""
	data, _ := json.Marshal(c) // A struct of strings and bools always marshals.
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
