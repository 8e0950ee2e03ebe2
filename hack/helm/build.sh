#!/usr/bin/env bash
# Builds helm from its Go module (release binaries cannot be downloaded here; the Go module proxy
# can) into $CAIRN_CACHE_DIR/bin/helm-<version>/helm, the path tests/support/helm.py looks in.
#
#   hack/helm/build.sh           no-op when the binary is cached or a helm v3 is already on PATH
#   hack/helm/build.sh --path    print the helm that the tests will use (building it if needed)
#
# Quiet on success: only a cold build says what it does, on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
CAIRN_CACHE_DIR=${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}
HELM_DIR=$CAIRN_CACHE_DIR/bin/helm-$HELM_VERSION
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

log() { printf '[helm] %s\n' "$*" >&2; }

# A helm 3 already installed will do, from 3.17 on (`install --take-ownership`, which the
# integration test uses to adopt the CRDs the other tests installed).
path_helm() {
  local h v; h=$(command -v helm 2>/dev/null) || return 1
  v=$("$h" version --template '{{.Version}}' 2>/dev/null) || return 1
  [[ $v =~ ^v3\.([0-9]+)\. ]] && (( BASH_REMATCH[1] >= 17 )) && echo "$h"
}

build() {
  command -v go >/dev/null || { log "error: Go is required to build helm $HELM_VERSION"; exit 1; }
  local start tmp=$HELM_DIR.partial client_go major minor ldflags
  start=$(date +%s)
  log "building helm $HELM_VERSION from its Go module (a few minutes the first time)"
  cd "$HERE/gomod"
  # As helm's own Makefile does: the version, and the Kubernetes version that `helm template`
  # and `helm lint` assume (.Capabilities.KubeVersion), taken from the client-go it links.
  client_go=$(go list -m -f '{{.Version}}' k8s.io/client-go)   # v0.<minor>.<patch>
  minor=${client_go#v0.}; minor=${minor%%.*}; major=1
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  # Written beside the cache entry and renamed at the end, so a build killed half-way never
  # leaves an entry that looks complete.
  rm -rf "$tmp"; mkdir -p "$tmp"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm
  rm -rf "$HELM_DIR"; mv "$tmp" "$HELM_DIR"
  log "helm $HELM_VERSION ready in $HELM_DIR ($(( $(date +%s) - start ))s)"
}

if [ -x "$HELM_DIR/helm" ]; then
  helm=$HELM_DIR/helm
elif helm=$(path_helm); then
  :
else
  build
  helm=$HELM_DIR/helm
fi
if [ "${1:-}" = --path ]; then echo "$helm"; fi
