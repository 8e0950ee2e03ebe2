"""Artifact storage: URIs (pvc://, file://, s3://), how pods mount them, sha256 digests, the
node-local cache of downloaded artifacts.

Pure: no Kubernetes API, no kopf. Object stores (boto3) are reached through cairn.storage.s3 and
cairn.storage.transfer, imported by the code that runs in pods only: the operator never reads an
object, and its image has no boto3.
"""

from cairn.storage.cache import DigestCache
from cairn.storage.digest import (
    FileEntry,
    Manifest,
    check_digest_syntax,
    directory_digest,
    directory_manifest,
    file_sha256s,
    manifest_of,
    verify_digest,
)
from cairn.storage.errors import (
    ArtifactError,
    DigestMismatch,
    InvalidArtifactURI,
    InvalidDigest,
    StorageError,
    UnsupportedArtifactStore,
)
from cairn.storage.mount import DEFAULT_VOLUME_NAME, PodMount, pvc_mount
from cairn.storage.pod_storage import ARTIFACTS_MOUNT, PodStorage
from cairn.storage.store import ArtifactStore, LocalStore, open_store
from cairn.storage.uri import ArtifactURI, file_uri, parse_artifact_uri

__all__ = [
    "ARTIFACTS_MOUNT",
    "DEFAULT_VOLUME_NAME",
    "ArtifactError",
    "ArtifactStore",
    "ArtifactURI",
    "DigestCache",
    "DigestMismatch",
    "FileEntry",
    "InvalidArtifactURI",
    "InvalidDigest",
    "LocalStore",
    "Manifest",
    "PodMount",
    "PodStorage",
    "StorageError",
    "UnsupportedArtifactStore",
    "check_digest_syntax",
    "directory_digest",
    "directory_manifest",
    "file_sha256s",
    "file_uri",
    "manifest_of",
    "open_store",
    "parse_artifact_uri",
    "pvc_mount",
    "verify_digest",
]
