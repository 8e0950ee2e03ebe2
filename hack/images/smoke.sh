#!/usr/bin/env bash
# Checks the images hack/images/build.sh made, without a cluster: each one runs in a throwaway
# buildah container (chroot isolation).
#
#   hack/images/smoke.sh [pause|operator|trainer|server ...]   (default: all four)
set -euo pipefail

ALL_IMAGES=(pause operator trainer server)
TAG=dev

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# Runs a command in a fresh container of the image (as the image's user) and prints its stdout.
in_image() {
    local ref=$1 ctr rc=0 out
    shift
    ctr=$(buildah from --pull=never --quiet "$ref")
    out=$(buildah run --isolation=chroot "$ctr" -- "$@") || rc=$?
    buildah rm "$ctr" >/dev/null
    ((rc == 0)) || die "$ref: '$*' failed (exit $rc)"
    printf '%s\n' "$out"
}

expect() {  # expect NAME WANT GOT
    [[ $3 == "$2" ]] || die "$1: expected '$2', got '$3'"
    log "$1: ok"
}

names=("$@")
((${#names[@]})) || names=("${ALL_IMAGES[@]}")
for name in "${names[@]}"; do
    ref=docker.io/cairn/$name:$TAG
    case $name in
    pause)
        got=$(in_image "$ref" /pause -v)
        expect pause "cairn-pause 1" "$got"
        ;;
    trainer)
        got=$(in_image "$ref" python -c 'import os, sklearn, cairn; print(6 * 7, os.getuid())')
        expect trainer "42 1000" "$got"
        ;;
    operator)
        got=$(in_image "$ref" sh -c "command -v cairn-operator; python -c 'import os, cairn; print(os.getuid())'")
        expect operator "/usr/local/bin/cairn-operator 1000" "${got//$'\n'/ }"
        ;;
    server)
        got=$(in_image "$ref" python -c 'import os, cairn, prometheus_client; print(os.getuid())')
        expect server "1000" "$got"
        ;;
    *) die "unknown image '$name' (known: ${ALL_IMAGES[*]})" ;;
    esac
done
