#!/usr/bin/env bash
# Builds SeaweedFS's `weed` from its Go module (wrapper gomod/seaweedfs) into a cache keyed by
# version: $CAIRN_CACHE_DIR/bin/seaweedfs-<version>/weed. Rebuilt only when missing (~5 min cold).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -x "$SEAWEEDFS_BIN/weed" ] && exit 0
start=$(date +%s)
tmp=$SEAWEEDFS_BIN.partial
rm -rf "$tmp"; mkdir -p "$tmp"
log "building SeaweedFS (weed) $SEAWEEDFS_VERSION"
# Static, for an image FROM scratch; -s -w: about 150 MB instead of 230.
(cd "$STORAGE_SRC/gomod/seaweedfs" &&
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/weed" github.com/seaweedfs/seaweedfs/weed)
rm -rf "$SEAWEEDFS_BIN"; mv "$tmp" "$SEAWEEDFS_BIN"
log "weed ready in $SEAWEEDFS_BIN ($(( $(date +%s) - start ))s)"
