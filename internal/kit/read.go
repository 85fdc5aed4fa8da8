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
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Size limits of a kit's small files.
const (
	maxManifest = 1 << 20
	maxConfig   = 1 << 20
	maxSmall    = 4 << 10 // the signature and the signer's key
)

// Kit is a kit file, open and verified: its layout, its signature against
// the keys trusted, its configuration and every checksum. Load reads the
// same open file, so what loads is what was verified.
type Kit struct {
	path     string
	f        *os.File
	manifest []byte // manifest.json's bytes, as signed
	m        Manifest
	config   []byte
	signer   string
}

// Manifest is the kit's verified manifest.
func (k *Kit) Manifest() Manifest { return k.m }

// Config is the kit's verified apimdev.yaml; nil when it has none.
func (k *Kit) Config() []byte { return k.config }

// Signer is the fingerprint of the trusted key that signed the kit; "" for
// an unsigned kit let through by Trust.AllowUnsigned.
func (k *Kit) Signer() string { return k.signer }

// Path is the kit's file.
func (k *Kit) Path() string { return k.path }

// Close closes the kit's file; closing it again does nothing.
func (k *Kit) Close() error {
	if k == nil || k.f == nil {
		return nil
	}
	err := k.f.Close()
	k.f = nil
	return err
}

// Open opens the kit at p and verifies it whole before anything else can
// use it: its layout, then its signature against trust (before its
// manifest's or configuration's content is used), its configuration, then
// every byte against the manifest's checksums and every image archive's
// names against the manifest's. It reads nothing but the file.
func Open(ctx context.Context, p string, trust Trust, progress Progress) (*Kit, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	k := &Kit{path: p, f: f}
	if err := k.check(trust); err != nil {
		f.Close()
		return nil, err
	}
	if err := k.verifyFiles(ctx, progress); err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}

// Verify opens the kit at p (see Open) and closes it.
func Verify(ctx context.Context, p string, trust Trust, progress Progress) (*Kit, error) {
	k, err := Open(ctx, p, trust, progress)
	if err != nil {
		return nil, err
	}
	return k, k.Close()
}

// ReadManifest reads a kit's manifest, checking its layout but not its
// signature or checksums (Open does): enough to offer its images.
func ReadManifest(p string) (Manifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return Manifest{}, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	k := &Kit{path: p, f: f}
	s, err := k.readSmall()
	if err != nil {
		return Manifest{}, err
	}
	if err := k.decode(s.seen); err != nil {
		return Manifest{}, err
	}
	return k.m, nil
}

// small is what a kit holds besides its images, and every name it holds.
type small struct {
	sig, pub, sums, config []byte
	seen                   map[string]bool
}

// readSmall reads the kit's layout, its manifest's bytes and its small
// files, skipping the images' bytes.
func (k *Kit) readSmall() (small, error) {
	s := small{seen: map[string]bool{}}
	err := k.walk(k.f, func(h *tar.Header, r io.Reader) error {
		s.seen[h.Name] = true
		var err error
		switch h.Name {
		case SignatureFile:
			s.sig, err = readAtMost(r, h.Name, maxSmall)
		case SignerFile:
			s.pub, err = readAtMost(r, h.Name, maxSmall)
		case SumsFile:
			s.sums, err = readAtMost(r, h.Name, maxManifest)
		case ConfigFile:
			s.config, err = readAtMost(r, h.Name, maxConfig)
		}
		if err != nil {
			return &DamagedError{Kit: k.path, Problem: err.Error()}
		}
		return nil
	})
	return s, err
}

// decode decodes the manifest and checks the kit holds what it lists.
func (k *Kit) decode(seen map[string]bool) error {
	m, err := decodeManifest(k.path, k.manifest)
	if err != nil {
		return err
	}
	k.m = m
	return k.checkLayout(seen)
}

