package kit

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
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/events"
)

// APIVersion and Kind identify a kit's manifest.
const (
	APIVersion = "apimdev.io/v1alpha1"
	Kind       = "Kit"
)

// Files of a kit besides its images (and, signed, SignatureFile and
// SignerFile).
const (
	ManifestFile = "manifest.json"
	ConfigFile   = "apimdev.yaml"
	SumsFile     = "SHA256SUMS" // for `sha256sum -c` after `tar xf`
)

// Roles an image plays.
const (
	RoleNode    = "node"
	RoleGateway = "gateway"
	RoleStatsd  = "statsd"
	RoleDemo    = "demo" // the stand-in gateway: not Azure API Management
)

// Image is one saved image in the kit.
type Image struct {
	Role   string `json:"role"`
	Ref    string `json:"ref"`
	ID     string `json:"id"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File is a kit file that is not an image.
type File struct {
	Name   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a kit: manifest.json, the first file in the tar.
type Manifest struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Created    time.Time `json:"created"`
	Apimdev    string    `json:"apimdevVersion"`
	Images     []Image   `json:"images"`
	Config     *File     `json:"config,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Image returns the image that plays role.
func (m Manifest) Image(role string) (Image, bool) {
	for _, i := range m.Images {
		if i.Role == role {
			return i, true
		}
	}
	return Image{}, false
}

// Size is the sum of the kit's image sizes.
func (m Manifest) Size() int64 {
	var n int64
	for _, i := range m.Images {
		n += i.Size
	}
	return n
}

// Docker is the part of the Docker Engine API a kit needs.
type Docker interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	// ImageTag puts a name back on the image it named before a failed load.
	ImageTag(ctx context.Context, source, target string) error
}

var _ Docker = (*client.Client)(nil)

// Progress receives progress lines ("saving … 40% …").
type Progress func(format string, args ...any)

// Want is an image to put in a kit.
type Want struct{ Role, Ref string }

// MissingError lists the images a kit needs that Docker does not have.
type MissingError struct{ Missing []Want }

func (e *MissingError) Error() string {
	var parts []string
	for _, w := range e.Missing {
		parts = append(parts, fmt.Sprintf("%s image %s", w.Role, w.Ref))
	}
	return "not on this machine, so not in the kit: " + strings.Join(parts, ", ")
}

// Hint says how to get each missing image.
func (e *MissingError) Hint() string {
	var fixes []string
	for _, w := range e.Missing {
		switch w.Role {
		case RoleDemo:
			fixes = append(fixes, "build the demo image with `make demo-image` (from this repository's code, no pull)")
		default:
			fixes = append(fixes, fmt.Sprintf("`docker pull %s` on a machine with a network", w.Ref))
		}
	}
	return strings.Join(fixes, "; ") + ", then run kit create again"
}

// Creator writes kits.
type Creator struct {
	Docker   Docker
	Version  string // apimdev's version, in the manifest
	Now      func() time.Time
	Progress Progress
	// Key signs the kit; nil makes an unsigned kit.
	Key *SigningKey
}

// Resolve names each wanted image by a tag: `docker load` restores tags,
// not digests, so an image asked for by digest (kind's default node image
// is) goes into the kit under a tag the same local image has. Images Docker
// does not have are left as they are, for Create to report.
func (c *Creator) Resolve(ctx context.Context, want []Want) ([]Want, error) {
	out := make([]Want, len(want))
	for i, w := range want {
		out[i] = w
		if !strings.Contains(w.Ref, "@") {
			continue
		}
		info, err := c.Docker.ImageInspect(ctx, w.Ref)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting %s: %w", w.Ref, err)
		}
		repo := repository(w.Ref)
		tagged := ""
		for _, t := range info.RepoTags {
			if repository(t) == repo && !strings.Contains(t, "@") {
				tagged = t
				break
			}
		}
		if tagged == "" {
			return nil, &UntaggedError{Ref: w.Ref, Repo: repo}
		}
		out[i].Ref = tagged
	}
	return out, nil
}

// repository is a reference without its digest and tag.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// UntaggedError says an image asked for by digest has no tag to travel under.
type UntaggedError struct{ Ref, Repo string }

func (e *UntaggedError) Error() string {
	return fmt.Sprintf("%s has no tag in this Docker: a kit needs one, because docker load restores tags, not digests", e.Ref)
}

