package demo

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// elfHeader is the smallest Linux program header debug/elf reads: 64-bit,
// little-endian, for machine m, with no sections.
func elfHeader(m uint16) []byte {
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], m)
	binary.LittleEndian.PutUint32(h[20:], 1)  // EV_CURRENT
	binary.LittleEndian.PutUint16(h[52:], 64) // e_ehsize
	return append(h, []byte("the stand-in's code")...)
}

func TestWriteImageIsTheDockerfilesImage(t *testing.T) {
	t.Parallel()
	bin := elfHeader(62) // x86-64
	var a, b bytes.Buffer
	if err := WriteImage(&a, bin, DefaultImage); err != nil {
		t.Fatal(err)
	}
	if err := WriteImage(&b, bin, DefaultImage); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("the same program made two images (%v)", err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || manifest[0].RepoTags[0] != DefaultImage {
		t.Fatalf("manifest %s: %v", files["manifest.json"], err)
	}
	var cfg struct {
		Architecture, OS string
		Config           struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || cfg.Config.User != "1001" || cfg.Config.Entrypoint[0] != "/standin-gateway" ||
		!strings.Contains(cfg.Config.Labels["org.opencontainers.image.description"], "Not Azure API Management") {
		t.Fatalf("config %+v", cfg)
	}
	layer := tar.NewReader(bytes.NewReader(files[manifest[0].Layers[0]]))
	h, err := layer.Next()
	if err != nil || h.Name != BinaryName || h.Mode != 0o755 {
		t.Fatalf("layer: %+v %v", h, err)
	}
	if got, _ := io.ReadAll(layer); !bytes.Equal(got, bin) {
		t.Fatal("the layer does not hold the program")
	}
}

func TestArchOfTheProgram(t *testing.T) {
	t.Parallel()
	if a, err := Arch(elfHeader(183)); err != nil || a != "arm64" {
		t.Errorf("aarch64: %s %v", a, err)
	}
	if _, err := Arch([]byte("MZ a Windows program")); err == nil {
		t.Error("a Windows program taken for Linux")
	}
	if _, err := Arch(elfHeader(3)); err == nil {
		t.Error("i386 taken")
	}
}

// A dynamically linked program (cgo on, say) has a PT_INTERP header: it
// cannot start FROM scratch, and is refused with the way to build it.
func TestArchRefusesADynamicProgram(t *testing.T) {
	t.Parallel()
	h := make([]byte, 64+56)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 62) // x86-64
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint64(h[32:], 64) // e_phoff
	binary.LittleEndian.PutUint16(h[52:], 64) // e_ehsize
	binary.LittleEndian.PutUint16(h[54:], 56) // e_phentsize
	binary.LittleEndian.PutUint16(h[56:], 1)  // e_phnum
	binary.LittleEndian.PutUint32(h[64:], 3)  // p_type PT_INTERP
	if _, err := Arch(h); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("a dynamic program: %v", err)
	}
	binary.LittleEndian.PutUint32(h[64:], 1) // PT_LOAD: static
	if a, err := Arch(h); err != nil || a != "amd64" {
		t.Fatalf("a static program: %s %v", a, err)
	}
}
