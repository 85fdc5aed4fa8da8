#!/usr/bin/env bash
# cross.sh — apimdev for every laptop: go build for linux, darwin and windows on
# amd64 and arm64, and go vet of each different set of files among them; then
# the Windows unit tests and the Windows binary under Wine
# (scripts/ci/ensure-wine.sh). Prints a timing line per part (and appends it
# as "cross/<part> <seconds>" to $APIMDEV_CI_TIMINGS when set: .ci/run's
# summary).
#
# The compiler is paid once per set of files too: a target whose files are
# the same as a target built before it (today linux/arm64, darwin/amd64 and
# windows/arm64: no file of ours names an arch) is not compiled again; `go
# list -deps` checks that every package it needs, ours and the modules', has
# files for it (a dependency without that arch fails there). From an empty
# build cache each compile of apimdev for another target costs minutes on two
# cores (see docs/e2e.md); what this leaves unchecked is a dependency's
# arch-specific code that compiles for one arch and not the other, which
# `make release-snapshot` (all six, as released) finds.
#
# go vet is paid once per set of files, not per target: a target is vetted
# only when `go list` gives it files (its build constraints, _os/_arch
# suffixes, test files included) that no target vetted before it has.
# linux/amd64 is vetted by `make test` (make vet: go vet ./...). Today that
# leaves one vet per OS: darwin and windows; no file of ours names an arch.
# An arch-specific file added later gets its target vetted here by itself.
#
# Under Wine run every package of apimdev's own (./ and ./internal/..., and
# ./scripts). Not run there: test/standin-gateway/... (the stand-in gateway
# only ever runs in a Linux container; its UDP sockets fail under Wine with
# winapi error 10045), scripts/bench (a Linux benchmark of the e2e rig) and
# scripts/ci/runc-capdrop's tests (a Linux runc wrapper); test/e2e needs Docker.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
GO=${GO:-go}
t() {
  local name=$1 s=$SECONDS; shift
  "$@"
  printf 'cross: %-28s %4ds\n' "$name" $((SECONDS - s)) >&2
  if [ -n "${APIMDEV_CI_TIMINGS:-}" ]; then printf 'cross/%s %d\n' "${name// /-}" $((SECONDS - s)) >>"$APIMDEV_CI_TIMINGS"; fi
}

# darwin/arm64 before darwin/amd64: the Mac most laptops are is the one vetted.
targets="linux/amd64 linux/arm64 darwin/arm64 darwin/amd64 windows/amd64 windows/arm64"
out=$(mktemp -d)
# The Wine prefix is made meanwhile: on a new machine that is mostly apt
# downloading and unpacking wine64 and mingw-w64, little CPU beside the builds.
# A failure before the Wine part still waits for it (never an apt cut short).
wine_log=$(mktemp)
scripts/ci/ensure-wine.sh >"$wine_log" 2>&1 &
wine_pid=$!
trap 'wait "$wine_pid" 2>/dev/null; rm -rf "$out" "$wine_log"' EXIT
wine_ready() { wait "$wine_pid" || { cat "$wine_log" >&2; return 1; }; }
# files TARGET — the target's packages and their files: what vet would read.
# The stand-in gateway (test/standin-gateway, with its OpenTelemetry and gRPC
# dependencies) only ever runs in Linux containers: vetted for Linux only (by
# make test), which spares compiling gRPC for more targets.
files() {
  GOOS=${1%/*} GOARCH=${1#*/} CGO_ENABLED=0 "$GO" list -f '{{.ImportPath}} {{.GoFiles}} {{.TestGoFiles}} {{.XTestGoFiles}}' ./... |
    grep -v '/test/standin-gateway'
}
# deps_resolve TARGET PKG... — every package PKG needs, ours and the
# modules', has files for TARGET (no compile).
deps_resolve() {
  local errs
  errs=$(GOOS=${1%/*} GOARCH=${1#*/} CGO_ENABLED=0 "$GO" list -e -deps -f '{{if .Error}}{{.ImportPath}}: {{.Error}}{{"\n"}}{{end}}' "${@:2}") || return 1
  [ -z "$errs" ] || { echo "cross: $1: $errs" >&2; return 1; }
}
vetted_by_make_test=linux/amd64
declare -A vetted # file list -> the target that vetted it
declare -A built  # file list -> the target built for it
vetted["$(files $vetted_by_make_test)"]="$vetted_by_make_test (make test)"
for target in $targets; do
  os=${target%/*} arch=${target#*/}
  ext=""; [[ $os == windows ]] && ext=.exe
  list=$(files "$target")
  if [ -n "${vetted[$list]:-}" ]; then
    echo "cross: vet $target: the same files as ${vetted[$list]}, vetted there" >&2
  else
    # shellcheck disable=SC2086 # one package per word
    t "vet $target" env GOOS=$os GOARCH=$arch CGO_ENABLED=0 "$GO" vet $(awk '{print $1}' <<<"$list")
    vetted["$list"]=$target
  fi
  # The stand-in ships for Linux on both arches (the demo's image; see
  # .goreleaser.yaml).
  pkgs=(.); [[ $os == linux ]] && pkgs+=(./test/standin-gateway)
  if [ -n "${built[$list]:-}" ]; then
    t "deps $target" deps_resolve "$target" "${pkgs[@]}"
    echo "cross: build $target: the same files as ${built[$list]}, built there; its dependencies resolve" >&2
    continue
  fi
  built["$list"]=$target
  # The build links what vet compiled (same flags, no -trimpath: this is a
  # check, not the release, which make release-snapshot builds).
  t "build $target" env GOOS=$os GOARCH=$arch CGO_ENABLED=0 "$GO" build -o "$out/apimdev-$os-$arch$ext" .
  if [[ $os == linux ]]; then
    t "build standin $target" env GOOS=$os GOARCH=$arch CGO_ENABLED=0 "$GO" build -o "$out/standin-gateway-$os-$arch" ./test/standin-gateway
  fi
