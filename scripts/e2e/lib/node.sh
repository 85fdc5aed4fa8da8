# shellcheck shell=bash
# Assembles the kind node image from the cached node rootfs, the binaries, the files under
# scripts/e2e/node/ and the seven preloaded component images, then imports it into Docker.
# Sourced by node-image.sh after the other lib/*.sh files.

NODE_STAGE=$CACHE/work/node

# Preloading runs the rootfs's own containerd in a chroot, listening on a private socket.
PRELOAD_SOCK=/tmp/preload/containerd.sock
preload_ctr() { chroot "$NODE_STAGE" /usr/bin/ctr -a "$PRELOAD_SOCK" -n k8s.io "$@"; }

stage_node_rootfs() {
  umount_below "$NODE_STAGE"
  rm -rf "$NODE_STAGE"
  mkdir -p "$NODE_STAGE"
  tar -xf "$NODE_ROOTFS" -C "$NODE_STAGE"
  local s=$NODE_STAGE b
  for b in kubelet kubeadm kubectl; do install -m 0755 "$K8S_OUT/$b" "$s/usr/bin/$b"; done
  install -m 0755 "$CRICTL_OUT/crictl" "$s/usr/bin/crictl"
  install -m 0755 "$CAPDROP_OUT/runc-capdrop" "$s/usr/local/sbin/runc-capdrop"
  install_tree "$E2E_DIR/node" "$s"
  printf '%s\n' "$K8S_VERSION" >"$s/kind/version"
  mkdir -p "$s/etc/systemd/system/multi-user.target.wants"
  ln -sfn /lib/systemd/system/containerd.service "$s/etc/systemd/system/multi-user.target.wants/containerd.service"
  ln -sfn /etc/systemd/system/kubelet.service "$s/etc/systemd/system/multi-user.target.wants/kubelet.service"
  ln -sfn /etc/systemd/system/apimdev-routes.service "$s/etc/systemd/system/multi-user.target.wants/apimdev-routes.service"
  mkdir -p "$s/var/lib/kubelet" "$s/etc/kubernetes/manifests"
}

preload_images() {
  local s=$NODE_STAGE pid i
  mkdir -p "$s/tmp/preload"
  docker save -o "$s/tmp/preload/images.tar" "${ALL_COMPONENT_IMAGES[@]}" || die "docker save failed"
  cat >"$s/tmp/preload/config.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/tmp/preload/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$PRELOAD_SOCK"
EOF
  mount -t proc proc "$s/proc"
  mount -t sysfs -o ro sysfs "$s/sys"
  mount --bind /dev "$s/dev"
  chroot "$s" /usr/bin/containerd --config /tmp/preload/config.toml >"$CACHE/logs/preload-containerd.log" 2>&1 &
  pid=$!
  for i in $(seq 1 100); do
    preload_ctr version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$CACHE/logs/preload-containerd.log" >&2; die "preload containerd exited"; }
    sleep 0.2
  done
  preload_ctr images import --all-platforms --snapshotter=overlayfs /tmp/preload/images.tar >"$CACHE/logs/preload-import.log" 2>&1 \
    || { cat "$CACHE/logs/preload-import.log" >&2; kill "$pid"; die "ctr images import failed"; }
  local ref digest layers=()
  for ref in "${ALL_COMPONENT_IMAGES[@]}"; do
    preload_ctr images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
    # The unpacked snapshots are all a node needs: drop the compressed/uncompressed layer
    # blobs (keeping manifests and configs), which saves hundreds of MB per node.
    digest=$(preload_ctr images ls "name==$ref" | awk 'NR == 2 {print $3}')
    [[ -n $digest ]] || die "image $ref missing after import"
    mapfile -t -O "${#layers[@]}" layers < <(image_layers "$digest")
  done
  if ((${#layers[@]})); then preload_ctr content rm "${layers[@]}" >/dev/null; fi
  # Blobs leave the disk only at the next garbage collection: removing a throwaway tag with
  # --sync runs one right now.
  preload_ctr images tag "$IMG_PAUSE" apimdev-e2e/preload-gc:tmp >/dev/null
  preload_ctr images rm --sync apimdev-e2e/preload-gc:tmp >/dev/null
  log "preloaded ${#ALL_COMPONENT_IMAGES[@]} images, dropped ${#layers[@]} layer blobs"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  umount_below "$s/dev"
  umount_below "$s/sys"
  umount_below "$s/proc"
  rm -rf "$s/tmp/preload"
}

# image_layers DIGEST: the layer digests below a manifest or an index.
image_layers() {
  local doc
  doc=$(preload_ctr content get "$1")
  if jq -e '.manifests' >/dev/null 2>&1 <<<"$doc"; then
    local m
    for m in $(jq -r '.manifests[].digest' <<<"$doc"); do image_layers "$m"; done
  else
    jq -r '.layers[].digest' <<<"$doc"
  fi
}

import_node_image() {
  local hash=$1 tmp_tag old_id
  tmp_tag=apimdev-e2e/kind-node-rootfs:$hash
  old_id=$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE" 2>/dev/null || true)
  tar --numeric-owner -C "$NODE_STAGE" -cf - . | docker import \
    --change 'ENV container=docker' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    - "$tmp_tag" >/dev/null || die "docker import of the node rootfs failed"
  # Docker 20.10's import refuses STOPSIGNAL: add it (and the rig hash) in a build step.
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL %s=%s\n' "$tmp_tag" "$HASH_LABEL" "$hash" |
    DOCKER_BUILDKIT=0 docker build -q -t "$NODE_IMAGE" - >"$CACHE/logs/node-build.log" 2>&1 \
    || { cat "$CACHE/logs/node-build.log" >&2; die "docker build of $NODE_IMAGE failed"; }
  docker rmi "$tmp_tag" >/dev/null
  if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ]]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true # still used by a container: keep it
  fi
  umount_below "$NODE_STAGE"
  rm -rf "$NODE_STAGE"
}
