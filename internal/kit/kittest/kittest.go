// Package kittest reads a kit archive's entries and writes them back
// changed, for the tests of the kit package and of the commands that load
// kits: a byte flipped, an entry added twice, a file swapped.
package kittest

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// Entry is one entry of a kit: its header and its bytes.
type Entry struct {
	Header tar.Header
	Data   []byte
}

// Entries reads every entry of the tar at path, in order.
func Entries(t testing.TB, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{*h, b})
	}
}

// Data is the bytes of the entry called name.
func Data(t testing.TB, path, name string) []byte {
	t.Helper()
	for _, e := range Entries(t, path) {
		if e.Header.Name == name {
			return e.Data
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return nil
}

// Names is the entries' names, in order.
func Names(t testing.TB, path string) []string {
	t.Helper()
	var out []string
	for _, e := range Entries(t, path) {
		out = append(out, e.Header.Name)
	}
	return out
}

// Write writes es as a tar at path; a regular entry's size is its data's.
func Write(t testing.TB, path string, es []Entry) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := e.Header
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Size = 0
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Flip writes to dst the kit at src with one byte of entry name changed:
// the byte two after marker when marker is in it (inside a JSON value, so
// the manifest still decodes), else the middle one.
func Flip(t testing.TB, src, dst, name, marker string) {
	t.Helper()
	es := Entries(t, src)
	for i := range es {
		if es[i].Header.Name != name {
			continue
		}
		at := len(es[i].Data) / 2
		if j := bytes.Index(es[i].Data, []byte(marker)); marker != "" && j >= 0 {
			at = j + 2
		}
		es[i].Data[at] ^= 0x01
		Write(t, dst, es)
		return
	}
	t.Fatalf("no %s in %s", name, src)
}
