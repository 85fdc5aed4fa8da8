#!/usr/bin/env bash
# manual.sh — the manual path apimdev replaces, as a developer would type it:
# kind create cluster, kind load docker-image, kubectl apply of the portal's
# YAML, kubectl rollout status, kubectl port-forward, curl. It is the baseline
# of `make bench` (scripts/bench drives it; it is not run on its own).
#
# Inputs (environment): KIND, KUBECTL, CLUSTER, NODE_IMAGE, IMAGE, PORTAL_YAML,
# KUBECONFIG_FILE, HTTP_PORT, HTTPS_PORT, PROBE_PATH, PF_LOG, and optionally
# KIND_CONFIG (a kind config file; the bench adds one extraPortMapping to a
# NodePort, used after the clock has stopped).
# stderr: one "manual: <stage> <seconds>" line per stage. The kubectl
# port-forward keeps running after this script exits (as it would in the
# developer's terminal); the bench stops it through its process group.
set -euo pipefail
: "${KIND:?}" "${KUBECTL:?}" "${CLUSTER:?}" "${NODE_IMAGE:?}" "${IMAGE:?}" "${PORTAL_YAML:?}"
: "${KUBECONFIG_FILE:?}" "${HTTP_PORT:?}" "${HTTPS_PORT:?}" "${PROBE_PATH:?}" "${PF_LOG:?}"

last=$(date +%s.%N)
stage() { # stage NAME: print how long the stage since the last one took
  local now; now=$(date +%s.%N)
  awk -v a="$last" -v b="$now" -v n="$1" 'BEGIN { printf "manual: %s %.3f\n", n, b - a }' >&2
  last=$now
}
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

"$KIND" create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG_FILE" \
  ${KIND_CONFIG:+--config "$KIND_CONFIG"} >/dev/null 2>&1
stage kind-create
"$KIND" load docker-image "$IMAGE" --name "$CLUSTER" >/dev/null 2>&1
stage kind-load
k apply -f "$PORTAL_YAML" >/dev/null
stage kubectl-apply
k -n apim-gateway rollout status deployment/contoso-gw --timeout 240s >/dev/null
stage rollout-status
k -n apim-gateway port-forward --address 127.0.0.1 svc/contoso-gw-live-traffic "$HTTP_PORT:80" "$HTTPS_PORT:443" >"$PF_LOG" 2>&1 &
ok=""
for _ in $(seq 1 300); do # at most ~30 s
  if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT$PROBE_PATH" 2>/dev/null &&
     curl -fsSk -o /dev/null --max-time 2 "https://127.0.0.1:$HTTPS_PORT$PROBE_PATH" 2>/dev/null; then
    ok=1; break
  fi
  sleep 0.1
done
[ -n "$ok" ] || { echo "manual: the port-forward never answered" >&2; cat "$PF_LOG" >&2; exit 1; }
stage port-forward-curl
