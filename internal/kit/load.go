package kit

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/apimdev/apimdev/internal/events"
)

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
