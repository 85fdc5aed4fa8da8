#!/usr/bin/env bash
# ensure-podman.sh — the e2e rig's Podman: make rootful Podman (Debian's package, as root) able to
# run kind clusters, and start its Docker-compatible API service. This is the rig's script (CI,
# `make e2e`), never a user's: apimdev only tells a user how to start Podman's own socket.
#
# As root (e.g. in CI on a fresh Debian 12) it:
#   1. installs the pinned Debian packages below (podman, conmon, containers-common, netavark,
#      aardvark-dns, runc, iptables, nftables) with apt-get, without starting any service;
#   2. pins Podman's network backend to netavark (/etc/containers/containers.conf.d/
#      40-apimdev.conf) and puts an aardvark-dns wrapper first in helper_binaries_dir, so
#      that the DNS daemon netavark starts does not keep its caller's descriptors (the lock of
#      `flock FILE kind create cluster` would never be released); and only when the capability bounding set lacks CAP_SYS_RESOURCE
#      (some VMs): builds scripts/ci/runc-capdrop (see lib-capdrop.sh) and makes it Podman's
#      default OCI runtime "capdrop" (50-apimdev-capdrop.conf; conmon runs it for create and
#      for exec --process, so `podman exec` goes through it too), with default ulimits no
#      higher than the ones podman itself runs with (raising them needs that capability);
#   3. with --isolate-egress: rejects traffic that containers on Podman's bridges (podman*,
#      cni-podman*) would route out of the machine through the default-route interfaces, IPv4
#      and IPv6 (nft table inet apimdev_podman_egress, hooked before iptables' FORWARD so
#      netavark's ACCEPT rules cannot overtake it); without it, that table is removed;
#   4. starts `podman system service` in the background on $APIMDEV_PODMAN_SOCK (log:
#      $APIMDEV_PODMAN_LOG), waits until /_ping answers OK, and records its pid in
#      $APIMDEV_PODMAN_PIDFILE so scripts/ci/stop-podman.sh stops only a service started here.
# Idempotent: a second run finds everything in place and returns at once (a service of ours is
# restarted only when the configuration written in step 2 changed).
#
# kind then needs KIND_EXPERIMENTAL_PROVIDER=podman (it runs the podman CLI); Docker-API
# clients use DOCKER_HOST=unix:///run/podman/podman.sock.
#
# Usage: scripts/ci/ensure-podman.sh [--isolate-egress] [--check]
#   --isolate-egress  containers may not send traffic out of this machine (the rig passes it)
#   --check  also build a tiny FROM-scratch image locally, `podman run --privileged` it and
#            `podman exec` into it (prints CapEff of both), and ping the API socket.
set -euo pipefail

# Pinned Debian 12 (bookworm) versions; override with the environment when the mirror moves on.
PODMAN_DEB_VERSION=${APIMDEV_PODMAN_DEB_VERSION:-4.3.1+ds1-8+deb12u1+b3}
CONMON_DEB_VERSION=${APIMDEV_CONMON_DEB_VERSION:-2.1.6+ds1-1}
CONTAINERS_COMMON_DEB_VERSION=${APIMDEV_CONTAINERS_COMMON_DEB_VERSION:-0.50.1+ds1-4}
NETAVARK_DEB_VERSION=${APIMDEV_NETAVARK_DEB_VERSION:-1.4.0-3}
AARDVARK_DNS_DEB_VERSION=${APIMDEV_AARDVARK_DNS_DEB_VERSION:-1.4.0-3}
RUNC_DEB_VERSION=${APIMDEV_RUNC_DEB_VERSION:-1.1.5+ds1-1+deb12u1}
IPTABLES_DEB_VERSION=${APIMDEV_IPTABLES_DEB_VERSION:-1.8.9-2}
NFTABLES_DEB_VERSION=${APIMDEV_NFTABLES_DEB_VERSION:-1.0.6-2+deb12u2}

CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOCK=${APIMDEV_PODMAN_SOCK:-/run/podman/podman.sock}
PIDFILE=${APIMDEV_PODMAN_PIDFILE:-/run/apimdev-podman-service.pid}
LOGFILE=${APIMDEV_PODMAN_LOG:-/var/log/apimdev-podman-service.log}
WAIT_SECONDS=${APIMDEV_PODMAN_WAIT:-60}
CONF_DIR=/etc/containers/containers.conf.d
BASE_CONF=$CONF_DIR/40-apimdev.conf
CAPDROP_CONF=$CONF_DIR/50-apimdev-capdrop.conf
HELPER_DIR=/usr/local/libexec/apimdev/podman-helpers
NFT_TABLE=apimdev_podman_egress
CHECK_IMAGE=localhost/apimdev-ci/podman-check:local
# shellcheck source=scripts/ci/lib-capdrop.sh
. "$CI_DIR/lib-capdrop.sh" # lacks_cap_sys_resource, find_go, apt_install, install_capdrop
CHECK=false
ISOLATE=false

for arg in "$@"; do
  case $arg in
    --check) CHECK=true ;;
    --isolate-egress) ISOLATE=true ;;
    -h | --help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "ensure-podman: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[ensure-podman] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

podman_answers() {
  [[ -S $SOCK ]] && [[ $(curl -fsS --max-time 5 --unix-socket "$SOCK" http://d/_ping 2>/dev/null) == OK ]]
}

our_pid() { # the pid of a running service that this script started, if any
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == podman ]] && echo "$pid"
}

describe() {
  local v who pid
  v=$(timeout 15 podman info --format \
    'podman {{.Version.Version}}, runtime {{.Host.OCIRuntime.Name}}, network {{.Host.NetworkBackend}}, cgroup {{.Host.CgroupsVersion}}/{{.Host.CgroupManager}}' 2>/dev/null || echo 'podman ?')
  if pid=$(our_pid); then who="service pid $pid, started by ensure-podman"; else who="service not started by ensure-podman"; fi
  log "$v answers on unix://$SOCK ($who)"
}

# pkg=version for every pinned package that is not installed at exactly that version.
install_packages() {
  local want=(
    "podman=$PODMAN_DEB_VERSION" "conmon=$CONMON_DEB_VERSION"
    "golang-github-containers-common=$CONTAINERS_COMMON_DEB_VERSION"
    "netavark=$NETAVARK_DEB_VERSION" "aardvark-dns=$AARDVARK_DNS_DEB_VERSION"
    "runc=$RUNC_DEB_VERSION" "iptables=$IPTABLES_DEB_VERSION" "nftables=$NFTABLES_DEB_VERSION"
  )
  local missing=() p have
  for p in "${want[@]}"; do
    have=$(dpkg-query -W -f '${db:Status-Abbrev}${Version}' "${p%%=*}" 2>/dev/null || true)
    [[ $have == "ii ${p#*=}" ]] || missing+=("$p")
  done
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}" ca-certificates
  fi
  command -v podman >/dev/null 2>&1 || die "no podman after installing it"
}

# write_if_changed FILE CONTENT: 0 when FILE changed.
write_if_changed() {
  local file=$1 content=$2
  [[ -f $file && $(cat "$file") == "$content" ]] && return 1
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.tmp" && mv "$file.tmp" "$file"
  log "wrote $file"
}

# hard_limit ulimit-flag cap: the hard limit, at most cap ("unlimited" counts as above it).
hard_limit() {
  local v
  v=$(ulimit -H "$1")
  if [[ $v == unlimited ]] || ((v > $2)); then echo "$2"; else echo "$v"; fi
}

# netavark starts aardvark-dns (the DNS server of a network such as kind's, a daemon that lives
# as long as a container uses the network) from the podman CLI process, so the daemon inherits
# every file descriptor of podman's caller: `flock /tmp/apimdev-rig.lock kind create cluster`
# then never releases the lock (nor a CI runner its output pipe). Podman finds aardvark-dns in
# helper_binaries_dir: put this wrapper first, closing everything beyond stdio.
install_aardvark_wrapper() {
  local real='' d content
  for d in /usr/libexec/podman /usr/lib/podman; do
    if [[ -x $d/aardvark-dns ]]; then real=$d/aardvark-dns; break; fi
  done
  [[ -n $real ]] || die "no aardvark-dns in /usr/libexec/podman or /usr/lib/podman"
  content=$(cat <<EOF
#!/bin/bash
# Written by scripts/ci/ensure-podman.sh: aardvark-dns must not keep the descriptors that
# netavark inherited from the caller of podman (e.g. the lock of \`flock FILE kind ...\`).
for fd in /proc/\$\$/fd/*; do
  fd=\${fd##*/}
  if ((fd > 2)); then eval "exec \${fd}>&-"; fi
done
exec $real "\$@"
EOF
)
  if write_if_changed "$HELPER_DIR/aardvark-dns" "$content"; then chmod 0755 "$HELPER_DIR/aardvark-dns"; fi
}