// check reads the kit's layout, then checks its signature, then decodes
// its manifest, then its trust, then its configuration: no content of a
// kit is used before its signature is checked.
func (k *Kit) check(trust Trust) error {
	s, err := k.readSmall()
	if err != nil {
		return err
	}
	signer, err := checkSignature(k.path, k.manifest, s.sig, s.pub)
	if err != nil {
		return err
	}
	if err := k.decode(s.seen); err != nil {
		return err
	}
	if (signer == "" && !trust.AllowUnsigned) || (signer != "" && !trust.trusts(signer)) {
		return &UntrustedError{Kit: k.path, Signer: signer, Trusted: len(trust.Fingerprints) > 0, Effects: effects(k.m, s.config)}
	}
	k.signer = signer
	if k.m.Config != nil {
		if err := checkFile(k.path, ConfigFile, s.config, k.m.Config.Size, k.m.Config.SHA256); err != nil {
			return err
		}
		if _, err := checkConfig(k.path, s.config); err != nil {
			return err
		}
		k.config = s.config
	}
	if !bytes.Equal(s.sums, []byte(sumsFile(k.m))) {
		return &ChecksumError{Kit: k.path, File: SumsFile, Detail: "it is not the list of the manifest's checksums"}
	}
	return nil
}

func checkFile(kitPath, name string, b []byte, size int64, sum string) error {
	switch {
	case int64(len(b)) != size:
		return &ChecksumError{Kit: kitPath, File: name, Detail: fmt.Sprintf("%d bytes, the manifest says %d", len(b), size)}
	case sha(b) != sum:
		return &ChecksumError{Kit: kitPath, File: name}
	}
	return nil
}

// checkLayout refuses a kit whose entries are not exactly the manifest's:
// each image and the configuration it lists, SHA256SUMS, and the
// signature with its key or neither.
func (k *Kit) checkLayout(seen map[string]bool) error {
	want := k.layout()
	for name := range seen {
		if !listed(want, name) {
			return &TamperedError{Kit: k.path, Problem: fmt.Sprintf("it holds %s, which its manifest does not list", name)}
		}
	}
	for name, required := range want {
		if required && !seen[name] {
			return &DamagedError{Kit: k.path, Problem: name + " is missing"}
		}
	}
	return nil
}

// layout is every name a kit with this manifest may hold, true for those
// it must.
func (k *Kit) layout() map[string]bool {
	want := map[string]bool{SumsFile: true, SignatureFile: false, SignerFile: false}
	if k.m.Config != nil {
		want[k.m.Config.Name] = true
	}
	for _, i := range k.m.Images {
		want[i.File] = true
	}
	return want
}

// walk reads the kit's tar from its start and calls visit for each entry
// after the manifest, refusing what kit create never writes: a first entry
// other than manifest.json, a name twice (one copy checked, another
// loaded), an absolute or .. name, a link, a directory or any other
// non-file, and, once the manifest is known, a name it does not list. A
// manifest that differs from the one read first means the file changed.
func (k *Kit) walk(r io.Reader, visit func(h *tar.Header, r io.Reader) error) error {
	if _, err := k.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("kit: %w", err)
	}
	var allowed map[string]bool
	if k.m.APIVersion != "" {
		allowed = k.layout()
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for first := true; ; first = false {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if first {
				return &DamagedError{Kit: k.path, Problem: "it is empty (is it a file made by `apimdev kit create`?)"}
			}
			return nil
		}
		if err != nil {
			return &DamagedError{Kit: k.path, Problem: "it is not a readable tar (cut short?): " + err.Error()}
		}
		if err := k.entryOK(h, seen, allowed); err != nil {
			return err
		}
		if first {
			if err := k.readManifest(h, tr); err != nil {
				return err
			}
			continue
		}
		if err := visit(h, tr); err != nil {
			return err
		}
	}
}

func (k *Kit) entryOK(h *tar.Header, seen, allowed map[string]bool) error {
	name := h.Name
	tampered := func(problem string) error { return &TamperedError{Kit: k.path, Problem: problem} }
	switch {
	case !localName(name):
		return tampered(fmt.Sprintf("it holds an entry named %q, outside the kit", name))
	case h.Typeflag != tar.TypeReg:
		return tampered(fmt.Sprintf("its entry %s is not a plain file (a link, a directory or a device)", name))
	case seen[name]:
		return tampered(fmt.Sprintf("it holds %s twice (one copy would be checked and another loaded)", name))
	case len(seen) == 0 && name != ManifestFile:
		return &DamagedError{Kit: k.path, Problem: "its first file is " + name + ", not " + ManifestFile + " (is it a file made by `apimdev kit create`?)"}
	case allowed != nil && name != ManifestFile && !listed(allowed, name):
		return tampered(fmt.Sprintf("it holds %s, which its manifest does not list", name))
	}
	seen[name] = true
	return nil
}

func listed(layout map[string]bool, name string) bool {
	_, ok := layout[name]
	return ok
}

