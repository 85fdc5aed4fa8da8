package enginefake

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// Image is an image to make an archive of, as `docker save` writes one:
// manifest.json, the image's config (named by its digest, which is the
// image's ID), its one layer and the repositories file.
type Image struct {
	Ref      string // the name in the archive; "" for none
	Layer    []byte // the layer's content
	OS, Arch string // "" for linux, amd64
	Labels   map[string]string
}

// Archive is `docker save` of the image ref whose one layer is layer.
func Archive(ref string, layer []byte) []byte { return Image{Ref: ref, Layer: layer}.Archive() }

// config is the part of an image's config the engine reads.
type config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// manifestEntry is one image in an archive's manifest.json.
type manifestEntry struct {
	Config   string   `json:"Config,omitempty"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Archive is the image as `docker save` writes it.
func (im Image) Archive() []byte {
	var c config
	c.OS, c.Architecture = cmpOr(im.OS, "linux"), cmpOr(im.Arch, "amd64")
	c.Config.Labels = im.Labels
	layer := sum(im.Layer)
	c.RootFS.Type, c.RootFS.DiffIDs = "layers", []string{"sha256:" + layer}
	cb, _ := json.Marshal(c)
	id := sum(cb)
	m := manifestEntry{Config: id + ".json", RepoTags: []string{}, Layers: []string{layer + "/layer.tar"}}
	files := [][2]string{{layer + "/layer.tar", string(im.Layer)}, {id + ".json", string(cb)}}
	if im.Ref != "" {
		m.RepoTags = []string{im.Ref}
		repo, tag := splitRef(im.Ref)
		rb, _ := json.Marshal(map[string]map[string]string{repo: {tag: id}})
		files = append(files, [2]string{"repositories", string(rb)})
	}
	mb, _ := json.Marshal([]manifestEntry{m})
	files = append(files, [2]string{"manifest.json", string(mb)})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		// Writing to a bytes.Buffer does not fail.
		_ = tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f[1]))
	}
	_ = tw.Close()
	return b.Bytes()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// splitRef splits a name into its repository and tag (latest when none).
func splitRef(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// parsed is an archive read as the engine reads it.
type parsed struct {
	files    map[string][]byte
	manifest []manifestEntry
	config   config
}

func parse(archive []byte) (parsed, error) {
	p := parsed{files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p, fmt.Errorf("reading the archive: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return p, fmt.Errorf("reading the archive: %w", err)
		}
		p.files[h.Name] = b
	}
	mb, ok := p.files["manifest.json"]
	if !ok {
		return p, errors.New("no manifest.json in the archive")
	}
	if err := json.Unmarshal(mb, &p.manifest); err != nil || len(p.manifest) != 1 {
		return p, fmt.Errorf("manifest.json: want one image, got %s", mb)
	}
	if cb, ok := p.files[p.manifest[0].Config]; ok {
		_ = json.Unmarshal(cb, &p.config)
	}
	return p, nil
}

// ContentID is an archive's image ID as the classic image store computes
// it: the digest of the image's config when the archive has one, else
// (a hand-made archive) of its layers, from its content, never its names.
func ContentID(archive []byte) string {
	p, err := parse(archive)
	if err != nil {
		return "sha256:" + sum(archive)
	}
	m := p.manifest[0]
	if cb, ok := p.files[m.Config]; ok {
		return "sha256:" + sum(cb)
	}
	h := sha256.New()
	layers := m.Layers
	if len(layers) == 0 {
		layers = []string{"layer.tar"}
	}
	for _, l := range layers {
		h.Write(p.files[l])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Add puts the image an archive holds on the engine, named as its
// manifest names it, as a load does (but not counted as a call), and
// returns its ID.
func (e *Engine) Add(archive []byte) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := parse(archive)
	if err != nil {
		return "", err
	}
	id := e.idOf(archive)
	e.put(id, archive, p)
	for _, r := range p.manifest[0].RepoTags {
		e.tags[r] = id
	}
	return id, nil
}

// AddAs puts an archive on the engine as image id (replacing what id
// held) and names it ref: a user's own image, whose ID the test chooses,
// or an image the engine saves differently from how it was made.
func (e *Engine) AddAs(id, ref string, archive []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, _ := parse(archive)
	e.put(id, archive, p)
	e.tags[ref] = id
}

func (e *Engine) put(id string, archive []byte, p parsed) {
	e.created++
	e.images[id] = &img{archive: archive, labels: p.config.Config.Labels, created: e.created,
		os: cmpOr(p.config.OS, "linux"), arch: cmpOr(p.config.Architecture, "amd64")}
}

// SetTag names image id ref, whether or not the engine holds id (as a
// test's stand-in for what another client did).
func (e *Engine) SetTag(ref, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tags[ref] = id
}

// ImageID is the ID of the image named ref.
func (e *Engine) ImageID(ref string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.tags[ref]
	return id, ok
}

// Tags are the engine's names and the image IDs they name.
func (e *Engine) Tags() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.tags)
}

// HasImage says whether the engine holds image id.
func (e *Engine) HasImage(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.images[id]
	return ok
}

// Remove is `docker rmi ref`: the name goes, and the image with its last
// name.
func (e *Engine) Remove(ref string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.tags[ref]
	if !ok {
		return
	}
	delete(e.tags, ref)
	if len(e.namesOf(id)) == 0 {
		delete(e.images, id)
	}
}

// namesOf are id's names, sorted; the caller holds the lock.
func (e *Engine) namesOf(id string) []string {
	var out []string
	for r, other := range e.tags {
		if other == id {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// resolve finds the image a name or an ID means; the caller holds the lock.
func (e *Engine) resolve(ref string) (string, *img, bool) {
	id, ok := e.tags[ref]
	if !ok {
		id = ref
	}
	im, ok := e.images[id]
	if !ok && !strings.HasPrefix(ref, "sha256:") {
		if im, ok = e.images["sha256:"+ref]; ok {
			id = "sha256:" + ref
		}
	}
	return id, im, ok
}

func noSuchImage(ref string) error {
	return errdefs.NotFound(errors.New("Error response from daemon: No such image: " + ref))
}

// ImageInspect answers for a name or an ID the engine holds. A name on no
// image it holds (SetTag's) answers with the ID alone.
func (e *Engine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("inspect %s", ref)
	id, im, ok := e.resolve(ref)
	if !ok {
		if id, named := e.tags[ref]; named {
			return image.InspectResponse{ID: id, RepoTags: e.namesOf(id)}, nil
		}
		return image.InspectResponse{}, noSuchImage(ref)
	}
	return image.InspectResponse{ID: id, RepoTags: e.namesOf(id), Size: int64(len(im.archive)), Os: im.os, Architecture: im.arch}, nil
}

// ImageSave gives back the archive the image came in, byte for byte, so
// that what it saves loads again as the same image (a real engine writes
// the names asked for; a test that needs another archive saved puts it
// there with AddAs). It saves one image at a time.
func (e *Engine) ImageSave(_ context.Context, refs []string, _ ...client.ImageSaveOption) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("save %s", strings.Join(refs, " "))
	if len(refs) != 1 {
		return nil, fmt.Errorf("the fake engine saves one image at a time, not %d", len(refs))
	}
	_, im, ok := e.resolve(refs[0])
	if !ok {
		return nil, noSuchImage(refs[0])
	}
	return io.NopCloser(bytes.NewReader(im.archive)), nil
}

// stream is a load's answer: the JSON messages an engine streams.
func stream(msg map[string]any) image.LoadResponse {
	b, _ := json.Marshal(msg)
	return image.LoadResponse{Body: io.NopCloser(bytes.NewReader(append(b, '\n'))), JSON: true}
}

func streamError(msg string) image.LoadResponse {
	return stream(map[string]any{"errorDetail": map[string]string{"message": msg}, "error": msg})
}

// ImageLoad reads a `docker save` archive of one image as the engine does:
// its ID is the engine's for the archive's content (ContentID unless
// SetIDOf said otherwise), its names are its manifest's RepoTags, taken
// from any image that had them. What goes wrong is in the stream, as an
// engine says it.
func (e *Engine) ImageLoad(_ context.Context, r io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return image.LoadResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("load")
	p, err := parse(b)
	if err != nil {
		return streamError(err.Error()), nil
	}
	id := e.idOf(b)
	e.put(id, b, p)
	tags := p.manifest[0].RepoTags
	for _, ref := range tags {
		// An image that loses its last name here stays, untagged, as on
		// an engine.
		e.tags[ref] = id
	}
	if len(tags) == 0 {
		return stream(map[string]any{"stream": "Loaded image ID: " + id + "\n"}), nil
	}
	e.loaded++
	for _, ref := range tags {
		if msg := e.failLoad[ref]; msg != "" {
			return streamError(msg), nil
		}
	}
	var lines strings.Builder
	for _, ref := range tags {
		lines.WriteString("Loaded image: " + ref + "\n")
	}
	return stream(map[string]any{"stream": lines.String()}), nil
}

// ImageTag names the image source (a name or an ID) target.
func (e *Engine) ImageTag(ctx context.Context, source, target string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("tag %s %s", source, target)
	if err := ctx.Err(); err != nil {
		return err
	}
	id, _, ok := e.resolve(source)
	if !ok {
		return noSuchImage(source)
	}
	e.tags[target] = id
	return nil
}

// registryOf is the registry host a pull of ref would go to.
func registryOf(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "registry-1.docker.io"
}

// ImagePull fails as an engine with no way out does: no registry answers.
func (e *Engine) ImagePull(_ context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("pull %s", ref)
	host := registryOf(ref)
	return nil, fmt.Errorf("Error response from daemon: Get \"https://%s/v2/\": dial tcp: lookup %s: no such host", host, host)
}

// ImageRemove removes a name; the image goes with its last name (or when
// an ID is given), as the engine does. Removing an image no name or ID
// means is the engine's "No such image".
func (e *Engine) ImageRemove(_ context.Context, ref string, _ image.RemoveOptions) ([]image.DeleteResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("rmi %s", ref)
	id, _, ok := e.resolve(ref)
	if !ok {
		return nil, noSuchImage(ref)
	}
	var out []image.DeleteResponse
	if _, named := e.tags[ref]; named {
		delete(e.tags, ref)
		out = append(out, image.DeleteResponse{Untagged: ref})
		if len(e.namesOf(id)) > 0 {
			return out, nil
		}
	} else {
		for _, n := range e.namesOf(id) {
			delete(e.tags, n)
			out = append(out, image.DeleteResponse{Untagged: n})
		}
	}
	delete(e.images, id)
	return append(out, image.DeleteResponse{Deleted: id}), nil
}

// ImageList lists the engine's images, newest first, keeping those with
// every label a "label" filter names (key or key=value); other filters are
// not honoured.
func (e *Engine) ImageList(_ context.Context, opts image.ListOptions) ([]image.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("list")
	want := opts.Filters.Get("label")
	var out []image.Summary
	for id, im := range e.images {
		if !hasLabels(im.labels, want) {
			continue
		}
		out = append(out, image.Summary{ID: id, RepoTags: e.namesOf(id), Created: im.created, Size: int64(len(im.archive)), Labels: maps.Clone(im.labels)})
	}
	slices.SortFunc(out, func(a, b image.Summary) int { return int(b.Created - a.Created) })
	return out, nil
}

func hasLabels(have map[string]string, want []string) bool {
	for _, w := range want {
		k, v, withValue := strings.Cut(w, "=")
		got, ok := have[k]
		if !ok || withValue && got != v {
			return false
		}
	}
	return true
}
