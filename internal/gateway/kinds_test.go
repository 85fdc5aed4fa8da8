package gateway

import (
	"context"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/kubefake"
	"github.com/apimdev/apimdev/internal/token"
)

// everything is a profile with every field set, so that it renders every
// object any profile can; a field added to Profile fails
// TestEverythingSetsEveryField until it is set here too.
func everything(t *testing.T) (Profile, token.Token) {
	t.Helper()
	p, tok := prodProfile(t)
	p.Name = "everything"
	p.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	p.MaxSurge, p.MaxUnavailable = intstr.FromInt32(1), intstr.FromInt32(1)
	p.MemoryLimit = "2Gi"
	p.PDB, p.Spread, p.AllProbes, p.NonRoot, p.HighAvailability = true, true, true, true, true
	p.PreStopSeconds, p.NodeLossSeconds = 5, 30
	p.DNSPolicy = corev1.DNSClusterFirst
	p.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
	p.Backup = &BackupVolume{StorageClass: SharedStorageClass, AccessMode: corev1.ReadWriteMany, Size: "1Gi", SharedPath: "/apimdev/backup"}
	p.LogFormat, p.LogLevel = "json", "info"
	p.StatsdImage = config.DefaultStatsdImage
	p.CollectorImage = config.DefaultCollectorImage
	p.Proxy = config.Proxy{HTTPS: "http://proxy.contoso.internal:3128"}
	p.Auth = Auth{Type: config.AuthEntraApp, TenantID: "tenant", ClientID: "client", Authority: "https://login.contoso.internal"}
	p.CACerts = []config.CACert{{Name: "root.crt", PEM: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}}
	p.CloudMetrics = ptr.To(false)
	p.LocalLogs = config.Logs{Local: "rfc5424", Endpoint: "127.0.0.1:514", Facility: "7"}
	p.NetworkPolicy = &NetworkPolicy{From: []string{"10.1.0.0/16"}}
	return p, tok
}

func TestEverythingSetsEveryField(t *testing.T) {
	p, _ := everything(t)
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("everything leaves Profile.%s zero: set it, so the kinds it renders are checked", v.Type().Field(i).Name)
		}
	}
}

// Every object a profile renders, the forward's Service too, has its row
// in kinds, named as its TypeMeta names it; every rendered kind but the
// Namespace is pruned.
func TestEveryRenderedKindHasItsRow(t *testing.T) {
	p, tok := everything(t)
	objs := append(p.Objects(tok, false), p.DirectService(30080, 30443))
	rendered := map[string]bool{}
	for _, o := range objs {
		k, ok := kindOf(o)
		if !ok {
			t.Errorf("%T is rendered but has no row in kinds", o)
			continue
		}
		if got := o.GetObjectKind().GroupVersionKind().Kind; got != k.name {
			t.Errorf("%T: TypeMeta says %q, its row %q", o, got, k.name)
		}
		rendered[k.name] = true
	}
	for _, k := range kinds {
		if !rendered[k.name] {
			t.Errorf("kinds has %s, which no profile renders", k.name)
		}
		if k.pruned != (k.name != "Namespace") {
			t.Errorf("%s: pruned is %v", k.name, k.pruned)
		}
	}
	if _, ok := kindOf(&corev1.Pod{}); ok {
		t.Fatal("kindOf finds a row for a Pod, which apimdev never applies")
	}
}

// Each row's client works both ways: everything is applied, then an empty
// plan deletes all of it but the Namespace, and a second plan finds nothing.
func TestEveryRowAppliesAndPrunes(t *testing.T) {
	t.Parallel()
	p, tok := everything(t)
	objs := p.Objects(tok, false)
	ctx := context.Background()
	cs := kubefake.New()
	if _, err := Apply(ctx, cs, objs); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range objs {
		if k, _ := kindOf(o); k.pruned {
			want = append(want, k.name+"/"+o.(metav1.Object).GetName())
		}
	}
	plan, err := Plan(ctx, cs, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := Prune(ctx, cs, plan)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	slices.Sort(gone)
	if !slices.Equal(gone, want) {
		t.Fatalf("pruned %v\nwant %v", gone, want)
	}
	again, err := Plan(ctx, cs, p, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("after the prune the plan still has %v (%v)", again, err)
	}
}
