#!/usr/bin/env bash
# stop-podman.sh — stop the `podman system service` that scripts/ci/ensure-podman.sh started,
# and only that one.
#
# Reads the pid recorded by ensure-podman.sh ($APIMDEV_PODMAN_PIDFILE, default
# /run/apimdev-podman-service.pid). If there is no such record, or the process is gone or is
# not podman, it stops nothing: a service somebody else runs is never touched. Containers keep
# running either way (rootful podman containers do not depend on the API service).
#
# Usage: scripts/ci/stop-podman.sh [--clean]
#   --clean  also remove every podman container labelled io.x-k8s.kind.cluster (nodes of kind
#            clusters on the podman provider, whoever made them) with their anonymous volumes,
#            as `kind delete cluster` would.
set -euo pipefail

PIDFILE=${APIMDEV_PODMAN_PIDFILE:-/run/apimdev-podman-service.pid}
SOCK=${APIMDEV_PODMAN_SOCK:-/run/podman/podman.sock}
WAIT_SECONDS=${APIMDEV_PODMAN_STOP_WAIT:-30}
CLEAN=false

for arg in "$@"; do
  case $arg in
    --clean) CLEAN=true ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "stop-podman: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[stop-podman] %s\n' "$*" >&2; }

stop_service() {
  local pid deadline
  if [[ ! -s $PIDFILE ]]; then
    log "no $PIDFILE: the podman service was not started by ensure-podman; not stopping it"
    return
  fi
  pid=$(cat "$PIDFILE")
  if ! kill -0 "$pid" 2>/dev/null || [[ $(cat "/proc/$pid/comm" 2>/dev/null) != podman ]] ||
    ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'system service'; then
    log "pid $pid is not a running podman service; removing the stale $PIDFILE"
    rm -f "$PIDFILE"
    return
  fi
  log "stopping the podman service (pid $pid)"
  kill -TERM "$pid"
  deadline=$((SECONDS + WAIT_SECONDS))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "the podman service did not exit within ${WAIT_SECONDS}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  # Only our record: ensure-podman.sh may already have started (and recorded) a new service.
  if [[ $(cat "$PIDFILE" 2>/dev/null) == "$pid" ]]; then rm -f "$PIDFILE"; fi
  # A service killed hard leaves its socket file behind; nobody listens on it any more.
  if [[ -S $SOCK ]] && ! curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    rm -f "$SOCK"
  fi
  log "podman service stopped"
}

clean_kind_nodes() {
  command -v podman >/dev/null 2>&1 || return 0
  local names name vols
  names=$(podman ps -a --filter label=io.x-k8s.kind.cluster --format '{{.Names}}')
  if [[ -z $names ]]; then
    log "no kind node containers in podman"
    return
  fi
  for name in $names; do
    log "removing kind node container $name"
    podman rm -f -v -t 0 "$name" >/dev/null || log "WARNING: could not remove $name"
    # kind labels a node's anonymous /var volume with "<node name>=true".
    vols=$(podman volume ls -q --filter "label=$name" || true)
    if [[ -n $vols ]]; then
      # shellcheck disable=SC2086 # one volume name a word
      podman volume rm -f $vols >/dev/null || log "WARNING: could not remove volumes of $name"
    fi
  done
}

stop_service
if $CLEAN; then clean_kind_nodes; fi
