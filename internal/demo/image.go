package demo

import (
	"errors"
	"io"

	"github.com/apimdev/apimdev/internal/imagetar"
)

// BinaryName is the stand-in gateway's program, as the release archives
// carry it next to apimdev (a Linux binary for the engine's architecture).
const BinaryName = "standin-gateway"

// Arch is the Go architecture of a Linux ELF binary (amd64, arm64).
func Arch(binary []byte) (string, error) {
	arch, err := imagetar.Arch(binary)
	if errors.Is(err, imagetar.ErrDynamic) {
		// The image is FROM scratch: no dynamic loader, no libc.
		return "", errors.New("a dynamically linked program, which cannot start in the demo's image (FROM scratch, no libc): build it static, `CGO_ENABLED=0 go build ./test/standin-gateway` (`make demo-image` does)")
	}
	return arch, err
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
	return imagetar.Write(w, imagetar.Image{
		Arch:   arch,
		Name:   BinaryName,
		Binary: binary,
		Config: map[string]any{
			"User":         "1001",
			"Entrypoint":   []string{"/" + BinaryName},
			"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}, "8081/tcp": map[string]any{}, "4290/udp": map[string]any{}, "4291/udp": map[string]any{}},
			"Labels": map[string]string{
				"org.opencontainers.image.title":       "apimdev stand-in gateway",
				"org.opencontainers.image.description": "Test stand-in for the Azure API Management self-hosted gateway. Not Azure API Management.",
				"org.opencontainers.image.version":     "2.11.1-standin",
			},
		},
		CreatedBy: "apimdev: the stand-in gateway (" + Label + ")",
		Ref:       ref,
	})
}

// ErrNoBinary says no stand-in binary was found to make the image from.
var ErrNoBinary = errors.New("no " + BinaryName + " program next to apimdev")
