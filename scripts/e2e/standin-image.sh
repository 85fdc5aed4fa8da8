#!/usr/bin/env bash
# Builds the stand-in gateway image for the end-to-end tests: TEST
# INFRASTRUCTURE standing in for mcr.microsoft.com/azure-api-management/gateway,
# which cannot be pulled where the e2e suite runs.
#
# Usage: scripts/e2e/standin-image.sh [--force] [--smoke]
#   --force  rebuild even if an image for the current sources exists
#   --smoke  run the image (config service + gateway) and check it answers
#
# The image is tagged apimdev-e2e/standin-gateway:2.11.1-standin and
# apimdev-e2e/standin-gateway:src-<hash of the sources>; when the hash tag
# exists the build is skipped. Progress goes to stderr; the LAST line on
# stdout is the image ref to deploy (the 2.11.1-standin tag).
set -euo pipefail

readonly name=apimdev-e2e/standin-gateway
readonly tag=2.11.1-standin
readonly ref="$name:$tag"
readonly src=test/standin-gateway

log() { printf 'standin-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
smoke=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --smoke) smoke=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
[ -f go.mod ] || die "no go.mod in $repo"
command -v go >/dev/null || die "go is not on PATH"
command -v docker >/dev/null || die "docker is not on PATH"
docker info >/dev/null 2>&1 || die "the docker daemon is not reachable (see scripts/ci/ensure-docker.sh)"

goarch=$(go env GOARCH)

# source_hash covers what goes into the binary: non-test Go files and the
# Dockerfile, the module and Go version lines, the target, and this script
# (it holds the build flags). The binary uses the standard library only, so
# go.sum churn from the product does not force a rebuild.
source_hash() {
  {
    go version
    echo "GOARCH=$goarch"
    grep -E '^(module|go|toolchain) ' go.mod
    find "$src" -type f \( -name '*.go' ! -name '*_test.go' -o -name Dockerfile \) -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
    sha256sum < "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
}

hash=$(source_hash)
hashref="$name:src-$hash"

if [ "$force" = 0 ] && docker image inspect "$hashref" >/dev/null 2>&1; then
  log "image for sources $hash already exists; not rebuilding"
  docker tag "$hashref" "$ref"
else
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  log "building static binary ($goarch)"
  CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" \
    go build -trimpath -ldflags "-s -w" -o "$ctx/standin-gateway" "./$src"
  cp "$src/Dockerfile" "$ctx/Dockerfile"
  log "building image $ref ($hashref) with the legacy builder"
  DOCKER_BUILDKIT=0 docker build --label "apimdev.standin.source-hash=$hash" \
    -t "$ref" -t "$hashref" "$ctx" >&2
  # Hash tags of older sources are ours and now useless.
  for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$name"); do
    case "$old" in
      "$hashref") ;;
      "$name":src-*) docker rmi "$old" >/dev/null 2>&1 || true ;;
    esac
  done
fi
log "image size: $(docker image inspect --format '{{.Size}}' "$ref") bytes"

# run_smoke starts the config service and a gateway pointed at it on a private
# network, then talks to the gateway only through ports published on 127.0.0.1.
run_smoke() {
  local id net cs gw port key sub token i code
  id="standin-smoke-$$"
  net="$id-net" cs="$id-config" gw="$id-gateway"
  key="smoke-key-$RANDOM$RANDOM" sub="smoke-sub-$RANDOM$RANDOM"
  # shellcheck disable=SC2064 # expand the names now
  trap "docker rm -f '$gw' '$cs' >/dev/null 2>&1; docker network rm '$net' >/dev/null 2>&1; rm -rf '${ctx:-}'" EXIT
  docker network create "$net" >/dev/null
  token=$(docker run --rm -e STANDIN_GATEWAY_KEY="$key" "$ref" mint-token --id smoke --valid-for 1h)
  docker run -d --name "$cs" --network "$net" \
    -e STANDIN_GATEWAY_KEY="$key" -e STANDIN_SUBSCRIPTION_KEYS="$sub" "$ref" config-service >/dev/null
  docker run -d --name "$gw" --network "$net" -p 127.0.0.1::8080 \
    -e "config.service.endpoint=$cs:8443" -e "config.service.auth=$token" \
    -e "telemetry.logs.std=json" -e STANDIN_POLL_INTERVAL=1s -e STANDIN_DRAIN_DELAY=1s "$ref" >/dev/null
  port=$(docker port "$gw" 8080/tcp | head -n1 | sed 's/.*://')
  code=000
  for i in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/status-0123456789abcdef" || true)
    [ "$code" = 200 ] && break
    sleep 0.2
  done
  [ "$code" = 200 ] || { docker logs "$gw" >&2; die "smoke: gateway never became ready (last status $code)"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/echo/smoke")
  [ "$code" = 401 ] || die "smoke: echo without a key answered $code, want 401"
  curl -sf -H "Ocp-Apim-Subscription-Key: $sub" "http://127.0.0.1:$port/echo/smoke" | grep -q '"gateway":"stand-in"' ||
    die "smoke: echo with a key did not answer as the stand-in"
  docker stop -t 30 "$gw" >/dev/null
  [ "$(docker inspect -f '{{.State.ExitCode}}' "$gw")" = 0 ] || die "smoke: gateway did not exit 0 on SIGTERM"
  if docker logs "$gw" 2>&1 | grep -qF -e "$key" -e "${token##*&}" -e "$sub"; then
    die "smoke: a secret appeared in the gateway log"
  fi
  log "smoke: ready, 401 without key, echo with key, clean SIGTERM exit, no secrets logged"
}

[ "$smoke" = 1 ] && run_smoke
echo "$ref"
