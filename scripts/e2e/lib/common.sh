# shellcheck shell=bash
# Shared settings and helpers for the offline kind node image rig (sourced by node-image.sh
# and the other lib/*.sh files; not meant to be run on its own).
#
# Everything expensive lives outside the repository, under $CACHE, keyed by version:
#   $CACHE/bin/                 kind and kubectl for callers (benchmarks, tests)
#   $CACHE/go/{mod,build}       Go module and build caches used by the rig only
#   $CACHE/src/<name>-<ver>/    generated wrapper Go modules
#   $CACHE/out/<name>-<ver>/    built binaries (a directory appears only when complete)
#   $CACHE/debs/                .deb files downloaded by debootstrap
#   $CACHE/rootfs/*.tar         debootstrap root filesystems (node, kube-proxy base)
#   $CACHE/work/                scratch space while assembling an image (removed afterwards)
#   $CACHE/logs/                build logs of the last run

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS_DIR=$(dirname "$E2E_DIR")
CI_DIR=$SCRIPTS_DIR/ci
CACHE=${APIMDEV_E2E_CACHE:-$HOME/.cache/apimdev-e2e}

# Versions. kubeadm v1.34.4 expects exactly these image tags (kubeadm config images list).
K8S_VERSION=v1.34.4
K8S_STAGING_VERSION=v0.34.4
ETCD_VERSION=v3.6.5
ETCD_IMAGE_TAG=3.6.5-0
COREDNS_VERSION=v1.12.1
PAUSE_IMAGE_TAG=3.10.1
CRICTL_VERSION=v1.34.0
KIND_VERSION=v0.33.0
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${APIMDEV_E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}

NODE_IMAGE=${APIMDEV_E2E_NODE_IMAGE:-apimdev-e2e/kind-node:$K8S_VERSION}
HASH_LABEL=io.apimdev.e2e.rig-hash

IMG_APISERVER=registry.k8s.io/kube-apiserver:$K8S_VERSION
IMG_CONTROLLER_MANAGER=registry.k8s.io/kube-controller-manager:$K8S_VERSION
IMG_SCHEDULER=registry.k8s.io/kube-scheduler:$K8S_VERSION
IMG_PROXY=registry.k8s.io/kube-proxy:$K8S_VERSION
IMG_ETCD=registry.k8s.io/etcd:$ETCD_IMAGE_TAG
IMG_COREDNS=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
IMG_PAUSE=registry.k8s.io/pause:$PAUSE_IMAGE_TAG
ALL_COMPONENT_IMAGES=("$IMG_APISERVER" "$IMG_CONTROLLER_MANAGER" "$IMG_SCHEDULER" "$IMG_PROXY"
  "$IMG_ETCD" "$IMG_COREDNS" "$IMG_PAUSE")

# Go: static, reproducible builds; caches of our own so `rm -rf $CACHE` cleans everything.
# -modcacherw keeps the module cache deletable with plain rm.
export CGO_ENABLED=0
export GOMODCACHE=$CACHE/go/mod
export GOCACHE=$CACHE/go/build
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local
GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
fi
GO_BUILD_FLAGS=(-trimpath -p "${APIMDEV_E2E_GO_PARALLEL:-2}")

mkdir -p "$CACHE"/{bin,go,src,out,debs,rootfs,work,logs}

log() { printf '[node-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# stage NAME CMD...: run a stage, print its wall time to stderr.
stage() {
  local name=$1; shift
  local t0=$SECONDS
  log "stage $name: start"
  "$@"
  log "stage $name: done in $((SECONDS - t0))s"
  printf '%s %s\n' "$name" "$((SECONDS - t0))" >>"$CACHE/logs/timings.txt"
}

# install_tree SRC DEST: copy the files under SRC (laid out as in a rootfs) into DEST, 0755 for
# executables and 0644 otherwise, without touching the modes of directories DEST already has.
install_tree() {
  local f mode
  while IFS= read -r f; do
    mode=0644
    [[ -x $f ]] && mode=0755
    install -D -m "$mode" "$f" "$2/${f#"$1"/}"
  done < <(find "$1" -type f)
}

sha256_of_files() { # prints one hash over the names and contents of the given files
  local f
  for f in "$@"; do
    printf '%s\n' "${f#"$SCRIPTS_DIR"/}"
    sha256sum <"$f"
  done | sha256sum | cut -c1-16
}

# The files whose content defines the node image; a change to any of them rebuilds it.
rig_files() {
  {
    printf '%s\n' "$E2E_DIR/node-image.sh"
    find "$E2E_DIR/lib" "$E2E_DIR/node" "$E2E_DIR/images" "$E2E_DIR/_gosrc" -type f
    printf '%s\n' "$CI_DIR/runc-capdrop/main.go" "$CI_DIR/runc-capdrop/capdrop/capdrop.go"
  } | LC_ALL=C sort
}
