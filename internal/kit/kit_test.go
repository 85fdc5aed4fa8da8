package kit

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// fakeDocker holds images as saved archives and records what it was asked.
type fakeDocker struct {
	mu     sync.Mutex
	images map[string]fakeImage // ref -> image
	saved  []string
	loaded int
	// removed remembers the IDs of removed images, so a load restores them.
	removed map[string]string
}

type fakeImage struct {
	id      string
	archive []byte
}

// archive makes a docker-save-like tar naming ref, with size bytes of layer.
func archive(t *testing.T, ref string, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	layer := bytes.Repeat([]byte(ref[:1]), size)
	man := fmt.Sprintf(`[{"RepoTags":[%q],"Layers":["layer.tar"]}]`, ref)
	for _, f := range []struct {
		name string
		data []byte
	}{{"layer.tar", layer}, {"manifest.json", []byte(man)}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	tw.Close()
	return b.Bytes()
}

func newFake(t *testing.T, refs ...string) *fakeDocker {
	d := &fakeDocker{images: map[string]fakeImage{}, removed: map[string]string{}}
	for i, r := range refs {
		d.images[r] = fakeImage{id: fmt.Sprintf("sha256:%064d", i+1), archive: archive(t, r, 300<<10)}
	}
	return d
}

func (d *fakeDocker) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.images[ref]
	if !ok {
		return image.InspectResponse{}, errdefs.NotFound(errors.New("No such image: " + ref))
	}
	tags := []string{}
	for r, other := range d.images {
		if other.id == img.id {
			tags = append(tags, r)
		}
	}
	return image.InspectResponse{ID: img.id, RepoTags: tags, Size: int64(len(img.archive))}, nil
}

func (d *fakeDocker) ImageSave(_ context.Context, refs []string, _ ...client.ImageSaveOption) (io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.saved = append(d.saved, refs...)
	return io.NopCloser(bytes.NewReader(d.images[refs[0]].archive)), nil
}

// ImageLoad reads the archive's manifest for the tag, as the engine does;
// the ID comes from what was saved under that tag.
func (d *fakeDocker) ImageLoad(_ context.Context, r io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return image.LoadResponse{}, err
	}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"errorDetail":{"message":"no manifest"},"error":"no manifest"}`))}, nil
		}
		if h.Name == "manifest.json" {
			m, _ := io.ReadAll(tr)
			var man []struct{ RepoTags []string }
			if json.Unmarshal(m, &man) != nil || len(man) != 1 || len(man[0].RepoTags) != 1 {
				return image.LoadResponse{}, fmt.Errorf("manifest.json: %s", m)
			}
			ref := man[0].RepoTags[0]
			d.mu.Lock()
			d.images[ref] = fakeImage{id: d.removed[ref], archive: b}
			d.loaded++
			d.mu.Unlock()
			return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"stream":"Loaded image: ` + ref + `\n"}`))}, nil
		}
	}
}

func (d *fakeDocker) rmi(ref string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removed[ref] = d.images[ref].id
	delete(d.images, ref)
}

var wants = []Want{{RoleNode, "kindest/node:v1.34.4"}, {RoleGateway, "mcr.microsoft.com/azure-api-management/gateway:2.11.1"}, {RoleStatsd, "prom/statsd-exporter:v0.31.0"}}

func refsOf(ws []Want) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Ref)
	}
	return out
}

