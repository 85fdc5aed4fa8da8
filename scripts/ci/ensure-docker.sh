#!/usr/bin/env bash
# ensure-docker.sh — the e2e rig's Docker engine: make sure one answers, starting one if needed.
# This is the rig's script (CI, `make e2e`, the bench), never a user's: `apimdev docker install`
# installs and starts the distribution's own service instead (internal/hostsetup).
#
# If `docker info` already answers, this prints which engine it is and does nothing else.
# Otherwise (as root, e.g. in CI on a fresh Debian 12) it:
#   1. installs Debian's docker.io (+ iptables) with apt-get, without letting the package
#      start a daemon of its own (a policy-rc.d for the duration of apt-get, removed on every
#      way out);
#   2. only when the capability bounding set lacks CAP_SYS_RESOURCE (some VMs): builds
#      scripts/ci/runc-capdrop (a static Go runc wrapper) and makes it dockerd's default
#      runtime, so privileged containers (kind nodes) can start at all;
#   3. starts dockerd in the background (log: $APIMDEV_DOCKERD_LOG), waits until it answers,
#      and records its pid in $APIMDEV_DOCKERD_PIDFILE so scripts/ci/stop-docker.sh stops
#      only a daemon that this script started;
#   4. with --isolate-egress, for a daemon it started: rejects traffic that containers would
#      route out of the machine (DOCKER-USER rules on the default-route interfaces). Tests on
#      the rig must only talk to local addresses, and a kind cluster otherwise leaks e.g.
#      Service IP traffic sent before kube-proxy is ready. Without it, the rules an earlier
#      run added are taken out again.
# Idempotent: a second run finds the engine answering and returns at once.
#
# Usage: scripts/ci/ensure-docker.sh [--isolate-egress] [--check]
#   --isolate-egress  containers may not send traffic out of this machine (the rig passes it)
#   --check           also build a tiny FROM-scratch image locally and `docker run --privileged` it.
set -euo pipefail

CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PIDFILE=${APIMDEV_DOCKERD_PIDFILE:-/run/apimdev-dockerd.pid}
LOGFILE=${APIMDEV_DOCKERD_LOG:-/var/log/apimdev-dockerd.log}
WAIT_SECONDS=${APIMDEV_DOCKERD_WAIT:-90}
# shellcheck source=scripts/ci/lib-capdrop.sh
. "$CI_DIR/lib-capdrop.sh" # lacks_cap_sys_resource, find_go, apt_install, install_capdrop
CHECK=false
ISOLATE=false

for arg in "$@"; do
  case $arg in
    --check) CHECK=true ;;
    --isolate-egress) ISOLATE=true ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "ensure-docker: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[ensure-docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

docker_answers() { timeout 15 docker info >/dev/null 2>&1; }

describe_engine() {
  local v rt
  v=$(timeout 15 docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
  rt=$(timeout 15 docker info --format '{{.DefaultRuntime}}' 2>/dev/null || echo '?')
  if [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "docker engine $v answers (dockerd pid $(cat "$PIDFILE"), started by ensure-docker; default runtime $rt)"
  else
    log "docker engine $v answers (not started by ensure-docker; default runtime $rt)"
  fi
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v containerd >/dev/null 2>&1 || missing+=(containerd)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}" ca-certificates
  fi
  # Debian's docker.io ships a 20.10 CLI in /usr/bin; a newer one earlier in PATH is fine too.
  command -v docker >/dev/null 2>&1 || die "no docker CLI after installing docker.io"
}

start_dockerd() {
  local args=(--log-level=warn)
  if lacks_cap_sys_resource; then
    log "CAP_SYS_RESOURCE is missing from the capability bounding set: using runc-capdrop"
    install_capdrop
    # Lowering an OOM score needs CAP_SYS_RESOURCE too: keep dockerd's own at 0.
    args+=(--add-runtime "capdrop=$CAPDROP_BIN" --default-runtime capdrop --oom-score-adjust 0)
  fi
  log "starting dockerd ${args[*]} (log: $LOGFILE)"
  start_daemon "$LOGFILE" "$PIDFILE" dockerd "${args[@]}"
}

# wait_for_docker PID: 0 once docker answers, 1 if PID exits first, 2 on timeout.
wait_for_docker() {
  local pid=$1 deadline=$((SECONDS + WAIT_SECONDS))
  until docker_answers; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 2
    sleep 1
  done
}

# Containers may talk to each other and to this machine, but nothing they send may leave it
# through the default-route interfaces. Idempotent (-C before -I); dockerd keeps DOCKER-USER
# rules while it runs, and this runs again on every call for a daemon we started. Without
# --isolate-egress the same rules are deleted, so the engine converges to what was asked.
egress_rules() { # the rules of --isolate-egress, one per line
  local ext bridge
  for ext in $(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | sort -u); do
    for bridge in docker0 br-+; do
      echo "DOCKER-USER -i $bridge -o $ext -j REJECT --reject-with icmp-net-unreachable"
    done
  done
}

isolate_egress() {
  local rule added=false removed=false
  while read -r -a rule; do
    if $ISOLATE; then
      if ! iptables -C "${rule[@]}" 2>/dev/null; then
        iptables -I "${rule[@]}"
        added=true
      fi
    else
      while iptables -C "${rule[@]}" 2>/dev/null; do
        iptables -D "${rule[@]}"
        removed=true
      done
    fi
  done < <(egress_rules)
  if $added; then log "containers cannot send traffic out of this machine (DOCKER-USER; --isolate-egress)"; fi
  if $removed; then log "removed the DOCKER-USER rules of an earlier --isolate-egress"; fi
}

# A FROM-scratch image with a static Go binary, run privileged: proves the engine can start
# privileged containers here (nothing can be pulled on this machine).
check_privileged_run() {
  local tmp out
  find_go >/dev/null || { log "no Go toolchain: skipping the privileged-run check"; return; }
  tmp=$(mktemp -d)
  build_check_context "$tmp"
  DOCKER_BUILDKIT=0 docker build -q -t apimdev-ci/docker-check:local "$tmp" >/dev/null 2>&1 \
    || { rm -rf "$tmp"; die "docker build of the check image failed"; }
  rm -rf "$tmp"
  out=$(docker run --rm --privileged apimdev-ci/docker-check:local 2>&1) \
    || die "docker run --privileged failed: $out"
  log "$out"
}

our_pid() { # the pid of a running dockerd that this script started, if any
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

main() {
  local pid rc
  if docker_answers; then
    describe_engine
  else
    [[ $(id -u) == 0 ]] || die "docker does not answer and starting it needs root"
    if pid=$(our_pid); then
      # Ours, but silent: still starting, or shutting down (stop-docker.sh). Wait for either.
      log "dockerd (pid $pid) does not answer yet; waiting"
      rc=0
      wait_for_docker "$pid" || rc=$?
      ((rc != 2)) || die "dockerd (pid $pid) did not answer within ${WAIT_SECONDS}s (see $LOGFILE)"
    fi
    if ! docker_answers; then
      rm -f "$PIDFILE"
      install_packages
      start_dockerd
      rc=0
      wait_for_docker "$(cat "$PIDFILE")" || rc=$?
      if ((rc != 0)); then
        tail -n 40 "$LOGFILE" >&2 || true
        ((rc == 1)) && { rm -f "$PIDFILE"; die "dockerd exited while starting (see $LOGFILE)"; }
        die "dockerd did not answer within ${WAIT_SECONDS}s (see $LOGFILE)"
      fi
    fi
    describe_engine
  fi
  if our_pid >/dev/null; then isolate_egress; fi
  if $CHECK; then check_privileged_run; fi
}

main
