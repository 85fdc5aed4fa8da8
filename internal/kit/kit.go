package kit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// APIVersion and Kind identify a kit's manifest.
const (
	APIVersion = "apimdev.io/v1alpha1"
	Kind       = "Kit"
)

// Files of a kit besides its images (and, signed, SignatureFile and
// SignerFile).
const (
	ManifestFile = "manifest.json"
	ConfigFile   = "apimdev.yaml"
	SumsFile     = "SHA256SUMS" // for `sha256sum -c` after `tar xf`
)

// Roles an image plays.
const (
	RoleNode    = "node"
	RoleGateway = "gateway"
	RoleStatsd  = "statsd"
	RoleDemo    = "demo" // the stand-in gateway: not Azure API Management
)

// Image is one saved image in the kit.
type Image struct {
	Role   string `json:"role"`
	Ref    string `json:"ref"`
	ID     string `json:"id"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File is a kit file that is not an image.
type File struct {
	Name   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a kit: manifest.json, the first file in the tar.
type Manifest struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Created    time.Time `json:"created"`
	Apimdev    string    `json:"apimdevVersion"`
	Images     []Image   `json:"images"`
	Config     *File     `json:"config,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Image returns the image that plays role.
func (m Manifest) Image(role string) (Image, bool) {
	for _, i := range m.Images {
		if i.Role == role {
			return i, true
		}
	}
	return Image{}, false
}

// Size is the sum of the kit's image sizes.
func (m Manifest) Size() int64 {
	var n int64
	for _, i := range m.Images {
		n += i.Size
	}
	return n
}

// Docker is the part of the Docker Engine API a kit needs.
type Docker interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	// ImageTag puts a name back on the image it named before a failed load.
	ImageTag(ctx context.Context, source, target string) error
}

var _ Docker = (*client.Client)(nil)

// Progress receives progress lines ("saving … 40% …").
type Progress func(format string, args ...any)

func sumsFile(m Manifest) string {
	var b strings.Builder
	if m.Config != nil {
		fmt.Fprintf(&b, "%s  %s\n", m.Config.SHA256, m.Config.Name)
	}
	for _, i := range m.Images {
		fmt.Fprintf(&b, "%s  %s\n", i.SHA256, i.File)
	}
	return b.String()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