// Hint says how to give it one.
func (e *UntaggedError) Hint() string {
	return fmt.Sprintf("tag it, e.g. `docker tag %s %s:workshop`, and name that tag", e.Ref, e.Repo)
}

// Create saves want's images and config (apimdev.yaml's text; nil for none)
// into the kit at out, signed with c.Key when it is set. A config that
// names files on this machine is refused before anything is saved. Nothing
// is left at out unless the whole kit was written. It returns the manifest
// and the kit's size in bytes.
func (c *Creator) Create(ctx context.Context, out string, want []Want, config []byte) (Manifest, int64, error) {
	if config != nil {
		if _, err := checkConfig(out, config); err != nil {
			return Manifest{}, 0, err
		}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	progress := c.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	m := Manifest{APIVersion: APIVersion, Kind: Kind, Created: now().UTC().Truncate(time.Second), Apimdev: c.Version}
	want, err := c.Resolve(ctx, want)
	if err != nil {
		return m, 0, err
	}
	// Every image is inspected before any is saved: all missing ones are
	// reported at once, before minutes are spent saving the others.
	var missing []Want
	seen := map[string]bool{}
	for _, w := range want {
		if seen[w.Role] {
			return m, 0, fmt.Errorf("two images for the %s role", w.Role)
		}
		seen[w.Role] = true
		info, err := c.Docker.ImageInspect(ctx, w.Ref)
		switch {
		case errdefs.IsNotFound(err):
			missing = append(missing, w)
			continue
		case err != nil:
			return m, 0, fmt.Errorf("inspecting %s: %w", w.Ref, err)
		}
		m.Images = append(m.Images, Image{Role: w.Role, Ref: w.Ref, ID: info.ID, File: "images/" + w.Role + ".tar", Size: info.Size})
	}
	if len(missing) > 0 {
		return m, 0, &MissingError{Missing: missing}
	}
	dir := filepath.Dir(out)
	spooled := make([]string, len(m.Images))
	defer func() {
		for _, p := range spooled {
			if p != "" {
				os.Remove(p)
			}
		}
	}()
	// docker save's size is known only at its end and a tar header needs it
	// first, so each image is spooled next to the kit, hashed on the way.
	for i := range m.Images {
		img := &m.Images[i]
		f, err := os.CreateTemp(dir, ".apimdev-kit-"+img.Role+"-*.tar")
		if err != nil {
			return m, 0, fmt.Errorf("kit: %w", err)
		}
		spooled[i] = f.Name()
		sum, n, err := c.save(ctx, f, *img, progress)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, 0, err
		}
		if err := checkArchive(spooled[i], img.Ref); err != nil {
			return m, 0, fmt.Errorf("docker save of %s gave a damaged archive: %w", img.Ref, err)
		}
		img.SHA256, img.Size = sum, n
	}
	var cfg []byte
	if config != nil {
		cfg = config
		m.Config = &File{Name: ConfigFile, Size: int64(len(cfg)), SHA256: sha(cfg)}
	}
	if _, ok := m.Image(RoleDemo); ok {
		m.Note = "the demo image is apimdev's stand-in gateway: stand-in, not Azure API Management"
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, 0, err
	}
	files := kitFiles{m: m, manifest: manifest, cfg: cfg}
	if c.Key != nil {
		files.sig, files.pub = c.Key.sign(manifest, now())
	}
	size, err := writeKit(ctx, out, files, spooled, progress)
	return m, size, err
}

func (c *Creator) save(ctx context.Context, w io.Writer, img Image, progress Progress) (string, int64, error) {
	rc, err := c.Docker.ImageSave(ctx, []string{img.Ref})
	if err != nil {
		return "", 0, fmt.Errorf("docker save %s: %w", img.Ref, err)
	}
	// Named as the kit names it whichever engine saved it (Podman says
	// localhost/<name> for an image without a registry).
	rc = cluster.NameArchive(rc, img.Ref)
	defer rc.Close()
	h := sha256.New()
	mt := newMeter(fmt.Sprintf("saving %s image %s", img.Role, img.Ref), img.Size, progress)
	n, err := io.Copy(io.MultiWriter(w, h, mt), ctxReader{ctx, rc})
	if err != nil {
		return "", 0, fmt.Errorf("docker save %s: %w", img.Ref, err)
	}
	mt.finish()
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkArchive reads a saved image archive to its end: a save cut short by
// the engine, or an archive naming another image than the kit's ref for it
// (an OCI index.json the engine did not rename), shows up here, not on the
// attendee's machine.
func checkArchive(p, ref string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := archiveNames(f)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("it names no image")
	}
	for _, n := range names {
		if !n.is(ref) {
			return fmt.Errorf("it names %s (in its %s), not %s", n.name, n.where, ref)
		}
	}
	return nil
}

