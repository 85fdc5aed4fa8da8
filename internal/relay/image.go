package relay

import (
	"errors"
	"io"
	"strconv"

	"github.com/apimdev/apimdev/internal/imagetar"
)

// WriteImage packs apimdev's own static Linux binary into the relay's image
// (FROM scratch, /apimdev, entrypoint `/apimdev relay`, user 1001, port
// ControlPort, labelled "apimdev relay") and writes it as the archive
// `docker load` reads, tagged ref. Nothing is pulled.
func WriteImage(w io.Writer, binary []byte, ref string) error {
	arch, err := imagetar.Arch(binary)
	if errors.Is(err, imagetar.ErrDynamic) {
		return errors.New("apimdev's Linux program is dynamically linked and cannot start in the relay's image (FROM scratch, no libc): build it static, CGO_ENABLED=0 go build")
	}
	if err != nil {
		return err
	}
	return imagetar.Write(w, imagetar.Image{
		Arch:   arch,
		Name:   "apimdev",
		Binary: binary,
		Config: map[string]any{
			"User":         "1001",
			"Entrypoint":   []string{"/apimdev", "relay"},
			"ExposedPorts": map[string]any{strconv.Itoa(ControlPort) + "/tcp": map[string]any{}},
			"Labels": map[string]string{
				"org.opencontainers.image.title":       "apimdev relay",
				"org.opencontainers.image.description": "apimdev relay: the in-cluster end of the tunnel to a backend on the developer's machine.",
			},
		},
		CreatedBy: "apimdev: the relay",
		Ref:       ref,
	})
}
