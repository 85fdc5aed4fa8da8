package relay

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestWriteImageRunsTheRelay(t *testing.T) {
	bin := make([]byte, 64) // the smallest x86-64 Linux program header debug/elf reads
	copy(bin, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(bin[16:], 2)
	binary.LittleEndian.PutUint16(bin[18:], 62)
	binary.LittleEndian.PutUint32(bin[20:], 1)
	binary.LittleEndian.PutUint16(bin[52:], 64)
	var a, b bytes.Buffer
	if err := WriteImage(&a, bin, "apimdev-relay:test"); err != nil {
		t.Fatal(err)
	}
	if err := WriteImage(&b, bin, "apimdev-relay:test"); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
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
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || manifest[0].RepoTags[0] != "apimdev-relay:test" {
		t.Fatalf("manifest %s: %v", files["manifest.json"], err)
	}
	var cfg struct {
		Architecture string
		Config       struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.Config.User != "1001" || !slices.Equal(cfg.Config.Entrypoint, []string{"/apimdev", "relay"}) ||
		!strings.Contains(cfg.Config.Labels["org.opencontainers.image.title"], "apimdev relay") {
		t.Fatalf("config %+v", cfg)
	}
	if err := WriteImage(io.Discard, []byte("MZ"), "x"); err == nil {
		t.Fatal("a program that is not Linux's made an image")
	}
}