CONF_CHANGED=false
configure() {
  local base capdrop nofile nproc
  install_aardvark_wrapper
  base=$(printf '%s\n' \
    '# Written by scripts/ci/ensure-podman.sh: pin the network backend (podman 4.3 would pick' \
    '# CNI on a machine that already has containers and CNI configs), and look for helper' \
    '# binaries in our directory first (an aardvark-dns wrapper closing inherited descriptors).' \
    '[engine]' \
    "helper_binaries_dir = [\"$HELPER_DIR\", \"/usr/local/libexec/podman\", \"/usr/local/lib/podman\", \"/usr/libexec/podman\", \"/usr/lib/podman\"]" \
    '' \
    '[network]' \
    'network_backend = "netavark"')
  if write_if_changed "$BASE_CONF" "$base"; then CONF_CHANGED=true; fi
  if lacks_cap_sys_resource; then
    log "CAP_SYS_RESOURCE is missing from the capability bounding set: using runc-capdrop"
    install_capdrop
    # Podman 4.3 (rootful) asks for nofile=nproc=1048576 unless configured, and runc then fails
    # with "error setting rlimits for ready process: error setting rlimit type 7 (then 6):
    # operation not permitted": raising a hard limit needs CAP_SYS_RESOURCE. Podman itself runs
    # with nofile raised to min(hard, 1048576) and nproc lowered to min(hard, 32768); conmon and
    # runc inherit those, so ask for exactly them. (RLIMIT_NPROC does not bind uid 0 anyway.)
    nofile=$(hard_limit -n 1048576)
    nproc=$(hard_limit -u 32768)
    capdrop=$(printf '%s\n' \
      '# Written by scripts/ci/ensure-podman.sh because CAP_SYS_RESOURCE is missing from the' \
      '# capability bounding set: run containers through runc-capdrop (scripts/ci/runc-capdrop).' \
      '[containers]' \
      "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" \
      '' \
      '[engine]' \
      'runtime = "capdrop"' \
      'runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "capdrop"]' \
      '' \
      '[engine.runtimes]' \
      "capdrop = [\"$CAPDROP_BIN\"]")
    if write_if_changed "$CAPDROP_CONF" "$capdrop"; then CONF_CHANGED=true; fi
  elif [[ -e $CAPDROP_CONF ]]; then
    log "CAP_SYS_RESOURCE is present: removing $CAPDROP_CONF"
    rm -f "$CAPDROP_CONF"
    CONF_CHANGED=true
  fi
}

# Containers may talk to each other and to this machine, but nothing they send may leave it
# through the default-route interfaces. A base chain of its own, at a priority before iptables'
# filter FORWARD (0): netavark inserts its NETAVARK_FORWARD jump (which ACCEPTs everything from
# its subnets) at the top of FORWARD whenever it is missing, so an iptables rule of ours could
# end up behind it; a reject in any base chain is final. Replaced atomically on every run.
isolate_egress() {
  if ! $ISOLATE; then
    if nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then
      nft delete table inet "$NFT_TABLE"
      log "no --isolate-egress: removed nft table inet $NFT_TABLE"
    fi
    return
  fi
  local ext bridge rules='' existed=false
  for ext in $( (ip -4 route show default; ip -6 route show default) |
    awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | sort -u); do
    for bridge in 'podman*' 'cni-podman*'; do
      rules+="    iifname \"$bridge\" oifname \"$ext\" reject with icmpx type no-route"$'\n'
    done
  done
  nft list table inet "$NFT_TABLE" >/dev/null 2>&1 && existed=true
  nft -f - <<EOF
table inet $NFT_TABLE
delete table inet $NFT_TABLE
table inet $NFT_TABLE {
  chain forward {
    type filter hook forward priority -5; policy accept;
$rules  }
}
EOF
  if ! $existed; then
    log "containers on podman bridges cannot send traffic out of this machine (nft table inet $NFT_TABLE; --isolate-egress)"
  fi
}

