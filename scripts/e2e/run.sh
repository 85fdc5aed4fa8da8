#!/usr/bin/env bash
# run.sh — the e2e suite: make sure a Docker engine answers, build (or reuse
# from the cache) the offline kind node image and the stand-in gateway image,
# then run the real apimdev binary through test/e2e (build tag e2e).
#
# Prints a timing line per rig stage and per suite (top-level test), and
# appends them as "name seconds" lines to $APIMDEV_CI_TIMINGS when it is set
# (.ci/run's summary table). Fails loudly if any part of the rig cannot be
# built; the suite never skips.
#
# Arguments are go test's (-run 'TestName$', -v, -count, -timeout, ...): the
# test binary is compiled once with `go test -c` and run with them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${APIMDEV_E2E_CACHE:-$HOME/.cache/apimdev-e2e}
cd "$ROOT"

timing() { # timing NAME SECONDS — print it, and record it for .ci/run
  printf 'rig: %-16s %4ds\n' "$1" "$2" >&2
  if [ -n "${APIMDEV_CI_TIMINGS:-}" ]; then printf 'e2e/%s %d\n' "$1" "$2" >>"$APIMDEV_CI_TIMINGS"; fi
}
stage() { # stage NAME CMD... — run CMD, print how long it took
  local name=$1 start=$SECONDS; shift
  "$@"
  timing "$name" $((SECONDS - start))
}

# One suite at a time on this machine's Docker engine: a suite restarts the
# engine (TestLifecycle) and makes clusters, so two at once break each other.
# Held already when this runs under `flock /tmp/apimdev-rig.lock ...` (flock's
# child inherits the locked file); taken here otherwise, waiting if need be.
RIG_LOCK=${APIMDEV_RIG_LOCK:-/tmp/apimdev-rig.lock}
rig_lock_held() {
  local fd
  for fd in /proc/$$/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "$RIG_LOCK" ] && return 0
  done
  return 1
}
if ! rig_lock_held; then
  exec 9>>"$RIG_LOCK"
  if ! flock -n 9; then
    echo "rig: waiting for $RIG_LOCK: another e2e suite or bench is using this machine's Docker engine" >&2
    flock 9
  fi
fi

# The rig's engines keep test traffic on this machine (--isolate-egress): the suites must only
# talk to local addresses.
stage docker scripts/ci/ensure-docker.sh --isolate-egress
# Rootful Podman beside it, for TestPodman (kind's podman provider; its
# Docker-compatible API on /run/podman/podman.sock).
stage podman scripts/ci/ensure-podman.sh --isolate-egress
node_image=""; gateway_image=""; statsd_image=""; otelcol_image=""
# The node image is built by apimdev itself (`apimdev node-image build` runs
# the embedded copy of scripts/e2e/node-image.sh), as a user without a
# registry would build it.
static_dir=$(mktemp -d)
build_node() {
  local bin=$static_dir/apimdev
  # Static, as the release's: cross.sh's linux/amd64 build has compiled
  # these packages already (make test compiles only race builds). The
  # suites make `backend add`'s relay image from it too (their own apimdev
  # is a race build, which cannot run FROM scratch).
  CGO_ENABLED=0 go build -o "$bin" .
  node_image=$("$bin" node-image build --verbose --image "${APIMDEV_E2E_NODE_IMAGE:-apimdev-e2e/kind-node:v1.34.4}" --cache "$CACHE" | tail -n 1)
  export APIMDEV_E2E_STATIC_APIMDEV=$bin
}
build_gateway() { gateway_image=$(scripts/e2e/standin-image.sh | tail -n 1); }
build_statsd() { statsd_image=$(scripts/e2e/statsd-image.sh | tail -n 1); }
build_otelcol() { otelcol_image=$(scripts/e2e/otelcol-image.sh | tail -n 1); }
stage node-image build_node
stage standin-image build_gateway
stage statsd-image build_statsd
stage otelcol-image build_otelcol
[ -n "$node_image" ] && [ -n "$gateway_image" ] || { echo "rig: an image reference is missing" >&2; exit 1; }

# Podman gets the node image and the statsd exporter's as a user would put
# them there (podman load; Podman names them localhost/<name>), copied from
# Docker only when Podman's copy is not the same image. The demo's image is
# not copied: TestPodman has apimdev make it on Podman.
copy_to_podman() {
  local ref want have
  for ref in "$@"; do
    want=$(docker image inspect -f '{{.Id}}' "$ref")
    have=$(podman image inspect -f '{{.Id}}' "localhost/$ref" 2>/dev/null || true)
    if [ "sha256:${have#sha256:}" != "$want" ]; then
      docker save "$ref" | podman load -q >&2
    fi
  done
}
stage podman-images copy_to_podman "$node_image" "$statsd_image"
export APIMDEV_E2E_PODMAN_SOCKET=unix:///run/podman/podman.sock

export APIMDEV_E2E_NODE_IMAGE=$node_image
export APIMDEV_E2E_GATEWAY_IMAGE=$gateway_image
export APIMDEV_E2E_KUBECTL=$CACHE/bin/kubectl
export APIMDEV_E2E_STATSD_IMAGE=$statsd_image
export APIMDEV_E2E_COLLECTOR_IMAGE=$otelcol_image
export PATH=$CACHE/bin:$PATH

# The test binary, compiled once (its own timing line), then run from its
# package directory as go test would; go test's flags become the binary's.
work=$(mktemp -d)
trap 'rm -rf "$work" "$static_dir"' EXIT
stage test-binary go test -tags e2e -c -o "$work/e2e.test" ./test/e2e/
args=()
for a in "$@"; do
  case $a in
    -run | -run=* | -skip | -skip=* | -count | -count=* | -timeout | -timeout=* | -v | -v=* | \
      -failfast | -short | -parallel | -parallel=* | -list | -list=* | -shuffle | -shuffle=*)
      args+=("-test.${a#-}") ;;
    *) args+=("$a") ;;
  esac
done
start=$SECONDS
set +e
(cd test/e2e && "$work/e2e.test" -test.count=1 -test.v -test.timeout=65m "${args[@]}") 2>&1 | tee "$work/out"
rc=${PIPESTATUS[0]}
set -e
# Each top-level test's own line: "--- PASS: TestE2E (150.52s)".
while read -r _ verdict name secs; do
  secs=${secs#(}; secs=${secs%s)}
  timing "$name" "$(printf '%.0f' "$secs")"
  [ "$verdict" = PASS: ] || echo "rig: $name ${verdict%:}" >&2
done < <(grep -E '^--- (PASS|FAIL|SKIP): Test[^ ]* \([0-9.]+s\)$' "$work/out")
timing suite $((SECONDS - start))
exit "$rc"
