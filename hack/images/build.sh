#!/usr/bin/env bash
# Builds Cairn's container images on a machine with no Docker engine and no registry (DESIGN.md §5).
#
#   hack/images/build.sh [pause|operator|trainer|server ...]     (default: all four)
#   hack/images/build.sh --static REF BINARY [ARGS...]           (prints the docker-archive's path)
#
# - base: Debian bookworm from debootstrap, finished by images/base/setup.sh and committed into
#   buildah's storage under the name the Dockerfiles use in FROM ($BASE_IMAGE), so that the same
#   Dockerfiles build unchanged with `docker build` elsewhere.
# - pause: images/pause/pause.c compiled statically and committed FROM scratch.
# - operator, trainer, server: images/<name>/Dockerfile, with the repository root as context.
# - --static: one statically linked program (CoreDNS, SeaweedFS, built from their Go modules by
#   hack/localkube and hack/storage) as /<its name> in an image FROM scratch named REF, entrypoint
#   the program with ARGS; saved as $CAIRN_CACHE_DIR/images/<name>-<tag>.tar, rebuilt only when
#   the program changes.
# Every image is named docker.io/cairn/<name>:dev and saved as a docker-archive at
# $CAIRN_CACHE_DIR/images/<name>.tar, which hack/images/load.sh imports into containerd.
#
# Environment: CAIRN_CACHE_DIR (default ~/.cache/cairn), CAIRN_DEBIAN_MIRROR,
# CAIRN_DEBIAN_SECURITY_MIRROR, CAIRN_VERBOSE=1 (stream the tools' output instead of logging it).
# Needs root (debootstrap, buildah). Progress goes to stderr; the tools' output to a log file.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}/images
LOG=$CACHE/build.log
ALL_IMAGES=(pause operator trainer server)
TAG=dev
BASE_IMAGE=docker.io/library/python:3.11-slim
BASE_LABEL=io.cairn.base-key
SUITE=bookworm
MIRROR=${CAIRN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CAIRN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
INCLUDE=python3,python3-pip,python3-venv,python-is-python3,ca-certificates
# The host's CA bundle: this machine's TLS is intercepted, so pip inside a build must trust what
# the host trusts. It is bind-mounted for RUN steps only and never ends up in an image.
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# Same flags for every buildah call that runs something: no daemon, no pulls, the host's network.
BUILDAH_RUN_FLAGS=(--isolation=chroot --network=host)

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# Runs a noisy tool with its output appended to $LOG; on failure shows the end of it.
run() {
    if [[ ${CAIRN_VERBOSE:-0} == 1 ]]; then
        "$@" >&2
        return
    fi
    local rc=0
    printf '\n$ %s\n' "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || rc=$?
    if ((rc)); then
        tail -n 40 "$LOG" >&2
        die "failed (exit $rc): $* (full log: $LOG)"
    fi
}

ensure_tools() {
    [[ $(id -u) == 0 ]] || die "must run as root (debootstrap and buildah need it)"
    local missing=() pair cmd pkg
    # command:package; CI machines start without some of these.
    for pair in debootstrap:debootstrap buildah:buildah skopeo:skopeo runc:runc gcc:gcc \
        unshare:util-linux flock:util-linux; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    for pkg in libc6-dev debian-archive-keyring; do  # static libc for pause; debootstrap's keys
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        log "installing ${missing[*]} with apt-get"
        run apt-get -q update
        run env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${missing[@]}"
    fi
    # buildah refuses to work without a signature policy; a fresh machine may have none.
    if [[ ! -f /etc/containers/policy.json ]]; then
        mkdir -p /etc/containers
        printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >/etc/containers/policy.json
    fi
}

image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1"; }
image_label() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }
image_size() { buildah images --format '{{.Size}}' "$1" | head -n 1; }

# The base's cache key: everything that decides its content (debootstrap's parameters and the
# script that finishes the tree). Deliberately not the date: rebuild with a cold cache to refresh.
base_key() {
    {
        printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$INCLUDE" minbase "$(dpkg --print-architecture)"
        cat "$ROOT/images/base/setup.sh"
    } | sha256sum | cut -c1-16
}

