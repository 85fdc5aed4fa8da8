package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/testdir"
)

var _ cluster.Docker = (*enginefake.Engine)(nil)

// The wizard's kit (a Workshop with no verified Kit) is verified by the
// kit step itself, trusting APIMDEV_KIT_TRUST: unsigned or untrusted, it is
// refused before the engine gets a call.
func TestKitStepTrustsOnlyAPIMDEVKitTrust(t *testing.T) {
	dir := testdir.New(t)
	if _, _, err := (kit.KeyGen{Prefix: filepath.Join(dir, "k"), NoPassword: true}).Write(); err != nil {
		t.Fatal(err)
	}
	key, err := kit.ReadSigningKey(filepath.Join(dir, "k.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := "kindest/node:v1.34.4"
	src := enginefake.New()
	id, err := src.Add(enginefake.Archive(ref, []byte(strings.Repeat("x", 100))))
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "signed.tar")
	if _, _, err := (&kit.Creator{Docker: src, Key: key}).Create(context.Background(), signed, []kit.Want{{Role: kit.RoleNode, Ref: ref}}, nil); err != nil {
		t.Fatal(err)
	}
	e := enginefake.New() // the attendee's engine, without the image
	t.Setenv(KitTrustEnv, "")
	_, err = (&Workshop{KitPath: signed}).loadKit(context.Background(), e, nil)
	var ue *kit.UntrustedError
	if !errors.As(err, &ue) || ue.Signer != key.Fingerprint || e.CallCount() != 0 {
		t.Fatalf("no key trusted: %v, %d engine call(s)", err, e.CallCount())
	}
	t.Setenv(KitTrustEnv, "SHA256:"+strings.Repeat("A", 43)+","+key.Fingerprint)
	summary, err := (&Workshop{KitPath: signed}).loadKit(context.Background(), e, nil)
	if err != nil || e.Loaded() != 1 || !strings.Contains(summary, "node loaded") {
		t.Fatalf("trusted by APIMDEV_KIT_TRUST: %v, %d load(s): %s", err, e.Loaded(), summary)
	}
	if got, _ := e.ImageID(ref); got != id {
		t.Errorf("%s is image %q after the load, the kit's is %s", ref, got, id)
	}
}
