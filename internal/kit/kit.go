package kit

import (
	"github.com/apimdev/apimdev/internal/cluster"

	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// APIVersion and Kind identify a kit's manifest.
const (
	APIVersion = "apimdev.io/v1alpha1"
	Kind       = "Kit"
)

// Files of a kit besides its images.
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
// into the kit at out. Nothing is left at out unless the whole kit was
// written. It returns the manifest and the kit's size in bytes.
func (c *Creator) Create(ctx context.Context, out string, want []Want, config []byte) (Manifest, int64, error) {
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
		if err := checkArchive(spooled[i]); err != nil {
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
	size, err := writeKit(ctx, out, m, cfg, spooled, progress)
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
// the engine shows up here, not on the attendee's machine.
func checkArchive(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		found = found || h.Name == "manifest.json"
	}
	if !found {
		return errors.New("no manifest.json in it")
	}
	return nil
}

func writeKit(ctx context.Context, out string, m Manifest, cfg []byte, spooled []string, progress Progress) (int64, error) {
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, err
	}
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
	if err := add(ManifestFile, int64(len(mb)), strings.NewReader(string(mb))); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	sums := sumsFile(m)
	if err := add(SumsFile, int64(len(sums)), strings.NewReader(sums)); err != nil {
		return 0, fmt.Errorf("kit: %w", err)
	}
	if cfg != nil {
		if err := add(ConfigFile, int64(len(cfg)), strings.NewReader(string(cfg))); err != nil {
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

// ReadManifest reads a kit's manifest without checking anything else.
func ReadManifest(p string) (Manifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return Manifest{}, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return Manifest{}, &DamagedError{Kit: p, Problem: "it has no " + ManifestFile + " (is it a file made by `apimdev kit create`?)"}
		}
		if err != nil {
			return Manifest{}, &DamagedError{Kit: p, Problem: "it is not a readable tar: " + err.Error()}
		}
		if h.Name == ManifestFile {
			return decodeManifest(p, tr)
		}
	}
}

func decodeManifest(p string, r io.Reader) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, &DamagedError{Kit: p, Problem: "its " + ManifestFile + " does not decode: " + err.Error()}
	}
	if m.APIVersion != APIVersion || m.Kind != Kind {
		return m, &DamagedError{Kit: p, Problem: fmt.Sprintf("its manifest is %s/%s, want %s/%s", m.APIVersion, m.Kind, APIVersion, Kind)}
	}
	if len(m.Images) == 0 {
		return m, &DamagedError{Kit: p, Problem: "its manifest lists no images"}
	}
	for _, i := range m.Images {
		if i.Ref == "" || i.ID == "" || len(i.SHA256) != 64 || !strings.HasPrefix(i.File, "images/") || path.Clean(i.File) != i.File {
			return m, &DamagedError{Kit: p, Problem: fmt.Sprintf("its manifest entry for the %s image is incomplete", i.Role)}
		}
	}
	return m, nil
}

// ReadConfig returns the kit's apimdev.yaml, checked against its checksum;
// nil when the kit has none.
func ReadConfig(p string, m Manifest) ([]byte, error) {
	if m.Config == nil {
		return nil, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, &DamagedError{Kit: p, Problem: "its " + ConfigFile + " is missing"}
		}
		if h.Name != m.Config.Name {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, &DamagedError{Kit: p, Problem: err.Error()}
		}
		if sha(b) != m.Config.SHA256 {
			return nil, &ChecksumError{Kit: p, File: m.Config.Name}
		}
		return b, nil
	}
}

// DamagedError says a kit cannot be used.
type DamagedError struct{ Kit, Problem string }

func (e *DamagedError) Error() string { return fmt.Sprintf("kit %s: %s", e.Kit, e.Problem) }

// Hint says what to do.
func (e *DamagedError) Hint() string {
	return "nothing was loaded; copy the kit again (a copy cut short is the usual cause) or make a new one with `apimdev kit create`"
}

// ChecksumError says a file in the kit is not what the manifest says.
type ChecksumError struct {
	Kit, File string
	Detail    string
}

