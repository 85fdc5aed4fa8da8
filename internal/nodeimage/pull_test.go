package nodeimage

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
)

func TestRegistryOf(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"127.0.0.1:1/kind/node:v9": "127.0.0.1:1",
		"ghcr.io/x/y:1":            "ghcr.io",
		"localhost/kind/node:v1":   "localhost",
		"kindest/node:v1.34.0":     "registry-1.docker.io (Docker Hub)",
		"busybox":                  "registry-1.docker.io (Docker Hub)",
	} {
		if got := RegistryOf(ref); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}

type puller struct{ stream string }

func (p puller) ImagePull(context.Context, string, image.PullOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(p.stream)), nil
}

// An error the engine reports in the stream is the pull's error.
func TestPullReturnsTheStreamsError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := Pull(ctx, puller{`{"status":"Pulling fs layer"}` + "\n" + `{"status":"Pull complete"}`}, "x", func(string) {}); err != nil {
		t.Fatalf("a clean stream: %v", err)
	}
	err := Pull(ctx, puller{`{"status":"Pulling"}` + "\n" + `{"error":"dial tcp: lookup registry-1.docker.io: no such host"}`}, "x", func(string) {})
	if err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("an error in the stream: %v", err)
	}
	pe := &PullError{Image: "x", Registry: RegistryOf("x"), Reason: err.Error()}
	if !strings.Contains(pe.Error(), "registry-1.docker.io") || !strings.Contains(pe.Hint(), "--node-image NAME") {
		t.Errorf("%v: %s", pe, pe.Hint())
	}
}
