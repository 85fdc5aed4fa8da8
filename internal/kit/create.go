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
	"strings"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/cluster"
)

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
