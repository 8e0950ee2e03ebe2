#!/usr/bin/env bash
# Imports the images hack/images/build.sh saved ($CAIRN_CACHE_DIR/images/<name>.tar) into a
# containerd's k8s.io namespace, where the kubelet (CRI) finds them: there is no registry to pull
# from, so pods use `imagePullPolicy: Never`/`IfNotPresent` and these exact names.
#
#   hack/images/load.sh [SOCKET] [pause|operator|trainer|server ...]
#
# Without names it loads every image that has been built and skips the others (cluster-up runs it
# before `make images` may have); a named image that was never built is an error.
# SOCKET defaults to $CONTAINERD_ADDRESS; the ctr binary is $CTR (default: ctr on PATH).
# An image whose tarball was already imported (same image id) is skipped.
set -euo pipefail

CACHE=${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}/images
CTR=${CTR:-ctr}
ALL_IMAGES=(pause operator trainer server)
TAG=dev
ID_LABEL=io.cairn.image-id

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

address=${1:-${CONTAINERD_ADDRESS:-}}
[[ -n $address ]] || die "usage: $0 SOCKET [NAMES...] (or set CONTAINERD_ADDRESS)"
shift $(($# > 0 ? 1 : 0))
names=("$@")
explicit=${#names[@]}
((explicit)) || names=("${ALL_IMAGES[@]}")
[[ -S $address ]] || die "no containerd socket at $address"
command -v "$CTR" >/dev/null 2>&1 || die "ctr not found: $CTR (set CTR)"

# ctr repeats the daemon's deprecation notices (cgroup v1) on every call: keep stderr for errors.
ctr_() {
    "$CTR" --address "$address" --namespace k8s.io "$@" 2> >(grep -v 'msg="DEPRECATION: ' >&2 || true)
}

loaded=()
for name in "${names[@]}"; do
    [[ " ${ALL_IMAGES[*]} " == *" $name "* ]] || die "unknown image '$name' (known: ${ALL_IMAGES[*]})"
    ref=docker.io/cairn/$name:$TAG
    tarball=$CACHE/$name.tar
    if [[ ! -f $tarball || ! -f $tarball.id ]]; then
        ((explicit)) || { log "$name: not built yet, skipped (hack/images/build.sh $name)"; continue; }
        die "$tarball missing: run hack/images/build.sh $name"
    fi
    loaded+=("$name")
    id=$(<"$tarball.id")
    # The label records which build this name points to, so re-running is cheap.
    if [[ -n $(ctr_ images ls -q "name==$ref,labels.\"$ID_LABEL\"==\"$id\"") ]]; then
        log "$name: $ref already imported"
        continue
    fi
    log "$name: importing $tarball"
    # The archive names the image fully (docker.io/cairn/<name>:dev), which is what the CRI
    # resolves `cairn/<name>:dev` to; the import also unpacks it for the default snapshotter.
    ctr_ images import "$tarball" >/dev/null
    [[ -n $(ctr_ images ls -q "name==$ref") ]] \
        || die "importing $tarball did not create $ref; containerd has: $(ctr_ images ls -q | tr '\n' ' ')"
    ctr_ images label "$ref" "$ID_LABEL=$id" >/dev/null
done

# The kubelet asks for these exact names; anything else means pods stuck in ErrImageNeverPull.
present=$(ctr_ images ls -q)
for name in ${loaded[@]+"${loaded[@]}"}; do
    grep -qxF "docker.io/cairn/$name:$TAG" <<<"$present" \
        || die "docker.io/cairn/$name:$TAG is not in containerd after the import"
done
log "loaded: ${loaded[*]:-nothing}"