// kitFiles are a kit's files besides its images.
type kitFiles struct {
	m                       Manifest
	manifest, sig, pub, cfg []byte // sig and pub nil for an unsigned kit
}

// writeKit writes the tar: manifest.json first, its signature and the
// signer's key right after it, SHA256SUMS, apimdev.yaml, then the images.
func writeKit(ctx context.Context, out string, k kitFiles, spooled []string, progress Progress) (int64, error) {
	m := k.m
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(partial)
		}
	}()
	tw := tar.NewWriter(f)
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, ctxReader{ctx, r})
		return err
	}
	small := []struct {
		name string
		b    []byte
	}{{ManifestFile, k.manifest}, {SignatureFile, k.sig}, {SignerFile, k.pub}, {SumsFile, []byte(sumsFile(m))}, {ConfigFile, k.cfg}}
	for _, s := range small {
		if s.b == nil {
			continue
		}
		if err := add(s.name, int64(len(s.b)), bytes.NewReader(s.b)); err != nil {
			return 0, fmt.Errorf("kit: %w", err)
		}
	}
	mt := newMeter("writing the kit "+filepath.Base(out), m.Size(), progress)
	for i, img := range m.Images {
		sf, err := os.Open(spooled[i])
		if err != nil {
			return 0, fmt.Errorf("kit: %w", err)
		}
		err = add(img.File, img.Size, io.TeeReader(sf, mt))
		sf.Close()
		if err != nil {
			return 0, fmt.Errorf("kit: writing %s: %w", img.File, err)
		}
	}
	mt.finish()
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	if err := os.Rename(partial, out); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	ok = true
	return fi.Size(), nil
}

