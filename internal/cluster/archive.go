package cluster

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// NameArchive streams a saved image archive (docker-archive: one image)
// with its manifest naming the image ref, as it was asked for. Podman names
// an image it loaded or built without a registry localhost/<name> and saves
// it so; containerd in the node would then hold localhost/<name>, which a
// pod asking for <name> (docker.io/<name> to Kubernetes) never finds. A
// Docker archive saved by ref already names it so and passes unchanged.
// A digest ref is no name: the archive passes as it is. Closing the result
// closes archive and waits for the copy to stop.
func NameArchive(archive io.ReadCloser, ref string) io.ReadCloser {
	if strings.Contains(ref, "@") {
		return archive
	}
	pr, pw := io.Pipe()
	n := &named{PipeReader: pr, src: archive, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		pw.CloseWithError(renameArchive(archive, pw, ref))
	}()
	return n
}

// named is NameArchive's reader: its copy is joined on Close.
type named struct {
	*io.PipeReader
	src  io.Closer
	done chan struct{}
}

func (n *named) Close() error {
	_ = n.PipeReader.Close()
	err := n.src.Close()
	<-n.done
	return err
}

func renameArchive(in io.Reader, out io.Writer, ref string) error {
	tr := tar.NewReader(in)
	tw := tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the image archive: %w", err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if b, err = renameManifest(b, ref); err != nil {
				return err
			}
			h.Size = int64(len(b))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
			continue
		case "repositories":
			// The legacy name index: containerd reads manifest.json; a stale
			// name here would only confuse. Dropped.
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// renameManifest gives the archive's one image the name ref.
func renameManifest(b []byte, ref string) ([]byte, error) {
	var m []map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("the image archive's manifest.json: %w", err)
	}
	if len(m) != 1 {
		return b, nil // several images: not what apimdev saves; left as they are
	}
	tags, err := json.Marshal([]string{ref})
	if err != nil {
		return nil, err
	}
	m[0]["RepoTags"] = tags
	return json.Marshal(m)
}