start_service() {
  mkdir -p "$(dirname "$SOCK")"
  # Nobody answers on it (checked by the caller): a socket file left by a dead service.
  rm -f "$SOCK"
  log "starting podman system service --time=0 unix://$SOCK (log: $LOGFILE)"
  start_daemon "$LOGFILE" "$PIDFILE" podman --log-level=warn system service --time=0 "unix://$SOCK"
}

# wait_for_podman PID: 0 once the socket answers, 1 if PID exits first, 2 on timeout.
wait_for_podman() {
  local pid=$1 deadline=$((SECONDS + WAIT_SECONDS))
  until podman_answers; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 2
    sleep 0.5
  done
}

ensure_service() {
  local pid rc
  if podman_answers; then
    if ! $CONF_CHANGED; then return 0; fi
    if ! pid=$(our_pid); then
      log "WARNING: configuration changed, but the service on $SOCK is not ours: restart it to apply"
      return 0
    fi
    log "configuration changed: restarting the podman service (pid $pid)"
    "$CI_DIR/stop-podman.sh"
  elif pid=$(our_pid); then
    # Ours, but silent: still starting, or shutting down (stop-podman.sh). Wait for either.
    log "podman service (pid $pid) does not answer yet; waiting"
    rc=0
    wait_for_podman "$pid" || rc=$?
    ((rc != 2)) || die "podman service (pid $pid) did not answer within ${WAIT_SECONDS}s (see $LOGFILE)"
    if podman_answers; then return 0; fi
  fi
  rm -f "$PIDFILE"
  start_service
  rc=0
  wait_for_podman "$(cat "$PIDFILE")" || rc=$?
  if ((rc != 0)); then
    tail -n 40 "$LOGFILE" >&2 || true
    ((rc == 1)) && { rm -f "$PIDFILE"; die "podman service exited while starting (see $LOGFILE)"; }
    die "podman service did not answer within ${WAIT_SECONDS}s (see $LOGFILE)"
  fi
}

# Privileged run and exec of a FROM-scratch image (nothing can be pulled on this machine):
# proves that the OCI runtime can start privileged containers here, on both paths.
check_privileged_run() {
  local tmp out old new name=apimdev-podman-check-$$
  find_go >/dev/null || { log "no Go toolchain: skipping the privileged-run check"; return; }
  tmp=$(mktemp -d)
  build_check_context "$tmp"
  old=$(podman image inspect --format '{{.Id}}' "$CHECK_IMAGE" 2>/dev/null || true)
  podman build -q -t "$CHECK_IMAGE" "$tmp" >/dev/null 2>&1 \
    || { rm -rf "$tmp"; die "podman build of the check image failed"; }
  rm -rf "$tmp"
  new=$(podman image inspect --format '{{.Id}}' "$CHECK_IMAGE")
  # Each build is a new image: drop the one it replaced (only that one) rather than pile them up.
  if [[ -n $old && $old != "$new" ]]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
  out=$(podman run --rm --privileged "$CHECK_IMAGE" 2>&1) || die "podman run --privileged failed: $out"
  log "run: $out"
  out=$(podman run -d --rm --privileged --name "$name" "$CHECK_IMAGE" sleep 2>&1) \
    || die "podman run -d --privileged failed: $out"
  out=$(podman exec "$name" /check 2>&1) || { podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; die "podman exec failed: $out"; }
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  log "exec: $out"
  out=$(curl -fsS --max-time 10 --unix-socket "$SOCK" http://d/version) || die "GET /version on $SOCK failed"
  log "API: $(jq -r '"Docker API \(.ApiVersion) (min \(.MinAPIVersion)), \(.Components[0].Name) \(.Version)"' <<<"$out" 2>/dev/null || echo "$out")"
}

main() {
  if [[ $(id -u) != 0 ]]; then
    podman_answers || die "podman does not answer on $SOCK and setting it up needs root"
    describe
  else
    install_packages
    configure
    isolate_egress
    ensure_service
    describe
  fi
  if $CHECK; then check_privileged_run; fi
}

main