# debootstrap + images/base/setup.sh into a tarball. Both run in a private mount namespace, so
# their /proc mounts vanish with it even if they fail half way.
make_rootfs() {
    local tarball=$1 work rootfs stale
    # Left by a run that was killed outright (the lock rules out one still running).
    for stale in "$CACHE"/base-work.*; do rm_tree "$stale"; done
    work=$(mktemp -d "$CACHE/base-work.XXXXXX")
    rootfs=$work/rootfs
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm_tree '$work'" EXIT
    log "base: debootstrap $SUITE (minbase + $INCLUDE)"
    run unshare --mount --propagation private -- debootstrap --variant=minbase \
        --arch="$(dpkg --print-architecture)" --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR"
    log "base: updates and slimming (images/base/setup.sh)"
    cp "$ROOT/images/base/setup.sh" "$rootfs/tmp/setup.sh"
    cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"  # name resolution inside the chroot only
    # shellcheck disable=SC2016  # $1.. are the inner shell's arguments
    run unshare --mount --propagation private -- sh -c \
        'mount -t proc proc "$1/proc" && exec chroot "$1" sh /tmp/setup.sh "$2" "$3" "$4"' \
        sh "$rootfs" "$MIRROR" "$SECURITY_MIRROR" "$SUITE"
    rm -f "$rootfs/tmp/setup.sh"
    # Device nodes come from the runtime; the rest keeps its numeric owners and capabilities.
    run tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$tarball"
    rm_tree "$work"
    trap - EXIT
}

# rm -rf that refuses to descend into anything still mounted.
rm_tree() {
    [[ -e $1 ]] || return 0
    if findmnt -rno TARGET | grep -q "^$1"; then
        die "not removing $1: something is still mounted under it"
    fi
    rm -rf "$1"
}

# A working container FROM scratch, under a fixed name so that one left by a failed run is replaced.
new_container() {
    buildah rm "$1" >/dev/null 2>&1 || true
    buildah from --pull=never --name "$1" scratch
}

build_base() {
    local key tarball ctr
    key=$(base_key)
    tarball=$CACHE/base-rootfs-$key.tar
    if [[ -f $tarball ]] && [[ $(image_label "$BASE_IMAGE" "$BASE_LABEL") == "$key" ]]; then
        log "base: cached ($BASE_IMAGE, key $key)"
        return
    fi
    if [[ ! -f $tarball ]]; then
        make_rootfs "$tarball"
    fi
    # Drop tarballs of older keys: they can never be used again.
    find "$CACHE" -maxdepth 1 -name 'base-rootfs-*.tar' ! -name "base-rootfs-$key.tar" -delete
    log "base: committing $BASE_IMAGE"
    ctr=$(new_container cairn-build-base)
    run buildah add "$ctr" "$tarball" /
    # Mirrors the official image's config, except that Python lives in /usr rather than /usr/local.
    run buildah config --os linux --arch "$(dpkg --print-architecture)" \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd '["python3"]' --label "$BASE_LABEL=$key" "$ctr"
    run buildah commit --rm --quiet --format docker "$ctr" "$BASE_IMAGE"
}

build_pause() {
    local ref=docker.io/cairn/pause:$TAG src=$ROOT/images/pause/pause.c key work ctr
    key=$({ cat "$src"; gcc --version | head -n 1; } | sha256sum | cut -c1-16)
    if [[ $(image_label "$ref" io.cairn.source-key) == "$key" ]]; then
        log "pause: cached"
        return
    fi
    work=$(mktemp -d)
    run gcc -static -Os -s -Wall -Wextra -Werror -o "$work/pause" "$src"
    ctr=$(new_container cairn-build-pause)
    run buildah copy "$ctr" "$work/pause" /pause
    rm -rf "$work"
    # Same shape as registry.k8s.io/pause: entrypoint /pause, unprivileged user.
    run buildah config --os linux --arch "$(dpkg --print-architecture)" --entrypoint '["/pause"]' \
        --cmd '' --user 65535:65535 --label io.cairn.source-key="$key" "$ctr"
    run buildah commit --rm --quiet --format docker "$ctr" "$ref"
}

