"""How a pod mounts a pvc:// artifact location: a volume and a volumeMount, as pod-spec dicts."""

import re
from dataclasses import dataclass
from posixpath import isabs, join
from typing import Any

from cairn.storage.errors import InvalidArtifactURI
from cairn.storage.uri import ArtifactURI

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DEFAULT_VOLUME_NAME = "cairn-artifact"


@dataclass(frozen=True)
class PodMount:
    """One entry for `spec.volumes`, one for a container's `volumeMounts`, and where in the
    container the artifact's directory then is."""

    volume: dict[str, Any]
    volume_mount: dict[str, Any]
    directory: str


def pvc_mount(
    uri: ArtifactURI,
    *,
    mount_path: str,
    volume_name: str = DEFAULT_VOLUME_NAME,
    read_only: bool = False,
    sub_path: bool = True,
) -> PodMount:
    """Mount the claim of a pvc:// URI at `mount_path`.

    With `sub_path` (readers such as the model server) only the artifact's directory is mounted,
    as the subPath, at `mount_path`. Without it the claim's root is mounted there and the
    artifact is at `mount_path/<path>`: what a writer that does not run as root needs, because
    the kubelet creates a missing subPath directory as root.
    """
    if uri.scheme != "pvc" or uri.claim is None:
        raise InvalidArtifactURI(f"{uri} is not a pvc:// URI: only claims are mounted into pods")
    if len(volume_name) > 63 or not _DNS1123_LABEL.fullmatch(volume_name):
        raise InvalidArtifactURI(
            f"volume name {volume_name!r} is not a DNS-1123 label (lowercase letters, digits, '-')"
        )
    if not isabs(mount_path):
        raise InvalidArtifactURI(f"mount path {mount_path!r} must be absolute")
    volume_mount: dict[str, Any] = {
        "name": volume_name,
        "mountPath": mount_path,
        "readOnly": read_only,
    }
    if sub_path and uri.path:
        volume_mount["subPath"] = uri.path
    return PodMount(
        volume={
            "name": volume_name,
            "persistentVolumeClaim": {"claimName": uri.claim, "readOnly": read_only},
        },
        volume_mount=volume_mount,
        directory=mount_path if sub_path else join(mount_path, uri.path).rstrip("/"),
    )