func sumsFile(m Manifest) string {
	var b strings.Builder
	if m.Config != nil {
		fmt.Fprintf(&b, "%s  %s\n", m.Config.SHA256, m.Config.Name)
	}
	for _, i := range m.Images {
		fmt.Fprintf(&b, "%s  %s\n", i.SHA256, i.File)
	}
	return b.String()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// LoadResult says what Load did.
type LoadResult struct {
	Manifest Manifest
	Signer   string // the fingerprint of the trusted key that signed the kit; "" if unsigned
	Loaded   []Image
	Present  []Image // Docker already had them (same image ID)
}

func (r LoadResult) String() string {
	var parts []string
	for _, i := range r.Loaded {
		parts = append(parts, fmt.Sprintf("%s loaded (%s)", i.Role, mb(i.Size)))
	}
	for _, i := range r.Present {
		parts = append(parts, i.Role+" already in Docker")
	}
	sort.Strings(parts)
	return fmt.Sprintf("%s; %d image(s) verified: %s", SignedBy(r.Signer), len(r.Manifest.Images), strings.Join(parts, ", "))
}

// SignedBy says who signed a kit, by the fingerprint of a trusted key, or
// that no one did.
func SignedBy(fingerprint string) string {
	if fingerprint == "" {
		return "not signed (--allow-unsigned)"
	}
	return "signed by " + fingerprint
}

// Load opens and verifies the kit at p (see Open), then loads it (see
// Kit.Load). Nothing reaches Docker from a kit that fails verification.
func Load(ctx context.Context, d Docker, p string, trust Trust, progress Progress) (LoadResult, error) {
	k, err := Open(ctx, p, trust, progress)
	if err != nil {
		return LoadResult{}, err
	}
	defer k.Close()
	return k.Load(ctx, d, progress)
}

// move is an image the kit loads, and the image its name was on before.
type move struct {
	img Image
	old string // the ID the ref named before; "" when it named none
}

// Load loads into Docker every image of the verified kit that Docker does
// not hold under the same reference and image ID, from the file Open
// verified, checking each image's bytes again as they go. When a name the
// user had on another image moves and a later step fails, every moved name
// is put back on its old image before Load returns.
func (k *Kit) Load(ctx context.Context, d Docker, progress Progress) (LoadResult, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	res := LoadResult{Manifest: k.m, Signer: k.signer}
	need := map[string]move{}
	for _, img := range k.m.Images {
		info, err := d.ImageInspect(ctx, img.Ref)
		switch {
		case err == nil && info.ID == img.ID:
			res.Present = append(res.Present, img)
			progress("%s image %s is already in Docker (%s)", img.Role, img.Ref, shortID(img.ID))
		case err == nil:
			need[img.File] = move{img: img, old: info.ID}
		case errdefs.IsNotFound(err):
			need[img.File] = move{img: img}
		default:
			return res, fmt.Errorf("inspecting %s: %w", img.Ref, err)
		}
	}
	if len(need) == 0 {
		return res, nil
	}
	var tried []move
	err := k.walk(k.f, func(h *tar.Header, r io.Reader) error {
		mv, ok := need[h.Name]
		if !ok {
			return nil
		}
		delete(need, h.Name)
		tried = append(tried, mv)
		if err := k.loadImage(ctx, d, mv.img, r, progress); err != nil {
			return err
		}
		res.Loaded = append(res.Loaded, mv.img)
		return nil
	})
	if err == nil && len(need) > 0 {
		err = &DamagedError{Kit: k.path, Problem: "it changed while it was being loaded"}
	}
	if err != nil {
		return res, rollback(ctx, d, tried, err)
	}
	return res, nil
}

// loadImage loads one image archive, hashing it on the way, and checks the
// engine now has the image the manifest names.
func (k *Kit) loadImage(ctx context.Context, d Docker, img Image, r io.Reader, progress Progress) error {
	h := sha256.New()
	mt := newMeter(fmt.Sprintf("loading %s image %s into Docker", img.Role, img.Ref), img.Size, progress)
	if err := load(ctx, d, io.TeeReader(io.TeeReader(r, h), mt)); err != nil {
		return fmt.Errorf("docker load of %s: %w", img.Ref, err)
	}
	if _, err := io.Copy(h, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("reading %s: %w", img.File, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != img.SHA256 {
		return &ChecksumError{Kit: k.path, File: img.File, Detail: "the file changed while it was being loaded"}
	}
	mt.finish()
	info, err := d.ImageInspect(ctx, img.Ref)
	if err != nil {
		return fmt.Errorf("after docker load, %s: %w", img.Ref, err)
	}
	if info.ID != img.ID {
		return fmt.Errorf("after docker load, %s is image %s but the kit's manifest says %s", img.Ref, shortID(info.ID), shortID(img.ID))
	}
	return nil
}

// rollback puts every name a failed load moved back on the image it named
// before, even when ctx is cancelled (Ctrl-C), and says what it did.
func rollback(ctx context.Context, d Docker, tried []move, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	e := &LoadError{Err: cause}
	for _, mv := range tried {
		if mv.old == "" {
			continue
		}
		if err := d.ImageTag(rctx, mv.old, mv.img.Ref); err != nil {
			e.NotRestored = append(e.NotRestored, fmt.Sprintf("%s → %s (%v)", mv.img.Ref, shortID(mv.old), err))
			continue
		}
		e.Restored = append(e.Restored, fmt.Sprintf("%s → %s", mv.img.Ref, shortID(mv.old)))
	}
	if len(e.Restored) == 0 && len(e.NotRestored) == 0 {
		return cause
	}
	return e
}

// LoadError is a load that failed after it moved names the user had on
// other images, and what was put back.
type LoadError struct {
	Err         error
	Restored    []string // "ref → image": names back on the images they named before
	NotRestored []string // names that could not be put back, and why
}

func (e *LoadError) Error() string {
	s := e.Err.Error()
	if len(e.Restored) > 0 {
		s += "; rolled back: the names the load had moved are on your images again (" + strings.Join(e.Restored, ", ") + ")"
	}
	if len(e.NotRestored) > 0 {
		s += "; NOT rolled back: " + strings.Join(e.NotRestored, ", ")
	}
	return s
}

func (e *LoadError) Unwrap() error { return e.Err }

// Hint says what to do, with the commands for what could not be undone.
func (e *LoadError) Hint() string {
	h := events.HintOf(e.Err)
	if len(e.NotRestored) > 0 {
		h = strings.TrimSpace(h + " Put each name not rolled back on its image again with `docker tag <image> <name>`.")
	}
	if h == "" {
		h = "fix what stopped the load, then run it again: images already loaded are skipped"
	}
	return h
}

func load(ctx context.Context, d Docker, r io.Reader) error {
	resp, err := d.ImageLoad(ctx, ctxReader{ctx, r}, client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The engine answers with a JSON message stream; a failure is a message.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			// Old engines may answer plain text; a failure still shows in
			// the image check that follows.
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
