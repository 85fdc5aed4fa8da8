#!/usr/bin/env bash
# otelcol-image.sh — the OpenTelemetry Collector image the product pins,
# otel/opentelemetry-collector-contrib:0.165.0, built here from Go modules
# only (collector core v0.165.0 / v1.71.0 and contrib v0.165.0, from the Go
# module proxy) into a FROM scratch image under the upstream name and tag,
# because nothing can be pulled on the rig. The distribution is
# scripts/e2e/otelcol (its own module, outside _gosrc so the node image's hash
# does not cover it: otlp receiver, batch processor, prometheus
# and debug exporters), laid out as the upstream image is: /otelcol-contrib,
# --config /etc/otelcol-contrib/config.yaml. Cached: a second run only checks
# the image exists. Prints the image reference as the last line of stdout.
set -euo pipefail
VERSION=0.165.0
IMAGE=otel/opentelemetry-collector-contrib:$VERSION
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/otelcol
CACHE=${APIMDEV_E2E_CACHE:-$HOME/.cache/apimdev-e2e}
OUT=$CACHE/out/otelcol-$VERSION
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "otelcol-image: $IMAGE exists" >&2
  echo "$IMAGE"; exit 0
fi
ctx=$(mktemp -d); mod=$(mktemp -d); trap 'rm -rf "$ctx" "$mod"' EXIT
if [ ! -x "$OUT/otelcol-contrib" ]; then
  for f in main.go go.mod go.sum; do
    [ -f "$SRC/$f" ] || { echo "otelcol-image: missing $SRC/$f" >&2; exit 1; }
  done
  mkdir -p "$OUT"
  echo "otelcol-image: building otelcol-contrib $VERSION from $SRC" >&2
  # Built from a copy, so the repository is never written; -mod=readonly keeps
  # the versions to the committed go.mod and go.sum.
  cp "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" "$mod/"
  (cd "$mod" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags '-s -w' \
    -o "$OUT/.otelcol-contrib.tmp" .) >&2
  mv "$OUT/.otelcol-contrib.tmp" "$OUT/otelcol-contrib"
fi
cp "$OUT/otelcol-contrib" "$ctx/otelcol-contrib"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY otelcol-contrib /otelcol-contrib
USER 10001:10001
EXPOSE 4317 4318 8888 8889
ENTRYPOINT ["/otelcol-contrib"]
CMD ["--config", "/etc/otelcol-contrib/config.yaml"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" --label apimdev.e2e=built-from-go-module \
  -f "$ctx/Dockerfile" "$ctx" >&2
echo "$IMAGE"
