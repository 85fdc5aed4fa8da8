#!/bin/sh
# A Helm post-renderer: helm install ... --post-renderer ./overlay/post-render.sh
# Helm's render arrives on stdin; the overlay's result goes to stdout.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
cat >"$dir/chart.yaml"
kubectl kustomize "$dir"
