// Package imagetar writes a one-program container image, FROM scratch, as
// the archive `docker load` (and `podman load`) reads: one layer holding a
// static Linux binary, a config and a manifest, all with fixed times so the
// same binary always makes the same bytes and the same image ID. Nothing is
// pulled. The demo's stand-in image and the relay's image are made here.
//
// It imports nothing from the rest of apimdev.
package imagetar
