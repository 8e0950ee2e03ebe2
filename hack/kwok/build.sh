#!/usr/bin/env bash
# Builds kwok from its Go module (release binaries cannot be downloaded here; the Go module proxy
# can) into $CAIRN_CACHE_DIR/bin/kwok-<version>/kwok, the path bench/scale looks in, with
# stages.yaml beside it: the module's own "fast" Stages (nodes Ready at once and heartbeating
# through their Lease; pods Running and Ready, a Job's pods then Succeeded, deleted pods gone),
# which the kwok binary needs as configuration (only kwokctl bundles them).
#
#   hack/kwok/build.sh           no-op when the binary is cached
#   hack/kwok/build.sh --path    print the kwok that bench-scale will use (building it if needed)
#
# Quiet on success: only a cold build says what it does, on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
CAIRN_CACHE_DIR=${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}
KWOK_DIR=$CAIRN_CACHE_DIR/bin/kwok-$KWOK_VERSION
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

log() { printf '[kwok] %s\n' "$*" >&2; }

build() {
  command -v go >/dev/null || { log "error: Go is required to build kwok $KWOK_VERSION"; exit 1; }
  local start src tmp=$KWOK_DIR.partial
  start=$(date +%s)
  log "building kwok $KWOK_VERSION from its Go module (a minute or two the first time)"
  # Written beside the cache entry and renamed at the end, so a build killed half-way never
  # leaves an entry that looks complete. `go install pkg@version` builds with the module's own
  # go.mod and go.sum, checked against the checksum database.
  rm -rf "$tmp"; mkdir -p "$tmp"
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/kustomize/stage" ] || { log "error: no Stages in the kwok module at '$src'"; exit 1; }
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n'; cat "$src/kustomize/stage/$stage.yaml"
  done >"$tmp/stages.yaml"
  rm -rf "$KWOK_DIR"; mv "$tmp" "$KWOK_DIR"
  log "kwok $KWOK_VERSION ready in $KWOK_DIR ($(( $(date +%s) - start ))s)"
}

[ -x "$KWOK_DIR/kwok" ] && [ -s "$KWOK_DIR/stages.yaml" ] || build
if [ "${1:-}" = --path ]; then echo "$KWOK_DIR/kwok"; fi