build_static() {
    local ref=$1 binary=$2 name tag key tarball ctr entrypoint; shift 2
    name=${ref##*/}; tag=${name##*:}; name=${name%%:*}
    tarball=$CACHE/$name-$tag.tar
    key=$({ sha256sum <"$binary"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16)
    if [[ -f $tarball && $(cat "$tarball.id" 2>/dev/null) == "$key" ]]; then
        log "$name: cached ($ref)"
        echo "$tarball"
        return
    fi
    entrypoint=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "/${binary##*/}" "$@")
    ctr=$(new_container "cairn-build-$name")
    run buildah copy --chmod 0755 "$ctr" "$binary" "/${binary##*/}"
    run buildah config --os linux --arch "$(dpkg --print-architecture)" --entrypoint "$entrypoint" \
        --cmd '' --user 65532:65532 --label io.cairn.source-key="$key" "$ctr"
    run buildah commit --rm --quiet --format docker "$ctr" "$ref"
    rm -f "$tarball.tmp" "$tarball.id"
    run buildah push --quiet "$ref" "docker-archive:$tarball.tmp:$ref"
    mv "$tarball.tmp" "$tarball"
    printf '%s\n' "$key" >"$tarball.id"
    log "$name: $ref $(image_size "$ref")"
    echo "$tarball"
}

build_dockerfile() {
    local name=$1 ref=docker.io/cairn/$1:$TAG
    local mounts=()
    [[ -f $HOST_CA ]] && mounts=(--volume "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro")
    # --layers: unchanged steps (the big pip installs) come from buildah's cache on warm builds.
    # --force-rm: a failed step leaves no working container behind.
    run buildah bud --layers --force-rm --format docker --pull=never "${BUILDAH_RUN_FLAGS[@]}" "${mounts[@]}" \
        --file "$ROOT/images/$name/Dockerfile" --tag "$ref" "$ROOT"
}

# Writes the docker-archive that load.sh imports; skipped when it already holds this image id.
save_image() {
    local name=$1 ref=docker.io/cairn/$1:$TAG id tarball=$CACHE/$1.tar
    id=$(image_id "$ref")
    if [[ -f $tarball && $(cat "$tarball.id" 2>/dev/null) == "$id" ]]; then
        return
    fi
    rm -f "$tarball.tmp" "$tarball.id"
    run buildah push --quiet "$ref" "docker-archive:$tarball.tmp:$ref"
    mv "$tarball.tmp" "$tarball"
    printf '%s\n' "$id" >"$tarball.id"
}

# Removes what earlier builds left behind: images that lost their name to a newer build and are
# no layer of anything else. Only ours (they carry our labels), never anyone else's.
prune_dangling() {
    local ids
    for _ in 1 2 3 4 5 6 7 8; do  # removing a child can leave its parent dangling
        mapfile -t ids < <({
            buildah images --quiet --filter dangling=true --filter "label=$BASE_LABEL"
            buildah images --quiet --filter dangling=true --filter label=io.cairn.source-key
        } | sort -u)
        ((${#ids[@]})) || return 0
        # Best effort: an image still used by a container stays.
        buildah rmi "${ids[@]}" >>"$LOG" 2>&1 || return 0
    done
}

main() {
    local names=("$@") name start
    if [[ ${1:-} == --static ]]; then
        (($# >= 3)) || die "usage: $0 --static REF BINARY [ARGS...]"
        mkdir -p "$CACHE"
        exec 9>"$CACHE/.build.lock"
        flock -n 9 || { log "waiting for another hack/images/build.sh to finish"; flock 9; }
        ensure_tools
        shift
        build_static "$@"
        return
    fi
    ((${#names[@]})) || names=("${ALL_IMAGES[@]}")
    for name in "${names[@]}"; do
        [[ " ${ALL_IMAGES[*]} " == *" $name "* ]] || die "unknown image '$name' (known: ${ALL_IMAGES[*]})"
    done
    mkdir -p "$CACHE"
    # One build at a time: two would race on the base and on the tarballs.
    exec 9>"$CACHE/.build.lock"
    flock -n 9 || { log "waiting for another hack/images/build.sh to finish"; flock 9; }
    : >"$LOG"
    ensure_tools
    for name in "${names[@]}"; do
        if [[ $name != pause ]]; then
            build_base
            break
        fi
    done
    for name in "${names[@]}"; do
        start=$SECONDS
        if [[ $name == pause ]]; then
            build_pause
        else
            log "$name: building images/$name/Dockerfile"
            build_dockerfile "$name"
        fi
        save_image "$name"
        log "$name: docker.io/cairn/$name:$TAG $(image_size "docker.io/cairn/$name:$TAG") ($((SECONDS - start))s) -> $CACHE/$name.tar"
    done
    prune_dangling
}

main "$@"
