package imagetar

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func elfHeader(m uint16, interp bool) []byte {
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(h[16:], 2)
	binary.LittleEndian.PutUint16(h[18:], m)
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64)
	if interp {
		binary.LittleEndian.PutUint64(h[32:], 64) // e_phoff
		binary.LittleEndian.PutUint16(h[54:], 56) // e_phentsize
		binary.LittleEndian.PutUint16(h[56:], 1)  // e_phnum
		ph := make([]byte, 56)
		binary.LittleEndian.PutUint32(ph, 3) // PT_INTERP
		h = append(h, ph...)
	}
	return h
}

func TestArch(t *testing.T) {
	if a, err := Arch(elfHeader(62, false)); err != nil || a != "amd64" {
		t.Fatalf("x86-64: %q %v", a, err)
	}
	if a, err := Arch(elfHeader(183, false)); err != nil || a != "arm64" {
		t.Fatalf("aarch64: %q %v", a, err)
	}
	if _, err := Arch(elfHeader(62, true)); !errors.Is(err, ErrDynamic) {
		t.Fatalf("dynamic program: %v", err)
	}
	if _, err := Arch([]byte("MZ")); err == nil {
		t.Fatal("a Windows program passed as Linux")
	}
}

func TestWriteIsReproducible(t *testing.T) {
	img := Image{Arch: "amd64", Name: "prog", Binary: []byte("code"), Config: map[string]any{"User": "1001"}, CreatedBy: "test", Ref: "x:1"}
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, img); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two writes differ (%v)", err)
	}
	var names []string
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) != 3 || names[2] != "manifest.json" {
		t.Fatalf("archive holds %v", names)
	}
}
