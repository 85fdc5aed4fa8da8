#!/usr/bin/env bash
# node-image.sh — build (or reuse) an offline kind node image for Kubernetes v1.34.4.
#
# The image (apimdev-e2e/kind-node:v1.34.4) works with sigs.k8s.io/kind v0.33.0:
#   kind create cluster --image "$(scripts/e2e/node-image.sh)"
# Nothing is pulled from a registry: Kubernetes, etcd, CoreDNS, crictl and pause are built
# from the Go module proxy, the node's Debian rootfs comes from debootstrap, and the seven
# component images are built locally and preloaded into the node's containerd.
# It also leaves kind and kubectl in $CACHE/bin for callers.
#
# Cache: ${APIMDEV_E2E_CACHE:-$HOME/.cache/apimdev-e2e} (layout in lib/common.sh and README.md).
# The image carries a label with a hash of this rig's scripts; when an image with the current
# hash exists the script only prints its name. A cold run takes about 15–20 minutes on 2 cores.
#
# Output: the image reference as the LAST line of stdout; progress and per-stage timings go to
# stderr. Needs root (debootstrap, chroot, mounts) and a Docker engine that answers (the e2e
# rig starts its own first; this script never starts one). Environment:
#   APIMDEV_E2E_CACHE        cache directory
#   APIMDEV_E2E_NODE_IMAGE   image reference to produce (default apimdev-e2e/kind-node:v1.34.4)
#   APIMDEV_E2E_FORCE=1      rebuild the image even when the hash matches (cached parts reused)
#   APIMDEV_E2E_DEBIAN_MIRROR  Debian mirror for debootstrap
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/binaries.sh
source "$E2E_DIR/lib/binaries.sh"
# shellcheck source=lib/rootfs.sh
source "$E2E_DIR/lib/rootfs.sh"
# shellcheck source=lib/images.sh
source "$E2E_DIR/lib/images.sh"
# shellcheck source=lib/node.sh
source "$E2E_DIR/lib/node.sh"

# The engine is the caller's: the rig starts its own (scripts/ci/ensure-docker.sh) before this
# runs, and `apimdev node-image build` on a user's machine never starts one behind their back.
ensure_docker() {
  timeout 15 docker info >/dev/null 2>&1 ||
    die "docker does not answer: start it (sudo systemctl start docker), or install one with sudo apimdev docker install"
}

ensure_tools() {
  [[ $(id -u) == 0 ]] || die "run as root (debootstrap, chroot and mounts need it)"
  local missing=()
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  command -v "$GO" >/dev/null 2>&1 || die "no Go toolchain (go) found"
  if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

ROOTFS_PID=
cleanup() {
  # On an early exit let a running debootstrap finish (its tarball is cached for next time)
  # rather than pull its mounts away; never leave mounts behind in the scratch area.
  if [[ -n $ROOTFS_PID ]]; then wait "$ROOTFS_PID" 2>/dev/null || true; fi
  umount_below "$CACHE/work"
}

main() {
  local t0=$SECONDS hash current
  # One build at a time per cache: a second caller waits, then finds the image up to date.
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another node-image.sh is using $CACHE; waiting for it"
    flock 9
  fi
  mapfile -t files < <(rig_files)
  hash=$(sha256_of_files "${files[@]}")

  ensure_docker
  if [[ ${APIMDEV_E2E_FORCE:-0} != 1 ]]; then
    current=$(docker image inspect -f "{{index .Config.Labels \"$HASH_LABEL\"}}" "$NODE_IMAGE" 2>/dev/null || true)
    if [[ $current == "$hash" && -x $CACHE/bin/kind && -x $CACHE/bin/kubectl ]]; then
      log "$NODE_IMAGE is up to date (rig hash $hash)"
      echo "$NODE_IMAGE"
      return
    fi
  fi

  : >"$CACHE/logs/timings.txt"
  stage tools ensure_tools
  trap cleanup EXIT
  log "building $NODE_IMAGE (rig hash $hash, cache $CACHE)"

  # debootstrap (network and disk bound) runs alongside the Go builds (CPU bound).
  (build_all_rootfs) &
  ROOTFS_PID=$!
  build_all_binaries
  local pid=$ROOTFS_PID
  ROOTFS_PID=
  wait "$pid" || die "building the root filesystems failed"

  stage component-images build_component_images
  stage node-stage stage_node_rootfs
  stage preload preload_images
  stage node-import import_node_image "$hash"

  log "timings (s):" "$(tr '\n' ' ' <"$CACHE/logs/timings.txt")"
  log "$NODE_IMAGE built in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | numfmt --to=iec) )"
  echo "$NODE_IMAGE"
}

main "$@"
