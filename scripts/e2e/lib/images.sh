# shellcheck shell=bash
# The seven component images kubeadm v1.34.4 runs, built locally (nothing can be pulled) and
# tagged exactly as `kubeadm config images list --kubernetes-version v1.34.4` prints them.
# All but kube-proxy are FROM scratch with one static binary; kube-proxy needs iptables, so
# its image is the debootstrap minbase from rootfs.sh plus the binary and an iptables wrapper.
# An image is rebuilt only when its inputs change (label $COMPONENT_LABEL holds their hash).
# Sourced by node-image.sh after common.sh, binaries.sh and rootfs.sh.

COMPONENT_LABEL=io.apimdev.e2e.component-hash

image_label() { # image_label IMAGE LABEL: the label's value, or nothing
  docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# component_key FILES...: hash of this file, the image skeleton and the given binaries
# (size and mtime: the versioned output directories are never rewritten in place).
component_key() {
  {
    sha256sum "$E2E_DIR/lib/images.sh"
    find "$E2E_DIR/images" -type f -exec sha256sum {} + | LC_ALL=C sort
    stat -c '%n %s %Y' "$@"
  } | sha256sum | cut -c1-16
}

# scratch_image TAG BINARY DEST USER ENTRYPOINT-JSON
scratch_image() {
  local tag=$1 bin=$2 dest=$3 user=$4 entry=$5 key ctx
  key=$(component_key "$bin")
  if [[ $(image_label "$tag" "$COMPONENT_LABEL") == "$key" ]]; then
    log "image $tag: up to date"; return
  fi
  ctx=$CACHE/work/img-$(basename "$dest")
  rm -rf "$ctx"
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs$(dirname "$dest")"
  chmod 1777 "$ctx/rootfs/tmp"
  install_tree "$E2E_DIR/images/base" "$ctx/rootfs"
  cp "$bin" "$ctx/rootfs$dest"
  cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER $user
ENTRYPOINT $entry
LABEL $COMPONENT_LABEL=$key
EOF
  DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >"$CACHE/logs/image-build.log" 2>&1 \
    || { cat "$CACHE/logs/image-build.log" >&2; die "docker build $tag failed"; }
  rm -rf "$ctx"
  log "image $tag: built"
}

kube_proxy_image() {
  local tag=$IMG_PROXY key dir
  key=$(component_key "$K8S_OUT/kube-proxy" "$PROXY_ROOTFS")
  if [[ $(image_label "$tag" "$COMPONENT_LABEL") == "$key" ]]; then
    log "image $tag: up to date"; return
  fi
  dir=$CACHE/work/img-kube-proxy
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xf "$PROXY_ROOTFS" -C "$dir"
  install_tree "$E2E_DIR/images/kube-proxy" "$dir"
  install -m 0755 "$K8S_OUT/kube-proxy" "$dir/usr/local/bin/kube-proxy"
  local n
  for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sfn iptables-wrapper "$dir/usr/sbin/$n"
  done
  tar --numeric-owner -C "$dir" -cf - . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' \
    --change "LABEL $COMPONENT_LABEL=$key" - "$tag" >/dev/null || die "docker import $tag failed"
  rm -rf "$dir"
  log "image $tag: built"
}

build_component_images() {
  local e='["/usr/local/bin/'
  scratch_image "$IMG_APISERVER" "$K8S_OUT/kube-apiserver" /usr/local/bin/kube-apiserver 0 "${e}kube-apiserver\"]"
  scratch_image "$IMG_CONTROLLER_MANAGER" "$K8S_OUT/kube-controller-manager" /usr/local/bin/kube-controller-manager 0 "${e}kube-controller-manager\"]"
  scratch_image "$IMG_SCHEDULER" "$K8S_OUT/kube-scheduler" /usr/local/bin/kube-scheduler 0 "${e}kube-scheduler\"]"
  scratch_image "$IMG_ETCD" "$ETCD_OUT/etcd" /usr/local/bin/etcd 0 "${e}etcd\"]"
  # kubeadm's CoreDNS Deployment passes only args (-conf ...): the entrypoint is the binary.
  # Root, because binding :53 as non-root needs a file capability that a plain COPY loses;
  # the Deployment still drops every capability but NET_BIND_SERVICE.
  scratch_image "$IMG_COREDNS" "$COREDNS_OUT/coredns" /coredns 0 '["/coredns"]'
  scratch_image "$IMG_PAUSE" "$PAUSE_OUT/pause" /pause 65535:65535 '["/pause"]'
  kube_proxy_image
}
