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
	"strings"
)

// Path is where the gateway fetches its configuration from the config service.
const Path = "/configuration"

// KindEcho is the only API kind the stand-in implements: it answers with a
// description of the request it received.
const KindEcho = "echo"

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
}

// Subscription is one accepted subscription key, stored as a hash.
type Subscription struct {
	Name      string `json:"name"`
	KeySHA256 string `json:"keySha256"`
}

// New builds the configuration for gatewayID: one echo API on /echo that needs a
// subscription key, accepting each of keys.
func New(gatewayID string, keys []string) Configuration {
	c := Configuration{
		GatewayID: gatewayID,
		APIs:      []API{{Name: "echo", Path: "/echo", Kind: KindEcho, SubscriptionRequired: true}},
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
	for i, a := range c.APIs {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("api %d has no name", i))
		}
		if !strings.HasPrefix(a.Path, "/") || strings.HasSuffix(a.Path, "/") {
			errs = append(errs, fmt.Errorf("api %q: path %q must start with / and not end with /", a.Name, a.Path))
		}
		if a.Kind != KindEcho {
			errs = append(errs, fmt.Errorf("api %q: kind %q is not supported by the stand-in", a.Name, a.Kind))
		}
	}
	for i, s := range c.Subscriptions {
		if b, err := hex.DecodeString(s.KeySHA256); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("subscription %d: keySha256 is not a hex SHA-256", i))
		}
	}
	return errors.Join(errs...)
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