// localName says a tar entry's name stays inside the kit: relative, clean,
// no .. and no backslash or drive.
func localName(name string) bool {
	return name != "" && !strings.ContainsAny(name, `\:`) && path.Clean(name) == name && filepath.IsLocal(name) && !strings.HasPrefix(name, "/")
}

func (k *Kit) readManifest(h *tar.Header, r io.Reader) error {
	b, err := readAtMost(r, h.Name, maxManifest)
	if err != nil {
		return &DamagedError{Kit: k.path, Problem: err.Error()}
	}
	if k.manifest != nil && !bytes.Equal(b, k.manifest) {
		return &DamagedError{Kit: k.path, Problem: "its " + ManifestFile + " changed while it was being read"}
	}
	k.manifest = b
	return nil
}

func readAtMost(r io.Reader, name string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s is cut short: %v", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than a kit's ever is", name)
	}
	return b, nil
}

func decodeManifest(p string, b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, &DamagedError{Kit: p, Problem: "its " + ManifestFile + " does not decode: " + err.Error()}
	}
	if m.APIVersion != APIVersion || m.Kind != Kind {
		return Manifest{}, &DamagedError{Kit: p, Problem: fmt.Sprintf("its manifest is %s/%s, want %s/%s", m.APIVersion, m.Kind, APIVersion, Kind)}
	}
	if len(m.Images) == 0 {
		return Manifest{}, &DamagedError{Kit: p, Problem: "its manifest lists no images"}
	}
	roles := map[string]bool{}
	for _, i := range m.Images {
		known := i.Role == RoleNode || i.Role == RoleGateway || i.Role == RoleStatsd || i.Role == RoleDemo
		if !known || roles[i.Role] || i.Ref == "" || strings.ContainsAny(i.Ref, " \t\n") || i.ID == "" || len(i.SHA256) != 64 || i.File != "images/"+i.Role+".tar" {
			return Manifest{}, &DamagedError{Kit: p, Problem: fmt.Sprintf("its manifest entry for the %q image is incomplete or not a kit's", i.Role)}
		}
		roles[i.Role] = true
	}
	if m.Config != nil && (m.Config.Name != ConfigFile || len(m.Config.SHA256) != 64) {
		return Manifest{}, &DamagedError{Kit: p, Problem: "its manifest entry for the configuration is not a kit's"}
	}
	return m, nil
}

