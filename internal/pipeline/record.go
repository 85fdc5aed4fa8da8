package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/cluster"
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
	Spec    gateway.Profile `json:"spec"`
	Version string          `json:"apimdevVersion"`
	Applied time.Time       `json:"appliedAt"`
}

// Labels and keys of the record's ConfigMap. It carries no `app` label, so it
// is never one of the gateway's objects to prune.
const (
	LabelRecord = "apimdev.io/record"
	recordKey   = "record.json"
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

func (r *Record) encode() ([]byte, error) {
	c := *r
	c.Schema = RecordSchema
	c.Config.Output = ""
	c.Config = withoutSecretSources(c.Config)
	return json.MarshalIndent(c, "", "  ")
}

func (r *Record) decode(b []byte) error {
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

// cachedRecord is the state directory's copy of the last record written.
func (s *Session) cachedRecord() (*Record, bool) {
	b, ok := s.Files.CachedRecord()
	if !ok {
		return nil, false
	}
	var r Record
	if r.decode(b) != nil {
		return nil, false
	}
	return &r, true
}

// isFor says the record is of cfg's gateway (its name and namespace).
func (r *Record) isFor(cfg config.Config) bool {
	return r != nil && r.Config.Gateway.Name == cfg.Gateway.Name && r.Config.Gateway.Namespace == cfg.Gateway.Namespace
}

// sameApplied reports whether two records would put the same objects in the
// cluster (their times and apimdev versions aside).
func sameApplied(a, b *Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Applied, y.Applied, x.Version, y.Version, x.Schema, y.Schema = time.Time{}, time.Time{}, "", "", 0, 0
	x.Config.Output, y.Config.Output = "", ""
	x.Config, y.Config = withoutSecretSources(x.Config), withoutSecretSources(y.Config)
	return reflect.DeepEqual(x, y)
}

// withoutSecretSources is c without where its secrets are read from: that is
// the user's business of the day, not the gateway's, so the record never
// keeps it (a later command without it keeps the cluster's secret) and it
// decides no object.
func withoutSecretSources(c config.Config) config.Config {
	c.Gateway.TokenFile, c.Gateway.Auth.ClientSecretFile = "", ""
	return c
}

// Remembered is the configuration the state directory remembers for the
// cluster (from its copy of the record, or what an older apimdev saved), or
// the defaults.
func Remembered(getenv func(string) string, name string) config.Config {
	if files := namedClusterFiles(getenv, name); files.Dir != "" {
		var r Record
		if b, ok := files.CachedRecord(); ok && r.decode(b) == nil {
			return r.Config
		}
		if b, ok := files.LegacyConfig(); ok {
			c := config.Default()
			if json.Unmarshal(b, &c) == nil && c.Gateway.Name != "" {
				c.Output = "text"
				return c
			}
		}
	}
	c := config.Default()
	c.Cluster.Name = name
	return c
}

// ReadRecord finds the cluster's record of the gateway: in the configured
// namespace under the gateway's name, else the only record in the cluster
// (a lost state directory knows neither name). nil when there is none.
func (s *Session) ReadRecord(ctx context.Context) (*Record, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Profile.Namespace).Get(ctx, RecordName(s.Profile.Gateway), metav1.GetOptions{})
	if apierrors.IsNotFound(err) && !s.knowsGateway() {
		l, lerr := s.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: LabelRecord})
		if lerr != nil {
			return nil, nil // not allowed to look everywhere: no record found
		}
		if len(l.Items) != 1 {
			return nil, nil
		}
		cm, err = &l.Items[0], nil
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading apimdev's record in %s: %w", s.Profile.Namespace, err)
	}
	var r Record
	var newer *NewerRecordError
	if err := r.decode([]byte(cm.Data[recordKey])); errors.As(err, &newer) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("apimdev's record %s/%s is unreadable: %w", cm.Namespace, cm.Name, err)
	}
	return &r, nil
}

// knowsGateway says the session knows which gateway it is about: the state
// directory remembered it, or the user named one. When neither (the state
// directory was lost, or this is another machine) the cluster's only record
// is the one. Never on another cluster (--context).
func (s *Session) knowsGateway() bool {
	if !s.localCluster {
		return true
	}
	return s.Recorded != nil || s.Config.Gateway.Name != config.DefaultGatewayName
}

// Resolve makes what the cluster records the base of the session: the
// user's settings (Intent) go on top of the recorded ones, so a command with
// no flags works on what is deployed. It reads the cluster only if it
// answers now; otherwise the state directory's copy stands. The session must
// be connected, or connectable without waiting.
func (s *Session) Resolve(ctx context.Context) error {
	if s.Client == nil {
		st, _ := s.Cluster.Inspect(ctx)
		if st != cluster.ClusterOurs || s.Connect() != nil {
			return nil
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := s.ReadRecord(rctx)
	if err != nil {
		return err
	}
	return s.take(rec)
}

// take makes rec, the cluster's answer, what is deployed: nil means the
// cluster records nothing for this gateway, whatever the state directory's
// copy said (the cluster was made anew, or the copy is of another gateway).
func (s *Session) take(rec *Record) error {
	if rec == nil {
		s.Recorded = nil
		return nil
	}
	if sameApplied(rec, s.Recorded) {
		return nil
	}
	return s.adopt(rec)
}

// adopt takes rec as what is deployed and rebases the configuration on it.
func (s *Session) adopt(rec *Record) error {
	cfg := rec.Config
	cfg.Cluster.Name = s.Config.Cluster.Name
	cfg.Cluster.Kubeconfig, cfg.Cluster.MergeKubeconfig = s.Config.Cluster.Kubeconfig, s.Config.Cluster.MergeKubeconfig
	if s.Intent != nil {
		var err error
		if cfg, err = s.Intent(cfg); err != nil {
			return err
		}
	}
	if !rec.isFor(cfg) {
		// The user names another gateway than the one recorded.
		s.Recorded = nil
		return nil
	}
	s.Recorded = rec
	s.setConfig(cfg)
	if b, err := rec.encode(); err == nil {
		_ = s.Files.SaveRecord(b)
	}
	return nil
}

// writeRecord records rec in the cluster (and its copy in the state
// directory) unless the cluster already records the same.
func (s *Session) writeRecord(ctx context.Context, rec *Record) error {
	if sameApplied(rec, s.Recorded) {
		return nil
	}
	rec.Version, rec.Applied = s.Version, s.now().UTC().Truncate(time.Second)
	b, err := rec.encode()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: RecordName(rec.Spec.Gateway), Namespace: rec.Spec.Namespace,
			Labels: map[string]string{gateway.LabelManagedBy: gateway.ManagedBy, LabelRecord: rec.Spec.Gateway, gateway.LabelProfile: rec.Profile}},
		Data: map[string]string{"profile": rec.Profile, "demo": fmt.Sprint(rec.Demo), "apimdevVersion": rec.Version, "schema": fmt.Sprint(RecordSchema),
			"appliedAt": rec.Applied.Format(time.RFC3339), recordKey: string(b)},
	}
	if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{cm}); err != nil {
		return fmt.Errorf("recording what was applied: %w", err)
	}
	s.Recorded = rec
	if s.localCluster {
		_ = s.Files.SaveRecord(b)
	}
	return nil
}

// deleteRecord removes the record from the cluster (down --keep-cluster).
func (s *Session) deleteRecord(ctx context.Context) error {
	err := s.Client.CoreV1().ConfigMaps(s.Profile.Namespace).Delete(ctx, RecordName(s.Profile.Gateway), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.Recorded = nil
	return nil
}
