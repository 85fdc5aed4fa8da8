# shellcheck shell=bash
# Builds every Go binary the node image needs, each cached under $CACHE/out/<name>-<version>/.
# Sourced by node-image.sh after lib/common.sh. A build goes to a temporary directory that is
# renamed into place only when it succeeded, so an interrupted run never leaves a half result.

K8S_OUT=$CACHE/out/kubernetes-$K8S_VERSION
ETCD_OUT=$CACHE/out/etcd-$ETCD_VERSION
COREDNS_OUT=$CACHE/out/coredns-$COREDNS_VERSION
CRICTL_OUT=$CACHE/out/crictl-$CRICTL_VERSION
KIND_OUT=$CACHE/out/kind-$KIND_VERSION
PAUSE_OUT=$CACHE/out/pause-$(sha256_of_files "$E2E_DIR/_gosrc/pause/main.go")
# shellcheck source=scripts/ci/lib-capdrop.sh
. "$CI_DIR/lib-capdrop.sh" # CAPDROP_SOURCES, build_capdrop
CAPDROP_OUT=$CACHE/out/runc-capdrop-$(sha256_of_files "${CAPDROP_SOURCES[@]}")

K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)

# The staging repositories that k8s.io/kubernetes replaces with ./staging/src/... in its own
# go.mod; a wrapper module must point each at its published v0.x.y tag instead.
K8S_STAGING_MODULES=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver)

# finish_out TMPDIR OUTDIR: atomically publish a finished build directory.
finish_out() {
  rm -rf "$2"
  mv "$1" "$2"
}

# new_module DIR MODULE: an empty wrapper module (go.mod only) in DIR.
new_module() {
  rm -rf "$1"
  mkdir -p "$1"
  printf 'module %s\n\ngo 1.24.0\n' "$2" >"$1/go.mod"
}

build_kubernetes() {
  if [[ -x $K8S_OUT/kubectl ]]; then log "kubernetes $K8S_VERSION: cached"; return; fi
  local mod=$CACHE/src/kubernetes-$K8S_VERSION tmp=$CACHE/out/.kubernetes.tmp m pkgs=()
  new_module "$mod" apimdev-e2e/kubernetes
  {
    printf '\ngodebug default=go1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    for m in "${K8S_STAGING_MODULES[@]}"; do
      printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$K8S_STAGING_VERSION"
    done
    printf ')\n'
  } >>"$mod/go.mod"
  for m in "${K8S_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$m"); done

  local minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  local major=${K8S_VERSION#v}; major=${major%%.*}
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done

  log "kubernetes $K8S_VERSION: resolving modules (large download on a cold cache)"
  (cd "$mod" && "$GO" get "${pkgs[@]/%/@$K8S_VERSION}") >"$CACHE/logs/kubernetes-get.log" 2>&1 \
    || { tail -n 30 "$CACHE/logs/kubernetes-get.log" >&2; die "go get kubernetes failed"; }
  log "kubernetes $K8S_VERSION: building ${K8S_BINARIES[*]}"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # -mod=mod: kubectl's kustomize dependencies miss go.sum lines after a plain `go get`.
  (cd "$mod" && "$GO" build "${GO_BUILD_FLAGS[@]}" -mod=mod -ldflags "$ld" -o "$tmp/" "${pkgs[@]}") \
    >"$CACHE/logs/kubernetes-build.log" 2>&1 \
    || { tail -n 30 "$CACHE/logs/kubernetes-build.log" >&2; die "building kubernetes failed"; }
  "$tmp/kubeadm" version -o short | grep -qx "$K8S_VERSION" || die "kubeadm is not stamped $K8S_VERSION"
  finish_out "$tmp" "$K8S_OUT"
}

build_etcd() {
  if [[ -x $ETCD_OUT/etcd ]]; then log "etcd $ETCD_VERSION: cached"; return; fi
  local mod=$CACHE/src/etcd-$ETCD_VERSION tmp=$CACHE/out/.etcd.tmp
  new_module "$mod" apimdev-e2e/etcd
  cp "$E2E_DIR/_gosrc/etcd/main.go" "$mod/"
  # No `go mod tidy`: offline it would also want the test dependencies of every dependency.
  (cd "$mod" && "$GO" get "go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION" &&
    rm -rf "$tmp" && mkdir -p "$tmp" &&
    "$GO" build "${GO_BUILD_FLAGS[@]}" -mod=mod -ldflags "-s -w" -o "$tmp/etcd" .) \
    >"$CACHE/logs/etcd.log" 2>&1 || { tail -n 30 "$CACHE/logs/etcd.log" >&2; die "building etcd failed"; }
  finish_out "$tmp" "$ETCD_OUT"
}