// verifyFiles reads every byte of the kit: each image against its size and
// SHA-256, and the names each image archive gives against the manifest's.
func (k *Kit) verifyFiles(ctx context.Context, progress Progress) error {
	fi, err := k.f.Stat()
	if err != nil {
		return fmt.Errorf("kit: %w", err)
	}
	images := map[string]Image{}
	for _, i := range k.m.Images {
		images[i.File] = i
	}
	mt := newMeter("verifying checksums of "+filepath.Base(k.path), fi.Size(), progress)
	var errs []error
	err = k.walk(io.TeeReader(k.f, mt), func(h *tar.Header, r io.Reader) error {
		img, ok := images[h.Name]
		if !ok {
			_, err := io.Copy(io.Discard, ctxReader{ctx, r})
			return err
		}
		delete(images, h.Name)
		errs = append(errs, k.verifyImage(ctx, img, r))
		return ctx.Err()
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	mt.finish()
	for name := range images {
		errs = append(errs, &DamagedError{Kit: k.path, Problem: name + " went missing while it was being read"})
	}
	return errors.Join(errs...)
}

// verifyImage checks one image archive's bytes and the names it gives.
func (k *Kit) verifyImage(ctx context.Context, img Image, r io.Reader) error {
	cr := &countingHash{h: sha256.New()}
	names, nerr := archiveNames(io.TeeReader(ctxReader{ctx, r}, cr))
	if _, err := io.Copy(cr, ctxReader{ctx, r}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &DamagedError{Kit: k.path, Problem: fmt.Sprintf("%s is cut short: %v", img.File, err)}
	}
	switch {
	case cr.n != img.Size:
		return &ChecksumError{Kit: k.path, File: img.File, Detail: fmt.Sprintf("%d bytes, the manifest says %d", cr.n, img.Size)}
	case hex.EncodeToString(cr.h.Sum(nil)) != img.SHA256:
		return &ChecksumError{Kit: k.path, File: img.File}
	case nerr != nil:
		return &TamperedError{Kit: k.path, Problem: fmt.Sprintf("%s is not an image archive: %v", img.File, nerr)}
	}
	return checkNames(k.path, img, names)
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// archName is an image name an archive gives, and where.
type archName struct {
	name, where string
	tagOnly     bool // an OCI ref.name annotation that is a bare tag
}

// is says the name is ref.
func (n archName) is(ref string) bool {
	want := normalizeRef(ref)
	return normalizeRef(n.name) == want || (n.tagOnly && n.name == tagOf(want))
}

// archiveNames returns every image name an image archive gives, as docker
// load and Podman's read them: manifest.json's RepoTags, the legacy
// repositories file, and the name annotations of an OCI index.json. Every
// copy of these files counts, whichever one a loader would take.
func archiveNames(r io.Reader) ([]archName, error) {
	tr := tar.NewReader(r)
	var names []archName
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name != "manifest.json" && name != "repositories" && name != "index.json" {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("its %s is not a plain file", name)
		}
		b, err := readAtMost(tr, name, 4<<20)
		if err != nil {
			return nil, err
		}
		found, err := namesIn(name, b)
		if err != nil {
			return nil, fmt.Errorf("its %s does not decode: %v", name, err)
		}
		names = append(names, found...)
	}
}

func namesIn(file string, b []byte) ([]archName, error) {
	var out []archName
	switch file {
	case "manifest.json":
		var m []struct{ RepoTags []string }
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for _, e := range m {
			for _, t := range e.RepoTags {
				out = append(out, archName{name: t, where: "manifest.json RepoTags"})
			}
		}
	case "repositories":
		var m map[string]map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for repo, tags := range m {
			for tag := range tags {
				out = append(out, archName{name: repo + ":" + tag, where: "repositories"})
			}
		}
	case "index.json":
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, err
		}
		for _, e := range idx.Manifests {
			if v, ok := e.Annotations["io.containerd.image.name"]; ok {
				out = append(out, archName{name: v, where: "index.json io.containerd.image.name"})
			}
			if v, ok := e.Annotations["org.opencontainers.image.ref.name"]; ok {
				out = append(out, archName{name: v, where: "index.json org.opencontainers.image.ref.name", tagOnly: !strings.ContainsAny(v, "/:")})
			}
		}
	}
	return out, nil
}

// checkNames refuses an image archive that names anything but the
// manifest's ref for it: loading it would move a tag the kit did not bring.
func checkNames(kitPath string, img Image, names []archName) error {
	if len(names) == 0 {
		return &TamperedError{Kit: kitPath, Problem: fmt.Sprintf("%s names no image, but the manifest says it is %s", img.File, img.Ref)}
	}
	for _, n := range names {
		if !n.is(img.Ref) {
			return &TamperedError{Kit: kitPath, Problem: fmt.Sprintf("%s names %s (in its %s), but the manifest says it is %s: loading it would put a name on an image the kit does not declare", img.File, n.name, n.where, img.Ref)}
		}
	}
	return nil
}

// normalizeRef is a reference as the engine reads it: docker.io/ before a
// name with no registry, library/ before an official image's, :latest
// when no tag is given.
func normalizeRef(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(domain, ".:") && domain != "localhost") {
		domain, rest = "docker.io", name
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	out := domain + "/" + rest
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	if tag != "" {
		out += ":" + tag
	}
	if hasDigest {
		out += "@" + digest
	}
	return out
}

// tagOf is a normalized reference's tag.
func tagOf(normalized string) string {
	name, _, _ := strings.Cut(normalized, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return ""
}

// DamagedError says a kit cannot be used.
type DamagedError struct{ Kit, Problem string }

func (e *DamagedError) Error() string { return fmt.Sprintf("kit %s: %s", e.Kit, e.Problem) }

// Hint says what to do.
func (e *DamagedError) Hint() string {
	return "nothing was loaded; copy the kit again (a copy cut short is the usual cause) or make a new one with `apimdev kit create`"
}

// TamperedError says a kit holds what `apimdev kit create` never writes.
type TamperedError struct{ Kit, Problem string }

func (e *TamperedError) Error() string { return fmt.Sprintf("kit %s: %s", e.Kit, e.Problem) }

// Hint says what to do.
func (e *TamperedError) Hint() string {
	return "nothing was loaded; `apimdev kit create` never makes such a kit, so it was changed after: get it again from the instructor, signed, and load it with --trust"
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
	return "nothing was loaded into Docker; the kit is damaged or was changed: copy it again from the instructor or rebuild it with `apimdev kit create`"
}
