#!/usr/bin/env bash
# demo.sh — `make demo`, the README's first command: the demo gateway (apimdev's
# stand-in, not Azure API Management) with no Azure account, no token and no
# registry. It builds what it needs: apimdev (make build, before this), a Docker
# engine when none answers (asked first, Debian/Ubuntu), the stand-in image from
# this repository's code, and — only when kind's node image cannot be pulled and
# none was built here before — a kind node image (about 11 minutes, once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-./apimdev}
"$BIN" docker check
scripts/e2e/standin-image.sh >/dev/null
exec "$BIN" up --demo --detach --build-node-image "$@"
