#!/bin/sh
# exec.sh PROGRAM ARGS... — runs a Windows program under Wine in apimdev's
# prefix (scripts/ci/ensure-wine.sh); `go test -exec` uses it.
export WINEPREFIX="${APIMDEV_WINE_PREFIX:-$HOME/.cache/apimdev-wine}" WINEDEBUG=-all WINEDLLOVERRIDES="bcryptprimitives=n"
exec /usr/lib/wine/wine64 "$@"
