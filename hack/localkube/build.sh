#!/usr/bin/env bash
# Builds Kubernetes, etcd, containerd and CoreDNS from their Go modules into a cache keyed by version.
# A component is rebuilt only when its cached binaries are missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Binaries are written to a temporary directory and renamed into place at the end, so a build
# killed half-way never leaves a cache entry that looks complete.
install_dir() {
  local final=$1; shift
  local tmp="$final.partial"
  rm -rf "$tmp"; mkdir -p "$tmp"
  "$@" "$tmp"
  rm -rf "$final"; mv "$tmp" "$final"
}

build_kubernetes() {
  local out=$1 v=${KUBERNETES_VERSION#v} pkg
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  local ldflags="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  cd "$LOCALKUBE_SRC/gomod/kubernetes"
  for pkg in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl; do
    log "building $pkg $KUBERNETES_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$pkg" "k8s.io/kubernetes/cmd/$pkg"
  done
  log "building kubelet $KUBERNETES_VERSION"
  CGO_ENABLED=1 go build -trimpath -ldflags "$ldflags" -o "$out/kubelet" k8s.io/kubernetes/cmd/kubelet
}

build_etcd() {
  local out=$1
  cd "$LOCALKUBE_SRC/gomod/etcd"
  log "building etcd $ETCD_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_containerd() {
  local out=$1 ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}"
  cd "$LOCALKUBE_SRC/gomod/containerd"
  log "building containerd $CONTAINERD_VERSION"
  CGO_ENABLED=1 go build -trimpath -tags no_btrfs -ldflags "$ldflags" -o "$out/containerd" \
    github.com/containerd/containerd/v2/cmd/containerd
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/ctr" github.com/containerd/containerd/v2/cmd/ctr
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/containerd-shim-runc-v2" \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
}

build_coredns() {
  local out=$1
  cd "$LOCALKUBE_SRC/gomod/coredns"
  log "building coredns $COREDNS_VERSION"
  # Static: it runs alone in an image FROM scratch.
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns
}

start=$(date +%s)
[ -x "$ETCD_BIN/etcd" ] || install_dir "$ETCD_BIN" build_etcd
[ -x "$CONTAINERD_BIN/containerd-shim-runc-v2" ] || install_dir "$CONTAINERD_BIN" build_containerd
[ -x "$K8S_BIN/kubelet" ] || install_dir "$K8S_BIN" build_kubernetes
[ -x "$COREDNS_BIN/coredns" ] || install_dir "$COREDNS_BIN" build_coredns
log "binaries ready in $BIN_CACHE ($(( $(date +%s) - start ))s)"
