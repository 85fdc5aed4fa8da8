package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/testdir"
)

// kitEngine saves one image for kit create and counts every other call;
// any method it does not define panics through the nil interface.
type kitEngine struct {
	cluster.Docker
	archive []byte
	calls   atomic.Int64
}

func (e *kitEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	e.calls.Add(1)
	return image.InspectResponse{}, errdefs.NotFound(errors.New("no such image " + ref))
}

func (e *kitEngine) ImageLoad(context.Context, io.Reader, ...client.ImageLoadOption) (image.LoadResponse, error) {
	e.calls.Add(1)
	return image.LoadResponse{}, errors.New("the test's engine loads nothing")
}

// saver is kitEngine for kit create: it has the image.
type saver struct{ *kitEngine }

func (s saver) ImageInspect(context.Context, string, ...client.ImageInspectOption) (image.InspectResponse, error) {
	return image.InspectResponse{ID: "sha256:" + strings.Repeat("1", 64), Size: int64(len(s.archive))}, nil
}

func (s saver) ImageSave(context.Context, []string, ...client.ImageSaveOption) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.archive)), nil
}

func (s saver) ImageTag(context.Context, string, string) error { return nil }

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
	e := &kitEngine{archive: imageTar(t, ref)}
	signed := filepath.Join(dir, "signed.tar")
	if _, _, err := (&kit.Creator{Docker: saver{e}, Key: key}).Create(context.Background(), signed, []kit.Want{{Role: kit.RoleNode, Ref: ref}}, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv(KitTrustEnv, "")
	_, err = (&Workshop{KitPath: signed}).loadKit(context.Background(), e, nil)
	var ue *kit.UntrustedError
	if !errors.As(err, &ue) || ue.Signer != key.Fingerprint || e.calls.Load() != 0 {
		t.Fatalf("no key trusted: %v, %d engine call(s)", err, e.calls.Load())
	}
	t.Setenv(KitTrustEnv, "SHA256:"+strings.Repeat("A", 43)+","+key.Fingerprint)
	_, err = (&Workshop{KitPath: signed}).loadKit(context.Background(), e, nil)
	if err == nil || errors.As(err, &ue) || e.calls.Load() == 0 {
		t.Fatalf("trusted by APIMDEV_KIT_TRUST: %v, %d engine call(s)", err, e.calls.Load())
	}
}

// imageTar is a docker-save-like archive naming ref.
func imageTar(t *testing.T, ref string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range [][2]string{{"layer.tar", strings.Repeat("x", 100)}, {"manifest.json", fmt.Sprintf(`[{"RepoTags":[%q],"Layers":["layer.tar"]}]`, ref)}} {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
