package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
)

// Record is what apimdev applied to a cluster, kept by the cluster itself (a
// ConfigMap in the gateway's namespace, as ctlptl keeps its applied spec) so
// any machine with the kubeconfig, or a lost state directory, knows the
// gateway. It never holds a secret: the token stays in its Secret.
type Record struct {
	// Schema is the record's layout (RecordSchema when this apimdev wrote
	// it); records of apimdev before it had the field read as 1.
	Schema int `json:"schema"`
	// Profile is the profile applied: "dev" or "prod".
	Profile string `json:"profile"`
	// Demo says the gateway is `up --demo`'s stand-in.
	Demo bool `json:"demo,omitempty"`
	// Config is the settings the objects were made from (no token).
	Config config.Config `json:"config"`
	// Spec is the profile exactly as applied: the pinned image, the requests
	// fitted to the node. Its objects are what the cluster should hold.
	Spec gateway.Profile `json:"spec"`
	// Backends are what `apimdev backend add` gave the gateway to call:
	// programs on the user's machine through the relay, and images.
	Backends []gateway.Backend `json:"backends,omitempty"`
	Version  string            `json:"apimdevVersion"`
	Applied  time.Time         `json:"appliedAt"`
}

// Labels and keys of the record's ConfigMap. It carries no `app` label, so it
// is never one of the gateway's objects to prune.
const (
	LabelRecord = "apimdev.io/record"
	RecordKey   = "record.json"
)

// RecordSchema is the record layout this apimdev writes and the newest it
// reads. 1 is every record written before records had a schema (the same
// layout, with the settings fields of its day: those it lacks read as
// today's defaults). A change that an older apimdev would misread (a field
// renamed, a meaning changed) takes the next number; adding a field does not.
const RecordSchema = 2

// NewerRecordError is a record written by a newer apimdev than this one:
// its fields may mean what this apimdev cannot know.
type NewerRecordError struct {
	Schema  int
	Version string // the apimdev that wrote it
}

func (e *NewerRecordError) Error() string {
	return fmt.Sprintf("the gateway was deployed by a newer apimdev (%s, record schema %d; this apimdev reads schema %d and older)", e.Version, e.Schema, RecordSchema)
}

// Hint says what to do.
func (e *NewerRecordError) Hint() string {
	return fmt.Sprintf("use apimdev %s or newer for this cluster (`apimdev version` says which this is)", e.Version)
}

// RecordName is the record's ConfigMap for a gateway.
func RecordName(gw string) string { return gw + "-apimdev" }

// Encode is the record as the cluster keeps it: this apimdev's schema, no
// output format, no secret sources.
func (r *Record) Encode() ([]byte, error) {
	c := *r
	c.Schema = RecordSchema
	c.Config.Output = ""
	c.Config = WithoutSecretSources(c.Config)
	return json.MarshalIndent(c, "", "  ")
}

// Decode reads a record any apimdev wrote: one of a newer schema is a
// *NewerRecordError.
func (r *Record) Decode(b []byte) error {
	var head struct {
		Schema  int    `json:"schema"`
		Version string `json:"apimdevVersion"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if head.Schema > RecordSchema {
		return &NewerRecordError{Schema: head.Schema, Version: head.Version}
	}
	var x Record
	x.Config = config.Default()
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	if x.Schema == 0 {
		x.Schema = 1
	}
	if x.Profile == "" || x.Config.Gateway.Name == "" {
		return errors.New("the record names no gateway")
	}
	x.Config.Output = "text"
	*r = x
	return nil
}

// IsFor says the record is of cfg's gateway (its name and namespace).
func (r *Record) IsFor(cfg config.Config) bool {
	return r != nil && r.Config.Gateway.Name == cfg.Gateway.Name && r.Config.Gateway.Namespace == cfg.Gateway.Namespace
}

// SameApplied reports whether two records would put the same objects in the
// cluster (their times and apimdev versions aside).
func SameApplied(a, b *Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Applied, y.Applied, x.Version, y.Version, x.Schema, y.Schema = time.Time{}, time.Time{}, "", "", 0, 0
	x.Config.Output, y.Config.Output = "", ""
	x.Config, y.Config = WithoutSecretSources(x.Config), WithoutSecretSources(y.Config)
	return reflect.DeepEqual(x, y)
}

// WithoutSecretSources is c without where its secrets are read from: that is
// the user's business of the day, not the gateway's, so the record never
// keeps it (a later command without it keeps the cluster's secret) and it
// decides no object.
func WithoutSecretSources(c config.Config) config.Config {
	c.Gateway.TokenFile, c.Gateway.Auth.ClientSecretFile = "", ""
	return c
}
