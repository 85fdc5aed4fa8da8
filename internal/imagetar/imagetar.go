package imagetar

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Created is every image's creation time, so the same binary always makes
// the same image (and image ID).
var Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrDynamic says a Linux program needs a dynamic loader, which an image
// FROM scratch does not have.
var ErrDynamic = errors.New("a dynamically linked program, which cannot start in an image FROM scratch (no libc): build it with CGO_ENABLED=0")

// Arch is the Go architecture of a static Linux ELF binary (amd64, arm64).
// A dynamically linked program is ErrDynamic.
func Arch(binary []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return "", fmt.Errorf("not a Linux program: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", ErrDynamic
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("a Linux program for %s, not amd64 or arm64", f.Machine)
}

// Image is one program as an image.
type Image struct {
	Arch   string // Go architecture, from Arch
	Name   string // the program's file name at the image's root
	Binary []byte
	// Config is the image config's "config" object (User, Entrypoint,
	// ExposedPorts, Labels...), written as encoding/json writes a map.
	Config    map[string]any
	CreatedBy string // the history entry
	Ref       string // the tag `docker load` gives it
}

// Write writes img as a `docker load` archive.
func Write(w io.Writer, img Image) error {
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	if err := lt.WriteHeader(&tar.Header{Name: img.Name, Mode: 0o755, Size: int64(len(img.Binary)), ModTime: Created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := lt.Write(img.Binary); err != nil {
		return err
	}
	if err := lt.Close(); err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerID := hex.EncodeToString(layerSum[:])
	cfg := map[string]any{
		"architecture": img.Arch,
		"os":           "linux",
		"created":      Created.Format(time.RFC3339),
		"config":       img.Config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerID}},
		"history":      []map[string]string{{"created": Created.Format(time.RFC3339), "created_by": img.CreatedBy}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgSum := sha256.Sum256(cb)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	mb, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{img.Ref}, "Layers": []string{layerID + "/layer.tar"}}})
	if err != nil {
		return err
	}
	out := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{layerID + "/layer.tar", layer.Bytes()}, {cfgName, cb}, {"manifest.json", mb}} {
		if err := out.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := out.Write(f.data); err != nil {
			return err
		}
	}
	return out.Close()
}