build_coredns() {
  if [[ -x $COREDNS_OUT/coredns ]]; then log "coredns $COREDNS_VERSION: cached"; return; fi
  local mod=$CACHE/src/coredns-$COREDNS_VERSION tmp=$CACHE/out/.coredns.tmp
  new_module "$mod" apimdev-e2e/coredns
  cp "$E2E_DIR/_gosrc/coredns/main.go" "$mod/"
  # Stub so that `go get` can load the package before the real directive list is known.
  printf 'package main\n\nvar directives = []string{}\n' >"$mod/directives.go"
  (cd "$mod" && "$GO" get "github.com/coredns/coredns@$COREDNS_VERSION") \
    >"$CACHE/logs/coredns.log" 2>&1 || { tail -n 30 "$CACHE/logs/coredns.log" >&2; die "go get coredns failed"; }
  # The directive order must follow CoreDNS's plugin.cfg: keep the lines ("name:package")
  # whose package main.go imports.
  local cfg=$GOMODCACHE/github.com/coredns/coredns@$COREDNS_VERSION/plugin.cfg name pkg
  [[ -f $cfg ]] || die "missing $cfg"
  {
    printf '// Code generated by scripts/e2e/lib/binaries.sh from CoreDNS plugin.cfg. DO NOT EDIT.\n\n'
    printf 'package main\n\nvar directives = []string{\n'
    while IFS=: read -r name pkg; do
      [[ -z $name || $name == \#* ]] && continue
      if grep -q "\"github.com/coredns/coredns/plugin/$pkg\"" "$mod/main.go"; then
        printf '\t"%s",\n' "$name"
      fi
    done <"$cfg"
    printf '}\n'
  } >"$mod/directives.go"
  (cd "$mod" && rm -rf "$tmp" && mkdir -p "$tmp" &&
    "$GO" build "${GO_BUILD_FLAGS[@]}" -mod=mod \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
      -o "$tmp/coredns" .) \
    >>"$CACHE/logs/coredns.log" 2>&1 || { tail -n 30 "$CACHE/logs/coredns.log" >&2; die "building coredns failed"; }
  "$tmp/coredns" -plugins >"$tmp/plugins.txt"
  finish_out "$tmp" "$COREDNS_OUT"
}

# go_install_to OUTDIR BINARY PKG@VERSION [LDFLAGS]: `go install` into a fresh directory.
go_install_to() {
  local out=$1 bin=$2 pkg=$3 ld=${4:-"-s -w"} tmp
  if [[ -x $out/$bin ]]; then log "$bin: cached"; return; fi
  tmp=$CACHE/out/.$bin.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN=$tmp "$GO" install "${GO_BUILD_FLAGS[@]}" -ldflags "$ld" "$pkg" >"$CACHE/logs/$bin.log" 2>&1 \
    || { tail -n 30 "$CACHE/logs/$bin.log" >&2; die "go install $pkg failed"; }
  finish_out "$tmp" "$out"
}

build_crictl() {
  go_install_to "$CRICTL_OUT" crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
}

build_kind() {
  go_install_to "$KIND_OUT" kind "sigs.k8s.io/kind@$KIND_VERSION"
}

# build_small OUTDIR BINARY SOURCE.go: a stdlib-only program in a throwaway module.
build_small() {
  local out=$1 bin=$2 src=$3 mod tmp
  if [[ -x $out/$bin ]]; then log "$bin: cached"; return; fi
  mod=$CACHE/src/$bin tmp=$CACHE/out/.$bin.tmp
  new_module "$mod" "apimdev-e2e/$bin"
  cp "$src" "$mod/main.go"
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$mod" && "$GO" build "${GO_BUILD_FLAGS[@]}" -ldflags "-s -w" -o "$tmp/$bin" .) \
    >"$CACHE/logs/$bin.log" 2>&1 || { cat "$CACHE/logs/$bin.log" >&2; die "building $bin failed"; }
  finish_out "$tmp" "$out"
}

# build_capdrop_out OUTDIR: the runc wrapper, cached like the other small programs.
build_capdrop_out() {
  local out=$1 tmp=$CACHE/out/.runc-capdrop.tmp
  if [[ -x $out/runc-capdrop ]]; then log "runc-capdrop: cached"; return; fi
  rm -rf "$tmp" && mkdir -p "$tmp"
  build_capdrop "$tmp/runc-capdrop" "$GO" >"$CACHE/logs/runc-capdrop.log" 2>&1 \
    || { cat "$CACHE/logs/runc-capdrop.log" >&2; die "building runc-capdrop failed"; }
  finish_out "$tmp" "$out"
}

build_all_binaries() {
  stage pause build_small "$PAUSE_OUT" pause "$E2E_DIR/_gosrc/pause/main.go"
  stage runc-capdrop build_capdrop_out "$CAPDROP_OUT"
  stage kind build_kind
  stage etcd build_etcd
  stage crictl build_crictl
  stage coredns build_coredns
  stage kubernetes build_kubernetes
  # Tools for callers of the rig (tests, benchmarks): copies, so the cache's versioned
  # directories can be pruned independently.
  install -m 0755 "$KIND_OUT/kind" "$CACHE/bin/kind"
  install -m 0755 "$K8S_OUT/kubectl" "$CACHE/bin/kubectl"
}
