#!/usr/bin/env bash
# demo.sh — `make demo`, the README's first command: the demo gateway (apimdev's
# stand-in, not Azure API Management) with no Azure account, no token and no
# registry. It builds what it needs: apimdev (make build, before this), a Docker
# engine when none answers (asked first, Debian/Ubuntu; on Podman, chosen by
# APIMDEV_RUNTIME=podman or the environment, none), the stand-in image
# from this repository's code, and — only when kind's node image cannot be pulled and
# none was built here before — a kind node image (about 11 minutes, once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-./apimdev}
runtime=$("$BIN" docker check)
if [ "$runtime" = podman ]; then
  # No Docker to build the image with: apimdev makes the demo's image through
  # Podman's API from the stand-in's program (static: the image is FROM scratch).
  mkdir -p bin
  CGO_ENABLED=0 GOOS=linux go build -trimpath -o bin/standin-gateway ./test/standin-gateway
  export APIMDEV_STANDIN_BINARY=$PWD/bin/standin-gateway
else
  scripts/e2e/standin-image.sh >/dev/null
fi
exec "$BIN" up --demo --detach --build-node-image "$@"
