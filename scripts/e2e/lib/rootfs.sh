# shellcheck shell=bash
# Debian root filesystems made with debootstrap, cached as tarballs under $CACHE/rootfs/:
#   - the kind node: systemd, containerd, runc, CNI plugins, iptables, ...
#   - the kube-proxy image base: a minbase with iptables, nftables and conntrack
# Sourced by node-image.sh after lib/common.sh. Downloaded .debs are kept in $CACHE/debs.

# Bump ROOTFS_REV when the way a rootfs is made changes (the package lists are in the key).
ROOTFS_REV=1
NODE_PACKAGES=(systemd systemd-sysv dbus iproute2 iptables nftables ca-certificates procps
  containerd runc containernetworking-plugins conntrack ethtool socat kmod ebtables
  util-linux mount libseccomp2 pigz)
PROXY_PACKAGES=(iptables nftables conntrack)

NODE_ROOTFS=$CACHE/rootfs/node-$DEBIAN_SUITE-$(printf '%s ' "$ROOTFS_REV" "${NODE_PACKAGES[@]}" | sha256sum | cut -c1-12).tar
PROXY_ROOTFS=$CACHE/rootfs/kube-proxy-$DEBIAN_SUITE-$(printf '%s ' "$ROOTFS_REV" "${PROXY_PACKAGES[@]}" | sha256sum | cut -c1-12).tar

# Unmount everything below DIR (deepest first); never fails.
umount_below() {
  local dir=$1 m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r)
}

# Remove what a container never needs: docs, man pages, apt lists and caches, logs.
trim_rootfs() {
  local root=$1
  rm -rf "$root"/usr/share/{doc,man,info,lintian,linda}/* \
    "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' ! -name 'locale.alias' \
    -exec rm -rf {} + 2>/dev/null || true
}

# debootstrap_to DIR LOG PACKAGES...: a bookworm minbase with extra packages. Services are not
# started while packages install (policy-rc.d answers 101).
debootstrap_to() {
  local dir=$1 logf=$2; shift 2
  local include
  include=$(IFS=,; echo "$*")
  rm -rf "$dir"
  mkdir -p "$dir/usr/sbin"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"
  if ! debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$include" \
    "$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR" >"$logf" 2>&1; then
    umount_below "$dir"
    tail -n 30 "$logf" >&2
    [[ -f $dir/debootstrap/debootstrap.log ]] && tail -n 30 "$dir/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (log: $logf)"
  fi
  umount_below "$dir"
  rm -f "$dir/usr/sbin/policy-rc.d"
}

# pack_rootfs DIR TARBALL: tar a staged root (numeric owners) and publish it atomically.
pack_rootfs() {
  tar --numeric-owner -C "$1" -cf "$2.tmp" .
  mv "$2.tmp" "$2"
  rm -rf "$1"
}

build_node_rootfs() {
  if [[ -f $NODE_ROOTFS ]]; then log "node rootfs: cached ($(basename "$NODE_ROOTFS"))"; return; fi
  local dir=$CACHE/work/rootfs-node
  debootstrap_to "$dir" "$CACHE/logs/debootstrap-node.log" "${NODE_PACKAGES[@]}"

  # systemd in a container: start from no enabled units at all (packages enable timers,
  # getty, ...), then the image enables just what a node needs (see node.sh).
  find "$dir/etc/systemd/system" -mindepth 2 -path '*.wants/*' -delete
  rm -f "$dir"/lib/systemd/system/{multi-user,basic,local-fs}.target.wants/* \
    "$dir"/lib/systemd/system/sockets.target.wants/*{udev,initctl}* \
    "$dir"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
  local unit
  for unit in getty.target console-getty.service getty@tty1.service systemd-binfmt.service \
    systemd-firstboot.service systemd-modules-load.service systemd-remount-fs.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-timesyncd.service; do
    ln -sf /dev/null "$dir/etc/systemd/system/$unit"
  done
  # CNI plugins: Debian installs them in /usr/lib/cni; kind and containerd look in /opt/cni/bin.
  mkdir -p "$dir/opt/cni"
  ln -sfn /usr/lib/cni "$dir/opt/cni/bin"
  # Every node must get its own machine id at start (the entrypoint makes one).
  : >"$dir/etc/machine-id"
  mkdir -p "$dir/var/lib/dbus"
  ln -sf /etc/machine-id "$dir/var/lib/dbus/machine-id"
  # Debian's containerd config would be replaced anyway.
  rm -f "$dir/etc/containerd/config.toml"
  trim_rootfs "$dir"
  pack_rootfs "$dir" "$NODE_ROOTFS"
}

build_proxy_rootfs() {
  if [[ -f $PROXY_ROOTFS ]]; then log "kube-proxy base rootfs: cached ($(basename "$PROXY_ROOTFS"))"; return; fi
  local dir=$CACHE/work/rootfs-kube-proxy
  debootstrap_to "$dir" "$CACHE/logs/debootstrap-kube-proxy.log" "${PROXY_PACKAGES[@]}"
  trim_rootfs "$dir"
  pack_rootfs "$dir" "$PROXY_ROOTFS"
}

build_all_rootfs() {
  stage node-rootfs build_node_rootfs
  stage kube-proxy-rootfs build_proxy_rootfs
}
