# Shared settings of hack/storage (the S3-compatible server for tests and the demo). Source it.
# shellcheck shell=bash
STORAGE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../localkube/lib.sh
. "$STORAGE_SRC/../localkube/lib.sh"

# github.com/seaweedfs/seaweedfs publishes no semantic versions: its module is pinned by
# pseudo-version (gomod/seaweedfs/go.mod pins the same; change both together). `weed version`: 4.53.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
SEAWEEDFS_BIN=$BIN_CACHE/seaweedfs-$SEAWEEDFS_VERSION
SEAWEEDFS_IMAGE=docker.io/cairn/seaweedfs:${SEAWEEDFS_VERSION#v0.0.0-}
STORAGE_NAMESPACE=${CAIRN_STORAGE_NAMESPACE:-cairn-storage}
STORAGE_SERVICE=seaweedfs
S3_PORT=8333
# What pods use: the Service by its cluster DNS name.
S3_ENDPOINT=http://$STORAGE_SERVICE.$STORAGE_NAMESPACE.svc:$S3_PORT
# The server's files on the node: buckets survive a restart of its pod, and of the cluster.
STORAGE_DATA=$D/storage/seaweedfs
# The Secret holding the server's identities (s3.json) and the admin keys tests and demos use.
STORAGE_SECRET=seaweedfs-s3
