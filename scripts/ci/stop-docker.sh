#!/usr/bin/env bash
# stop-docker.sh — stop the dockerd that scripts/ci/ensure-docker.sh started, and only that one.
#
# Reads the pid recorded by ensure-docker.sh ($APIMDEV_DOCKERD_PIDFILE, default
# /run/apimdev-dockerd.pid). If there is no such record, or the process is gone or is not
# dockerd, it does nothing: a daemon somebody else runs is never touched.
# dockerd stops its containers and its managed containerd on SIGTERM; we wait (bounded) for it.
set -euo pipefail

PIDFILE=${APIMDEV_DOCKERD_PIDFILE:-/run/apimdev-dockerd.pid}
WAIT_SECONDS=${APIMDEV_DOCKERD_STOP_WAIT:-60}

log() { printf '[stop-docker] %s\n' "$*" >&2; }

if [[ ! -s $PIDFILE ]]; then
  log "no $PIDFILE: dockerd was not started by ensure-docker; nothing to do"
  exit 0
fi
pid=$(cat "$PIDFILE")
if ! kill -0 "$pid" 2>/dev/null || [[ $(cat "/proc/$pid/comm" 2>/dev/null) != dockerd ]]; then
  log "pid $pid is not a running dockerd; removing the stale $PIDFILE"
  rm -f "$PIDFILE"
  exit 0
fi

log "stopping dockerd (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + WAIT_SECONDS))
while kill -0 "$pid" 2>/dev/null; do
  if ((SECONDS >= deadline)); then
    log "dockerd did not exit within ${WAIT_SECONDS}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
# Only our record: ensure-docker.sh may already have started (and recorded) a new daemon.
if [[ $(cat "$PIDFILE" 2>/dev/null) == "$pid" ]]; then rm -f "$PIDFILE"; fi
log "dockerd stopped"
