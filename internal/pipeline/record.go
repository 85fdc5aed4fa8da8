package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/settings"
	"github.com/apimdev/apimdev/internal/state"
)

// Record is what apimdev applied to a cluster (see settings.Record).
type Record = settings.Record

// cachedRecord is the state directory's copy of the last record written.
func cachedRecord(files state.ClusterDir) (*Record, bool) {
	b, ok := files.CachedRecord()
	if !ok {
		return nil, false
	}
	var r Record
	if r.Decode(b) != nil {
		return nil, false
	}
	return &r, true
}

// rememberedKnown is what the state directory knows of the cluster: its copy
// of the record, or what an apimdev before records saved. Nothing of the
// cluster itself is known yet.
func rememberedKnown(files state.ClusterDir, name string) settings.Known {
	k := settings.Known{Cluster: name, Workers: -1}
	if files.Dir == "" {
		return k
	}
	if r, ok := cachedRecord(files); ok {
		k.Remembered = r
		return k
	}
	if b, ok := files.LegacyConfig(); ok {
		c := config.Default()
		if json.Unmarshal(b, &c) == nil && c.Gateway.Name != "" {
			c.Output = "text"
			k.Legacy = &c
		}
	}
	return k
}

// Remembered is the configuration the state directory remembers for the
// cluster (from its copy of the record, or what an older apimdev saved), or
// the defaults.
func Remembered(getenv func(string) string, name string) config.Config {
	st, _ := settings.Resolve(rememberedKnown(namedClusterFiles(getenv, name), name), nil)
	return st.Base
}

// resolve makes the settings of what the session knows its own; with use,
// the one place a session's Config, Names and Recorded are set.
func (s *Session) resolve() (settings.Settings, error) {
	st, err := settings.Resolve(s.known, s.Asks)
	if err != nil {
		return st, err
	}
	s.use(st)
	return st, nil
}

// use makes resolved settings the session's.
func (s *Session) use(st settings.Settings) {
	s.Recorded, s.remembered = st.Recorded, st.Base
	s.setConfig(st.Config)
	if st.Adopted {
		if b, err := st.Recorded.Encode(); err == nil {
			_ = s.Files.SaveRecord(b)
		}
	}
}

// ReadRecord finds the cluster's record of the gateway: in the configured
// namespace under the gateway's name, else the only record in the cluster
// (a lost state directory knows neither name). nil when there is none.
func (s *Session) ReadRecord(ctx context.Context) (*Record, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Names.Namespace).Get(ctx, settings.RecordName(s.Names.Gateway), metav1.GetOptions{})
	if apierrors.IsNotFound(err) && !s.knowsGateway() {
		l, lerr := s.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: settings.LabelRecord})
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
		return nil, fmt.Errorf("reading apimdev's record in %s: %w", s.Names.Namespace, err)
	}
	var r Record
	var newer *settings.NewerRecordError
	if err := r.Decode([]byte(cm.Data[settings.RecordKey])); errors.As(err, &newer) {
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
// user's settings (Asks) go on top of the recorded ones, so a command with
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
	rctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Read)
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
	s.known.Read, s.known.Deployed = true, rec
	_, err := s.resolve()
	return err
}

// writeRecord records rec in the cluster (and its copy in the state
// directory) unless the cluster already records the same.
func (s *Session) writeRecord(ctx context.Context, rec *Record) error {
	if settings.SameApplied(rec, s.Recorded) {
		return nil
	}
	rec.Version, rec.Applied = s.Version, s.now().UTC().Truncate(time.Second)
	b, err := rec.Encode()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: settings.RecordName(rec.Spec.Gateway), Namespace: rec.Spec.Namespace,
			Labels: map[string]string{gateway.LabelManagedBy: gateway.ManagedBy, settings.LabelRecord: rec.Spec.Gateway, gateway.LabelProfile: rec.Profile}},
		Data: map[string]string{"profile": rec.Profile, "demo": fmt.Sprint(rec.Demo), "apimdevVersion": rec.Version, "schema": fmt.Sprint(settings.RecordSchema),
			"appliedAt": rec.Applied.Format(time.RFC3339), settings.RecordKey: string(b)},
	}
	if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{cm}); err != nil {
		return fmt.Errorf("recording what was applied: %w", err)
	}
	s.Recorded = rec
	s.known.Read, s.known.Deployed = true, rec
	if s.localCluster {
		_ = s.Files.SaveRecord(b)
	}
	return nil
}

// deleteRecord removes the record from the cluster (down --keep-cluster).
func (s *Session) deleteRecord(ctx context.Context) error {
	err := s.Client.CoreV1().ConfigMaps(s.Names.Namespace).Delete(ctx, settings.RecordName(s.Names.Gateway), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.Recorded = nil
	s.known.Read, s.known.Deployed = true, nil
	return nil
}
