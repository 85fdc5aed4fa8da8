#!/usr/bin/env bash
# ensure-wine.sh — a Wine prefix that runs apimdev's Windows programs (tests and
# the binary) on this Debian machine. Prints the prefix's directory.
#
# Debian 12's Wine 8.0 lacks bcryptprimitives.dll, where Go 1.24 and later take
# random bytes from at start (ProcessPrng), so a Go program for Windows dies
# before main under it. scripts/ci/wine/bcryptprimitives.c provides ProcessPrng
# on top of Wine's RtlGenRandom; it is built here with mingw-w64 into the
# prefix's system32 (test infrastructure only: apimdev never ships it).
#
# The packages are pinned to Debian 12's versions; the prefix lives under
# ${APIMDEV_WINE_PREFIX:-$HOME/.cache/apimdev-wine} and is made once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
readonly wine_version=8.0~repack-4
readonly mingw_version=12.2.0-14+deb12u1+25.2+b1
prefix=${APIMDEV_WINE_PREFIX:-$HOME/.cache/apimdev-wine}
log() { printf '[ensure-wine] %s\n' "$*" >&2; }

if [[ ! -x /usr/lib/wine/wine64 ]] || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  [[ $(id -u) == 0 ]] || { log "installing wine64 and mingw-w64 needs root"; exit 1; }
  log "installing wine64 $wine_version and gcc-mingw-w64-x86-64-win32 $mingw_version"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "wine64=$wine_version" "libwine=$wine_version" "gcc-mingw-w64-x86-64-win32=$mingw_version" >&2
fi
dll=$prefix/drive_c/windows/system32/bcryptprimitives.dll
sum=$(sha256sum wine/bcryptprimitives.c | cut -c1-16)
if [[ ! -f $prefix/.apimdev-$sum ]]; then
  export WINEPREFIX=$prefix WINEDEBUG=-all
  if [[ ! -d $prefix/drive_c/windows/system32 ]]; then
    log "making the Wine prefix $prefix"
    /usr/lib/wine/wine64 wineboot -i >/dev/null 2>&1 || true
    /usr/lib/wine/wineserver -w || true
  fi
  log "building bcryptprimitives.dll (ProcessPrng for Go) into the prefix"
  x86_64-w64-mingw32-gcc -O2 -shared -o "$dll" wine/bcryptprimitives.c -ladvapi32 -Wl,--kill-at
  rm -f "$prefix"/.apimdev-*
  touch "$prefix/.apimdev-$sum"
fi
echo "$prefix"
