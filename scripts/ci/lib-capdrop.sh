# lib-capdrop.sh — helpers shared by scripts/ci/ensure-docker.sh and ensure-podman.sh, the e2e
# rig's (never run by apimdev on a user's machine).
# Source it (it runs nothing by itself). The sourcing script defines log() and die() and sets
# CI_DIR to scripts/ci.
#
#   lacks_cap_sys_resource  true when CAP_SYS_RESOURCE is missing from the bounding set
#   find_go                 prints the Go toolchain to use
#   apt_install PKG...      apt-get install (update once first) without starting services; the
#                           policy-rc.d that holds them back is removed on every way out
#   CAPDROP_SOURCES         the runc wrapper's source files (scripts/ci/runc-capdrop)
#   build_capdrop OUT GO    builds the runc wrapper (static, stdlib only) into the file OUT
#   install_capdrop         builds scripts/ci/runc-capdrop into $CAPDROP_BIN (when changed)
#   build_check_context DIR writes a FROM-scratch image context (Dockerfile + static /check
#                           binary printing its CapEff) into DIR
#   start_daemon LOG PIDFILE CMD...  starts CMD detached (setsid, nohup, only stdio kept),
#                           appending to LOG, its pid written to PIDFILE
# shellcheck shell=bash

CAPDROP_DIR=/usr/local/libexec/apimdev
CAPDROP_BIN=$CAPDROP_DIR/runc-capdrop

# True when CAP_SYS_RESOURCE (bit 24) is missing from this process's bounding set.
lacks_cap_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else return 1
  fi
}

APT_UPDATED=false
APT_POLICY=/usr/sbin/policy-rc.d
# The rig's policy-rc.d: forbids every service start by a package's maintainer scripts.
APT_POLICY_CONTENT=$'#!/bin/sh\n# apimdev e2e rig: no package may start a service while the rig installs it\nexit 101'

# remove_own_policy: take out the policy-rc.d apt_install wrote (and only that one).
remove_own_policy() {
  if [[ -f $APT_POLICY && $(cat "$APT_POLICY") == "$APT_POLICY_CONTENT" ]]; then rm -f "$APT_POLICY"; fi
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! $APT_UPDATED; then
    apt-get update -qq >&2
    APT_UPDATED=true
  fi
  # A policy-rc.d that forbids starting services: a package must not launch its own daemon
  # (through its init script) with settings other than the rig's. It is removed on every
  # way out, Ctrl-C and a failed apt-get included (a policy-rc.d left behind blocks the
  # service starts of later upgrades); one that was there before is left as it was.
  local own_policy=false rc=0
  if [[ ! -e $APT_POLICY ]]; then
    trap remove_own_policy EXIT
    trap 'remove_own_policy; exit 130' INT TERM
    printf '%s\n' "$APT_POLICY_CONTENT" >"$APT_POLICY" && chmod 0755 "$APT_POLICY" && own_policy=true
  fi
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2 || rc=$?
  if $own_policy; then
    remove_own_policy
    trap - EXIT INT TERM
  fi
  return "$rc"
}

# The runc wrapper's sources: its command and package capdrop (which apimdev itself also
# links, for `apimdev docker install --runtime-wrapper`).
CAPDROP_SOURCES=("$CI_DIR/runc-capdrop/main.go" "$CI_DIR/runc-capdrop/capdrop/capdrop.go")

# build_capdrop OUT GO: build the wrapper (static, stdlib only) into the file OUT with the Go
# toolchain GO, in a throwaway module laid out as this repository is (the command imports
# github.com/apimdev/apimdev/scripts/ci/runc-capdrop/capdrop), never with the project's go.mod.
build_capdrop() {
  local out=$1 go=$2 tmp rel
  tmp=$(mktemp -d)
  printf 'module github.com/apimdev/apimdev\n\ngo 1.24\n' >"$tmp/go.mod"
  for rel in runc-capdrop/main.go runc-capdrop/capdrop/capdrop.go; do
    mkdir -p "$(dirname "$tmp/scripts/ci/$rel")"
    cp "$CI_DIR/$rel" "$tmp/scripts/ci/$rel"
  done
  (cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    "$go" build -trimpath -ldflags "-s -w" -o "$out" ./scripts/ci/runc-capdrop) >&2 || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

# Install the runc wrapper as $CAPDROP_BIN; rebuilt only when its sources change.
install_capdrop() {
  local sum go
  sum=$(cat "${CAPDROP_SOURCES[@]}" | sha256sum | cut -c1-16)
  if [[ -x $CAPDROP_BIN && $(cat "$CAPDROP_BIN.sum" 2>/dev/null) == "$sum" ]]; then
    return
  fi
  go=$(find_go) || die "CAP_SYS_RESOURCE is missing and no Go toolchain is installed to build runc-capdrop"
  log "building $CAPDROP_BIN (runc wrapper dropping capabilities outside the bounding set)"
  mkdir -p "$CAPDROP_DIR"
  build_capdrop "$CAPDROP_BIN.new" "$go" || die "building runc-capdrop failed"
  mv "$CAPDROP_BIN.new" "$CAPDROP_BIN"
  echo "$sum" >"$CAPDROP_BIN.sum"
}

# A FROM-scratch image context with a static Go binary that prints its CapEff (or, as
# `/check sleep`, stays up 5 minutes for an exec check): running it --privileged proves the
# engine can start privileged containers here (nothing can be pulled on this machine).
# Needs a Go toolchain (check find_go first).
build_check_context() {
  local dir=$1 go
  go=$(find_go) || die "no Go toolchain to build the check image"
  cat >"$dir/main.go" <<'EOF'
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" { // stay up, for an exec check
		time.Sleep(5 * time.Minute)
		return
	}
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			fmt.Println("privileged container ok,", l)
		}
	}
}
EOF
  printf 'module apimdev/dockercheck\n\ngo 1.24\n' >"$dir/go.mod"
  printf 'FROM scratch\nCOPY check /check\nENTRYPOINT ["/check"]\n' >"$dir/Dockerfile"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local "$go" build -o check .) >&2
}

# start_daemon LOG PIDFILE CMD...: the daemon outlives this script and the CI step that ran
# it (setsid + nohup). It must not keep what this script inherited beyond stdio: the lock file
# of `flock FILE make e2e` held by a daemon would never be released.
start_daemon() {
  local logfile=$1 pidfile=$2
  shift 2
  mkdir -p "$(dirname "$logfile")" "$(dirname "$pidfile")"
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec ${fd}>&-"; fi
    done
    # From /: a daemon keeps its working directory for life, and hands it to
    # what it starts (Podman's conmon fails "Failed to get working directory",
    # so `start` answers "write child: broken pipe", once the directory the
    # script ran in is gone: a temporary clone, a removed worktree).
    cd /
    exec setsid nohup "$@" </dev/null >>"$logfile" 2>&1
  ) &
  echo $! >"$pidfile"
}
