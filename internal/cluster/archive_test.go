package cluster

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// Podman's archive names localhost/<name>; the node must get <name>.
func TestNameArchiveRenamesPodmansLocalhostName(t *testing.T) {
	t.Parallel()
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	add := func(name string, body []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	layer := bytes.Repeat([]byte("layer"), 1000)
	add("abc/layer.tar", layer)
	add("abc.json", []byte(`{"architecture":"amd64"}`))
	add("manifest.json", []byte(`[{"Config":"abc.json","RepoTags":["localhost/apimdev-e2e/standin-gateway:2.11.1-standin"],"Layers":["abc/layer.tar"]}]`))
	add("repositories", []byte(`{"localhost/apimdev-e2e/standin-gateway":{"2.11.1-standin":"abc"}}`))
	tw.Close()

	rc := NameArchive(io.NopCloser(&in), "apimdev-e2e/standin-gateway:2.11.1-standin")
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name], _ = io.ReadAll(tr)
	}
	var m []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(got["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "apimdev-e2e/standin-gateway:2.11.1-standin" || m[0].Config != "abc.json" || len(m[0].Layers) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	if !bytes.Equal(got["abc/layer.tar"], layer) {
		t.Fatal("a layer changed")
	}
	if _, ok := got["repositories"]; ok {
		t.Fatal("the stale name index was kept")
	}
	// A broken archive is an error, not a short image.
	if _, err := io.ReadAll(NameArchive(io.NopCloser(bytes.NewReader([]byte("not a tar at all, but long enough to be read as a header block…"))), "x:y")); err == nil {
		t.Fatal("a broken archive passed")
	}
}
