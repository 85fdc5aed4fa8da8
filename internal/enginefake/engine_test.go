package enginefake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"
)

var ctx = context.Background()

// loadMessage is what a load's stream says: its text, or its error.
func loadMessage(t *testing.T, r image.LoadResponse) (text, failure string) {
	t.Helper()
	defer r.Body.Close()
	var m struct {
		Stream string
		Error  string
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Stream, m.Error
}

func save(t *testing.T, e *Engine, ref string) []byte {
	t.Helper()
	rc, err := e.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An image saved from one engine loads onto another as the same image:
// the same ID, under the name the archive gives, and saves again byte for
// byte.
func TestSaveThenLoadIsTheSameImage(t *testing.T) {
	src := New()
	id, err := src.Add(Archive("kindest/node:v1.34.4", []byte("node layer")))
	if err != nil {
		t.Fatal(err)
	}
	arch := save(t, src, "kindest/node:v1.34.4")
	dst := New()
	resp, err := dst.ImageLoad(ctx, bytes.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	if text, failure := loadMessage(t, resp); text != "Loaded image: kindest/node:v1.34.4\n" || failure != "" {
		t.Fatalf("load says %q %q", text, failure)
	}
	got, err := dst.ImageInspect(ctx, "kindest/node:v1.34.4")
	if err != nil || got.ID != id || got.Os != "linux" || got.Architecture != "amd64" || len(got.RepoTags) != 1 {
		t.Fatalf("loaded image: %+v %v, want ID %s", got, err, id)
	}
	if again := save(t, dst, id); !bytes.Equal(again, arch) {
		t.Error("the loaded image saves another archive")
	}
	if dst.Loaded() != 1 || dst.Count("load") != 1 || dst.Count("inspect") != 1 || dst.Count("save") != 1 || dst.CallCount() != 3 {
		t.Errorf("calls: %v", dst.Calls())
	}
}

// An image's ID is its content's: the same content under another name is
// the same image, other content (or platform) is another; a name never
// changes the ID.
func TestIDsComeFromContent(t *testing.T) {
	a := ContentID(Archive("a:1", []byte("x")))
	if b := ContentID(Archive("b:2", []byte("x"))); b != a {
		t.Errorf("same content, other name: %s vs %s", b, a)
	}
	if c := ContentID(Archive("a:1", []byte("y"))); c == a {
		t.Error("other content, same ID")
	}
	if d := ContentID(Image{Ref: "a:1", Layer: []byte("x"), Arch: "arm64"}.Archive()); d == a {
		t.Error("another platform, same ID")
	}
	if a != ContentID(Archive("a:1", []byte("x"))) || !strings.HasPrefix(a, "sha256:") || len(a) != 71 {
		t.Errorf("ID %s is not a stable sha256 digest", a)
	}
	e := New()
	id1, _ := e.Add(Archive("a:1", []byte("x")))
	id2, _ := e.Add(Archive("b:2", []byte("x")))
	if id1 != a || id2 != a {
		t.Errorf("added as %s and %s, want %s", id1, id2, a)
	}
	if im, _ := e.ImageInspect(ctx, "b:2"); strings.Join(im.RepoTags, " ") != "a:1 b:2" {
		t.Errorf("one image, two names: %v", im.RepoTags)
	}
	// An engine with another store names images its own way.
	e.SetIDOf(func([]byte) string { return "sha256:other" })
	r, _ := e.ImageLoad(ctx, bytes.NewReader(Archive("c:3", []byte("z"))))
	r.Body.Close()
	if id, _ := e.ImageID("c:3"); id != "sha256:other" {
		t.Errorf("SetIDOf: %s", id)
	}
}

// rmi takes the name; the image goes with its last name, and then neither
// inspect nor save nor tag find it.
func TestRemoveDropsTheImageWithItsLastName(t *testing.T) {
	e := New()
	id, _ := e.Add(Archive("a:1", []byte("x")))
	if err := e.ImageTag(ctx, "a:1", "b:2"); err != nil {
		t.Fatal(err)
	}
	e.Remove("a:1")
	if _, err := e.ImageInspect(ctx, "a:1"); !errdefs.IsNotFound(err) {
		t.Errorf("a removed name inspects: %v", err)
	}
	if !e.HasImage(id) {
		t.Fatal("the image went with a name it still had another of")
	}
	e.Remove("b:2")
	if e.HasImage(id) {
		t.Fatal("the image stayed after its last name went")
	}
	if _, err := e.ImageSave(ctx, []string{id}); !errdefs.IsNotFound(err) {
		t.Errorf("a removed image saves: %v", err)
	}
	if err := e.ImageTag(ctx, id, "c:3"); !errdefs.IsNotFound(err) {
		t.Errorf("a removed image is tagged: %v", err)
	}
}

// A load replaces a name's image; a failing load says so in its stream
// after the name moved, and a load of no archive fails in the stream.
func TestLoadMovesNamesAndFailsInTheStream(t *testing.T) {
	e := New()
	e.AddAs("sha256:"+strings.Repeat("a", 64), "a:1", Archive("users/own:1", []byte("own")))
	e.FailLoad("a:1", "no space left on device")
	r, err := e.ImageLoad(ctx, bytes.NewReader(Archive("a:1", []byte("kit's"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, failure := loadMessage(t, r); failure != "no space left on device" {
		t.Errorf("failing load says %q", failure)
	}
	if id, _ := e.ImageID("a:1"); id != ContentID(Archive("a:1", []byte("kit's"))) {
		t.Errorf("the name did not move: %s", id)
	}
	r, _ = e.ImageLoad(ctx, strings.NewReader("not a tar"))
	if _, failure := loadMessage(t, r); failure == "" {
		t.Error("a load of no archive did not fail")
	}
	if e.Loaded() != 1 || e.Count("load") != 2 {
		t.Errorf("loaded %d of %d loads", e.Loaded(), e.Count("load"))
	}
}

// Kill stops a running container with the signal's exit code; start runs
// it again; a stopped one cannot be killed, a paused one not started.
func TestKillAndStart(t *testing.T) {
	e := New()
	id := e.AddContainer("apimdev-control-plane", Running)
	if err := e.ContainerKill(ctx, "apimdev-control-plane", "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	ci, err := e.ContainerInspect(ctx, id)
	if err != nil || ci.State.Running || ci.State.Status != Exited || ci.State.ExitCode != 137 || ci.Name != "/apimdev-control-plane" {
		t.Fatalf("after kill: %+v %v", ci.State, err)
	}
	if err := e.ContainerKill(ctx, id, "SIGKILL"); !errdefs.IsConflict(err) {
		t.Errorf("killing a stopped container: %v", err)
	}
	if err := e.ContainerStart(ctx, id[:12], container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.ContainerState(id); s != Running {
		t.Errorf("after start: %s", s)
	}
	e.AddContainer("paused", Paused)
	if err := e.ContainerStart(ctx, "paused", container.StartOptions{}); !errdefs.IsConflict(err) {
		t.Errorf("starting a paused container: %v", err)
	}
	if err := e.ContainerKill(ctx, "paused", "TERM"); err != nil {
		t.Errorf("killing a paused container: %v", err)
	}
	if _, err := e.ContainerInspect(ctx, "nothing"); !errdefs.IsNotFound(err) {
		t.Errorf("no such container: %v", err)
	}
	if e.Count("kill") != 3 || e.Count("start") != 2 {
		t.Errorf("calls: %v", e.Calls())
	}
}

// The answers: down, then up again; a version and info as set.
func TestAnswersAreSettable(t *testing.T) {
	e := New()
	e.SetDown(true)
	if _, err := e.Ping(ctx); err == nil || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Errorf("down: %v", err)
	}
	if _, err := e.ServerVersion(ctx); err == nil {
		t.Error("down: a version")
	}
	e.SetDown(false)
	e.SetVersion(func(v *types.Version) {
		v.Arch, v.Components = "arm64", []types.ComponentVersion{{Name: "Podman Engine"}}
	})
	e.SetInfo(func(i *system.Info) { i.Architecture, i.DefaultRuntime = "aarch64", "crun" })
	e.AddContainer("c", Running)
	v, err1 := e.ServerVersion(ctx)
	i, err2 := e.Info(ctx)
	if err1 != nil || err2 != nil || v.Arch != "arm64" || v.Components[0].Name != "Podman Engine" || i.Architecture != "aarch64" || i.DefaultRuntime != "crun" || i.ContainersRunning != 1 {
		t.Errorf("answers: %+v %+v %v %v", v, i, err1, err2)
	}
}

// Pulls fail as offline; the list keeps the labelled images, newest first.
func TestPullFailsAndListFilters(t *testing.T) {
	e := New()
	if _, err := e.ImagePull(ctx, "kindest/node:v1", image.PullOptions{}); err == nil || !strings.Contains(err.Error(), "lookup registry-1.docker.io: no such host") {
		t.Errorf("pull: %v", err)
	}
	if _, err := e.ImagePull(ctx, "mcr.microsoft.com/x:1", image.PullOptions{}); err == nil || !strings.Contains(err.Error(), "mcr.microsoft.com") {
		t.Errorf("pull: %v", err)
	}
	e.Add(Image{Ref: "built:1", Layer: []byte("1"), Labels: map[string]string{"apimdev.node": "yes"}}.Archive())
	e.Add(Image{Ref: "built:2", Layer: []byte("2"), Labels: map[string]string{"apimdev.node": "yes"}}.Archive())
	e.Add(Archive("other:1", []byte("3")))
	l, err := e.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "apimdev.node"))})
	if err != nil || len(l) != 2 || l[0].RepoTags[0] != "built:2" || l[1].RepoTags[0] != "built:1" {
		t.Errorf("labelled: %+v %v", l, err)
	}
	if l, _ := e.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "apimdev.node=no"))}); len(l) != 0 {
		t.Errorf("label=value: %+v", l)
	}
	if l, _ := e.ImageList(ctx, image.ListOptions{}); len(l) != 3 {
		t.Errorf("all: %d", len(l))
	}
}

// Calls from many goroutines are counted, each once.
func TestConcurrentCalls(t *testing.T) {
	e := New()
	e.Add(Archive("a:1", []byte("x")))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := e.ImageInspect(ctx, "a:1"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := e.Count("inspect"); n != 80 {
		t.Errorf("%d inspects counted", n)
	}
	if !errors.Is(e.ImageTag(canceled(), "a:1", "b:1"), context.Canceled) {
		t.Error("a canceled tag")
	}
}

func canceled() context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}
