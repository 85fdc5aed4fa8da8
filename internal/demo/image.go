package demo

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

// BinaryName is the stand-in gateway's program, as the release archives
// carry it next to apimdev (a Linux binary for the engine's architecture).
const BinaryName = "standin-gateway"

// imageTime is every image's creation time, so the same binary always makes
// the same image (and image ID).
var imageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Arch is the Go architecture of a Linux ELF binary (amd64, arm64).
func Arch(binary []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return "", fmt.Errorf("not a Linux program: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			// The image is FROM scratch: no dynamic loader, no libc.
			return "", errors.New("a dynamically linked program, which cannot start in the demo's image (FROM scratch, no libc): build it static, `CGO_ENABLED=0 go build ./test/standin-gateway` (`make demo-image` does)")
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

// WriteImage packs the stand-in gateway's Linux binary into an image as
// its Dockerfile does (FROM scratch, /standin-gateway, user 1001, the
// gateway's ports, labelled a stand-in) and writes it as the archive
// `docker load` reads, tagged ref. Nothing is pulled.
func WriteImage(w io.Writer, binary []byte, ref string) error {
	arch, err := Arch(binary)
	if err != nil {
		return err
	}
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	if err := lt.WriteHeader(&tar.Header{Name: BinaryName, Mode: 0o755, Size: int64(len(binary)), ModTime: imageTime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := lt.Write(binary); err != nil {
		return err
	}
	if err := lt.Close(); err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerID := hex.EncodeToString(layerSum[:])
	cfg := map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      imageTime.Format(time.RFC3339),
		"config": map[string]any{
			"User":         "1001",
			"Entrypoint":   []string{"/" + BinaryName},
			"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}, "8081/tcp": map[string]any{}, "4290/udp": map[string]any{}, "4291/udp": map[string]any{}},
			"Labels": map[string]string{
				"org.opencontainers.image.title":       "apimdev stand-in gateway",
				"org.opencontainers.image.description": "Test stand-in for the Azure API Management self-hosted gateway. Not Azure API Management.",
				"org.opencontainers.image.version":     "2.11.1-standin",
			},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerID}},
		"history": []map[string]string{{"created": imageTime.Format(time.RFC3339), "created_by": "apimdev: the stand-in gateway (" + Label + ")"}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgSum := sha256.Sum256(cb)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	mb, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": []string{layerID + "/layer.tar"}}})
	if err != nil {
		return err
	}
	out := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{layerID + "/layer.tar", layer.Bytes()}, {cfgName, cb}, {"manifest.json", mb}} {
		if err := out.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: imageTime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := out.Write(f.data); err != nil {
			return err
		}
	}
	return out.Close()
}

// ErrNoBinary says no stand-in binary was found to make the image from.
var ErrNoBinary = errors.New("no " + BinaryName + " program next to apimdev")