done
ls -l "$out" | awk 'NR>1 {printf "cross: %-34s %6.1f MB\n", $9, $5/1048576}' >&2

t "wine prefix (wait)" wine_ready
exec_wine=$PWD/scripts/ci/wine/exec.sh
# One wineserver for all the Windows programs below, and Wine's own
# services (started by the first program in a prefix) started here with no
# pipe of ours: a service a test binary started would hold that binary's
# output pipe open after it exits, and go test fails its package with "Test
# I/O incomplete" a minute after it passed (seen on a busy machine).
wine_server() {
  (
    export WINEPREFIX="${APIMDEV_WINE_PREFIX:-$HOME/.cache/apimdev-wine}" WINEDEBUG=-all
    /usr/lib/wine/wineserver -p </dev/null >/dev/null 2>&1
    /usr/lib/wine/wine64 wineboot </dev/null >/dev/null 2>&1
  )
}
wine_server_stop() { WINEPREFIX="${APIMDEV_WINE_PREFIX:-$HOME/.cache/apimdev-wine}" /usr/lib/wine/wineserver -k 2>/dev/null || true; }
trap 'wine_server_stop; wait "$wine_pid" 2>/dev/null; rm -rf "$out" "$wine_log"' EXIT
t "wine server and services" wine_server
t "unit tests windows/amd64" env GOOS=windows GOARCH=amd64 "$GO" test -count=1 -exec "$exec_wine" . ./internal/... ./scripts

# The Windows binary itself, as a Windows user runs it (no engine here: the
# preflight must say what to do on Windows).
exe=$out/apimdev-windows-amd64.exe
run() { "$exec_wine" "$exe" "$@"; }
check() { # check WHAT WANT OUTPUT
  grep -qF -- "$2" <<<"$3" || { echo "cross: $1 lacks \"$2\":"; echo "$3"; exit 1; } >&2
}
v=$(run version); check version "go1." "$v"; check version "windows/amd64" "$v"
r=$(run render --profile dev --name contoso-gw --endpoint contoso.configuration.azure-api.net)
check render "kind: Deployment" "$r"; check render "GatewayKey <your token" "$r"
set +e
p=$(APIMDEV_TOKEN="GatewayKey contoso-gw&203001011200&c2lnbmF0dXJl" run preflight --name contoso-gw --endpoint contoso.configuration.azure-api.net 2>&1)
code=$?
set -e
[[ $code == 1 ]] || { echo "cross: preflight with no engine exited $code, want 1" >&2; exit 1; }
check preflight "start Docker Desktop (WSL 2 backend)" "$p"; check preflight "winget install Docker.DockerDesktop" "$p"
c=$(run completion powershell); check "completion powershell" "Register-ArgumentCompleter" "$c"
echo "cross: the Windows binary under Wine runs version, render, preflight (no engine: the Windows fix) and completion powershell" >&2
