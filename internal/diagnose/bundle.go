package diagnose

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"
)

// bundle is a tar.gz being written to a private temporary file; commit
// renames it into place, so a half-written bundle never has the final name.
type bundle struct {
	f      *os.File
	gz     *gzip.Writer
	tw     *tar.Writer
	root   string // top directory inside the archive
	redact *Redactor
	now    time.Time
	files  int
	bytes  int64
}

func newBundle(dest, root string, r *Redactor, now time.Time) (*bundle, error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, ".apimdev-doctor-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating the bundle in %s: %w", dir, err)
	}
	// CreateTemp makes 0600 files already; say it, in case that ever changes.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	gz := gzip.NewWriter(f)
	return &bundle{f: f, gz: gz, tw: tar.NewWriter(gz), root: root, redact: r, now: now}, nil
}

// add writes one file, scrubbed, readable by its owner only.
func (b *bundle) add(name string, data []byte) error {
	data = b.redact.Scrub(data)
	h := &tar.Header{Name: path.Join(b.root, name), Mode: 0o600, Size: int64(len(data)), ModTime: b.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := b.tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := b.tw.Write(data); err != nil {
		return err
	}
	b.files++
	b.bytes += int64(len(data))
	return nil
}

func (b *bundle) commit(dest string) error {
	errTar := b.tw.Close()
	errGz := b.gz.Close()
	errF := b.f.Close()
	if err := firstErr(errTar, errGz, errF); err != nil {
		os.Remove(b.f.Name())
		return fmt.Errorf("writing the bundle: %w", err)
	}
	if err := os.Rename(b.f.Name(), dest); err != nil {
		os.Remove(b.f.Name())
		return err
	}
	return nil
}

func (b *bundle) abort() {
	b.f.Close()
	os.Remove(b.f.Name())
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