func create(t *testing.T, d *fakeDocker, cfg []byte) (string, Manifest, []string) {
	t.Helper()
	out := filepath.Join(testdir.New(t), "kit.tar")
	var lines []string
	c := &Creator{Docker: d, Version: "test", Now: func() time.Time { return time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC) },
		Progress: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
	m, size, err := c.Create(context.Background(), out, wants, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() != size {
		t.Fatalf("kit size %d, stat %v %v", size, fi, err)
	}
	return out, m, lines
}

func TestCreateThenLoadAfterRemoval(t *testing.T) {
	d := newFake(t, refsOf(wants)...)
	out, m, lines := create(t, d, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\n"))
	if len(m.Images) != 3 || m.Config == nil || m.Images[0].File != "images/node.tar" {
		t.Fatalf("manifest: %+v", m)
	}
	joined := strings.Join(lines, "\n")
	for _, w := range []string{"saving node image kindest/node:v1.34.4 [##########] 100%", "writing the kit kit.tar [##########] 100%"} {
		if !strings.Contains(joined, w) {
			t.Errorf("progress lacks %q:\n%s", w, joined)
		}
	}
	// Small images: one line each.
	if len(lines) != 4 {
		t.Errorf("%d progress lines", len(lines))
	}
	read, err := ReadManifest(out)
	if err != nil || read.Images[2].SHA256 != m.Images[2].SHA256 {
		t.Fatalf("ReadManifest: %v %+v", err, read)
	}
	cfg, err := ReadConfig(out, read)
	if err != nil || !strings.Contains(string(cfg), "kind: Config") {
		t.Fatalf("ReadConfig: %v %q", err, cfg)
	}

	// Nothing to load while Docker holds the same images.
	res, err := Load(context.Background(), d, out, nil)
	if err != nil || len(res.Loaded) != 0 || len(res.Present) != 3 || d.loaded != 0 {
		t.Fatalf("load onto the same images: %v %+v", err, res)
	}
	// Remove two; load brings them back with the same IDs.
	for _, r := range []string{wants[0].Ref, wants[1].Ref} {
		d.rmi(r)
	}
	res, err = Load(context.Background(), d, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Loaded) != 2 || len(res.Present) != 1 || d.loaded != 2 {
		t.Fatalf("loaded %+v present %+v", res.Loaded, res.Present)
	}
	if got := res.String(); !strings.Contains(got, "node loaded") || !strings.Contains(got, "statsd already in Docker") {
		t.Errorf("summary: %s", got)
	}
}

// A kit with one flipped byte loads nothing at all: every checksum is checked
// before the first docker load.
func TestDamagedKitLoadsNothing(t *testing.T) {
	d := newFake(t, refsOf(wants)...)
	out, m, _ := create(t, d, nil)
	for _, w := range wants {
		d.rmi(w.Ref)
	}
	b, _ := os.ReadFile(out)
	// Flip a byte inside the last image (the statsd one), far from the start.
	last := m.Images[len(m.Images)-1]
	i := bytes.LastIndex(b, []byte(strings.Repeat(last.Ref[:1], 64)))
	if i < 0 {
		t.Fatal("layer bytes not found")
	}
	b[i] ^= 0xff
	bad := filepath.Join(testdir.New(t), "bad.tar")
	os.WriteFile(bad, b, 0o644)
	_, err := Load(context.Background(), d, bad, nil)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.File != last.File {
		t.Fatalf("want a checksum error for %s, got %v", last.File, err)
	}
	if d.loaded != 0 {
		t.Fatalf("%d image(s) loaded from a damaged kit", d.loaded)
	}
	if !strings.Contains(ce.Hint(), "nothing was loaded") {
		t.Errorf("hint: %s", ce.Hint())
	}

	// Cut short: a truncated copy.
	short := filepath.Join(testdir.New(t), "short.tar")
	os.WriteFile(short, b[:len(b)/2], 0o644)
	if _, err := Load(context.Background(), d, short, nil); err == nil || d.loaded != 0 {
		t.Fatalf("truncated kit: %v, loaded %d", err, d.loaded)
	}
}

func TestCreateReportsEveryMissingImage(t *testing.T) {
	d := newFake(t, wants[0].Ref)
	out := filepath.Join(testdir.New(t), "kit.tar")
	c := &Creator{Docker: d}
	_, _, err := c.Create(context.Background(), out, append(wants, Want{RoleDemo, "apimdev-e2e/standin-gateway:2.11.1-standin"}), nil)
	var me *MissingError
	if !errors.As(err, &me) || len(me.Missing) != 3 {
		t.Fatalf("want 3 missing, got %v", err)
	}
	if !strings.Contains(me.Hint(), "make demo-image") || !strings.Contains(me.Hint(), "docker pull prom/statsd-exporter:v0.31.0") {
		t.Errorf("hint: %s", me.Hint())
	}
	if len(d.saved) != 0 {
		t.Errorf("saved %v before finding what is missing", d.saved)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a kit was left: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".apimdev-kit-*"))
	if len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

func TestNotAKit(t *testing.T) {
	t.Parallel()
	p := filepath.Join(testdir.New(t), "x.tar")
	os.WriteFile(p, []byte("hello"), 0o644)
	_, err := ReadManifest(p)
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("got %v", err)
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		done, total int64
		want        string
	}{
		{0, 1000 << 20, "[----------]   0%  0/1000 MB"},
		{412 << 20, 1030 << 20, "[####------]  40%  412/1030 MB"},
		{1030<<20 - 1, 1030 << 20, "[#########-]  99%  1030/1030 MB"},
		{1030 << 20, 1030 << 20, "[##########] 100%  1030/1030 MB"},
		{5 << 20, 0, "5 MB"},
	} {
		if got := bar(tt.done, tt.total); got != tt.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

func TestMeterLines(t *testing.T) {
	t.Parallel()
	var lines []string
	m := newMeter("saving", 1000<<20, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	chunk := make([]byte, 1<<20)
	for range 1000 {
		m.Write(chunk)
	}
	m.finish()
	m.finish()
	if len(lines) != 11 || !strings.HasSuffix(lines[0], "0%  0/1000 MB") || !strings.HasSuffix(lines[10], "100%  1000/1000 MB") {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
}

func TestResolveTagsADigestRef(t *testing.T) {
	d := newFake(t, "kindest/node:v1.37.0")
	digest := "kindest/node:v1.37.0@sha256:" + strings.Repeat("a", 64)
	// The engine answers for the digest reference with the image's tags.
	d.images[digest] = d.images["kindest/node:v1.37.0"]
	c := &Creator{Docker: d}
	got, err := c.Resolve(context.Background(), []Want{{RoleNode, digest}, {RoleStatsd, "prom/statsd-exporter:v0.31.0"}})
	if err != nil || got[0].Ref != "kindest/node:v1.37.0" || got[1].Ref != "prom/statsd-exporter:v0.31.0" {
		t.Fatalf("%v %+v", err, got)
	}
	for ref, repo := range map[string]string{"localhost:5000/a/b:1.2": "localhost:5000/a/b", "a/b@sha256:x": "a/b", "a:1": "a", "localhost:5000/a": "localhost:5000/a"} {
		if r := repository(ref); r != repo {
			t.Errorf("repository(%s) = %s, want %s", ref, r, repo)
		}
	}
}
