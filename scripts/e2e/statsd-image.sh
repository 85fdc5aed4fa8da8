#!/usr/bin/env bash
# statsd-image.sh — the statsd exporter image the prod profile uses,
# prom/statsd-exporter:v0.31.0, built here from the real exporter's Go module
# (github.com/prometheus/statsd_exporter, from the Go module proxy) into a
# FROM scratch image under the upstream name and tag, because nothing can be
# pulled on the rig. Cached: a second run only checks the image exists.
# Prints the image reference as the last line of stdout.
set -euo pipefail
VERSION=v0.31.0
IMAGE=prom/statsd-exporter:$VERSION
CACHE=${APIMDEV_E2E_CACHE:-$HOME/.cache/apimdev-e2e}
OUT=$CACHE/out/statsd-exporter-$VERSION
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "statsd-image: $IMAGE exists" >&2
  echo "$IMAGE"; exit 0
fi
if [ ! -x "$OUT/statsd_exporter" ]; then
  mkdir -p "$OUT"
  echo "statsd-image: building github.com/prometheus/statsd_exporter@$VERSION" >&2
  CGO_ENABLED=0 GOBIN="$OUT" go install -trimpath -ldflags '-s -w' "github.com/prometheus/statsd_exporter@$VERSION" >&2
fi
ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
cp "$OUT/statsd_exporter" "$ctx/statsd_exporter"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY statsd_exporter /bin/statsd_exporter
USER 65534
EXPOSE 9102 9125 9125/udp
ENTRYPOINT ["/bin/statsd_exporter"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" --label apimdev.e2e=built-from-go-module "$ctx" >&2
echo "$IMAGE"