func (e *ChecksumError) Error() string {
	s := fmt.Sprintf("kit %s: %s does not match its SHA-256 in the manifest", e.Kit, e.File)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Hint says what to do.
func (e *ChecksumError) Hint() string {
	return "nothing was loaded into Docker; the kit is damaged: copy it again from the instructor or rebuild it with `apimdev kit create`"
}

// Verify checks every file of the kit against the manifest, reading it once.
func Verify(ctx context.Context, p string, progress Progress) (Manifest, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	f, err := os.Open(p)
	if err != nil {
		return Manifest{}, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Manifest{}, err
	}
	type seen struct {
		sum  string
		size int64
	}
	got := map[string]seen{}
	var m Manifest
	haveManifest := false
	mt := newMeter("verifying checksums of "+filepath.Base(p), fi.Size(), progress)
	tr := tar.NewReader(io.TeeReader(f, mt))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, &DamagedError{Kit: p, Problem: "it is not a readable tar (cut short?): " + err.Error()}
		}
		if h.Name == ManifestFile {
			if m, err = decodeManifest(p, tr); err != nil {
				return m, err
			}
			haveManifest = true
			continue
		}
		hs := sha256.New()
		n, err := io.Copy(hs, ctxReader{ctx, tr})
		if err != nil {
			if ctx.Err() != nil {
				return m, ctx.Err()
			}
			return m, &DamagedError{Kit: p, Problem: fmt.Sprintf("%s is cut short: %v", h.Name, err)}
		}
		got[h.Name] = seen{hex.EncodeToString(hs.Sum(nil)), n}
	}
	mt.finish()
	if !haveManifest {
		return m, &DamagedError{Kit: p, Problem: "it has no " + ManifestFile}
	}
	check := func(name string, size int64, sum string) error {
		g, ok := got[name]
		switch {
		case !ok:
			return &DamagedError{Kit: p, Problem: name + " is missing"}
		case g.size != size:
			return &ChecksumError{Kit: p, File: name, Detail: fmt.Sprintf("%d bytes, the manifest says %d", g.size, size)}
		case g.sum != sum:
			return &ChecksumError{Kit: p, File: name}
		}
		return nil
	}
	var errs []error
	for _, i := range m.Images {
		errs = append(errs, check(i.File, i.Size, i.SHA256))
	}
	if m.Config != nil {
		errs = append(errs, check(m.Config.Name, m.Config.Size, m.Config.SHA256))
	}
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	return m, nil
}

// LoadResult says what Load did.
type LoadResult struct {
	Manifest Manifest
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
	return fmt.Sprintf("%d image(s) verified: %s", len(r.Manifest.Images), strings.Join(parts, ", "))
}

// Load verifies the whole kit, then loads into Docker every image Docker
// does not hold under the same reference and image ID. Nothing is loaded
// from a kit that fails verification.
func Load(ctx context.Context, d Docker, p string, progress Progress) (LoadResult, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	m, err := Verify(ctx, p, progress)
	res := LoadResult{Manifest: m}
	if err != nil {
		return res, err
	}
	need := map[string]Image{}
	for _, img := range m.Images {
		info, err := d.ImageInspect(ctx, img.Ref)
		switch {
		case err == nil && info.ID == img.ID:
			res.Present = append(res.Present, img)
			progress("%s image %s is already in Docker (%s)", img.Role, img.Ref, shortID(img.ID))
		case err == nil || errdefs.IsNotFound(err):
			need[img.File] = img
		default:
			return res, fmt.Errorf("inspecting %s: %w", img.Ref, err)
		}
	}
	if len(need) == 0 {
		return res, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return res, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for len(need) > 0 {
		h, err := tr.Next()
		if err != nil {
			return res, &DamagedError{Kit: p, Problem: "it changed while it was being loaded: " + err.Error()}
		}
		img, ok := need[h.Name]
		if !ok {
			continue
		}
		delete(need, h.Name)
		mt := newMeter(fmt.Sprintf("loading %s image %s into Docker", img.Role, img.Ref), img.Size, progress)
		if err := load(ctx, d, io.TeeReader(tr, mt)); err != nil {
			return res, fmt.Errorf("docker load of %s: %w", img.Ref, err)
		}
		mt.finish()
		info, err := d.ImageInspect(ctx, img.Ref)
		if err != nil {
			return res, fmt.Errorf("after docker load, %s: %w", img.Ref, err)
		}
		if info.ID != img.ID {
			return res, fmt.Errorf("after docker load, %s is image %s but the kit's manifest says %s", img.Ref, shortID(info.ID), shortID(img.ID))
		}
		res.Loaded = append(res.Loaded, img)
	}
	return res, nil
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
